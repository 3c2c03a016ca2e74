/** Users in the durable store, scoped by tenant: password hashes, status, flags and sealed contact details. */
import { sql, type Transaction } from 'kysely';
import type { Db } from '../store/durable/database.ts';
import type { Database, UserTable } from '../store/durable/schema.ts';
import type { Clock } from '../clock.ts';
import { AppError } from '../errors/app-error.ts';
import { newId } from '../crypto/random.ts';
import { isValidUsername, normaliseUsername } from './username.ts';
import type { ProfileSeal } from './profile-seal.ts';

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
  /** May use the admin console of this tenant. */
  isAdmin: boolean;
  /** An emergency account: every sign-in raises an alert. */
  breakGlass: boolean;
  /** Known-browser marks issued before this time (epoch ms) are void; null when none was voided. */
  knownBrowsersResetAt: number | null;
}

export interface UserChanges {
  email?: string | null | undefined;
  phone?: string | null | undefined;
  status?: 'active' | 'disabled' | undefined;
  isAdmin?: boolean | undefined;
  breakGlass?: boolean | undefined;
  mustRegister?: boolean | undefined;
}

export interface UserWithSecret extends User {
  passwordHash: string | null;
  /** When the password was set, by anyone (a rehash is no change); null without one, or from a copy that predates it. */
  passwordChangedAt: number | null;
  /** When an administrator last reset the methods; null if never (or before this was kept). */
  methodsResetAt: number | null;
}

export interface NewUser {
  username: string;
  email?: string | undefined;
  phone?: string | undefined;
  passwordHash?: string | undefined;
  isAdmin?: boolean | undefined;
  breakGlass?: boolean | undefined;
  /** Created through this admin API token (its id): the account is never made an administrator, and revoking the token takes back what was set up on it. */
  byToken?: string | undefined;
}

/** Runs first in a write's transaction (at `now`, by the store's clock) and throws to refuse it. */
export type WriteGuard = (trx: Transaction<Database>, now: number) => Promise<void>;

const EMAIL_PATTERN = /^[^\s@]{1,64}@[^\s@]{1,255}$/;
const PHONE_PATTERN = /^\+[1-9][0-9]{6,14}$/;

