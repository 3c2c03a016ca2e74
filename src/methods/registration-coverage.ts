import { sql } from 'kysely';
import type { Db } from '../store/durable/database.ts';
import { METHOD_MODULES } from './registry.ts';
import type { MethodDescriptor } from './method-descriptor.ts';

/**
 * Where a tenant's active users stand, each counted once, in the order a
 * chart stacks them: a phishing-resistant method; other methods (an app, an
 * email address) but none of those; only phone-based methods (SMS, voice),
 * the ones SIM swaps and channel outages take away; no method yet.
 */
export interface RegistrationCoverage {
  users: number;
  phishingResistant: number;
  otherMethods: number;
  phoneOnly: number;
  noMethod: number;
}

const descriptors: readonly MethodDescriptor[] = METHOD_MODULES.map((m) => m.descriptor);
/** A sign-in method a user registers (proved at set-up): not recovery codes, not a pass an administrator gives. */
const registered = descriptors.filter((d) => d.provesPossessionAtSetup);
const PHISHING_RESISTANT = registered.filter((d) => d.phishingResistant).map((d) => d.type);
const PHONE = registered.filter((d) => !d.phishingResistant && d.enrolment?.form === 'phone').map((d) => d.type);
const OTHER = registered.filter((d) => !d.phishingResistant && d.enrolment?.form !== 'phone').map((d) => d.type);

/** Counts credentials of the listed types; never `in ()`, which PostgreSQL refuses. */
const countOf = (types: string[]) => (types.length === 0 ? sql<number>`0` : sql<number>`count(case when c.type in (${sql.join(types)}) then 1 end)`);

/**
 * The tenant's registration coverage, counted by the database in one query
 * (the users of the tenant joined to their active credentials on the
 * (tenant_id, user_id) index): compile it to run in the report worker, or
 * `execute` it, and read the row with `readCoverage`. Which methods are
 * phishing-resistant or phone-based comes from the method descriptors, never a
 * list here.
 */
export function registrationCoverageQuery(db: Db, tenantId: string) {
  const perUser = db
    .selectFrom('users as u')
    .leftJoin('credentials as c', (join) => join.onRef('c.tenant_id', '=', 'u.tenant_id').onRef('c.user_id', '=', 'u.id').on('c.state', '=', 'active'))
    .select(['u.id', countOf(PHISHING_RESISTANT).as('pr'), countOf(PHONE).as('phone'), countOf(OTHER).as('other')])
    .where('u.tenant_id', '=', tenantId)
    .where('u.status', '=', 'active')
    .groupBy('u.id')
    .as('per_user');
  return db
    .selectFrom(perUser)
    .select([
      sql<number>`count(*)`.as('users'),
      sql<number>`coalesce(sum(case when pr > 0 then 1 else 0 end), 0)`.as('phishingResistant'),
      sql<number>`coalesce(sum(case when pr = 0 and other > 0 then 1 else 0 end), 0)`.as('otherMethods'),
      sql<number>`coalesce(sum(case when pr = 0 and other = 0 and phone > 0 then 1 else 0 end), 0)`.as('phoneOnly'),
      sql<number>`coalesce(sum(case when pr = 0 and other = 0 and phone = 0 then 1 else 0 end), 0)`.as('noMethod'),
    ]);
}

/** The coverage from the query's one row (numbers as either engine returns them). */
export function readCoverage(row: Record<string, unknown> | undefined): RegistrationCoverage {
  const n = (key: keyof RegistrationCoverage) => Number(row?.[key] ?? 0);
  return { users: n('users'), phishingResistant: n('phishingResistant'), otherMethods: n('otherMethods'), phoneOnly: n('phoneOnly'), noMethod: n('noMethod') };
}

/** The coverage, counted on this thread: for PostgreSQL, whose queries never block it, and tests. */
export async function registrationCoverage(db: Db, tenantId: string): Promise<RegistrationCoverage> {
  return readCoverage(await registrationCoverageQuery(db, tenantId).executeTakeFirst());
}
