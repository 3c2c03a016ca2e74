import { sql } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import { openDurableStore, steadfastMigrator } from '../../src/store/durable/database.ts';

/** Migration 013 fills `sign_count` from each WebAuthn credential's JSON, and a row it cannot read does not stop it. */
describe('migration 013: signature counters as a column', () => {
  const durable = openDurableStore({ sqlitePath: ':memory:' });
  afterAll(() => durable.close());
  const migrator = steadfastMigrator(durable.db);

  it('copies the counter of every readable WebAuthn credential, 0 for the rest', async () => {
    expect((await migrator.migrateTo('011-push')).error).toBeUndefined();
    await sql`insert into tenants (id, slug, name, policy, created_at) values ('t', 't', 'T', '{}', 0)`.execute(durable.db);
    await sql`insert into users (id, tenant_id, username, status, created_at, updated_at) values ('u', 't', 'u', 'active', 0, 0)`.execute(durable.db);
    const credential = (id: string, type: string, publicData: string) =>
      sql`insert into credentials (id, tenant_id, user_id, type, label, state, public_data, created_at) values (${id}, 't', 'u', ${type}, 'k', 'active', ${publicData}, 0)`.execute(
        durable.db,
      );
    await credential('key', 'webauthn', JSON.stringify({ kind: 'passkey', counter: 41 }));
    await credential('synced', 'webauthn', JSON.stringify({ kind: 'passkey', counter: 0 }));
    await credential('damaged', 'webauthn', '{"counter": 9');
    await credential('app', 'totp', JSON.stringify({ counter: 5 }));

    expect((await migrator.migrateToLatest()).error).toBeUndefined();
    const rows = await durable.db.selectFrom('credentials').select(['id', 'sign_count']).orderBy('id').execute();
    expect(Object.fromEntries(rows.map((r) => [r.id, Number(r.sign_count)]))).toEqual({ app: 0, damaged: 0, key: 41, synced: 0 });
  });
});
