/** What a new password must be (NIST 800-63B): long enough, not common, not the username; every problem named. */
import { AppError } from '../errors/app-error.ts';
import { normaliseUsername } from './username.ts';
import { isCommonPassword } from './common-passwords.ts';

// NIST 800-63B 3.1.1.2: at least 8 characters when the password is one factor
// of several, at least 64 allowed; no composition rules, but not one of the
// most common passwords.
export const PASSWORD_MIN = 8;
export const PASSWORD_MAX = 1024;

export function validateNewPassword(username: string, password: string): void {
  if ([...password].length < PASSWORD_MIN || password.length > PASSWORD_MAX) {
    throw new AppError('invalid-request', `a password is ${PASSWORD_MIN} to ${PASSWORD_MAX} characters`);
  }
  if (normaliseUsername(password) === normaliseUsername(username)) throw new AppError('invalid-request', 'the password must not be the username');
  if (isCommonPassword(password))
    throw new AppError(
      'invalid-request',
      'that password is one of the most common ones, which attackers try first; choose another (a few unrelated words work well)',
    );
}
