/** "This wasn't me": a reported sign-in ends every other session, takes back what it may have set up, and flags the account. */
import type { Clock } from '../clock.ts';
import type { Db } from '../store/durable/database.ts';
import type { Tenant } from '../directory/tenant.ts';
import type { User, Users } from '../directory/users.ts';
import type { Session, Sessions } from '../sessions/sessions.ts';
import type { Credentials } from '../methods/credentials.ts';
import type { AccessPasses } from '../methods/tap/access-passes.ts';
import { AppError } from '../errors/app-error.ts';
import type { SigninEvents } from './signin-events.ts';
import type { AuditLog } from './audit-log.ts';
import { requireSessionMay } from '../sessions/session-scope.ts';
import { endSessionsAndRemoveMethods, type TakeBackScope } from '../sessions/end-sessions-and-remove-methods.ts';

export interface ReportOutcome {
  sessionsEnded: number;
  /** Methods added since the reported sign-in, and the one it signed in with, taken back (a sign-in that failed took nothing). */
  methodsRemoved: number;
  /** Active methods the user has left. */
  methodsLeft: number;
  /** The Temporary Access Pass the reported sign-in used, revoked (it may be in whoever made it's hands). */
  passRevoked: boolean;
}

/**
 * "This wasn't me": the sign-in is marked, every other session of the user
 * ends, the account is flagged for the administrator, and the audit log keeps
 * it. A sign-in that got in is taken back too: whoever made it may have added
 * a method of their own (an authenticator app, a passkey, a push device, new
 * recovery codes) and would sign in again with it, password and all. So every
 * method added since it goes, whoever added it (the user adds back their own),
 * and so does the very method it signed in with, whenever that was added (one
 * an earlier sign-in of theirs set up, or the owner's, which whoever signed in
 * holds or relayed). What else was there before stays, as a revoked token's
 * take-back does.
 *
 * Whoever holds a recent session may report, the owner or a thief, so the
 * report gives a thief nothing they could not do with the session anyway
 * (add a method of theirs, remove the owner's): it never touches the password.
 * With no method left, the password alone would open a registration session to
 * whoever knows it; the sign-in refuses that until the password has changed
 * since the report (SigninService.passwordStep).
 */
export class SigninReports {
  constructor(
    private readonly deps: {
      db: Db;
      clock: Clock;
      events: SigninEvents;
      sessions: Sessions;
      users: Users;
      credentials: Credentials;
      passes: Pick<AccessPasses, 'revoke'>;
      audit: AuditLog;
    },
  ) {}

  async report(tenant: Tenant, user: User, session: Session, eventId: string): Promise<ReportOutcome> {
    // Ending every other session is a strong act: only a session that may, and that proved its user lately.
    requireSessionMay(session.scope, 'report-signin');
    this.deps.sessions.requireRecent(session);
    const event = await this.deps.events.markReported(tenant.id, user.id, eventId);
    if (!event) throw new AppError('not-found', 'no such sign-in');
    // A sign-in is dealt with when first reported. Reported again, it does nothing more: a second take-back would
    // remove what the owner has added since, and end their new sessions.
    if (!event.first) return { sessionsEnded: 0, methodsRemoved: 0, methodsLeft: await this.methodsLeft(tenant, user), passRevoked: false };
    // An earlier report, made after this sign-in, dealt with the account then: what was added since that report is
    // the owner's aftermath (a new authenticator from the session they reported from), not this sign-in's doing.
    // Another row of the same sign-in reported later, or an older sign-in of the same intruder, takes back only
    // what came between (twenty-sixth round: it removed the owner's new authenticator and flagged anew, after
    // their new password).
    const flaggedBefore = (await this.deps.users.get(tenant.id, user.id))?.flaggedAt ?? null;
    const until = flaggedBefore !== null && flaggedBefore > event.at ? flaggedBefore : undefined;
    // The flag first: a password sign-in begun from here on sees it (SigninService.passwordStep); one begun
    // before finds its session refused by the end below.
    await this.deps.users.flag(tenant.id, user.id, event.at);
    // First what ending the sessions always does (the mark a sign-in finishing meanwhile checks, remembered
    // browsers forgotten, listeners told), then the take-back in one transaction.
    const endedFirst = await this.deps.sessions.revokeAllForUser(tenant.id, user.id, session.id);
    // Removing methods needs what changing them needs: a second factor proved in this session. A session of the
    // password alone (a remembered browser) ends the others and flags the account, as before; the owner signs in
    // with a method to take back the rest.
    const takesBack = event.outcome === 'success' && session.amr.includes('mfa');
    const taken = takesBack ? await this.takeBack(tenant, user, session, { since: event.at, until, alsoCredentialId: event.credentialId }) : undefined;
    // A sign-in made with a Temporary Access Pass: whoever made it holds the pass, which would sign them in again
    // until it expires (hours, for a pass of many uses); only an administrator could revoke it otherwise.
    const passRevoked = takesBack && event.method === 'tap' ? (await this.deps.passes.revoke(tenant.id, user.id, { issuedBy: event.at })) !== undefined : false;
    // And once more, now that the methods are gone: a sign-in that passed the first end's mark (begun after it,
    // with a method not yet removed) cannot keep the session it was issued.
    const endedAfter = (taken && taken.removed > 0) || passRevoked ? await this.deps.sessions.revokeAllForUser(tenant.id, user.id, session.id) : 0;
    const outcome: ReportOutcome = {
      sessionsEnded: endedFirst + (taken?.ended ?? 0) + endedAfter,
      methodsRemoved: taken?.removed ?? 0,
      methodsLeft: await this.methodsLeft(tenant, user),
      passRevoked,
    };
    await this.deps.audit.append(tenant.id, {
      actor: `user:${user.id}`,
      action: 'signin.reported',
      targetUserId: user.id,
      details: { eventId, ...outcome },
    });
    return outcome;
  }

  /**
   * Takes the user's row first, as every method added from a session does
   * (guardLiveSession): a set-up racing this either commits before and is
   * removed here, or finds its session ended. The reporting session stays.
   */
  private takeBack(
    tenant: Tenant,
    user: User,
    keep: Session,
    window: Pick<TakeBackScope, 'since' | 'until' | 'alsoCredentialId'>,
  ): Promise<{ removed: number; ended: number }> {
    const now = this.deps.clock.now();
    return this.deps.db.transaction().execute(async (trx) => {
      await trx.updateTable('users').set({ updated_at: now }).where('tenant_id', '=', tenant.id).where('id', '=', user.id).execute();
      return endSessionsAndRemoveMethods(trx, tenant.id, user.id, now, { ...window, keepSessionId: keep.id });
    });
  }

  /** The user's active methods now, counted for the answer (the page says what to do when none is left). */
  private async methodsLeft(tenant: Tenant, user: User): Promise<number> {
    return (await this.deps.credentials.listForUser(tenant.id, user.id, 'active')).length;
  }
}
