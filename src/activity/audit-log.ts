/** The audit log: one keyed hash chain per tenant, appended in turn, verified entry by entry. */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { sql } from 'kysely';
import type { Db, Engine } from '../store/durable/database.ts';
import type { AuditCheckpointTable, AuditLogTable } from '../store/durable/schema.ts';
import type { Clock } from '../clock.ts';
import type { KeyRing } from '../crypto/key-ring.ts';
import { newSortableId } from '../crypto/random.ts';
import { JsonObject, parseJson } from '../store/parse-record.ts';

/** What the audit log records. Stable words: alerting rules match on them. */
export type AuditAction =
  | 'tap.issued'
  | 'tap.used'
  | 'tap.revoked'
  | 'methods.reset'
  | 'sessions.revoked'
  | 'policy.changed'
  | 'signin.reported'
  | 'password.set-first'
  | 'password.changed'
  | 'method.added'
  | 'method.removed'
  | 'user.created'
  | 'user.updated'
  | 'user.deleted'
  | 'app.created'
  | 'app.deleted'
  | 'token.created'
  | 'token.revoked'
  | 'access.taken-back'
  | 'break-glass.signin'
  | 'audit.chain-keyed'
  | 'config.applied'
  | 'config.promoted'
  | 'config.rolled-back'
  | 'incident.posted'
  | 'incident.updated';

export interface AuditInput {
  /** Who did it: `admin-token:{id}`, `user:{id}`, `cli`, `system`. */
  actor: string;
  action: AuditAction;
  targetUserId?: string | null | undefined;
  /** Facts about the action; never a secret (a TAP is recorded by its expiry, not its code). */
  details?: Record<string, unknown>;
}

export interface AuditEntry {
  id: string;
  seq: number;
  at: number;
  actor: string;
  action: string;
  targetUserId: string | null;
  details: Record<string, unknown>;
  hash: string;
}

/** The end of one tenant's chain as `verify` saw it: compare it with the heads the nodes logged. */
export interface HeadSeen {
  tenantId: string;
  seq: number;
  hash: string;
}

export type ChainCheck =
  | { intact: true; entries: number; heads: HeadSeen[] }
  | {
      intact: false;
      /** True when nothing was found wrong but an entry could not be checked: its master key is not in the key ring. */
      unverifiable: boolean;
      entries: number;
      heads: HeadSeen[];
      tenantId: string;
      seq: number;
      id: string | null;
      reason: string;
    };

const GENESIS = '0'.repeat(64);
/** The subkey of the master key that MACs the chain (HKDF purpose). It never leaves memory, and no database holds it. */
export const AUDIT_KEY_PURPOSE = 'audit-chain';

type HashedFields = Pick<AuditLogTable, 'tenant_id' | 'seq' | 'at' | 'actor' | 'action' | 'target_user_id' | 'details'>;

/** The hash an entry from before keying carries (plain SHA-256): its own fields and the hash of the one before. */
export function entryHash(prevHash: string, e: HashedFields): string {
  const body = JSON.stringify([e.tenant_id, Number(e.seq), Number(e.at), e.actor, e.action, e.target_user_id, e.details]);
  return createHash('sha256').update(prevHash).update('\n').update(body).digest('hex');
}

/**
 * The MAC a keyed entry carries: HMAC-SHA256 under the audit key of master key
 * `keyId`, over the key id, its fields and the hash of the entry before. Anyone
 * who can write the database can recompute a SHA-256; nobody without the
 * master key can recompute this.
 */
export function keyedEntryHash(key: Buffer, keyId: string, prevHash: string, e: HashedFields): string {
  const body = JSON.stringify(['v2', keyId, e.tenant_id, Number(e.seq), Number(e.at), e.actor, e.action, e.target_user_id, e.details]);
  return createHmac('sha256', key).update(prevHash).update('\n').update(body).digest('hex');
}

function checkpointMac(key: Buffer, c: Omit<AuditCheckpointTable, 'mac'>): string {
  const body = JSON.stringify(['checkpoint', c.key_id, c.tenant_id, Number(c.seq), c.hash, Number(c.keyed), Number(c.at)]);
  return createHmac('sha256', key).update(body).digest('hex');
}

