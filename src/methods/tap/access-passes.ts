/** Temporary Access Passes: issued by an administrator, Argon2id-hashed, one active per user, a one-time pass used up atomically. */
import type { Db } from '../../store/durable/database.ts';
import type { AccessPassTable } from '../../store/durable/schema.ts';
import type { Clock } from '../../clock.ts';
import type { Tenant } from '../../directory/tenant.ts';
import type { PasswordHasher, WorkWindow } from '../../directory/password-hasher.ts';
import { AppError } from '../../errors/app-error.ts';
import { newId, normaliseBase32, randomBase32 } from '../../crypto/random.ts';
import { noHolds, type SingleUseHolds } from '../single-use-holds.ts';

export interface AccessPass {
  id: string;
  userId: string;
  oneTime: boolean;
  createdAt: number;
  expiresAt: number;
  createdBy: string;
  uses: number;
  lastUsedAt: number | null;
}

export interface IssuedPass {
  pass: AccessPass;
  /** Shown once, never stored: only its Argon2id hash is kept. */
  code: string;
  /** The pass this one replaced, if any: when issued, and whether anyone used it (up to the moment it was replaced). */
  replaced?: { createdAt: number; used: boolean } | undefined;
}

// 16 Crockford base32 characters: 80 bits, typed in four groups of four.
const CODE_LENGTH = 16;

/**
 * How long a used pass nobody revoked is kept after it expires: as long as what its sessions gave can live
 * (an app's grant and refresh token, 30 days), so that revoking the token that issued it can still take that
 * back. Unused and revoked passes go when they expire.
 */
export const USED_PASS_KEPT_MS = 30 * 86_400_000;

/** How a TAP looks when handed to a person: XXXX-XXXX-XXXX-XXXX. */
const format = (raw: string) => raw.match(/.{4}/g)!.join('-');

/**
 * Temporary Access Passes: a time-limited code an administrator gives a person
 * who has no method (a new hire) or has lost them all. At most one is active
 * per user; issuing another replaces it. Stored as an Argon2id hash.
 */
