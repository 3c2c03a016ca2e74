import type { Kysely } from 'kysely';

/**
 * Cluster membership and load (not tenant data: they describe the nodes).
 * `cluster_members` is where heartbeats go when Redis is absent or away;
 * `cluster_load` holds password checks per time bucket, summed over every
 * node, for the peak over the window (7 days by default).
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('cluster_members')
    .addColumn('name', 'varchar(200)', (c) => c.primaryKey())
    .addColumn('record', 'text', (c) => c.notNull())
    .addColumn('last_seen', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('cluster_load')
    .addColumn('bucket_start', 'bigint', (c) => c.primaryKey())
    .addColumn('checks', 'integer', (c) => c.notNull())
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('cluster_load').execute();
  await db.schema.dropTable('cluster_members').execute();
}