const sameHex = (a: string, b: string) => a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));

type Verdict = { ok: true } | { ok: false; unverifiable: boolean; reason: string; seq: number; id: string | null };

/**
 * Walks one tenant's chain entry by entry, from its start or from the
 * checkpoint where retention cut it. `verify` and retention pruning share it,
 * so pruning never discards entries that do not check out.
 */
class ChainWalker {
  prev: string;
  expectedSeq: number;
  /** Once an entry (or the checkpoint) is keyed, an unkeyed entry after it is a downgrade, not a legacy entry. */
  keyed: boolean;
  entries = 0;

  constructor(
    private readonly keyRing: KeyRing,
    start: { seq: number; hash: string; keyed: boolean },
  ) {
    this.prev = start.hash;
    this.expectedSeq = start.seq + 1;
    this.keyed = start.keyed;
  }

  get lastSeq(): number {
    return this.expectedSeq - 1;
  }

  step(row: AuditLogTable): Verdict {
    const broken = (reason: string, unverifiable = false): Verdict => ({ ok: false, unverifiable, reason, seq: Number(row.seq), id: row.id });
    if (Number(row.seq) !== this.expectedSeq) {
      const reason =
        Number(row.seq) === this.expectedSeq + 1 ? `entry ${this.expectedSeq} is missing` : `entries ${this.expectedSeq} to ${Number(row.seq) - 1} are missing`;
      return { ok: false, unverifiable: false, reason, seq: this.expectedSeq, id: null };
    }
    if (row.prev_hash !== this.prev) return broken('it does not carry the hash of the entry before it');
    if (row.key_id === null) {
      if (this.keyed) return broken('it is not keyed, yet an earlier entry is: an unkeyed entry cannot follow a keyed one');
      if (entryHash(this.prev, row) !== row.hash) return broken('its contents do not match its hash');
    } else {
      const key = this.keyRing.deriveKeyFor(row.key_id, AUDIT_KEY_PURPOSE);
      if (!key)
        return broken(
          `it was keyed by master key ${row.key_id}, which is not in the key ring; add that key to STEADFAST_PREVIOUS_MASTER_KEYS to check it`,
          true,
        );
      if (!sameHex(keyedEntryHash(key, row.key_id, this.prev, row), row.hash)) return broken('its contents do not match its hash');
      this.keyed = true;
    }
    this.prev = row.hash;
    this.expectedSeq++;
    // Stryker disable next-line UpdateOperator: nothing reads the walker's own count (verify and prune count for themselves).
    this.entries++;
    return { ok: true };
  }
}

export interface AuditLogOptions {
  /**
   * Told the new head after every append. Nothing inside a database an
   * attacker can write can show that its last entries were cut off; heads
   * written to logs shipped elsewhere can.
   */
  onAppended?: (head: HeadSeen) => void;
  /**
   * While the database is unreachable an entry cannot join its chain (the
   * head is in the database): it is handed to the outage journal instead and
   * appended, with the time it happened, when the database returns.
   */
  deferred?: { active(): boolean; write(tenantId: string, input: AuditInput, at: number): Promise<void> };
}

/**
 * The append-only audit log, one chain per tenant. Each entry carries the
 * MAC, under a key derived from the master key, of its contents and of the
 * entry before it; so editing, removing, reordering or forging any entry
 * breaks the chain, and recomputing it needs the master key, which no database
 * holds. The chain's head is kept apart, so cutting entries off the end shows
 * unless the head is rewritten too: for that, every append logs the new head.
 */
export class AuditLog {
  constructor(
    private readonly db: Db,
    private readonly engine: Engine,
    private readonly clock: Clock,
    private readonly keyRing: KeyRing,
    private readonly options: AuditLogOptions = {},
  ) {}

  private readonly listeners: ((tenantId: string, entry: AuditEntry) => void)[] = [];

  /** Told every entry once it is kept (in its chain, or journaled during an outage); a listener must not throw. */
  onEntry(listener: (tenantId: string, entry: AuditEntry) => void): void {
    this.listeners.push(listener);
  }

