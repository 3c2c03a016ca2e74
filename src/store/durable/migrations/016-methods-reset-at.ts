import type { Kysely } from 'kysely';

/**
 * When an administrator last reset a user's methods (`users.methods_reset_at`).
 * A password set before then no longer registers a first method: whoever else
 * knew it (the reason for many a reset) would register theirs first. The user
 * registers with a Temporary Access Pass, or with a password set since. Filled
 * in from what the audit log still holds for accounts still waiting to
 * register; an account whose reset the log no longer holds keeps the old rule.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('users').addColumn('methods_reset_at', 'bigint').execute();
  const resets = (await db
    .selectFrom('audit_log')
    .innerJoin('users', (join) => join.onRef('users.tenant_id', '=', 'audit_log.tenant_id').onRef('users.id', '=', 'audit_log.target_user_id'))
    .select(['audit_log.tenant_id', 'audit_log.target_user_id'])
    .select((eb) => eb.fn.max('audit_log.at').as('at'))
    .where('audit_log.action', '=', 'methods.reset')
    .where('users.must_register', '=', 1)
    .groupBy(['audit_log.tenant_id', 'audit_log.target_user_id'])
    .execute()) as { tenant_id: string; target_user_id: string; at: number | string }[];
  for (const row of resets) {
    await db
      .updateTable('users')
      .set({ methods_reset_at: Number(row.at) })
      .where('tenant_id', '=', row.tenant_id)
      .where('id', '=', row.target_user_id)
      .execute();
  }
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('users').dropColumn('methods_reset_at').execute();
}
