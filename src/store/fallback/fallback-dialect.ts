import {
  CompiledQuery,
  InsertQueryNode,
  OnConflictNode,
  SqliteDialect,
  type DatabaseConnection,
  type DatabaseIntrospector,
  type Dialect,
  type DialectAdapter,
  type Driver,
  type Kysely,
  type OperationNode,
  type QueryCompiler,
  type QueryResult,
  type TransactionSettings,
} from 'kysely';
import { AppError } from '../../errors/app-error.ts';
import { withStatementCache } from '../durable/database.ts';
import type { JournalPayload } from './outage-journal.ts';

/** What happens to a statement while the node signs in from its fallback. */
export type WriteRule = 'read' | 'journal' | 'local' | 'refuse';

/** The part of the failover controller the dialect needs (store/fallback/durable-failover.ts). */
export interface FallbackRouting {
  /** True while statements go to the local snapshot. */
  usesFallback(): boolean;
  /** The snapshot's SQLite handle, when the node has one. */
  snapshotDatabase(): import('better-sqlite3').Database | undefined;
  /** True when the error means the database is unreachable (not a bad statement). */
  isOutage(error: unknown): boolean;
  /**
   * Told of an unreachable-looking error; true when statements now go to the snapshot. An ambiguous one
   * (a pool wait timing out under load) is confirmed first, and this statement fails as it always did.
   */
  markDown(reason: unknown): boolean;
  /**
   * Records writes made on the snapshot, to be replayed in the database later: appended at once, on disk
   * when the promise settles (nobody is answered before that).
   */
  journalWrites(payloads: JournalPayload[]): Promise<void>;
  /** The snapshot changed locally (the sealed file is saved again). */
  touched(): void;
}

/**
 * Writes sign-in makes and the database must get later (journal), writes that
 * only matter to this node (local), and everything else, which an outage
 * pauses (refuse): registering or removing methods, administration, audit
 * entries (the audit log journals those itself, to keep its chain whole).
 */
const RULES: Record<string, Partial<Record<'insert' | 'update' | 'delete', WriteRule>>> = {
  sessions: { insert: 'journal', update: 'journal' },
  signin_events: { insert: 'journal', update: 'journal' },
  credentials: { update: 'journal' },
  recovery_codes: { update: 'journal' },
  access_passes: { update: 'journal' },
  remembered_devices: { insert: 'journal', update: 'journal' },
  users: { update: 'journal' },
  oidc_records: { insert: 'journal', update: 'journal', delete: 'journal' },
  ephemeral_fallback: { insert: 'local', update: 'local', delete: 'local' },
  cluster_members: { insert: 'local', update: 'local', delete: 'local' },
  cluster_load: { insert: 'local', update: 'local', delete: 'local' },
  canary_tallies: { insert: 'local', update: 'local', delete: 'local' },
};

export function writeRule(node: OperationNode): WriteRule {
  switch (node.kind) {
    case 'SelectQueryNode':
      return 'read';
    case 'InsertQueryNode':
      return ruleFor(tableOf((node as InsertQueryNode).into), 'insert');
    case 'UpdateQueryNode':
      return ruleFor(tableOf((node as { table?: OperationNode }).table), 'update');
    case 'DeleteQueryNode':
      return ruleFor(tableOf((node as unknown as { from: { froms: readonly OperationNode[] } }).from.froms[0]), 'delete');
    case 'RawNode': {
      const text = (node as unknown as { sqlFragments: readonly string[] }).sqlFragments.join('?').trim().toLowerCase();
      if (/^(select|with)\b/.test(text)) return 'read';
      // The durable ephemeral tier's counter: node-local while the database is away.
      if (text.startsWith('insert into ephemeral_fallback')) return 'local';
      return 'refuse';
    }
    default:
      return 'refuse';
  }
}

function ruleFor(table: string | undefined, op: 'insert' | 'update' | 'delete'): WriteRule {
  return (table ? RULES[table]?.[op] : undefined) ?? 'refuse';
}

function tableOf(node: OperationNode | undefined): string | undefined {
  if (!node) return undefined;
  if (node.kind === 'TableNode') return (node as unknown as { table: { identifier: { name: string } } }).table.identifier.name;
  if (node.kind === 'AliasNode') return tableOf((node as unknown as { node: OperationNode }).node);
  return undefined;
}

