import type { Tenant } from '../directory/tenant.ts';
import type { User, Users } from '../directory/users.ts';
import type { PasswordHasher } from '../directory/password-hasher.ts';
import { validateNewPassword } from '../directory/password-rules.ts';
import type { Session, Sessions } from '../sessions/sessions.ts';
import { requireSessionMay } from '../sessions/session-scope.ts';
import { AppError } from '../errors/app-error.ts';
import type { AbuseLimits } from './abuse-limits.ts';
import type { RequestContext } from './signin-service.ts';

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
