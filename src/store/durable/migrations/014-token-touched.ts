import type { Kysely } from 'kysely';

/**
 * When an admin API token last created, changed, reset or gave a pass to a
 * user (`users.token_touched_at`). Such an account is never made an
 * administrator: whoever held the token may hold its way in. The audit log
 * said this before, but the retention sweep prunes the audit log, and the
 * mark must not fade with it. Filled in from what the audit log still holds.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('users').addColumn('token_touched_at', 'bigint').execute();
  const touched = (await db
    .selectFrom('audit_log')
    .select(['tenant_id', 'target_user_id'])
    .select((eb) => eb.fn.max('at').as('at'))
    .where('actor', 'like', 'admin-token:%')
    .where('action', 'in', ['user.created', 'user.updated', 'tap.issued', 'methods.reset'])
    .where('target_user_id', 'is not', null)
    .groupBy(['tenant_id', 'target_user_id'])
    .execute()) as { tenant_id: string; target_user_id: string; at: number | string }[];
  for (const row of touched) {
    await db
      .updateTable('users')
      .set({ token_touched_at: Number(row.at) })
      .where('tenant_id', '=', row.tenant_id)
      .where('id', '=', row.target_user_id)
      .execute();
  }
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('users').dropColumn('token_touched_at').execute();
}