export class AccessPasses {
  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    private readonly hasher: PasswordHasher,
    /** Cross-node holds on one-time passes while signing in from the outage fallback. */
    private readonly holds: SingleUseHolds = noHolds,
  ) {}

  async issue(
    tenant: Tenant,
    userId: string,
    options: { minutes?: number | undefined; oneTime?: boolean | undefined },
    createdBy: string,
  ): Promise<IssuedPass> {
    const minutes = passMinutes(tenant, options);
    const { oneTimeDefault } = tenant.policy.tap;
    const raw = randomBase32(CODE_LENGTH);
    const now = this.clock.now();
    const row: AccessPassTable = {
      id: newId(),
      tenant_id: tenant.id,
      user_id: userId,
      code_hash: await this.hasher.hash(raw),
      one_time: (options.oneTime ?? oneTimeDefault) ? 1 : 0,
      created_at: now,
      expires_at: now + minutes * 60_000,
      created_by: createdBy.slice(0, 200),
      uses: 0,
      last_used_at: null,
      revoked_at: null,
    };
    // What is replaced is read in the same statement that revokes it: a pass used while this one was being
    // hashed is reported as used, so its take-back is not missed.
    const replaced = await this.db.transaction().execute(async (trx) => {
      const revoked = await trx
        .updateTable('access_passes')
        .set({ revoked_at: now })
        .where('tenant_id', '=', tenant.id)
        .where('user_id', '=', userId)
        .where('revoked_at', 'is', null)
        .returning(['created_at', 'uses'])
        .execute();
      await trx.insertInto('access_passes').values(row).execute();
      return revoked;
    });
    return {
      pass: toPass(row),
      code: format(raw),
      ...(replaced.length > 0 ? { replaced: { createdAt: Math.min(...replaced.map((r) => r.created_at)), used: replaced.some((r) => r.uses > 0) } } : {}),
    };
  }

  /** The user's pass that can be used now, if any. */
  async active(tenantId: string, userId: string): Promise<AccessPass | undefined> {
    const row = await this.activeRow(tenantId, userId);
    return row && toPass(row);
  }

  /**
   * Revokes the user's pass (`onlyUsed`: only if someone has used it; `issuedBy`: only one issued by then); what
   * it was (when issued, whether anyone used it), or undefined when none was revoked.
   */
  async revoke(
    tenantId: string,
    userId: string,
    options: { onlyUsed?: boolean; issuedBy?: number } = {},
  ): Promise<{ createdAt: number; used: boolean } | undefined> {
    const rows = await this.db
      .updateTable('access_passes')
      .set({ revoked_at: this.clock.now() })
      .where('tenant_id', '=', tenantId)
      .where('user_id', '=', userId)
      .where('revoked_at', 'is', null)
      .$if(options.onlyUsed === true, (q) => q.where('uses', '>', 0))
      .$if(options.issuedBy !== undefined, (q) => q.where('created_at', '<=', options.issuedBy!))
      .returning(['created_at', 'uses'])
      .execute();
    if (rows.length === 0) return undefined;
    return { createdAt: Math.min(...rows.map((r) => r.created_at)), used: rows.some((r) => r.uses > 0) };
  }

  /**
   * Revokes every pass `createdBy` issued (an admin token being revoked) that nobody revoked yet, expired ones
   * included (a used one is kept a while after it expires for this, see `USED_PASS_KEPT_MS`): whose each was,
   * whether it was used, and whether it had expired.
   */
  async revokeIssuedBy(tenantId: string, createdBy: string): Promise<{ userId: string; createdAt: number; used: boolean; expired: boolean }[]> {
    const rows = await this.db
      .updateTable('access_passes')
      .set({ revoked_at: this.clock.now() })
      .where('tenant_id', '=', tenantId)
      .where('created_by', '=', createdBy)
      .where('revoked_at', 'is', null)
      .returning(['user_id', 'created_at', 'uses', 'expires_at'])
      .execute();
    const now = this.clock.now();
    return rows.map((r) => ({ userId: r.user_id, createdAt: r.created_at, used: r.uses > 0, expired: r.expires_at <= now }));
  }

  /**
   * Whether a typed pass is the user's valid pass, without using it: for an
   * account that cannot sign in now (disabled), which must not lose its pass to
   * an answer it cannot use. Costs one Argon2id verification, as `use` does.
   */
  async check(tenantId: string, userId: string, typed: string, window: WorkWindow): Promise<boolean> {
    const code = normaliseBase32(typed);
    const row = await this.activeRow(tenantId, userId);
    if (!row || code.length !== CODE_LENGTH) return this.hasher.verifyNothing(code || 'x', window);
    return this.hasher.verify(row.code_hash, code, window);
  }

  /**
   * Checks a typed pass and records its use. A one-time pass is used up in the
   * same statement that checks it is unused, so two racing sign-ins cannot both
   * pass. Costs one Argon2id verification whether or not a pass exists.
   */
  async use(tenantId: string, userId: string | undefined, typed: string, window: WorkWindow): Promise<AccessPass | undefined> {
    const code = normaliseBase32(typed);
    const row = userId ? await this.activeRow(tenantId, userId) : undefined;
    if (!row || code.length !== CODE_LENGTH) {
      await this.hasher.verifyNothing(code || 'x', window);
      return undefined;
    }
    if (!(await this.hasher.verify(row.code_hash, code, window))) return undefined;
    if (row.one_time === 1 && !(await this.holds.claim(`tap:${row.id}`, Math.max(1, row.expires_at - this.clock.now())))) return undefined;
    const now = this.clock.now();
    let update = this.db
      .updateTable('access_passes')
      .set((eb) => ({ uses: eb('uses', '+', 1), last_used_at: now }))
      .where('tenant_id', '=', tenantId)
      .where('id', '=', row.id)
      .where('revoked_at', 'is', null);
    if (row.one_time === 1) update = update.where('uses', '=', 0);
    const result = await update.executeTakeFirst();
    if (Number(result.numUpdatedRows) !== 1) return undefined;
    return { ...toPass(row), uses: row.uses + 1, lastUsedAt: now };
  }

  private activeRow(tenantId: string, userId: string): Promise<AccessPassTable | undefined> {
    return this.db
      .selectFrom('access_passes')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .where('user_id', '=', userId)
      .where('revoked_at', 'is', null)
      .where('expires_at', '>', this.clock.now())
      .where((eb) => eb.or([eb('one_time', '=', 0), eb('uses', '=', 0)]))
      .orderBy('created_at', 'desc')
      .executeTakeFirst();
  }
}

function toPass(row: AccessPassTable): AccessPass {
  return {
    id: row.id,
    userId: row.user_id,
    oneTime: row.one_time === 1,
    createdAt: Number(row.created_at),
    expiresAt: Number(row.expires_at),
    createdBy: row.created_by,
    uses: Number(row.uses),
    lastUsedAt: row.last_used_at === null ? null : Number(row.last_used_at),
  };
}

/** How long a pass asked for with these options lasts, in minutes; refuses one the tenant's policy does not allow (before anything is done). */
export function passMinutes(tenant: Tenant, options: { minutes?: number | undefined }): number {
  if (!tenant.policy.allowedMethods.includes('tap')) throw new AppError('method-not-permitted', 'this organisation does not allow Temporary Access Passes');
  const { minMinutes, maxMinutes, defaultMinutes } = tenant.policy.tap;
  const minutes = options.minutes ?? defaultMinutes;
  if (!Number.isInteger(minutes) || minutes < minMinutes || minutes > maxMinutes) {
    throw new AppError('invalid-request', `a Temporary Access Pass lasts from ${minMinutes} to ${maxMinutes} minutes in this organisation`);
  }
  return minutes;
}
