import type { Db } from '../store/durable/database.ts';
import type { AdminTokenTable } from '../store/durable/schema.ts';
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

/** A token as `token list` and the admin API show it: never the secret. */
export interface AdminTokenView {
  id: string;
  name: string | null;
  role: string;
  createdAt: string;
  createdBy: string | null;
  expiresAt: string | null;
  lastUsedAt: string | null;
  revokedAt: string | null;
}

/** How a token's actions are recorded (audit log, config versions): `admin-token:{id}`. */
export const tokenActor = (id: string) => `admin-token:${id}`;
/** Whether an actor is an admin API token (rather than a person, `user:{id}`, or the command line). */
export const isTokenActor = (actor: string) => actor.startsWith('admin-token:');
/** The token's id in its actor. */
export const tokenIdOf = (actor: string) => actor.slice(tokenActor('').length);

// The prefix makes a leaked token recognisable to secret scanners.
const PREFIX = 'sfa_';
export const TOKEN_DEFAULT_DAYS = 90;
export const TOKEN_MAX_DAYS = 365;
// Record the time of use at most this often, so a busy script is not a write per call.
const TOUCH_EVERY_MS = 60_000;

/**
 * Admin API tokens: shown once at creation, stored only as a hash, expiring
 * (90 days by default, a year at most), listed with their last use, and
 * revocable one by one.
 */
export class AdminTokens {
  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
  ) {}

  async create(
    tenantId: string,
    role: string,
    options: { days?: number | undefined; name?: string | undefined; createdBy?: string | undefined } = {},
  ): Promise<{ id: string; token: string; expiresAt: string }> {
    if (!(ADMIN_ROLES as readonly string[]).includes(role)) throw new AppError('invalid-request', `role must be one of: ${ADMIN_ROLES.join(', ')}`);
    const days = options.days ?? TOKEN_DEFAULT_DAYS;
    if (!Number.isInteger(days) || days < 1 || days > TOKEN_MAX_DAYS) throw new AppError('invalid-request', `a token lasts 1 to ${TOKEN_MAX_DAYS} days`);
    const name = options.name?.trim();
    if (name !== undefined && (name.length === 0 || name.length > 200)) throw new AppError('invalid-request', 'a token name is 1 to 200 characters');
    const token = PREFIX + randomToken(32);
    const id = newId();
    const now = this.clock.now();
    const expiresAt = now + days * 86_400_000;
    await this.db
      .insertInto('admin_tokens')
      .values({
        id,
        tenant_id: tenantId,
        token_hash: hashToken(token),
        role,
        created_at: now,
        last_used_at: null,
        revoked_at: null,
        expires_at: expiresAt,
        name: name ?? null,
        created_by: options.createdBy?.slice(0, 300) ?? null,
      })
      .execute();
    return { id, token, expiresAt: new Date(expiresAt).toISOString() };
  }

  /** The live token's record, its use noted; undefined when unknown, revoked or expired. */
  async authenticate(token: string): Promise<AdminTokenRecord | undefined> {
    if (!token.startsWith(PREFIX) || token.length > 100) return undefined;
    const row = await this.db
      .selectFrom('admin_tokens')
      .select(['id', 'tenant_id', 'role', 'expires_at', 'last_used_at'])
      .where('token_hash', '=', hashToken(token))
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    const now = this.clock.now();
    if (!row || row.expires_at === null || Number(row.expires_at) <= now) return undefined;
    if (row.last_used_at === null || now - Number(row.last_used_at) >= TOUCH_EVERY_MS) {
      await this.db.updateTable('admin_tokens').set({ last_used_at: now }).where('tenant_id', '=', row.tenant_id).where('id', '=', row.id).execute();
    }
    return { id: row.id, tenantId: row.tenant_id, role: row.role as AdminRole };
  }

  /** The tenant's tokens, newest first, revoked and expired ones included (they say so). */
  async list(tenantId: string): Promise<AdminTokenView[]> {
    const rows = await this.db.selectFrom('admin_tokens').selectAll().where('tenant_id', '=', tenantId).orderBy('created_at', 'desc').limit(500).execute();
    return rows.map(toView);
  }

  /** Revokes every live token an actor (`user:{id}`) created; their ids. */
  async revokeCreatedBy(tenantId: string, actor: string): Promise<string[]> {
    const rows = await this.db
      .updateTable('admin_tokens')
      .set({ revoked_at: this.clock.now() })
      .where('tenant_id', '=', tenantId)
      .where('created_by', '=', actor)
      .where('revoked_at', 'is', null)
      .returning('id')
      .execute();
    return rows.map((r) => r.id);
  }

  /** Whether the token was revoked (not whether it expired): a request it began may still be running. */
  async isRevoked(tenantId: string, id: string): Promise<boolean> {
    const row = await this.db.selectFrom('admin_tokens').select('revoked_at').where('tenant_id', '=', tenantId).where('id', '=', id).executeTakeFirst();
    return row?.revoked_at != null;
  }

  /** Revokes one token of the tenant; false when it has no such live token. */
  async revoke(tenantId: string, id: string): Promise<boolean> {
    const result = await this.db
      .updateTable('admin_tokens')
      .set({ revoked_at: this.clock.now() })
      .where('tenant_id', '=', tenantId)
      .where('id', '=', id)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }
}

const iso = (ms: number | null) => (ms === null ? null : new Date(Number(ms)).toISOString());

function toView(row: AdminTokenTable): AdminTokenView {
  return {
    id: row.id,
    name: row.name,
    role: row.role,
    createdAt: new Date(Number(row.created_at)).toISOString(),
    createdBy: row.created_by,
    expiresAt: iso(row.expires_at),
    lastUsedAt: iso(row.last_used_at),
    revokedAt: iso(row.revoked_at),
  };
}
