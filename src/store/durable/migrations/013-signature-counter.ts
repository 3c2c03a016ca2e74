import type { Kysely } from 'kysely';

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
  // Filled in from the JSON here rather than in SQL: one unreadable row (it reads as no key, and is refused
  // at sign-in) must not stop the whole migration, as a cast in SQL would.
  const rows = (await db.selectFrom('credentials').select(['id', 'public_data']).where('type', '=', 'webauthn').execute()) as {
    id: string;
    public_data: string;
  }[];
  for (const row of rows) {
    const counter = counterIn(row.public_data);
    if (counter > 0) await db.updateTable('credentials').set({ sign_count: counter }).where('id', '=', row.id).execute();
  }
}

function counterIn(json: string): number {
  try {
    const counter = (JSON.parse(json) as { counter?: unknown }).counter;
    return typeof counter === 'number' && Number.isSafeInteger(counter) && counter > 0 ? counter : 0;
  } catch {
    return 0;
  }
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('credentials').dropColumn('sign_count').execute();
}
