import type { Db } from '../store/durable/database.ts';
import type { UserTable } from '../store/durable/schema.ts';
import type { Clock } from '../clock.ts';
import { AppError } from '../errors/app-error.ts';
import { newId } from '../crypto/random.ts';
import { isValidUsername, normaliseUsername } from './username.ts';

export interface User {
  id: string;
  tenantId: string;
  username: string;
  email: string | null;
  phone: string | null;
  status: 'active' | 'disabled';
  mustRegister: boolean;
  flaggedAt: number | null;
  createdAt: number;
}

export interface UserWithSecret extends User {
  passwordHash: string | null;
}

export interface NewUser {
  username: string;
  email?: string | undefined;
  phone?: string | undefined;
  passwordHash?: string | undefined;
}

const EMAIL_PATTERN = /^[^\s@]{1,64}@[^\s@]{1,255}$/;
const PHONE_PATTERN = /^\+[1-9][0-9]{6,14}$/;

/** Users of a tenant. Every query takes the tenant id: nothing crosses tenants. */
export class Users {
  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
  ) {}

  async create(tenantId: string, input: NewUser): Promise<User> {
    const username = normaliseUsername(input.username);
    if (!isValidUsername(username)) throw new AppError('invalid-request', 'a username is 1 to 256 printable characters');
    if (input.email !== undefined && !EMAIL_PATTERN.test(input.email)) throw new AppError('invalid-request', 'the email address is not valid');
    if (input.phone !== undefined && !PHONE_PATTERN.test(input.phone)) {
      throw new AppError('invalid-request', 'a phone number is in E.164 form, such as +14155550100');
    }
    const now = this.clock.now();
    const row: UserTable = {
      id: newId(),
      tenant_id: tenantId,
      username,
      email: input.email ?? null,
      phone: input.phone ?? null,
      password_hash: input.passwordHash ?? null,
      status: 'active',
      must_register: 0,
      flagged_at: null,
      created_at: now,
      updated_at: now,
    };
    const result = await this.db
      .insertInto('users')
      .values(row)
      .onConflict((oc) => oc.columns(['tenant_id', 'username']).doNothing())
      .executeTakeFirst();
    if (Number(result.numInsertedOrUpdatedRows ?? 0n) === 0) throw new AppError('conflict', `user "${username}" already exists`);
    return toUser(row);
  }

  async findByUsername(tenantId: string, username: string): Promise<UserWithSecret | undefined> {
    const row = await this.db
      .selectFrom('users')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .where('username', '=', normaliseUsername(username))
      .executeTakeFirst();
    return row && { ...toUser(row), passwordHash: row.password_hash };
  }

  async get(tenantId: string, userId: string): Promise<User | undefined> {
    const row = await this.db.selectFrom('users').selectAll().where('tenant_id', '=', tenantId).where('id', '=', userId).executeTakeFirst();
    return row && toUser(row);
  }

  async setPasswordHash(tenantId: string, userId: string, passwordHash: string): Promise<void> {
    await this.db
      .updateTable('users')
      .set({ password_hash: passwordHash, updated_at: this.clock.now() })
      .where('tenant_id', '=', tenantId)
      .where('id', '=', userId)
      .execute();
  }

  async flag(tenantId: string, userId: string): Promise<void> {
    const now = this.clock.now();
    await this.db.updateTable('users').set({ flagged_at: now, updated_at: now }).where('tenant_id', '=', tenantId).where('id', '=', userId).execute();
  }
}

export function toUser(row: UserTable): User {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    username: row.username,
    email: row.email,
    phone: row.phone,
    status: row.status,
    mustRegister: row.must_register === 1,
    flaggedAt: row.flagged_at,
    createdAt: row.created_at,
  };
}
