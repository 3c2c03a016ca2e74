import type { Tenant } from '../directory/tenant.ts';
import type { User, Users, WriteGuard } from '../directory/users.ts';
import { guardLiveSession, type Credentials } from '../methods/credentials.ts';
import type { PasswordHasher } from '../directory/password-hasher.ts';
import { validateNewPassword } from '../directory/password-rules.ts';
import type { Session, Sessions } from '../sessions/sessions.ts';
import { requireSessionMay } from '../sessions/session-scope.ts';
import { AppError } from '../errors/app-error.ts';
import type { AbuseLimits } from './abuse-limits.ts';
import type { RequestContext } from './signin-service.ts';
import type { AuditLog } from '../activity/audit-log.ts';

export interface PasswordChangeDeps {
  users: Users;
  credentials: Pick<Credentials, 'listForUser'>;
  hasher: PasswordHasher;
  sessions: Sessions;
  limits: AbuseLimits;
  audit: Pick<AuditLog, 'append'>;
}

/**
 * Changing one's own password: the current one proves it is the user, every
 * other session ends. And setting a first one: a new hire created without a
 * password signs in once with a Temporary Access Pass (or a passkey) and must
 * leave with a way back in.
 */
export class PasswordChange {
  constructor(private readonly deps: PasswordChangeDeps) {}

  /** Whether the account has a password (the pages offer "set" or "change"). */
  async hasPassword(tenant: Tenant, user: User): Promise<boolean> {
    return Boolean((await this.deps.users.findByUsername(tenant.id, user.username))?.passwordHash);
  }

  /**
   * Sets the first password of an account that has none. With no current
   * password to prove, the session is the proof, so it must be a full one,
   * recent (signed in within RECENT_SIGNIN_MS), with a second factor (a pass or
   * a passkey) proved in it: a session stolen earlier, or a registration
   * session, cannot give the account a password the thief knows. Limited per
   * session and source like a change, and written to the audit log. The write
   * is conditional (no password yet), so it never overwrites one.
   */
  async setFirst(tenant: Tenant, user: User, session: Session, next: string, ctx: RequestContext): Promise<number> {
    // Stryker disable next-line StringLiteral: equivalent (a full session may do anything, and a registration session may no more do "" than change a password)
    requireSessionMay(session.scope, 'change-password');
    this.deps.sessions.requireRecent(session);
    if (!session.amr.includes('mfa')) throw new AppError('second-factor-required', 'sign in with your pass or a passkey to set a first password');
    if (await this.hasPassword(tenant, user)) throw new AppError('conflict', 'this account has a password; give the current one to change it');
    validateNewPassword(user.username, next);
    // Nothing to guess here, but every try costs an Argon2id hash: limited like a change.
    const attempt = { factor: 'password-change' as const, account: `${tenant.id}|session:${session.id}`, ip: ctx.ip };
    await this.deps.limits.begin(attempt);
    const hash = await this.deps.hasher.hash(next);
    if (!(await this.deps.users.setFirstPasswordHash(tenant.id, user.id, hash, this.whileLive(session)))) {
      throw new AppError('conflict', 'this account has a password; give the current one to change it');
    }
    await this.deps.limits.succeeded(attempt);
    await this.deps.audit.append(tenant.id, {
      actor: `user:${user.id}`,
      action: 'password.set-first',
      targetUserId: user.id,
      details: { sessionAmr: session.amr },
    });
    return this.deps.sessions.revokeAllForUser(tenant.id, user.id, session.id);
  }

  /**
   * The password is written only while the session that asked is live, checked in the write's transaction
   * after the user's row is taken: ending the sessions (an administrator's reset, a revoked token's take-back)
   * takes the row too, so a change in flight either lands first, and is seen and undone, or is refused. The
   * checks at the start and the two hashes leave time between for the session to end.
   */
  private whileLive(session: Session): WriteGuard {
    return (trx, now) => guardLiveSession(trx, { tenant_id: session.tenantId, user_id: session.userId }, session.id, now);
  }

  async change(tenant: Tenant, user: User, session: Session, current: string, next: string, ctx: RequestContext): Promise<number> {
    // Stryker disable next-line StringLiteral: equivalent, as in setFirst
    requireSessionMay(session.scope, 'change-password');
    // As every change to the way in: a session that proved its user lately. A session stolen earlier, with the
    // password, would otherwise change it and shut the owner out, keeping the only session left.
    this.deps.sessions.requireRecent(session, 'sign in again to change your password (a sign-in within the last 10 minutes)');
    // And, for an account with a second factor, one proved in this session, as changing a method needs: a session
    // of the password alone (a remembered browser, its cookie stolen) changed it and shut the owner out, their
    // authenticator no help past a password they no longer knew (twenty-fifth round).
    if (!session.amr.includes('mfa') && (await this.deps.credentials.listForUser(tenant.id, user.id, 'active')).length > 0) {
      throw new AppError('second-factor-required', 'sign in with your second step to change your password');
    }
    // The same password again is no change: after a report or a reset it would count as one set since, and the
    // one someone else knows would sign in again.
    if (next === current) throw new AppError('invalid-request', 'choose a new password, not the one you have now');
    validateNewPassword(user.username, next);
    // Only a signed-in session can try. Its guesses at the current password are limited per source and per
    // session (a day's budget of its own, wherever they come from), never charged to the sign-in budget nor
    // to the account: a stolen session can neither spend the owner's sign-ins nor use up the owner's own
    // password change (the owner, having ended the thief's session, changes the password at once).
    const attempt = { factor: 'password-change' as const, account: `${tenant.id}|session:${session.id}`, owner: passwordOwner(tenant.id, user.id), ip: ctx.ip };
    await this.deps.limits.begin(attempt);
    const stored = await this.deps.users.findByUsername(tenant.id, user.username);
    const ok = stored?.passwordHash ? await this.deps.hasher.verify(stored.passwordHash, current, ctx) : await this.deps.hasher.verifyNothing(current, ctx);
    if (!ok) throw new AppError('invalid-credentials', 'the current password is not correct');
    await this.deps.limits.succeeded(attempt);
    await this.deps.users.setPasswordHash(tenant.id, user.id, await this.deps.hasher.hash(next), this.whileLive(session));
    const sessionsEnded = await this.deps.sessions.revokeAllForUser(tenant.id, user.id, session.id);
    await this.deps.audit.append(tenant.id, {
      actor: `user:${user.id}`,
      action: 'password.changed',
      targetUserId: user.id,
      details: { sessionsEnded, sessionAmr: session.amr },
    });
    return sessionsEnded;
  }
}

/** Whose password a password change guesses at, for the limit of all of the user's sessions together. */
export const passwordOwner = (tenantId: string, userId: string) => `${tenantId}|user:${userId}`;
