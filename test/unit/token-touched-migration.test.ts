import { afterAll, describe, expect, it } from 'vitest';
import { openDurableStore, steadfastMigrator } from '../../src/store/durable/database.ts';
import { auditEntryWriter, seedTenantsAndUsers } from '../helpers/audit-fixtures.ts';

/** Migration 014 marks every account the audit log says a token created, changed, reset or gave a pass, in its own tenant only. */
describe('migration 014: accounts a token touched', () => {
  const durable = openDurableStore({ sqlitePath: ':memory:' });
  afterAll(() => durable.close());
  const migrator = steadfastMigrator(durable.db);

  it('sets token_touched_at from the latest such audit entry, and leaves other accounts unmarked', async () => {
    expect((await migrator.migrateTo('013-signature-counter')).error).toBeUndefined();
    await seedTenantsAndUsers(
      durable.db,
      ['t', 'other'],
      [
        ['t', 'made'],
        ['t', 'reset'],
        ['t', 'person'],
        ['t', 'deleted-by-token'],
        ['other', 'made-elsewhere'],
      ],
    );
    const entry = auditEntryWriter(durable.db);
    await entry('t', 'admin-token:a', 'user.created', 'made', 100);
    // The same token's entry in another tenant names a user of this one: it marks nobody.
    await entry('other', 'admin-token:a', 'user.created', 'person', 150);
    await entry('t', 'admin-token:a', 'tap.issued', 'made', 300);
    await entry('t', 'admin-token:b', 'methods.reset', 'reset', 200);
    await entry('t', 'user:boss', 'user.updated', 'person', 400);
    await entry('t', 'admin-token:a', 'sessions.revoked', 'deleted-by-token', 500);

    expect((await migrator.migrateToLatest()).error).toBeUndefined();
    const rows = await durable.db.selectFrom('users').select(['tenant_id', 'id', 'token_touched_at']).orderBy('tenant_id').orderBy('id').execute();
    expect(rows.map((r) => [r.tenant_id, r.id, r.token_touched_at === null ? null : Number(r.token_touched_at)])).toEqual([
      ['other', 'made-elsewhere', null],
      ['t', 'deleted-by-token', null],
      ['t', 'made', 300],
      ['t', 'person', null],
      ['t', 'reset', 200],
    ]);
  });
});
