import type { Kysely } from 'kysely';

/** OpenID Connect: the provider's long-lived records (sessions, grants, tokens) and each tenant's signing keys. */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('oidc_records')
    .addColumn('tenant_id', 'varchar(64)', (c) => c.notNull().references('tenants.id').onDelete('cascade'))
    .addColumn('model', 'varchar(40)', (c) => c.notNull())
    .addColumn('id', 'varchar(200)', (c) => c.notNull())
    .addColumn('payload', 'text', (c) => c.notNull())
    .addColumn('grant_id', 'varchar(200)')
    .addColumn('uid', 'varchar(200)')
    .addColumn('user_code', 'varchar(200)')
    .addColumn('expires_at', 'bigint')
    .addColumn('consumed_at', 'bigint')
    .addPrimaryKeyConstraint('oidc_records_pk', ['tenant_id', 'model', 'id'])
    .execute();
  await db.schema.createIndex('oidc_records_grant').on('oidc_records').columns(['tenant_id', 'grant_id']).execute();
  await db.schema.createIndex('oidc_records_uid').on('oidc_records').columns(['tenant_id', 'model', 'uid']).execute();

  await db.schema
    .createTable('oidc_keys')
    .addColumn('tenant_id', 'varchar(64)', (c) => c.notNull().references('tenants.id').onDelete('cascade'))
    .addColumn('kid', 'varchar(100)', (c) => c.notNull())
    .addColumn('sealed_jwk', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('retired_at', 'bigint')
    .addPrimaryKeyConstraint('oidc_keys_pk', ['tenant_id', 'kid'])
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('oidc_keys').execute();
  await db.schema.dropTable('oidc_records').execute();
}
