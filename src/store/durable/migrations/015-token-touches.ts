import type { Kysely } from 'kysely';

/**
 * Which admin API token touched which account, and when first
 * (`token_touches`): the accounts whose way in a revoked token's holder may
 * hold (a password it set, a reset after which they registered a method of
 * their own, an address codes go to, a pass). Revoking the token takes back
 * everything set up on them since. And when each account's password was last
 * set (`users.password_changed_at`; a rehash with new parameters is not a
 * change), to tell a password set since from one set before. Filled in from
 * what the audit log still holds; a password's date is not known for those
 * set before this migration.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('token_touches')
    .addColumn('tenant_id', 'varchar(64)', (c) => c.notNull().references('tenants.id').onDelete('cascade'))
    .addColumn('token_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('user_id', 'varchar(64)', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('first_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('token_touches_pk', ['tenant_id', 'token_id', 'user_id'])
    .execute();
  await db.schema.alterTable('users').addColumn('password_changed_at', 'bigint').execute();
  const touched = (await db
    .selectFrom('audit_log')
    .innerJoin('users', (join) => join.onRef('users.tenant_id', '=', 'audit_log.tenant_id').onRef('users.id', '=', 'audit_log.target_user_id'))
    .select(['audit_log.tenant_id', 'audit_log.actor', 'audit_log.target_user_id'])
    .select((eb) => eb.fn.min('audit_log.at').as('at'))
    .where('audit_log.actor', 'like', 'admin-token:%')
    .where('audit_log.action', 'in', ['user.created', 'user.updated', 'tap.issued', 'methods.reset'])
    .groupBy(['audit_log.tenant_id', 'audit_log.actor', 'audit_log.target_user_id'])
    .execute()) as { tenant_id: string; actor: string; target_user_id: string; at: number | string }[];
  for (const row of touched) {
    await db
      .insertInto('token_touches')
      .values({ tenant_id: row.tenant_id, token_id: row.actor.slice('admin-token:'.length), user_id: row.target_user_id, first_at: Number(row.at) })
      .execute();
  }
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('users').dropColumn('password_changed_at').execute();
  await db.schema.dropTable('token_touches').execute();
}
