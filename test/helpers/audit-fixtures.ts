import { sql } from 'kysely';
import type { Db } from '../../src/store/durable/database.ts';

/**
 * Rows written straight into a migrated database, as an older release left them: tenants, users (`[tenant, id]`,
 * the id doubling as the username) and audit entries, for the tests of migrations that read the audit log.
 */
export async function seedTenantsAndUsers(db: Db, tenants: string[], users: [string, string][]): Promise<void> {
  for (const tenant of tenants) await sql`insert into tenants (id, slug, name, policy, created_at) values (${tenant}, ${tenant}, 'T', '{}', 0)`.execute(db);
  for (const [tenant, user] of users)
    await sql`insert into users (id, tenant_id, username, status, created_at, updated_at) values (${user}, ${tenant}, ${user}, 'active', 0, 0)`.execute(db);
}

/** Writes audit entries in order (their chain's hashes left empty: migrations do not check them). */
export function auditEntryWriter(db: Db): (tenant: string, actor: string, action: string, target: string, at: number) => Promise<unknown> {
  let seq = 0;
  return (tenant, actor, action, target, at) =>
    sql`insert into audit_log (id, tenant_id, seq, at, actor, action, target_user_id, details, prev_hash, hash) values (${`e${++seq}`}, ${tenant}, ${seq}, ${at}, ${actor}, ${action}, ${target}, '{}', '', '')`.execute(
      db,
    );
}
