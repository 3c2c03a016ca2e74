/** Whether a user's password, alone, may open a session for an account with no method (to register one, or where MFA is optional, to sign in). */
import type { UserWithSecret } from '../directory/users.ts';

/**
 * Why the password alone may not register a first method, or undefined if it
 * may. A password set before the account's methods were taken away for a
 * reason that says someone else may know it registers nothing: whoever else
 * knew it would register a method of theirs first.
 * - `password_predates_report`: a sign-in was reported as "this wasn't me";
 *   whoever made it knew this password.
 * - `password_predates_reset`: an administrator reset the methods, often
 *   because the account was in the wrong hands, or for a caller whose identity
 *   the password does not prove.
 * The user registers with a Temporary Access Pass, or with a password set
 * since (by themselves from a session, or by an administrator). A password
 * whose date is unknown counts as set before.
 */
export function whyPasswordCannotRegister(
  user: Pick<UserWithSecret, 'flaggedAt' | 'methodsResetAt' | 'passwordChangedAt'>,
): 'password_predates_report' | 'password_predates_reset' | undefined {
  const setAt = user.passwordChangedAt ?? 0;
  if (user.flaggedAt !== null && setAt <= user.flaggedAt) return 'password_predates_report';
  if (user.methodsResetAt !== null && setAt <= user.methodsResetAt) return 'password_predates_reset';
  return undefined;
}

/** What the person signing in is told, for each reason (after the right password only: it tells no one else anything). */
export const PASSWORD_CANNOT_REGISTER = {
  password_predates_report:
    'a sign-in to this account was reported as not yours, so this password no longer signs in on its own: change it from the session you reported from, or sign in with a Temporary Access Pass from your administrator',
  password_predates_reset:
    'your sign-in methods were reset, so this password can no longer set up a new one: sign in with the Temporary Access Pass your administrator gives you (or the new password they set)',
} as const;
