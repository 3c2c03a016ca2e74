import { afterAll, describe, expect, it } from 'vitest';
import { openDurableStore, steadfastMigrator } from '../../src/store/durable/database.ts';
import { auditEntryWriter, seedTenantsAndUsers } from '../helpers/audit-fixtures.ts';

/** Migration 015 notes, per token, each account the audit log says it created, changed, reset or gave a pass, from its first such entry. */
describe('migration 015: which token touched which account', () => {
  const durable = openDurableStore({ sqlitePath: ':memory:' });
  afterAll(() => durable.close());
  const migrator = steadfastMigrator(durable.db);

  it('keeps each token apart, takes its first entry, and notes nothing in another tenant or of a person', async () => {
    expect((await migrator.migrateTo('014-token-touched')).error).toBeUndefined();
    await seedTenantsAndUsers(
      durable.db,
      ['t', 'other'],
      [
        ['t', 'made'],
        ['t', 'person'],
        ['other', 'elsewhere'],
      ],
    );
    const entry = auditEntryWriter(durable.db);
    await entry('t', 'admin-token:a', 'tap.issued', 'made', 300);
    await entry('t', 'admin-token:a', 'user.created', 'made', 100);
    await entry('t', 'admin-token:b', 'methods.reset', 'made', 200);
    // Another tenant's user named in this tenant's entry, and one naming a user since deleted: nobody is noted.
    await entry('t', 'admin-token:a', 'user.updated', 'elsewhere', 150);
    await entry('t', 'admin-token:a', 'user.updated', 'gone', 160);
    await entry('t', 'user:boss', 'user.updated', 'person', 400);
    await entry('t', 'admin-token:a', 'sessions.revoked', 'person', 500);

    expect((await migrator.migrateToLatest()).error).toBeUndefined();
    const rows = await durable.db.selectFrom('token_touches').selectAll().orderBy('token_id').execute();
    expect(rows.map((r) => [r.tenant_id, r.token_id, r.user_id, Number(r.first_at)])).toEqual([
      ['t', 'a', 'made', 100],
      ['t', 'b', 'made', 200],
    ]);
    // A password's date is not known for the passwords set before.
    const users = await durable.db.selectFrom('users').select('password_changed_at').execute();
    expect(users.every((u) => u.password_changed_at === null)).toBe(true);
  });
});