  async append(tenantId: string, input: AuditInput): Promise<AuditEntry> {
    const entry = await this.keep(tenantId, input);
    for (const listener of this.listeners) listener(tenantId, entry);
    return entry;
  }

  private async keep(tenantId: string, input: AuditInput): Promise<AuditEntry> {
    const deferred = this.options.deferred;
    if (deferred?.active()) {
      const at = this.clock.now();
      await deferred.write(tenantId, input, at);
      // Not in a chain yet: seq 0 and no hash until the replay appends it.
      return {
        id: newSortableId(at),
        seq: 0,
        at,
        actor: input.actor,
        action: input.action,
        targetUserId: input.targetUserId ?? null,
        details: input.details ?? {},
        hash: '',
      };
    }
    const entry = await this.appendIf(tenantId, input, () => true);
    return entry!;
  }

  /** Appends only when `when(head)` holds with the head locked; undefined when it did not. */
  private async appendIf(tenantId: string, input: AuditInput, when: (head: { seq: number; keyId: string | null }) => boolean): Promise<AuditEntry | undefined> {
    const row = await this.db.transaction().execute(async (trx) => {
      await trx
        .insertInto('audit_heads')
        .values({ tenant_id: tenantId, seq: 0, hash: GENESIS, key_id: null })
        .onConflict((oc) => oc.column('tenant_id').doNothing())
        .execute();
      // Locking the head makes appends of one tenant take turns (SQLite transactions already do).
      let headQuery = trx.selectFrom('audit_heads').selectAll().where('tenant_id', '=', tenantId);
      if (this.engine === 'postgres') headQuery = headQuery.forUpdate();
      const head = await headQuery.executeTakeFirstOrThrow();
      if (!when({ seq: Number(head.seq), keyId: head.key_id })) return undefined;
      const at = this.clock.now();
      const { id: keyId } = this.keyRing.active;
      const row: AuditLogTable = {
        id: newSortableId(at),
        tenant_id: tenantId,
        seq: Number(head.seq) + 1,
        at,
        actor: input.actor.slice(0, 300),
        action: input.action,
        target_user_id: input.targetUserId ?? null,
        details: JSON.stringify(input.details ?? {}),
        prev_hash: head.hash,
        // Stryker disable next-line StringLiteral: a placeholder, replaced by the MAC below before the row is written (the MAC does not cover it).
        hash: '',
        key_id: keyId,
      };
      row.hash = keyedEntryHash(this.keyRing.deriveKey(AUDIT_KEY_PURPOSE), keyId, head.hash, row);
      await trx.insertInto('audit_log').values(row).execute();
      await trx.updateTable('audit_heads').set({ seq: row.seq, hash: row.hash, key_id: keyId }).where('tenant_id', '=', tenantId).execute();
      return row;
    });
    if (!row) return undefined;
    this.options.onAppended?.({ tenantId, seq: row.seq, hash: row.hash });
    return toEntry(row);
  }

  /**
   * Keys the chains written before keying (plain SHA-256): every chain whose
   * head is unkeyed gets a keyed entry now. Its MAC covers the old head's hash,
   * so the unkeyed part is protected from here on, and `verify` refuses
   * unkeyed entries after it. Run once, by the process that applies the
   * migration introducing keys (`keysAuditChains`), never at every start: a
   * chain an intruder later rewrote with plain hashes must stay broken, not be
   * keyed again. Safe to run on many nodes at once (the head is re-checked
   * under its lock).
   */
  async keyLegacyChains(): Promise<number> {
    const heads = await this.db.selectFrom('audit_heads').select(['tenant_id', 'seq', 'hash']).where('key_id', 'is', null).where('seq', '>', 0).execute();
    let keyed = 0;
    for (const head of heads) {
      const entry = await this.appendIf(
        head.tenant_id,
        { actor: 'system', action: 'audit.chain-keyed', details: { keyId: this.keyRing.active.id, previousHead: { seq: Number(head.seq), hash: head.hash } } },
        (locked) => locked.keyId === null && locked.seq > 0,
      );
      if (entry) keyed++;
    }
    return keyed;
  }

