import { PostgresAdapter, sql, type Kysely } from 'kysely';

/**
 * Where flows, one-time codes and counters go while Redis is unreachable
 * (store/ephemeral/failover-store.ts). Kept in the durable store rather than
 * node memory so a flow started on one node still finishes on another, and a
 * code consumed on one node stays consumed on every node. Rows are short-lived
 * (their `expires_at`) and swept by the store that writes them.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('ephemeral_fallback')
    .addColumn('key', 'varchar(512)', (c) => c.primaryKey())
    .addColumn('value', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('ephemeral_fallback_expiry').on('ephemeral_fallback').column('expires_at').execute();

  // Journal entries of the local fallback replayed into the database (store/fallback/outage-journal.ts):
  // the entry's id is written in the same transaction as its effect, so a node that replays it twice
  // (it crashed between the commit and forgetting the entry) finds it done and skips it.
  await db.schema
    .createTable('outage_replays')
    .addColumn('id', 'varchar(100)', (c) => c.primaryKey())
    .addColumn('node', 'varchar(200)', (c) => c.notNull())
    .addColumn('replayed_at', 'bigint', (c) => c.notNull())
    .execute();

  // The change feed that keeps every node's local fallback fresh (docs/adr/0004-outage-fallback.md).
  // PostgreSQL only: an embedded SQLite store is on the node's own disk and has no outage to fall back from.
  if (!(db.getExecutor().adapter instanceof PostgresAdapter)) return;
  await db.schema
    .createTable('change_feed')
    .addColumn('seq', 'bigserial', (c) => c.primaryKey())
    .addColumn('tbl', 'varchar(64)', (c) => c.notNull())
    .addColumn('row_id', 'varchar(100)', (c) => c.notNull())
    .addColumn('at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('change_feed_at').on('change_feed').column('at').execute();
  await sql`
    create or replace function steadfast_change_feed() returns trigger language plpgsql as $$
    begin
      insert into change_feed (tbl, row_id, at)
      values (TG_TABLE_NAME, case when TG_OP = 'DELETE' then OLD.id else NEW.id end, (extract(epoch from clock_timestamp()) * 1000)::bigint);
      return null;
    end $$`.execute(db);
  for (const table of FED_TABLES) {
    await sql`create trigger ${sql.raw(`${table}_change_feed`)} after insert or update or delete on ${sql.table(table)} for each row execute function steadfast_change_feed()`.execute(
      db,
    );
  }
}

/** Kept in step with FED_TABLES in store/fallback/fallback-snapshot.ts (a migration never imports code that may change). */
const FED_TABLES = ['tenants', 'users', 'credentials', 'recovery_codes', 'access_passes', 'apps', 'sessions', 'remembered_devices'];

export async function down(db: Kysely<any>): Promise<void> {
  if (db.getExecutor().adapter instanceof PostgresAdapter) {
    for (const table of FED_TABLES) await sql`drop trigger if exists ${sql.raw(`${table}_change_feed`)} on ${sql.table(table)}`.execute(db);
    await sql`drop function if exists steadfast_change_feed()`.execute(db);
    await db.schema.dropTable('change_feed').execute();
  }
  await db.schema.dropTable('outage_replays').execute();
  await db.schema.dropTable('ephemeral_fallback').execute();
}
