import { sql } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import { openDurableStore, steadfastMigrator } from '../../src/store/durable/database.ts';

/** Migration 014 marks every account the audit log says a token created, changed, reset or gave a pass, in its own tenant only. */
describe('migration 014: accounts a token touched', () => {
  const durable = openDurableStore({ sqlitePath: ':memory:' });
  afterAll(() => durable.close());
  const migrator = steadfastMigrator(durable.db);

  it('sets token_touched_at from the latest such audit entry, and leaves other accounts unmarked', async () => {
    expect((await migrator.migrateTo('013-signature-counter')).error).toBeUndefined();
    for (const tenant of ['t', 'other'])
      await sql`insert into tenants (id, slug, name, policy, created_at) values (${tenant}, ${tenant}, 'T', '{}', 0)`.execute(durable.db);
    for (const [tenant, user] of [
      ['t', 'made'],
      ['t', 'reset'],
      ['t', 'person'],
      ['t', 'deleted-by-token'],
      ['other', 'made-elsewhere'],
    ])
      await sql`insert into users (id, tenant_id, username, status, created_at, updated_at) values (${user}, ${tenant}, ${user}, 'active', 0, 0)`.execute(
        durable.db,
      );
    let seq = 0;
    const entry = (tenant: string, actor: string, action: string, target: string, at: number) =>
      sql`insert into audit_log (id, tenant_id, seq, at, actor, action, target_user_id, details, prev_hash, hash) values (${`e${++seq}`}, ${tenant}, ${seq}, ${at}, ${actor}, ${action}, ${target}, '{}', '', '')`.execute(
        durable.db,
      );
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
