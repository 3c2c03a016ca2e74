/** Registered methods (credentials) in the durable store, scoped by tenant; single-use steps consumed in one statement. */
import type { Db } from '../store/durable/database.ts';
import { sql, type Transaction } from 'kysely';
import type { CredentialTable, Database } from '../store/durable/schema.ts';
import type { Clock } from '../clock.ts';
import { AppError } from '../errors/app-error.ts';
import { newId } from '../crypto/random.ts';
import { JsonObject, parseJson } from '../store/parse-record.ts';
import { noHolds, type SingleUseHolds } from './single-use-holds.ts';
import { GroupCommit } from '../store/durable/group-commit.ts';

/**
 * How a credential may become active. `first-method`: only while the user has
 * no other active method (recovery codes aside), checked in the transaction
 * that activates it. A registration session adds methods this way, so a second
 * registration session (a stolen password, used before the owner registered)
 * can never add its own method once the owner has one.
 */
export type Activation = 'any' | 'first-method';

/** What a credential's sealed secret is bound to: it opens only for this row and purpose. */
export const secretContext = (type: string, credentialId: string) => `${type}-secret:${credentialId}`;

export interface Credential {
  id: string;
  tenantId: string;
  userId: string;
  type: string;
  label: string;
  state: 'pending' | 'active';
  /** Sealed with the key ring; only the method that owns it opens it. */
  secret: string | null;
  publicData: Record<string, unknown>;
  /** The id the authenticator knows it by (WebAuthn credential id). */
  externalId: string | null;
  isDefault: boolean;
  lastStep: number | null;
  /** The highest WebAuthn signature counter accepted (0 for other methods and for authenticators without one). */
  signCount: number;
  createdAt: number;
  lastUsedAt: number | null;
}

export interface NewCredential {
  /** For an active credential: may it be the user's second method? (`Activation`). */
  activation?: Activation | undefined;
  /**
   * The session adding it, when a person does: it must still be live where the row is written (see
   * `guardLiveSession`), and a pending set-up belongs to it alone (`setupSession` in its public data).
   */
  bySession?: string | undefined;
  id?: string;
  tenantId: string;
  userId: string;
  type: string;
  label: string;
  state: 'pending' | 'active';
  secret?: string | null;
  publicData?: Record<string, unknown>;
  externalId?: string | null;
}

// Longer than any code window; after the outage the database's last step holds.
const TOTP_HOLD_MS = 10 * 60_000;

/** Set-ups a user may have under way at once; a newer one replaces the oldest. */
export const MAX_PENDING_PER_USER = 5;

/** Registered methods. Every query is scoped by tenant and user. */
export class Credentials {
  constructor(
    readonly db: Db,
    private readonly clock: Clock,
    /** Cross-node holds on used steps and codes while signing in from the outage fallback. */
    readonly holds: SingleUseHolds = noHolds,
    /** The node's group commit: a step's claim shares its transaction with the sign-ins' sessions and events. */
    private readonly groupCommit: GroupCommit = new GroupCommit(db),
  ) {}

  async insert(input: NewCredential): Promise<Credential> {
    const row: CredentialTable = {
      id: input.id ?? newId(),
      tenant_id: input.tenantId,
      user_id: input.userId,
      type: input.type,
      label: input.label,
      state: input.state,
      secret: input.secret ?? null,
      public_data: JSON.stringify({
        ...(input.publicData ?? {}),
        // Only the session that began a set-up may see its secret again or finish it (MethodManagement).
        ...(input.state === 'pending' && input.bySession !== undefined ? { setupSession: input.bySession } : {}),
      }),
      external_id: input.externalId ?? null,
      is_default: 0,
      last_step: null,
      sign_count: 0,
      created_at: this.clock.now(),
      last_used_at: null,
    };
    if (row.state === 'active') {
      await this.db.transaction().execute(async (trx) => {
        await guardLiveSession(trx, row, input.bySession, row.created_at);
        await guardActivation(trx, row, input.activation);
        await trx.insertInto('credentials').values(row).execute();
        await clearMustRegister(trx, row);
      });
      await this.ensureDefault(row.tenant_id, row.user_id);
    } else {
      await this.db.transaction().execute(async (trx) => {
        await guardLiveSession(trx, row, input.bySession, row.created_at);
        // A set-up left unfinished stays pending for a day: keep the newest few, so that nobody
        // (a registration session in a loop) can fill the table with a user's pending rows.
        const stale = await trx
          .selectFrom('credentials')
          .select('id')
          .where('tenant_id', '=', row.tenant_id)
          .where('user_id', '=', row.user_id)
          .where('state', '=', 'pending')
          .orderBy('created_at', 'desc')
          .orderBy('id', 'desc')
          .offset(MAX_PENDING_PER_USER - 1)
          .limit(1000)
          .execute();
        if (stale.length > 0)
          await trx
            .deleteFrom('credentials')
            .where('tenant_id', '=', row.tenant_id)
            .where(
              'id',
              'in',
              stale.map((r) => r.id),
            )
            .where('state', '=', 'pending')
            .execute();
        await trx.insertInto('credentials').values(row).execute();
      });
    }
    return toCredential(row);
  }