  /** Newest first; `before` is the `seq` of the last entry of the previous page. */
  async list(
    tenantId: string,
    options: { limit: number; before?: number | undefined; userId?: string | undefined; action?: string | undefined },
  ): Promise<AuditEntry[]> {
    let query = this.db.selectFrom('audit_log').selectAll().where('tenant_id', '=', tenantId);
    if (options.before !== undefined) query = query.where('seq', '<', options.before);
    if (options.userId) query = query.where('target_user_id', '=', options.userId);
    if (options.action) query = query.where('action', '=', options.action);
    const rows = await query.orderBy('seq', 'desc').limit(options.limit).execute();
    return rows.map(toEntry);
  }

  /**
   * Every entry one actor made about one user since a time, of these actions, oldest first: all of them, however
   * many other entries came after (a revoked token's take-back reads what the token changed on an account).
   */
  async byActorOn(tenantId: string, query: { actor: string; userId: string; actions: AuditAction[]; since: number }): Promise<AuditEntry[]> {
    const rows = await this.db
      .selectFrom('audit_log')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .where('target_user_id', '=', query.userId)
      .where('actor', '=', query.actor)
      .where('action', 'in', query.actions)
      .where('at', '>=', query.since)
      .orderBy('seq')
      .execute();
    return rows.map(toEntry);
  }

  /**
   * Walks every chain (or one tenant's) from its start, or from the signed
   * checkpoint where retention cut it, and names the first entry that does not
   * fit. Reports the head of each chain it saw.
   */
  async verify(tenantId?: string): Promise<ChainCheck> {
    let headsQuery = this.db.selectFrom('audit_heads').selectAll();
    if (tenantId) headsQuery = headsQuery.where('tenant_id', '=', tenantId);
    let entries = 0;
    const heads: HeadSeen[] = [];
    for (const head of await headsQuery.orderBy('tenant_id').execute()) {
      heads.push({ tenantId: head.tenant_id, seq: Number(head.seq), hash: head.hash });
      const fail = (v: { unverifiable: boolean; reason: string; seq: number; id: string | null }): ChainCheck => ({
        intact: false,
        entries,
        heads,
        tenantId: head.tenant_id,
        ...v,
      });
      const start = await this.startOf(this.db, head.tenant_id);
      if ('reason' in start) return fail({ unverifiable: start.unverifiable, reason: start.reason, seq: start.seq, id: null });
      const walker = new ChainWalker(this.keyRing, start);
      const BATCH = 1000;
      for (;;) {
        const rows = await this.db
          .selectFrom('audit_log')
          .selectAll()
          .where('tenant_id', '=', head.tenant_id)
          .where('seq', '>=', walker.expectedSeq)
          .orderBy('seq')
          .limit(BATCH)
          .execute();
        for (const row of rows) {
          const verdict = walker.step(row);
          if (!verdict.ok) return fail({ ...verdict, reason: verdict.reason });
          entries++;
        }
        if (rows.length < BATCH) break;
      }
      if (walker.lastSeq !== Number(head.seq) || walker.prev !== head.hash) {
        const reason =
          walker.lastSeq === Number(head.seq)
            ? `the chain ends at entry ${walker.lastSeq} but its head records another hash`
            : `the chain ends at entry ${walker.lastSeq} but its head records entry ${Number(head.seq)}`;
        return fail({ unverifiable: false, reason, seq: walker.lastSeq + 1, id: null });
      }
      // Every node keys unkeyed chains at start (keyLegacyChains), so a chain
      // with entries and no keyed entry was rewritten with plain hashes.
      if (walker.lastSeq > 0 && !walker.keyed) {
        return fail({
          unverifiable: false,
          reason: 'no entry of the chain is keyed, yet every chain is keyed when a node starts: it was rewritten without the key',
          seq: walker.lastSeq,
          id: null,
        });
      }
    }
    return { intact: true, entries, heads };
  }