export const CHANGES_PAUSED_RETRY_AFTER_S = 30;

function changesPaused(): AppError {
  return new AppError('changes-paused', 'changes are paused while the database is unreachable; sign-in keeps working', {}, CHANGES_PAUSED_RETRY_AFTER_S);
}

/**
 * PostgreSQL, or the node's local snapshot while PostgreSQL does not answer.
 * Queries are compiled for PostgreSQL as usual; a connection handed out
 * during an outage compiles them again for SQLite and runs them on the
 * snapshot, so the domain code runs unchanged (it already speaks both).
 * Writes on the snapshot follow `writeRule`: sign-in's are journaled for
 * replay, changes are refused with `changes-paused` (503, Retry-After).
 */
export class FallbackDialect implements Dialect {
  constructor(
    private readonly primary: Dialect,
    private readonly routing: FallbackRouting,
  ) {}

  createAdapter(): DialectAdapter {
    return this.primary.createAdapter();
  }

  createDriver(): Driver {
    return new FallbackDriver(this.primary.createDriver(), this.primary.createQueryCompiler(), this.routing);
  }

  createQueryCompiler(): QueryCompiler {
    return this.primary.createQueryCompiler();
  }

  createIntrospector(db: Kysely<any>): DatabaseIntrospector {
    return this.primary.createIntrospector(db);
  }
}

class RoutedConnection implements DatabaseConnection {
  inTransaction = false;
  /** The snapshot connection was handed back at commit, before the journal's flush was waited for. */
  released = false;
  /** Journal entries of the open snapshot transaction: written only if it commits. */
  pending: JournalPayload[] = [];

  constructor(
    readonly target: 'primary' | 'fallback',
    readonly inner: DatabaseConnection,
    private readonly driver: FallbackDriver,
  ) {}

  async executeQuery<R>(compiled: CompiledQuery): Promise<QueryResult<R>> {
    if (this.target === 'fallback') return this.driver.runOnSnapshot<R>(this, compiled);
    try {
      return await this.inner.executeQuery<R>(compiled);
    } catch (error) {
      if (!this.driver.routing.isOutage(error) || !this.driver.routing.markDown(error)) throw error;
      // Inside a transaction the earlier statements went to the database: it fails whole, as it would have.
      if (this.inTransaction) throw error;
      return this.driver.runDetached<R>(compiled);
    }
  }

  async *streamQuery<R>(compiled: CompiledQuery, chunkSize?: number): AsyncIterableIterator<QueryResult<R>> {
    if (this.target === 'fallback') {
      yield await this.driver.runOnSnapshot<R>(this, compiled);
      return;
    }
    yield* this.inner.streamQuery<R>(compiled, chunkSize);
  }
}

class FallbackDriver implements Driver {
  private snapshotDriver: Driver | undefined;
  private snapshotHandle: unknown;
  private readonly sqliteCompiler: QueryCompiler;

  constructor(
    private readonly primary: Driver,
    private readonly pgCompiler: QueryCompiler,
    readonly routing: FallbackRouting,
  ) {
    this.sqliteCompiler = new SqliteDialect({ database: {} as never }).createQueryCompiler();
  }

  async init(): Promise<void> {
    await this.primary.init();
  }

  async acquireConnection(): Promise<DatabaseConnection> {
    if (this.routing.usesFallback()) return this.fallbackConnection();
    try {
      return new RoutedConnection('primary', await this.primary.acquireConnection(), this);
    } catch (error) {
      if (!this.routing.isOutage(error) || !this.routing.markDown(error)) throw error;
      return this.fallbackConnection();
    }
  }