  /**
   * Forgets every set-up the user has not finished: when their sessions all
   * end, a pairing link or a pending method made in one of them must not
   * outlive it (a pairing link needs no session to be used).
   */
  async deletePendingForUser(tenantId: string, userId: string): Promise<number> {
    const result = await this.db
      .deleteFrom('credentials')
      .where('tenant_id', '=', tenantId)
      .where('user_id', '=', userId)
      .where('state', '=', 'pending')
      .executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  async listForUser(tenantId: string, userId: string, state?: 'pending' | 'active'): Promise<Credential[]> {
    // Every second factor reads this: written as SQL rather than built, which costs about half as much
    // per call (a builder is assembled and compiled afresh each time; the text here is fixed).
    const { rows } = state
      ? await sql<CredentialTable>`select * from credentials where tenant_id = ${tenantId} and user_id = ${userId} and state = ${state} order by created_at, id`.execute(
          this.db,
        )
      : await sql<CredentialTable>`select * from credentials where tenant_id = ${tenantId} and user_id = ${userId} order by created_at, id`.execute(this.db);
    return rows.map(toCredential);
  }

  async get(tenantId: string, userId: string, id: string): Promise<Credential | undefined> {
    const row = await this.db
      .selectFrom('credentials')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .where('user_id', '=', userId)
      .where('id', '=', id)
      .executeTakeFirst();
    return row && toCredential(row);
  }

  /** A credential by the id its authenticator knows it by (WebAuthn credential id). */
  async findByExternalId(tenantId: string, externalId: string): Promise<Credential | undefined> {
    const row = await this.db.selectFrom('credentials').selectAll().where('tenant_id', '=', tenantId).where('external_id', '=', externalId).executeTakeFirst();
    return row && toCredential(row);
  }

  /** Removes a credential that never became active (its confirmation code could not be sent, too many wrong codes). */
  async deletePending(credential: Credential): Promise<void> {
    await this.db
      .deleteFrom('credentials')
      .where('tenant_id', '=', credential.tenantId)
      .where('id', '=', credential.id)
      .where('state', '=', 'pending')
      .execute();
  }

  /**
   * Turns a pending credential active, once; false when it was not pending.
   * With `first-method`, throws `already-registered` when the user has another
   * active method by then.
   */
  async activate(
    credential: Credential,
    activation?: Activation,
    completion?: { label?: string; secret?: string | null; publicData?: Record<string, unknown> },
  ): Promise<boolean> {
    // What only the activation knows (a paired device's key) is written in the same statement that
    // activates: of two racing completions of one pending credential, exactly one writes and activates.
    const extra: Partial<CredentialTable> = {};
    if (completion?.label !== undefined) extra.label = completion.label;
    if (completion?.secret !== undefined) extra.secret = completion.secret;
    // The session that began the set-up must still be live as it finishes (a push pairing link needs no
    // session to be used); once active, the method belongs to the user, not to that session.
    const { setupSession, ...kept } = credential.publicData;
    if (completion?.publicData !== undefined) extra.public_data = JSON.stringify(completion.publicData);
    else if (setupSession !== undefined) extra.public_data = JSON.stringify(kept);
    const row = { tenant_id: credential.tenantId, user_id: credential.userId, id: credential.id };
    const activated = await this.db.transaction().execute(async (trx) => {
      await guardLiveSession(trx, row, typeof setupSession === 'string' ? setupSession : undefined, this.clock.now());
      await guardActivation(trx, row, activation);
      const result = await trx
        .updateTable('credentials')
        .set({ ...extra, state: 'active' })
        .where('tenant_id', '=', credential.tenantId)
        .where('id', '=', credential.id)
        .where('state', '=', 'pending')
        .executeTakeFirst();
      if (Number(result.numUpdatedRows) !== 1) return false;
      await clearMustRegister(trx, { ...row, type: credential.type });
      return true;
    });
    if (!activated) return false;
    await this.ensureDefault(credential.tenantId, credential.userId);
    return true;
  }

  /**
   * Records that time step `step` was used, only if it is later than every step
   * used before: the compare and the write are one statement, so two requests
   * racing with the same code cannot both succeed (also when group-committed
   * together: the second sees the first's write in the same transaction).
   */
  async consumeStep(credential: Credential, step: number): Promise<boolean> {
    // During an outage another node's snapshot does not know this node used the step: the shared hold does.
    if (!(await this.holds.claim(`totp:${credential.id}:${step}`, TOTP_HOLD_MS))) return false;
    // Steps move only forward: the two before this one (still inside the code window) are used up with it.
    for (const earlier of [step - 1, step - 2]) await this.holds.mark(`totp:${credential.id}:${earlier}`, TOTP_HOLD_MS);
    // Group-committed: the claim is still one guarded statement (see GroupCommit.write), answered once committed.
    const usedAt = this.clock.now();
    const result = await this.groupCommit.write(`credentials:${credential.tenantId}:${credential.id}`, (db) =>
      db
        .updateTable('credentials')
        .set({ last_step: step, last_used_at: usedAt })
        .where('tenant_id', '=', credential.tenantId)
        .where('id', '=', credential.id)
        .where((eb) => eb.or([eb('last_step', 'is', null), eb('last_step', '<', step)]))
        .executeTakeFirst(),
    );
    return Number(result.numUpdatedRows) === 1;
  }

  /** Stores new public data (a WebAuthn signature counter, backup state) and the time of use. */
  async recordUse(credential: Credential, publicData: Record<string, unknown>): Promise<void> {
    await this.db
      .updateTable('credentials')
      .set({ public_data: JSON.stringify(publicData), last_used_at: this.clock.now() })
      .where('tenant_id', '=', credential.tenantId)
      .where('id', '=', credential.id)
      .execute();
  }

  /**
   * Moves a WebAuthn credential's signature counter up to `counter`, with its
   * public data, in one guarded statement: false when the database (or, during
   * an outage, the node's snapshot) already holds that counter or a higher one,
   * i.e. another assertion with this counter got there first. The journal
   * replays the same statement, so of several nodes' outage updates the highest
   * counter stays, whatever order they are replayed in.
   */
  async advanceSignCount(credential: Credential, counter: number, publicData: Record<string, unknown>): Promise<boolean> {
    const result = await this.db
      .updateTable('credentials')
      .set({ public_data: JSON.stringify({ ...publicData, counter }), sign_count: counter, last_used_at: this.clock.now() })
      .where('tenant_id', '=', credential.tenantId)
      .where('id', '=', credential.id)
      .where('sign_count', '<', counter)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  }

  /** Replaces a credential's sealed secret (a paired device's new push subscription; `null` removes it). */
  async replaceSecret(credential: Credential, secret: string | null): Promise<void> {
    await this.db.updateTable('credentials').set({ secret }).where('tenant_id', '=', credential.tenantId).where('id', '=', credential.id).execute();
  }

  async markUsed(credential: Credential): Promise<void> {
    await this.db
      .updateTable('credentials')
      .set({ last_used_at: this.clock.now() })
      .where('tenant_id', '=', credential.tenantId)
      .where('id', '=', credential.id)
      .execute();
  }

  async update(credential: Credential, changes: { label?: string; isDefault?: boolean }): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      if (changes.isDefault) {
        await trx
          .updateTable('credentials')
          .set({ is_default: 0 })
          .where('tenant_id', '=', credential.tenantId)
          .where('user_id', '=', credential.userId)
          .execute();
      }
      const set: Partial<CredentialTable> = {};
      if (changes.label !== undefined) set.label = changes.label;
      if (changes.isDefault) set.is_default = 1;
      if (Object.keys(set).length > 0) {
        await trx.updateTable('credentials').set(set).where('tenant_id', '=', credential.tenantId).where('id', '=', credential.id).execute();
      }
    });
  }

  /** Keeps exactly one default among a user's active methods, once there are any. */
  async ensureDefault(tenantId: string, userId: string): Promise<void> {
    const active = await this.db
      .selectFrom('credentials')
      .select(['id', 'is_default', 'type'])
      .where('tenant_id', '=', tenantId)
      .where('user_id', '=', userId)
      .where('state', '=', 'active')
      .orderBy('created_at')
      .execute();
    // Recovery codes are a last resort, never the method offered first: they are the default only while
    // nothing else is there, and give the default up to the first real method added after them.
    const pick = active.find((c) => c.type !== 'recovery-codes') ?? active[0];
    const current = active.find((c) => c.is_default === 1);
    // Stryker disable next-line ConditionalExpression,StringLiteral: equivalent (with recovery codes alone, the pick is the current default: rewritten as it was)
    if (!pick || (current && (current.type !== 'recovery-codes' || pick.type === 'recovery-codes'))) return;
    await this.db.transaction().execute(async (trx) => {
      if (current) await trx.updateTable('credentials').set({ is_default: 0 }).where('tenant_id', '=', tenantId).where('id', '=', current.id).execute();
      await trx.updateTable('credentials').set({ is_default: 1 }).where('tenant_id', '=', tenantId).where('id', '=', pick.id).execute();
    });
  }
}

