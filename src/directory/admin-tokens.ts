import type { Db } from '../store/durable/database.ts';
import type { Clock } from '../clock.ts';
import { AppError } from '../errors/app-error.ts';
import { hashToken } from '../crypto/keyed-hash.ts';
import { newId, randomToken } from '../crypto/random.ts';

export const ADMIN_ROLES = ['admin'] as const;
export type AdminRole = (typeof ADMIN_ROLES)[number];

export interface AdminTokenRecord {
  id: string;
  tenantId: string;
  role: AdminRole;
}

// The prefix makes a leaked token recognisable to secret scanners.
const PREFIX = 'sfa_';

/** Admin API tokens: shown once at creation, stored only as a hash. */
export class AdminTokens {
  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
  ) {}

  async create(tenantId: string, role: string): Promise<{ id: string; token: string }> {
    if (!(ADMIN_ROLES as readonly string[]).includes(role)) throw new AppError('invalid-request', `role must be one of: ${ADMIN_ROLES.join(', ')}`);
    const token = PREFIX + randomToken(32);
    const id = newId();
    await this.db
      .insertInto('admin_tokens')
      .values({ id, tenant_id: tenantId, token_hash: hashToken(token), role, created_at: this.clock.now(), last_used_at: null, revoked_at: null })
      .execute();
    return { id, token };
  }

  async authenticate(token: string): Promise<AdminTokenRecord | undefined> {
    if (!token.startsWith(PREFIX)) return undefined;
    const row = await this.db
      .selectFrom('admin_tokens')
      .select(['id', 'tenant_id', 'role'])
      .where('token_hash', '=', hashToken(token))
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    return row && { id: row.id, tenantId: row.tenant_id, role: row.role as AdminRole };
  }
}
