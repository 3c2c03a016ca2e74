import type { Tenant } from '../directory/tenant.ts';
import type { User, Users } from '../directory/users.ts';
import type { Session, Sessions } from '../sessions/sessions.ts';
import { AppError } from '../errors/app-error.ts';
import type { SigninEvents } from './signin-events.ts';
import type { AuditLog } from './audit-log.ts';
import { requireSessionMay } from '../sessions/session-scope.ts';

/**
 * "This wasn't me": the sign-in is marked, every other session of the user
 * ends, the account is flagged for the administrator, and the audit log keeps it.
 */
export class SigninReports {
  constructor(private readonly deps: { events: SigninEvents; sessions: Sessions; users: Users; audit: AuditLog }) {}

  async report(tenant: Tenant, user: User, session: Session, eventId: string): Promise<number> {
    // Ending every other session is a strong act: only a session that may, and that proved its user lately.
    requireSessionMay(session.scope, 'report-signin');
    this.deps.sessions.requireRecent(session);
    if (!(await this.deps.events.markReported(tenant.id, user.id, eventId))) throw new AppError('not-found', 'no such sign-in');
    const sessionsEnded = await this.deps.sessions.revokeAllForUser(tenant.id, user.id, session.id);
    await this.deps.users.flag(tenant.id, user.id);
    await this.deps.audit.append(tenant.id, {
      actor: `user:${user.id}`,
      action: 'signin.reported',
      targetUserId: user.id,
      details: { eventId, sessionsEnded },
    });
    return sessionsEnded;
  }
}