/** Users of a tenant. Every query takes the tenant id: nothing crosses tenants. */
export class Users {
  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    private readonly profile: ProfileSeal,
  ) {}

  async create(tenantId: string, input: NewUser): Promise<User> {
    const username = normaliseUsername(input.username);
    if (!isValidUsername(username)) throw new AppError('invalid-request', 'a username is 1 to 256 printable characters');
    checkContact(input);
    const now = this.clock.now();
    const id = newId();
    const contact = this.sealedContact(id, { email: input.email ?? null, phone: input.phone ?? null });
    const row: UserTable = {
      id,
      tenant_id: tenantId,
      username,
      email: null,
      phone: null,
      password_hash: input.passwordHash ?? null,
      status: 'active',
      must_register: 0,
      flagged_at: null,
      created_at: now,
      updated_at: now,
      is_admin: input.isAdmin ? 1 : 0,
      break_glass: input.breakGlass ? 1 : 0,
      email_sealed: contact.email_sealed ?? null,
      phone_sealed: contact.phone_sealed ?? null,
      email_index: contact.email_index ?? null,
      known_browsers_reset_at: null,
      token_touched_at: input.byToken !== undefined ? now : null,
      password_changed_at: input.passwordHash ? now : null,
      methods_reset_at: null,
    };
    const result = await this.db
      .insertInto('users')
      .values(row)
      .onConflict((oc) => oc.columns(['tenant_id', 'username']).doNothing())
      .executeTakeFirst();
    if (Number(result.numInsertedOrUpdatedRows ?? 0n) === 0) throw new AppError('conflict', `user "${username}" already exists`);
    // Touched when made, so a password it was made with counts as set since.
    if (input.byToken !== undefined) await this.noteTouch(tenantId, id, input.byToken, now);
    return this.toUser(row);
  }

  async findByUsername(tenantId: string, username: string): Promise<UserWithSecret | undefined> {
    const row = await this.db
      .selectFrom('users')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .where('username', '=', normaliseUsername(username))
      .executeTakeFirst();
    return (
      row && {
        ...this.toUser(row),
        passwordHash: row.password_hash,
        passwordChangedAt: row.password_changed_at ?? null,
        methodsResetAt: row.methods_reset_at ?? null,
      }
    );
  }

  async get(tenantId: string, userId: string): Promise<User | undefined> {
    const row = await this.db.selectFrom('users').selectAll().where('tenant_id', '=', tenantId).where('id', '=', userId).executeTakeFirst();
    return row && this.toUser(row);
  }

  /**
   * Sets the first password of an account that has none, atomically: of two
   * racing requests (or a request racing an administrator) only one sets it,
   * and an account that has a password is never changed here.
   */
  async setFirstPasswordHash(tenantId: string, userId: string, passwordHash: string, guard?: WriteGuard): Promise<boolean> {
    return this.db.transaction().execute(async (trx) => {
      const now = this.clock.now();
      await guard?.(trx, now);
      const result = await trx
        .updateTable('users')
        .set({ password_hash: passwordHash, password_changed_at: now, updated_at: now })
        .where('tenant_id', '=', tenantId)
        .where('id', '=', userId)
        .where('password_hash', 'is', null)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    });
  }

  /**
   * A new password. `guard`, run first in the same transaction, may refuse it: a change asked for by a session
   * lands only while that session is live (see `guardLiveSession`).
   */
  async setPasswordHash(tenantId: string, userId: string, passwordHash: string, guard?: WriteGuard): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      const now = this.clock.now();
      await guard?.(trx, now);
      await trx
        .updateTable('users')
        .set({ password_hash: passwordHash, password_changed_at: now, updated_at: now })
        .where('tenant_id', '=', tenantId)
        .where('id', '=', userId)
        .execute();
    });
  }

  /**
   * The same password hashed again with the current parameters: no change of password, so its date stays. Only
   * while the stored hash is still the one rehashed: a password changed meanwhile is never put back.
   */
  async rehashPassword(tenantId: string, userId: string, previousHash: string, passwordHash: string): Promise<void> {
    await this.db
      .updateTable('users')
      .set({ password_hash: passwordHash })
      .where('tenant_id', '=', tenantId)
      .where('id', '=', userId)
      .where('password_hash', '=', previousHash)
      .execute();
  }

  /**
   * Users whose username contains `query`, or whose email address is exactly
   * `query` (addresses are sealed, so they are matched whole), by username,
   * `limit` at a time after `after`.
   */
  async search(tenantId: string, query: string, limit: number, after?: string): Promise<User[]> {
    let q = this.db.selectFrom('users').selectAll().where('tenant_id', '=', tenantId);
    const needle = query.normalize('NFKC').trim().toLowerCase();
    if (needle) {
      const pattern = `%${needle.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
      // The same explicit escape character on both engines: a typed % or _ matches only itself.
      q = q.where(sql<boolean>`(username like ${pattern} escape '\\' or email_index = ${this.profile.emailIndex(needle)})`);
    }
    if (after) q = q.where('username', '>', after);
    const rows = await q.orderBy('username').limit(limit).execute();
    return rows.map((r) => this.toUser(r));
  }

  /** The usernames of these users of the tenant, by id, in one query; ids of no user here (another tenant's, a deleted one) are left out. */
  async usernames(tenantId: string, ids: readonly string[]): Promise<Map<string, string>> {
    const unique = [...new Set(ids)];
    if (unique.length === 0) return new Map();
    const rows = await this.db.selectFrom('users').select(['id', 'username']).where('tenant_id', '=', tenantId).where('id', 'in', unique).execute();
    return new Map(rows.map((r) => [r.id, r.username]));
  }

  /** Applies the changes; false when there is no such user in this tenant. */
  async update(tenantId: string, userId: string, changes: UserChanges): Promise<boolean> {
    checkContact({ email: changes.email ?? undefined, phone: changes.phone ?? undefined });
    const set: Partial<UserTable> = { updated_at: this.clock.now() };
    if (changes.email !== undefined) Object.assign(set, this.sealedContact(userId, { email: changes.email }));
    if (changes.phone !== undefined) Object.assign(set, this.sealedContact(userId, { phone: changes.phone }));
    if (changes.status !== undefined) set.status = changes.status;
    if (changes.isAdmin !== undefined) set.is_admin = changes.isAdmin ? 1 : 0;
    if (changes.breakGlass !== undefined) set.break_glass = changes.breakGlass ? 1 : 0;
    if (changes.mustRegister !== undefined) set.must_register = changes.mustRegister ? 1 : 0;
    let query = this.db.updateTable('users').set(set).where('tenant_id', '=', tenantId).where('id', '=', userId);
    // Never an administrator from an account a token touched; checked in the same statement, so a token's
    // change racing the promotion either marks the account first (and this updates nothing) or finds it
    // promoted (markTokenTouched).
    if (changes.isAdmin === true || changes.breakGlass === true) query = query.where('token_touched_at', 'is', null);
    const result = await query.executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  /** Deletes the user and, by cascade, their methods, sessions and passes. */
  async delete(tenantId: string, userId: string): Promise<boolean> {
    const result = await this.db.deleteFrom('users').where('tenant_id', '=', tenantId).where('id', '=', userId).executeTakeFirst();
    return Number(result.numDeletedRows) === 1;
  }

  /**
   * Seals contact details still stored in clear (written before they were
   * sealed) and re-seals those sealed under a previous master key, with a fresh
   * lookup key. Run at start (`rewrap: false`, clear rows only) and by
   * `steadfast keys rewrap` (`rewrap: true`); each row is
   * written only if it is still as it was read.
   */
  async sealContacts(options: { rewrap: boolean }, batchSize = 500): Promise<number> {
    let changed = 0;
    let after = '';
    for (;;) {
      let query = this.db.selectFrom('users').selectAll().where('id', '>', after);
      // At start only rows still in clear are looked at; a rewrap looks at every sealed one too.
      if (!options.rewrap) query = query.where((eb) => eb.or([eb('email', 'is not', null), eb('phone', 'is not', null)]));
      const rows = await query.orderBy('id').limit(batchSize).execute();
      if (rows.length === 0) return changed;
      for (const row of rows) {
        const stale =
          row.email !== null ||
          row.phone !== null ||
          (row.email_sealed !== null && this.profile.needsRewrap(row.email_sealed)) ||
          (row.phone_sealed !== null && this.profile.needsRewrap(row.phone_sealed));
        if (!stale) continue;
        const user = this.toUser(row);
        const result = await this.db
          .updateTable('users')
          .set(this.sealedContact(row.id, { email: user.email, phone: user.phone }))
          .where('tenant_id', '=', row.tenant_id)
          .where('id', '=', row.id)
          .where('updated_at', '=', row.updated_at)
          .executeTakeFirst();
        changed += Number(result.numUpdatedRows);
      }
      after = rows.at(-1)!.id;
    }
  }

  /** The stored form of contact details: sealed, the clear columns emptied, and the email's lookup key. */
  private sealedContact(userId: string, contact: { email?: string | null | undefined; phone?: string | null | undefined }): Partial<UserTable> {
    const out: Partial<UserTable> = {};
    if (contact.email !== undefined) {
      out.email = null;
      out.email_sealed = contact.email === null ? null : this.profile.seal(userId, 'email', contact.email);
      out.email_index = contact.email === null ? null : this.profile.emailIndex(contact.email);
    }
    if (contact.phone !== undefined) {
      out.phone = null;
      out.phone_sealed = contact.phone === null ? null : this.profile.seal(userId, 'phone', contact.phone);
    }
    return out;
  }

  private toUser(row: UserTable): User {
    return {
      id: row.id,
      tenantId: row.tenant_id,
      username: row.username,
      // Rows written before contact details were sealed keep them in clear until `sealContacts` runs.
      email: row.email_sealed !== null ? this.profile.open(row.id, 'email', row.email_sealed) : row.email,
      phone: row.phone_sealed !== null ? this.profile.open(row.id, 'phone', row.phone_sealed) : row.phone,
      status: row.status,
      mustRegister: row.must_register === 1,
      flaggedAt: row.flagged_at,
      createdAt: row.created_at,
      isAdmin: row.is_admin === 1,
      breakGlass: row.break_glass === 1,
      knownBrowsersResetAt: row.known_browsers_reset_at === null ? null : Number(row.known_browsers_reset_at),
    };
  }

  /** Voids every known-browser mark of the user issued until now. */
  async resetKnownBrowsers(tenantId: string, userId: string): Promise<void> {
    await this.db.updateTable('users').set({ known_browsers_reset_at: this.clock.now() }).where('tenant_id', '=', tenantId).where('id', '=', userId).execute();
  }

  /**
   * Marks the account as touched by an admin API token, before the token's change is written: a change that
   * lands always leaves the mark, which nothing removes. False when the account is (now) an administrator's.
   */
  async markTokenTouched(tenantId: string, userId: string, tokenId: string): Promise<boolean> {
    const now = this.clock.now();
    const result = await this.db
      .updateTable('users')
      .set({ token_touched_at: now })
      .where('tenant_id', '=', tenantId)
      .where('id', '=', userId)
      // False for an administrator's or a break-glass account (promoted since the token's request looked).
      .where('is_admin', '=', 0)
      .where('break_glass', '=', 0)
      .executeTakeFirst();
    if (Number(result.numUpdatedRows) !== 1) return false;
    await this.noteTouch(tenantId, userId, tokenId, now);
    return true;
  }

  /** Notes the token's first touch of the account (a later one keeps the first date: everything since is its holder's to have set up). */
  private async noteTouch(tenantId: string, userId: string, tokenId: string, at: number): Promise<void> {
    await this.db
      .insertInto('token_touches')
      .values({ tenant_id: tenantId, token_id: tokenId, user_id: userId, first_at: at })
      .onConflict((oc) => oc.columns(['tenant_id', 'token_id', 'user_id']).doNothing())
      .execute();
  }

  /** The accounts the token touched, each with when first. */
  async touchedBy(tenantId: string, tokenId: string): Promise<{ userId: string; since: number }[]> {
    const rows = await this.db
      .selectFrom('token_touches')
      .select(['user_id', 'first_at'])
      .where('tenant_id', '=', tenantId)
      .where('token_id', '=', tokenId)
      .orderBy('first_at')
      .execute();
    return rows.map((r) => ({ userId: r.user_id, since: Number(r.first_at) }));
  }

  /** Forgets the token's touches, once what they gave has been taken back. */
  async forgetTouchesOf(tenantId: string, tokenId: string): Promise<void> {
    await this.db.deleteFrom('token_touches').where('tenant_id', '=', tenantId).where('token_id', '=', tokenId).execute();
  }

  async wasTokenTouched(tenantId: string, userId: string): Promise<boolean> {
    const row = await this.db.selectFrom('users').select('token_touched_at').where('tenant_id', '=', tenantId).where('id', '=', userId).executeTakeFirst();
    return row?.token_touched_at != null;
  }

  /**
   * Flags the account as reported, now. With `reportedAt` (when the reported sign-in happened), only if it is not
   * flagged already since then: a sign-in older than the current flag was known when the owner acted on that flag
   * (a new password set since stays one set since).
   */
  async flag(tenantId: string, userId: string, reportedAt?: number): Promise<void> {
    const now = this.clock.now();
    let query = this.db.updateTable('users').set({ flagged_at: now, updated_at: now }).where('tenant_id', '=', tenantId).where('id', '=', userId);
    if (reportedAt !== undefined) query = query.where((eb) => eb.or([eb('flagged_at', 'is', null), eb('flagged_at', '<', reportedAt)]));
    await query.execute();
  }
}

function checkContact(input: { email?: string | undefined; phone?: string | undefined }): void {
  if (input.email !== undefined && !EMAIL_PATTERN.test(input.email)) throw new AppError('invalid-request', 'the email address is not valid');
  if (input.phone !== undefined && !PHONE_PATTERN.test(input.phone)) {
    throw new AppError('invalid-request', 'a phone number is in E.164 form, such as +14155550100');
  }
}
