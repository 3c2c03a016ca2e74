import { PostgresAdapter, sql, type Kysely } from 'kysely';

/**
 * A WebAuthn credential's signature counter as a column of its own
 * (`sign_count`), next to the copy in `public_data`. An update that moves it
 * on says `where sign_count < new`, which both engines check under the row
 * lock: two nodes accepting the same counter cannot both succeed, and the
 * outage journal's counter updates, replayed in any order from several nodes,
 * leave the highest one in place (an older one updates nothing) instead of
 * the last one replayed (docs/adr/0004-outage-fallback.md).
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .alterTable('credentials')
    .addColumn('sign_count', 'bigint', (c) => c.notNull().defaultTo(0))
    .execute();
  const counter =
    db.getExecutor().adapter instanceof PostgresAdapter
      ? sql`coalesce((public_data::jsonb ->> 'counter')::bigint, 0)`
      : sql`coalesce(cast(json_extract(public_data, '$.counter') as integer), 0)`;
  await sql`update credentials set sign_count = ${counter} where type = 'webauthn'`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('credentials').dropColumn('sign_count').execute();
}
