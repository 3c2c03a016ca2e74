import type { Kysely } from 'kysely';

/** Browsers that may skip the second factor for a while, as the tenant's policy allows. */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('remembered_devices')
    .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('tenant_id', 'varchar(64)', (c) => c.notNull().references('tenants.id').onDelete('cascade'))
    .addColumn('user_id', 'varchar(64)', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('token_hash', 'varchar(64)', (c) => c.notNull().unique())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('revoked_at', 'bigint')
    .addColumn('user_agent', 'varchar(512)')
    .execute();
  await db.schema.createIndex('remembered_devices_user').on('remembered_devices').columns(['tenant_id', 'user_id']).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('remembered_devices').execute();
}
