import { AppError } from '../errors/app-error.ts';
import type { SessionScope } from './sessions.ts';
import { describeMethod } from '../methods/registry.ts';

/** Everything a signed-in session can ask for, in the words the scope rule uses. */
export type SessionAction =
  | 'view-account'
  | 'list-methods'
  | 'add-method'
  | 'confirm-method'
  | 'resend-confirmation'
  | 'sign-out'
  | 'change-method'
  | 'remove-method'
  | 'view-signins'
  | 'report-signin'
  | 'change-password'
  | 'administer'
  | 'sign-in-to-app';

/**
 * The one rule for a registration session (a user who must add a first way
 * to sign in, proved only by a password or a pass): it may look at its own
 * account, add and confirm a method, and sign out. Nothing else: it cannot
 * rename, remove or reorder methods, read or report sign-ins, change the
 * password, administer, or sign in to an app.
 */
const REGISTRATION_MAY: ReadonlySet<SessionAction> = new Set([
  'view-account',
  'list-methods',
  'add-method',
  'confirm-method',
  'resend-confirmation',
  'sign-out',
]);

export function sessionMay(scope: SessionScope, action: SessionAction): boolean {
  return scope === 'full' || REGISTRATION_MAY.has(action);
}

/** Throws `registration-only` when a session of this scope may not do this. */
export function requireSessionMay(scope: SessionScope, action: SessionAction): void {
  if (!sessionMay(scope, action)) throw new AppError('registration-only');
}

/** Throws `registration-only` when a session of this scope may not add a method of this type. */
export function requireMayAdd(scope: SessionScope, type: string): void {
  requireSessionMay(scope, 'add-method');
  // Only a method proved at set-up (a code from the app or the phone, a WebAuthn ceremony): handing out
  // recovery codes proves nothing, so a password plus a code the same session just printed is no second factor.
  if (scope === 'register' && describeMethod(type)?.provesPossessionAtSetup !== true) {
    throw new AppError(
      'registration-only',
      'add a method that proves itself first (a passkey, a security key, an authenticator app, a phone or an email address); recovery codes come after',
    );
  }
}
