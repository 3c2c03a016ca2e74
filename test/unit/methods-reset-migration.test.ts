import { afterAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { openDurableStore, steadfastMigrator } from '../../src/store/durable/database.ts';
import { auditEntryWriter, seedTenantsAndUsers } from '../helpers/audit-fixtures.ts';

/** Migration 016 dates the latest reset of each account still waiting to register, from the audit log. */
describe('migration 016: when the methods were last reset', () => {
  const durable = openDurableStore({ sqlitePath: ':memory:' });
  afterAll(() => durable.close());
  const migrator = steadfastMigrator(durable.db);

  it('takes the latest reset of an account that must still register, and dates no other', async () => {
    expect((await migrator.migrateTo('015-token-touches')).error).toBeUndefined();
    await seedTenantsAndUsers(
      durable.db,
      ['t', 'other'],
      [
        ['t', 'waiting'],
        ['t', 'registered'],
        ['t', 'forgotten'],
        ['other', 'elsewhere'],
      ],
    );
    await sql`update users set must_register = 1 where id in ('waiting', 'forgotten', 'elsewhere')`.execute(durable.db);
    const entry = auditEntryWriter(durable.db);
    await entry('t', 'user:boss', 'methods.reset', 'waiting', 100);
    await entry('t', 'admin-token:a', 'methods.reset', 'waiting', 300);
    await entry('t', 'user:boss', 'tap.issued', 'waiting', 400);
    // Registered again since its reset: the reset no longer matters.
    await entry('t', 'user:boss', 'methods.reset', 'registered', 200);
    // Another tenant's user named in this tenant's entry is not dated.
    await entry('t', 'user:boss', 'methods.reset', 'elsewhere', 250);
    // ('forgotten' must register, but its reset has been pruned from the log.)

    expect((await migrator.migrateToLatest()).error).toBeUndefined();
    const rows = await durable.db.selectFrom('users').select(['id', 'methods_reset_at']).orderBy('id').execute();
    expect(rows.map((r) => [r.id, r.methods_reset_at === null ? null : Number(r.methods_reset_at)])).toEqual([
      ['elsewhere', null],
      ['forgotten', null],
      ['registered', null],
      ['waiting', 300],
    ]);
  });
});
