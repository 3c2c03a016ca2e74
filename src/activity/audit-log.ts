import { createHash } from 'node:crypto';
import type { Db, Engine } from '../store/durable/database.ts';
import type { AuditLogTable } from '../store/durable/schema.ts';
import type { Clock } from '../clock.ts';
import { newSortableId } from '../crypto/random.ts';

/** What the audit log records. Stable words: alerting rules match on them. */
export type AuditAction =
  | 'tap.issued'
  | 'tap.used'
  | 'tap.revoked'
  | 'methods.reset'
  | 'sessions.revoked'
  | 'policy.changed'
  | 'signin.reported'
  | 'user.created'
  | 'user.updated'
  | 'user.deleted'
  | 'app.created'
  | 'app.deleted'
  | 'token.created'
  | 'token.revoked'
  | 'break-glass.signin';

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

export type ChainCheck = { intact: true; entries: number } | { intact: false; entries: number; tenantId: string; seq: number; id: string | null; reason: string };

const GENESIS = '0'.repeat(64);

/** The hash an entry must carry: its own fields and the hash of the one before. */
export function entryHash(prevHash: string, e: Pick<AuditLogTable, 'tenant_id' | 'seq' | 'at' | 'actor' | 'action' | 'target_user_id' | 'details'>): string {
  const body = JSON.stringify([e.tenant_id, Number(e.seq), Number(e.at), e.actor, e.action, e.target_user_id, e.details]);
  return createHash('sha256').update(prevHash).update('\n').update(body).digest('hex');
}

/**
 * The append-only, hash-chained audit log, one chain per tenant. Each entry
 * carries the hash of the one before it, so editing, removing or reordering
 * any entry breaks every hash after it; the chain's head is kept apart, so
 * cutting entries off the end shows too.
 */
export class AuditLog {
  constructor(
    private readonly db: Db,
    private readonly engine: Engine,
    private readonly clock: Clock,
  ) {}

  async append(tenantId: string, input: AuditInput): Promise<AuditEntry> {
    return this.db.transaction().execute(async (trx) => {
      await trx.insertInto('audit_heads').values({ tenant_id: tenantId, seq: 0, hash: GENESIS }).onConflict((oc) => oc.column('tenant_id').doNothing()).execute();
      // Locking the head makes appends of one tenant take turns (SQLite transactions already do).
      let headQuery = trx.selectFrom('audit_heads').selectAll().where('tenant_id', '=', tenantId);
      if (this.engine === 'postgres') headQuery = headQuery.forUpdate();
      const head = await headQuery.executeTakeFirstOrThrow();
      const at = this.clock.now();
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
        hash: '',
      };
      row.hash = entryHash(head.hash, row);
      await trx.insertInto('audit_log').values(row).execute();
      await trx.updateTable('audit_heads').set({ seq: row.seq, hash: row.hash }).where('tenant_id', '=', tenantId).execute();
      return toEntry(row);
    });
  }

  /** Newest first; `before` is the `seq` of the last entry of the previous page. */
  async list(tenantId: string, options: { limit: number; before?: number | undefined; userId?: string | undefined; action?: string | undefined }): Promise<AuditEntry[]> {
    let query = this.db.selectFrom('audit_log').selectAll().where('tenant_id', '=', tenantId);
    if (options.before !== undefined) query = query.where('seq', '<', options.before);
    if (options.userId) query = query.where('target_user_id', '=', options.userId);
    if (options.action) query = query.where('action', '=', options.action);
    const rows = await query.orderBy('seq', 'desc').limit(options.limit).execute();
    return rows.map(toEntry);
  }

  /** Walks every chain (or one tenant's) from the start and names the first entry that does not fit. */
  async verify(tenantId?: string): Promise<ChainCheck> {
    let heads = this.db.selectFrom('audit_heads').selectAll();
    if (tenantId) heads = heads.where('tenant_id', '=', tenantId);
    let entries = 0;
    for (const head of await heads.orderBy('tenant_id').execute()) {
      let prev = GENESIS;
      let expectedSeq = 1;
      let lastSeq = 0;
      const BATCH = 1000;
      for (;;) {
        const rows = await this.db.selectFrom('audit_log').selectAll().where('tenant_id', '=', head.tenant_id).where('seq', '>=', expectedSeq).orderBy('seq').limit(BATCH).execute();
        for (const row of rows) {
          const broken = (reason: string): ChainCheck => ({ intact: false, entries, tenantId: head.tenant_id, seq: Number(row.seq), id: row.id, reason });
          if (Number(row.seq) !== expectedSeq) return { intact: false, entries, tenantId: head.tenant_id, seq: expectedSeq, id: null, reason: `entry ${expectedSeq} is missing` };
          if (row.prev_hash !== prev) return broken('it does not carry the hash of the entry before it');
          if (entryHash(prev, row) !== row.hash) return broken('its contents do not match its hash');
          prev = row.hash;
          lastSeq = expectedSeq++;
          entries++;
        }
        if (rows.length < BATCH) break;
      }
      if (lastSeq !== Number(head.seq) || prev !== head.hash) {
        return { intact: false, entries, tenantId: head.tenant_id, seq: lastSeq + 1, id: null, reason: `the chain ends at entry ${lastSeq} but its head records entry ${Number(head.seq)}` };
      }
    }
    return { intact: true, entries };
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
    details: JSON.parse(row.details) as Record<string, unknown>,
    hash: row.hash,
  };
}
