import type { Kysely } from 'kysely';

/**
 * What each node counted for a canary while it bakes (`canary_tallies`): one
 * row per comparison (the configuration scope and version) and node, holding
 * the node's canary and rest counts since the canary began. Every node
 * judges the sum over all nodes, so a node that served none of the failing
 * traffic decides as the one that served it would. Used when Redis is not
 * configured or is away; with Redis the same records live in a hash there.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('canary_tallies')
    .addColumn('scope', 'varchar(100)', (c) => c.notNull())
    .addColumn('version', 'integer', (c) => c.notNull())
    .addColumn('node', 'varchar(200)', (c) => c.notNull())
    .addColumn('record', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('canary_tallies_pk', ['scope', 'version', 'node'])
    .execute();
  await db.schema.createIndex('canary_tallies_updated').on('canary_tallies').column('updated_at').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('canary_tallies').execute();
}
