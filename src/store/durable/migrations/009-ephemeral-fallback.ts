import type { Kysely } from 'kysely';

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
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('ephemeral_fallback').execute();
}
