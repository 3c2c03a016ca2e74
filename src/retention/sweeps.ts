/** What is swept and when: events and audit entries past retention, expired sessions, stale pending enrolments. */
import { sql } from 'kysely';
import type { Db } from '../store/durable/database.ts';
import type { Tenant } from '../directory/tenant.ts';
import type { AuditLog } from '../activity/audit-log.ts';
import { USED_PASS_KEPT_MS } from '../methods/tap/access-passes.ts';

const DAY_MS = 86_400_000;
/**
 * A pending enrolment (an authenticator app or phone number added and not yet
 * confirmed) can be confirmed for an hour; a day on, it is clutter.
 */
export const PENDING_ENROLMENT_KEPT_MS = DAY_MS;

export interface SweepBatch {
  now: number;
  /** At most this many rows per batch: one short transaction, one short hold on the event loop. */
  limit: number;
  /** Set for sweeps that follow a tenant's policy. */
  tenant?: Tenant;
}

/** What a batch did: rows removed, and for a chain that does not check out, why it was left alone. */
export interface SweepResult {
  removed: number;
  problem?: string;
}

/**
 * One kind of record that expires. `batch` removes at most `limit` of the
 * oldest due rows inside the transaction it is given; fewer than `limit`
 * means nothing more is due now.
 *
 * These are maintenance queries across tenants, the one place Steadfast reads
 * without a tenant: they only ever remove what has expired by its own dates,
 * and the per-tenant ones are scoped by tenant like every other query.
 */
export interface Sweep {
  /** Stable: logs, metrics and the PostgreSQL advisory lock are named after it. */
  name: string;
  perTenant: boolean;
  batch(trx: Db, b: SweepBatch): Promise<SweepResult>;
}

const removed = (result: { numDeletedRows: bigint }): SweepResult => ({ removed: Number(result.numDeletedRows) });

export function expirySweeps(audit: AuditLog): Sweep[] {
  return [
    {
      name: 'sessions',
      perTenant: false,
      // Idle and revoked sessions are refused at once and go here when their absolute lifetime ends.
      batch: async (trx, { now, limit }) =>
        removed(
          await trx
            .deleteFrom('sessions')
            .where('id', 'in', trx.selectFrom('sessions').select('id').where('expires_at', '<', now).limit(limit))
            .executeTakeFirst(),
        ),
    },
    {
      name: 'oidc-records',
      perTenant: false,
      batch: async (trx, { now, limit }) =>
        removed(
          await trx
            .deleteFrom('oidc_records')
            .where(({ eb, refTuple, selectFrom }) =>
              eb(
                refTuple('tenant_id', 'model', 'id'),
                'in',
                selectFrom('oidc_records').select(['tenant_id', 'model', 'id']).where('expires_at', '<', now).limit(limit).$asTuple('tenant_id', 'model', 'id'),
              ),
            )
            .executeTakeFirst(),
        ),
    },
    {
      name: 'access-passes',
      perTenant: false,
      // Unused and revoked passes go when they expire; every use is in the sign-in and audit logs. A used pass
      // nobody revoked stays a while longer (USED_PASS_KEPT_MS): revoking the token that issued it takes back
      // what it gave, and needs the row to find it.
      batch: async (trx, { now, limit }) =>
        removed(
          await trx
            .deleteFrom('access_passes')
            .where(
              'id',
              'in',
              trx
                .selectFrom('access_passes')
                .select('id')
                .where('expires_at', '<', now)
                .where((eb) => eb.or([eb('uses', '=', 0), eb('revoked_at', 'is not', null), eb('expires_at', '<', now - USED_PASS_KEPT_MS)]))
                .limit(limit),
            )
            .executeTakeFirst(),
        ),
    },
    {
      name: 'pending-enrolments',
      perTenant: false,
      // A literal, not a parameter: the planner can then use the pending-only index.
      batch: async (trx, { now, limit }) =>
        removed(
          await trx
            .deleteFrom('credentials')
            .where(
              'id',
              'in',
              trx
                .selectFrom('credentials')
                .select('id')
                .where('state', '=', sql.lit('pending'))
                .where('created_at', '<', now - PENDING_ENROLMENT_KEPT_MS)
                .limit(limit),
            )
            .executeTakeFirst(),
        ),
    },
    {
      name: 'remembered-devices',
      perTenant: true,
      // Past the tenant's remembering days a browser is not recognised (a policy of 0 remembers none).
      batch: async (trx, { now, limit, tenant }) =>
        removed(
          await trx
            .deleteFrom('remembered_devices')
            .where(
              'id',
              'in',
              trx
                .selectFrom('remembered_devices')
                .select('id')
                .where('tenant_id', '=', tenant!.id)
                .where('created_at', '<', now - tenant!.policy.rememberedDeviceDays * DAY_MS)
                .limit(limit),
            )
            .executeTakeFirst(),
        ),
    },
    {
      name: 'signin-events',
      perTenant: true,
      batch: async (trx, { now, limit, tenant }) =>
        removed(
          await trx
            .deleteFrom('signin_events')
            .where(
              'id',
              'in',
              trx
                .selectFrom('signin_events')
                .select('id')
                .where('tenant_id', '=', tenant!.id)
                .where('at', '<', now - tenant!.policy.retention.signinEventDays * DAY_MS)
                .orderBy('at')
                .limit(limit),
            )
            .executeTakeFirst(),
        ),
    },
    {
      name: 'audit',
      perTenant: true,
      batch: async (trx, { now, limit, tenant }) => {
        const { pruned, broken } = await audit.prune(trx, tenant!.id, now - tenant!.policy.retention.auditDays * DAY_MS, limit);
        return {
          removed: pruned,
          ...(broken
            ? { problem: `the audit chain does not check out (${broken}); it is kept whole until this is looked into: run steadfast audit verify` }
            : {}),
        };
      },
    },
  ];
}
