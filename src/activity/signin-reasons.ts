import type { SigninReason } from './signin-event.ts';

/**
 * What each recorded sign-in reason (the typed list in `signin-event.ts`)
 * says to administrators, and whether a record with it completed a sign-in.
 * The console's log, its overview and its charts read from here; `satisfies`
 * makes a new reason without words a type error; a reason this release does
 * not know (from a newer node) reads as its own words.
 */
export const ADMIN_SIGNIN_REASONS = {
  ok: { words: 'signed in', completes: true },
  remembered_device: { words: 'signed in, second step skipped on a remembered browser', completes: true },
  registration_required: { words: 'signed in to add a first method', completes: true },
  factor_required: { words: 'second step asked for', completes: false },
  invalid_credentials: { words: 'invalid credentials (wrong username or password)', completes: false },
  invalid_code: { words: 'wrong code or key', completes: false },
  account_disabled: { words: 'account disabled', completes: false },
  no_usable_method: { words: 'no sign-in method could be used (channels down)', completes: false },
} as const satisfies Record<SigninReason, { words: string; completes: boolean }>;

/** The reasons a successful record with which is a completed sign-in (not a step on the way). */
export const COMPLETING_REASONS = (Object.keys(ADMIN_SIGNIN_REASONS) as SigninReason[]).filter((r) => ADMIN_SIGNIN_REASONS[r].completes);

export function signinReasonWords(reason: string): string {
  return (ADMIN_SIGNIN_REASONS as Record<string, { words: string }>)[reason]?.words ?? reason.replace(/_/g, ' ');
}