/**
 * A method is written only while the session that asks for it is live. An
 * administrator's reset ends the user's sessions in the transaction that
 * removes their methods, and both take the user's row first (a row lock on
 * PostgreSQL; SQLite runs one write transaction at a time): a set-up racing
 * the reset either commits before it, and is removed with the rest, or finds
 * its session ended. Without this, a request that passed its session check
 * just before the reset could add a passkey just after it.
 */
export async function guardLiveSession(
  trx: Transaction<Database>,
  row: Pick<CredentialTable, 'tenant_id' | 'user_id'>,
  sessionId: string | undefined,
  now: number,
): Promise<void> {
  if (sessionId === undefined) return;
  await lockUserRow(trx, row);
  const live = await trx
    .selectFrom('sessions')
    .select('id')
    .where('tenant_id', '=', row.tenant_id)
    .where('id', '=', sessionId)
    .where('user_id', '=', row.user_id)
    .where('revoked_at', 'is', null)
    .where('expires_at', '>', now)
    .executeTakeFirst();
  if (!live) throw new AppError('unauthenticated', 'this session has ended; sign in again');
}

/**
 * Writes the user's row without changing it: changes to one user's methods
 * and sessions take turns on it (a row lock on PostgreSQL until the
 * transaction ends; SQLite runs one write transaction at a time anyway).
 */
