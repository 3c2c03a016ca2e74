import type { Tenant } from './tenants.ts';
import type { User, Users } from './users.ts';
import type { PasswordHasher } from './password-hasher.ts';
import type { Session, Sessions } from '../sessions/sessions.ts';
import type { AbuseLimits } from '../signin/abuse-limits.ts';
import type { RequestContext } from '../signin/signin-service.ts';
import { AppError } from '../errors/app-error.ts';
import { normaliseUsername } from './username.ts';
import { requireSessionMay } from '../sessions/session-scope.ts';
import { isCommonPassword } from './common-passwords.ts';

// NIST 800-63B 3.1.1.2: at least 8 characters when the password is one factor
// of several, at least 64 allowed; no composition rules.
export const PASSWORD_MIN = 8;
export const PASSWORD_MAX = 1024;

export interface PasswordChangeDeps {
  users: Users;
  hasher: PasswordHasher;
  sessions: Sessions;
  limits: AbuseLimits;
}

/** Changing one's own password: the current one proves it is the user, every other session ends. */
export class PasswordChange {
  constructor(private readonly deps: PasswordChangeDeps) {}

  async change(tenant: Tenant, user: User, session: Session, current: string, next: string, ctx: RequestContext): Promise<number> {
    requireSessionMay(session.scope, 'change-password');
    validateNewPassword(user.username, next);
    // Only a signed-in session can try: its guesses are limited per session and source, not charged to the
    // account, so a stolen session cannot spend the owner's sign-in budget (nor can a spray block the owner here).
    const attempt = { factor: 'password-change' as const, account: `${tenant.id}|session:${session.id}`, ip: ctx.ip };
    // The current password is guessed against the same limits as at sign-in.
    await this.deps.limits.begin(attempt);
    const stored = await this.deps.users.findByUsername(tenant.id, user.username);
    const ok = stored?.passwordHash ? await this.deps.hasher.verify(stored.passwordHash, current, ctx) : await this.deps.hasher.verifyNothing(current, ctx);
    if (!ok) throw new AppError('invalid-credentials', 'the current password is not correct');
    await this.deps.limits.succeeded(attempt);
    await this.deps.users.setPasswordHash(tenant.id, user.id, await this.deps.hasher.hash(next));
    return this.deps.sessions.revokeAllForUser(tenant.id, user.id, session.id);
  }
}

export function validateNewPassword(username: string, password: string): void {
  if ([...password].length < PASSWORD_MIN || password.length > PASSWORD_MAX) {
    throw new AppError('invalid-request', `a password is ${PASSWORD_MIN} to ${PASSWORD_MAX} characters`);
  }
  if (normaliseUsername(password) === normaliseUsername(username)) throw new AppError('invalid-request', 'the password must not be the username');
  if (isCommonPassword(password)) throw new AppError('invalid-request', 'that password is one of the most common ones, which attackers try first; choose another (a few unrelated words work well)');
}
