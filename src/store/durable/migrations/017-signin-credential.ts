import type { Kysely } from 'kysely';

/**
 * Which of the user's methods a sign-in used (`signin_events.credential_id`),
 * not only its type: "this wasn't me" takes back the very method a reported
 * sign-in got in with, whenever it was added. Sign-ins recorded before this
 * migration name none.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('signin_events').addColumn('credential_id', 'varchar(64)').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('signin_events').dropColumn('credential_id').execute();
}
