/** Ending a user's sessions and removing their methods in one transaction: a reset, a revoked token's take-back, a reported sign-in. */
import type { Transaction } from 'kysely';
import type { Database } from '../store/durable/schema.ts';

export interface TakeBackScope {
  /** Only the methods added (set-up begun) at or after this time; all of them without it. */
  since?: number | undefined;
  /** With `since`: only those added before this time too (what came after an earlier report is the owner's aftermath). */
  until?: number | undefined;
  /** With `since`: this method too, whenever it was added (the one a reported sign-in got in with). */
  alsoCredentialId?: string | null | undefined;
  /** The session that asked for it and stays (a user's own "this wasn't me"); none stays without it. */
  keepSessionId?: string | undefined;
}

/**
 * Inside a transaction that has taken the user's row first: ends the sessions
 * written since their listeners ran (a set-up racing this finds its session
 * ended) and removes the methods, pending or active, all of them or those
 * added since `since`. A reset, a revoked token's take-back and a reported
 * sign-in share it.
 */
export async function endSessionsAndRemoveMethods(
  trx: Transaction<Database>,
  tenantId: string,
  userId: string,
  now: number,
  scope: TakeBackScope = {},
): Promise<{ removed: number; ended: number }> {
  let sessions = trx
    .updateTable('sessions')
    .set({ revoked_at: now })
    .where('tenant_id', '=', tenantId)
    .where('user_id', '=', userId)
    .where('revoked_at', 'is', null);
  if (scope.keepSessionId !== undefined) sessions = sessions.where('id', '!=', scope.keepSessionId);
  const revoked = await sessions.executeTakeFirst();
  let methods = trx.deleteFrom('credentials').where('tenant_id', '=', tenantId).where('user_id', '=', userId);
  const { since, until, alsoCredentialId } = scope;
  if (since !== undefined) {
    methods = methods.where((eb) => {
      const added = until !== undefined ? eb.and([eb('created_at', '>=', since), eb('created_at', '<', until)]) : eb('created_at', '>=', since);
      return alsoCredentialId ? eb.or([added, eb('id', '=', alsoCredentialId)]) : added;
    });
  }
  const result = await methods.executeTakeFirst();
  return { removed: Number(result.numDeletedRows), ended: Number(revoked.numUpdatedRows) };
}