  async beginTransaction(connection: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    const routed = connection as RoutedConnection;
    if (routed.target === 'primary') await this.primary.beginTransaction(routed.inner, settings);
    else await (await this.snapshot()).beginTransaction(routed.inner, {});
    routed.inTransaction = true;
    routed.pending = [];
  }

  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    const routed = connection as RoutedConnection;
    routed.inTransaction = false;
    if (routed.target === 'primary') return this.primary.commitTransaction(routed.inner);
    // Journaled first: a write the snapshot keeps is one the database gets later.
    const onDisk = this.routing.journalWrites(routed.pending);
    routed.pending = [];
    const snapshot = await this.snapshot();
    await snapshot.commitTransaction(routed.inner);
    // The snapshot has one connection: it is not held while the journal flushes (other sign-ins read on),
    // but the commit answers only once the journal has the writes on disk.
    routed.released = true;
    await snapshot.releaseConnection(routed.inner);
    await onDisk;
  }

  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    const routed = connection as RoutedConnection;
    routed.inTransaction = false;
    routed.pending = [];
    if (routed.target === 'primary') return this.primary.rollbackTransaction(routed.inner);
    // Committed already, and the connection is another's now: a failed flush is not undone here.
    if (routed.released) return;
    await (await this.snapshot()).rollbackTransaction(routed.inner);
  }

  async releaseConnection(connection: DatabaseConnection): Promise<void> {
    const routed = connection as RoutedConnection;
    if (routed.target === 'primary') return this.primary.releaseConnection(routed.inner);
    if (routed.released) return;
    await (await this.snapshot()).releaseConnection(routed.inner);
  }

  /** The pool belongs to the store's primary Kysely, which ends it. */
  async destroy(): Promise<void> {}

  /** A statement whose database connection broke outside a transaction: run it on the snapshot instead. */
  async runDetached<R>(compiled: CompiledQuery): Promise<QueryResult<R>> {
    const connection = await this.fallbackConnection();
    try {
      return await this.runOnSnapshot<R>(connection, compiled);
    } finally {
      await this.releaseConnection(connection);
    }
  }

  async runOnSnapshot<R>(connection: RoutedConnection, compiled: CompiledQuery): Promise<QueryResult<R>> {
    // Kysely runs one statement per connection outside a transaction; a second one here would run unguarded.
    if (connection.released) throw new Error('a snapshot connection was used after it was handed back');
    const rule = writeRule(compiled.query);
    if (rule === 'refuse') throw changesPaused();
    const result = await connection.inner.executeQuery<R>(this.sqliteCompiler.compileQuery(compiled.query, compiled.queryId));
    if (rule !== 'read') this.routing.touched();
    if (rule === 'journal') {
      const payload = this.forReplay(compiled);
      if (connection.inTransaction) connection.pending.push(payload);
      else {
        const onDisk = this.routing.journalWrites([payload]);
        // As at a commit: the snapshot's one connection is handed back before the flush is waited for.
        connection.released = true;
        await (await this.snapshot()).releaseConnection(connection.inner);
        await onDisk;
      }
    }
    return result;
  }

  /** The statement as the database will get it: an insert that is already there is skipped, not an error. */
  private forReplay(compiled: CompiledQuery): JournalPayload {
    let node = compiled.query;
    if (InsertQueryNode.is(node) && !node.onConflict) node = InsertQueryNode.cloneWith(node, { onConflict: { ...OnConflictNode.create(), doNothing: true } });
    const pg = node === compiled.query ? compiled : this.pgCompiler.compileQuery(node, compiled.queryId);
    return { kind: 'sql', sql: pg.sql, parameters: [...pg.parameters] };
  }

  private async fallbackConnection(): Promise<RoutedConnection> {
    const driver = await this.snapshot();
    return new RoutedConnection('fallback', await driver.acquireConnection(), this);
  }

  private async snapshot(): Promise<Driver> {
    const database = this.routing.snapshotDatabase();
    // Without a snapshot (a node that never reached the database and has no file) there is nothing to serve from.
    if (!database) throw new AppError('unavailable', 'the database is unreachable and this node has no local fallback yet', {}, 5);
    if (!this.snapshotDriver || this.snapshotHandle !== database) {
      // Kysely prepares every statement it runs: while a node signs in from the snapshot (flows and codes
      // too, when Redis is down) preparing was a twentieth of the event loop's time. The snapshot's
      // statements run only through `all` and `run` (never a streaming `iterate`), so one is never met busy.
      const driver = new SqliteDialect({ database: withStatementCache(database) }).createDriver();
      await driver.init();
      this.snapshotDriver = driver;
      this.snapshotHandle = database;
    }
    return this.snapshotDriver;
  }
}
