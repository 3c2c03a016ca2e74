import type { Kysely } from 'kysely';

/**
 * Keys of the deployment itself, one row each: the VAPID key pair that signs
 * Web Push requests to the Steadfast Authenticator (private part sealed with
 * the key ring). Kept, not derived from the master key: every browser's push
 * subscription is bound to the public key, so it must outlive a master-key rotation.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('deployment_keys')
    .addColumn('name', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('public_key', 'text', (c) => c.notNull())
    .addColumn('sealed_private_key', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('deployment_keys').execute();
}
