import { sql, type Kysely } from 'kysely';

/**
 * The keyed audit chain (each entry names the master key whose derived key
 * MACed it; a signed checkpoint marks where retention cut the chain), and the
 * indexes the expiry sweeps walk, so a sweep batch reads only what it deletes.
 */
export async function up(db: Kysely<any>): Promise<void> {
  // Null: an entry from before the chain was keyed (plain SHA-256).
  await db.schema.alterTable('audit_log').addColumn('key_id', 'varchar(32)').execute();
  await db.schema.alterTable('audit_heads').addColumn('key_id', 'varchar(32)').execute();
  // One row per tenant: entries up to `seq` were removed by retention; `hash` is the hash of entry `seq`.
  await db.schema
    .createTable('audit_checkpoints')
    .addColumn('tenant_id', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('seq', 'bigint', (c) => c.notNull())
    .addColumn('hash', 'varchar(64)', (c) => c.notNull())
    .addColumn('keyed', 'integer', (c) => c.notNull())
    .addColumn('at', 'bigint', (c) => c.notNull())
    .addColumn('key_id', 'varchar(32)', (c) => c.notNull())
    .addColumn('mac', 'varchar(64)', (c) => c.notNull())
    .execute();

  // `if not exists`: a large PostgreSQL deployment may build these beforehand with
  // CREATE INDEX CONCURRENTLY (docs/operations.md, "Upgrading"), so the upgrade holds no table.

  // The admin log's failure and method filters read their matches in time order instead of
  // scanning the tenant's whole log for them (a failures export of a large log took seconds).
  // Partial, to stay small: failures are a few rows in a hundred (successes are most rows, found
  // by the time index alone), and only second-factor steps have a method.
  await db.schema
    .createIndex('signin_events_failures_at')
    .ifNotExists()
    .on('signin_events')
    .columns(['tenant_id', 'at'])
    .where(sql<boolean>`outcome = 'failure'`)
    .execute();
  await db.schema
    .createIndex('signin_events_method_at')
    .ifNotExists()
    .on('signin_events')
    .columns(['tenant_id', 'method', 'at'])
    .where(sql<boolean>`method is not null`)
    .execute();

  await db.schema.createIndex('sessions_expires_at').ifNotExists().on('sessions').columns(['expires_at']).execute();
  await db.schema.createIndex('oidc_records_expires_at').ifNotExists().on('oidc_records').columns(['expires_at']).execute();
  await db.schema.createIndex('access_passes_expires_at').ifNotExists().on('access_passes').columns(['expires_at']).execute();
  await db.schema.createIndex('remembered_devices_created_at').ifNotExists().on('remembered_devices').columns(['tenant_id', 'created_at']).execute();
  // Pending enrolments are few; a partial index finds the stale ones without touching active methods.
  await db.schema
    .createIndex('credentials_pending_created_at')
    .ifNotExists()
    .on('credentials')
    .columns(['created_at'])
    .where(sql<boolean>`state = 'pending'`)
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const index of [
    'signin_events_method_at',
    'signin_events_failures_at',
    'credentials_pending_created_at',
    'remembered_devices_created_at',
    'access_passes_expires_at',
    'oidc_records_expires_at',
    'sessions_expires_at',
  ]) {
    await db.schema.dropIndex(index).execute();
  }
  await db.schema.dropTable('audit_checkpoints').execute();
  await db.schema.alterTable('audit_heads').dropColumn('key_id').execute();
  await db.schema.alterTable('audit_log').dropColumn('key_id').execute();
}