  /** Where a tenant's chain starts: the genesis, or its signed retention checkpoint. */
  private async startOf(
    db: Db,
    tenantId: string,
  ): Promise<{ seq: number; hash: string; keyed: boolean } | { unverifiable: boolean; reason: string; seq: number }> {
    const checkpoint = await db.selectFrom('audit_checkpoints').selectAll().where('tenant_id', '=', tenantId).executeTakeFirst();
    if (!checkpoint) return { seq: 0, hash: GENESIS, keyed: false };
    const seq = Number(checkpoint.seq);
    const key = this.keyRing.deriveKeyFor(checkpoint.key_id, AUDIT_KEY_PURPOSE);
    if (!key)
      return {
        unverifiable: true,
        reason: `the retention checkpoint at entry ${seq} was signed with master key ${checkpoint.key_id}, which is not in the key ring`,
        seq,
      };
    if (!sameHex(checkpointMac(key, checkpoint), checkpoint.mac))
      return { unverifiable: false, reason: `the retention checkpoint at entry ${seq} does not match its signature`, seq };
    return { seq, hash: checkpoint.hash, keyed: Number(checkpoint.keyed) === 1 };
  }

  /**
   * Retention: removes up to `limit` of the tenant's oldest entries made before
   * `cutoff`, in chain order, after checking them, and moves the signed
   * checkpoint to the last one removed, so `verify` still proves the rest. A
   * chain that does not check out is left whole (the evidence stays) and the
   * problem is returned. Runs inside the caller's transaction `trx`.
   */
  async prune(trx: Db, tenantId: string, cutoff: number, limit: number): Promise<{ pruned: number; broken?: string }> {
    const start = await this.startOf(trx, tenantId);
    if ('reason' in start) return { pruned: 0, broken: start.reason };
    const rows = await trx
      .selectFrom('audit_log')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .where('seq', '>', start.seq)
      .orderBy('seq')
      .limit(limit)
      .execute();
    const walker = new ChainWalker(this.keyRing, start);
    let last: AuditLogTable | undefined;
    for (const row of rows) {
      // Only a run from the start: an entry stamped later (another node's clock) ends it.
      if (Number(row.at) >= cutoff) break;
      const verdict = walker.step(row);
      if (!verdict.ok) return { pruned: 0, broken: `entry ${verdict.seq}: ${verdict.reason}` };
      last = row;
    }
    if (!last) return { pruned: 0 };
    const { id: keyId } = this.keyRing.active;
    const checkpoint: Omit<AuditCheckpointTable, 'mac'> = {
      tenant_id: tenantId,
      seq: Number(last.seq),
      hash: last.hash,
      keyed: walker.keyed ? 1 : 0,
      at: this.clock.now(),
      key_id: keyId,
    };
    const mac = checkpointMac(this.keyRing.deriveKey(AUDIT_KEY_PURPOSE), checkpoint);
    await trx
      .insertInto('audit_checkpoints')
      .values({ ...checkpoint, mac })
      .onConflict((oc) =>
        oc.column('tenant_id').doUpdateSet({ seq: checkpoint.seq, hash: checkpoint.hash, keyed: checkpoint.keyed, at: checkpoint.at, key_id: keyId, mac }),
      )
      .execute();
    const deleted = await trx
      .deleteFrom('audit_log')
      .where('tenant_id', '=', tenantId)
      .where('seq', '>', start.seq)
      .where('seq', '<=', checkpoint.seq)
      .executeTakeFirst();
    return { pruned: Number(deleted.numDeletedRows) };
  }

  /** How many entries each master key keyed (null: unkeyed), so an operator knows which old keys `verify` still needs. */
  async entriesByKey(): Promise<{ keyId: string | null; entries: number }[]> {
    const rows = await this.db
      .selectFrom('audit_log')
      .select(['key_id', sql<number>`count(*)`.as('entries')])
      .groupBy('key_id')
      .execute();
    return rows.map((r) => ({ keyId: r.key_id, entries: Number(r.entries) }));
  }
}

function toEntry(row: AuditLogTable): AuditEntry {
  return {
    id: row.id,
    seq: Number(row.seq),
    at: Number(row.at),
    actor: row.actor,
    action: row.action,
    targetUserId: row.target_user_id,
    // Shown as stored; the chain, not this parse, is what detects a changed entry.
    details: parseJson(JsonObject, row.details) ?? {},
    hash: row.hash,
  };
}
