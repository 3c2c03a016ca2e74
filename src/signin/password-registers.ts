/** What a user's right password opens on its own: the one rule the sign-in pages and the app API share. */
import type { UserWithSecret } from '../directory/users.ts';
import type { MethodChoice } from './method-choices.ts';

/**
 * What the right password alone opens, given the user's second-factor choices now:
 * - `factor`: a method of theirs is asked for next (or a pass, when a pass is all they hold and they must use one);
 * - `registration`: they have no method yet and must register one, with a session that may do only that;
 * - `session`: MFA is optional and they have no method: signed in;
 * - `nothing`: no method, and the password predates a reset or a report (`why`): a pass, or a password set since.
 * A user with an active method never gets more than `factor`: a known password never stands in for it.
 */
export type PasswordAlone =
  { opens: 'factor' | 'registration' | 'session' } | { opens: 'nothing'; why: NonNullable<ReturnType<typeof whyPasswordCannotRegister>> };

export function whatPasswordAloneOpens(
  user: Pick<UserWithSecret, 'mustRegister' | 'flaggedAt' | 'methodsResetAt' | 'passwordChangedAt'>,
  choices: MethodChoice[],
  mfaRequired: boolean,
): PasswordAlone {
  if (choices.some((m) => m.type !== 'tap')) return { opens: 'factor' };
  const registers = choices.length === 0 && (mfaRequired || user.mustRegister);
  // (Whether or not a pass is held: where MFA is optional, the password alone is what the sign-in rests on.)
  const signsIn = !mfaRequired && !user.mustRegister;
  // Only a pass, and a second factor needed: the pass is it.
  if (!registers && !signsIn) return { opens: 'factor' };
  const why = whyPasswordCannotRegister(user);
  if (why) return { opens: 'nothing', why };
  return { opens: registers ? 'registration' : 'session' };
}

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