async function lockUserRow(trx: Transaction<Database>, row: Pick<CredentialTable, 'tenant_id' | 'user_id'>): Promise<void> {
  await trx
    .updateTable('users')
    .set((eb) => ({ updated_at: eb('updated_at', '+', 0) }))
    .where('tenant_id', '=', row.tenant_id)
    .where('id', '=', row.user_id)
    .execute();
}

/**
 * A credential activated as the user's first method (by a registration
 * session) must really be the first: the user's row is written first, which
 * makes concurrent activations for the user take turns (a row lock on
 * PostgreSQL; SQLite runs one write transaction at a time), then any other
 * active method refuses it. Recovery codes do not count: they prove nothing.
 */
async function guardActivation(
  trx: Transaction<Database>,
  row: Pick<CredentialTable, 'tenant_id' | 'user_id' | 'id'>,
  activation: Activation | undefined,
): Promise<void> {
  if (activation !== 'first-method') return;
  await lockUserRow(trx, row);
  const other = await trx
    .selectFrom('credentials')
    .select('id')
    .where('tenant_id', '=', row.tenant_id)
    .where('user_id', '=', row.user_id)
    .where('state', '=', 'active')
    .where('type', '!=', 'recovery-codes')
    .where('id', '!=', row.id)
    .executeTakeFirst();
  if (other) throw new AppError('already-registered');
}

/**
 * A user the administrator sent back to registration has registered once the
 * first real method is active: the flag is cleared in the same transaction, so
 * no moment exists in which the user has a method and is still offered a
 * registration session for a password alone. Recovery codes do not count: they
 * prove nothing when handed out.
 */
async function clearMustRegister(trx: Transaction<Database>, row: Pick<CredentialTable, 'tenant_id' | 'user_id' | 'type'>): Promise<void> {
  if (row.type === 'recovery-codes') return;
  await trx
    .updateTable('users')
    .set({ must_register: 0 })
    .where('tenant_id', '=', row.tenant_id)
    .where('id', '=', row.user_id)
    .where('must_register', '=', 1)
    .execute();
}

export function toCredential(row: CredentialTable): Credential {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    userId: row.user_id,
    type: row.type,
    label: row.label,
    state: row.state,
    secret: row.secret,
    // Unreadable public data reads as none: the method then finds no key to check against and refuses.
    publicData: parseJson(JsonObject, row.public_data) ?? {},
    externalId: row.external_id,
    isDefault: row.is_default === 1,
    lastStep: row.last_step,
    signCount: Number(row.sign_count ?? 0),
    createdAt: row.created_at,
    lastUsedAt: row.last_used_at,
  };
}
