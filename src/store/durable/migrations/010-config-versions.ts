import type { Kysely } from 'kysely';

/**
 * Runtime configuration as versioned data, and incidents.
 *
 * `config_versions` holds every version of a configuration scope (`node` for
 * the settings every node runs on, `tenant:{id}` for a tenant's policy): the
 * document as applied (secrets sealed with the key ring), a diff against the
 * version it replaced, who applied it and its rollout: `canary` while it bakes
 * on a slice, then `promoted`, `rolled-back` or `superseded`. The newest
 * `promoted` version of a scope is its last good version.
 *
 * `incidents` are what the status pages show: opened and closed by nodes when
 * a component goes down or a canary is rolled back, or posted by
 * administrators. `tenant_id` is empty for incidents every tenant sees.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('config_versions')
    .addColumn('scope', 'varchar(100)', (c) => c.notNull())
    .addColumn('version', 'integer', (c) => c.notNull())
    .addColumn('document', 'text', (c) => c.notNull())
    .addColumn('diff', 'text', (c) => c.notNull())
    .addColumn('actor', 'varchar(300)', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('state', 'varchar(20)', (c) => c.notNull())
    .addColumn('canary_percent', 'integer', (c) => c.notNull())
    .addColumn('bake_seconds', 'integer', (c) => c.notNull())
    .addColumn('decided_at', 'bigint')
    .addColumn('reason', 'text')
    .addPrimaryKeyConstraint('config_versions_pk', ['scope', 'version'])
    .execute();
  await db.schema.createIndex('config_versions_state').on('config_versions').columns(['state', 'scope']).execute();
  await db.schema
    .createTable('incidents')
    .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('tenant_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('component', 'varchar(100)', (c) => c.notNull())
    .addColumn('title', 'varchar(300)', (c) => c.notNull())
    .addColumn('advice', 'text', (c) => c.notNull())
    .addColumn('source', 'varchar(20)', (c) => c.notNull())
    .addColumn('started_at', 'bigint', (c) => c.notNull())
    .addColumn('expected_end_at', 'bigint')
    .addColumn('ended_at', 'bigint')
    .addColumn('updates', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('incidents_by_tenant').on('incidents').columns(['tenant_id', 'started_at']).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('incidents').execute();
  await db.schema.dropTable('config_versions').execute();
}
