/**
 * The reasons a sign-in record gives (stable machine words, stored), in words
 * for administrators and for the person who signed in ('' for the plain "it
 * worked"), and whether a record with it completed a sign-in. One table:
 * recording takes only these words, and the console's log, its overview, its
 * charts and the user's own history read from here; a reason this release does
 * not know (from a newer node) reads as its own words.
 */
export const SIGNIN_REASONS = {
  ok: { words: 'signed in', forUser: '', completes: true },
  remembered_device: { words: 'signed in, second step skipped on a remembered browser', forUser: 'remembered browser', completes: true },
  registration_required: { words: 'signed in to add a first method', forUser: 'asked to add a method', completes: true },
  factor_required: { words: 'second step asked for', forUser: 'second step asked for', completes: false },
  invalid_credentials: { words: 'invalid credentials (wrong username or password)', forUser: 'wrong username or password', completes: false },
  invalid_code: { words: 'wrong code or key', forUser: 'wrong code or key', completes: false },
  account_disabled: { words: 'account disabled', forUser: 'account disabled', completes: false },
  rate_limited: { words: 'too many attempts', forUser: 'too many attempts', completes: false },
  no_usable_method: { words: 'no sign-in method could be used (channels down)', forUser: 'no sign-in method could be used', completes: false },
  push_requested: { words: 'approval requested on a paired phone', forUser: 'approval requested on your phone', completes: false },
  push_approved: { words: 'approved on a paired phone', forUser: 'approved on your phone', completes: false },
  push_denied: { words: 'denied on a paired phone', forUser: 'denied on your phone', completes: false },
  push_reported: { words: 'reported as not theirs from a paired phone', forUser: 'reported as not you', completes: false },
  push_wrong_number: { words: 'wrong number typed on the phone', forUser: 'wrong number typed on your phone', completes: false },
  sessions_ended: {
    words: 'ended as it finished: the user’s sessions were ended at that moment (a reset, or “this wasn’t me”)',
    forUser: 'ended at once: your sessions were being signed out',
    completes: false,
  },
  password_predates_report: {
    words: 'no method left since a sign-in was reported, and the password predates the report: it registers none until changed',
    forUser: 'no method left since your report: change your password, or ask for a Temporary Access Pass',
    completes: false,
  },
  password_predates_reset: {
    words: 'methods reset by an administrator, and the password predates the reset: it registers none (a pass, or a password set since, does)',
    forUser: 'your methods were reset: sign in with a Temporary Access Pass from your administrator',
    completes: false,
  },
  push_bad_signature: { words: 'an approval with a bad device signature', forUser: 'an approval that was not from your phone', completes: false },
} as const satisfies Record<string, { words: string; forUser: string; completes: boolean }>;

export type SigninReason = keyof typeof SIGNIN_REASONS;

/** The reasons a successful record with which is a completed sign-in (not a step on the way). */
export const COMPLETING_REASONS = (Object.keys(SIGNIN_REASONS) as SigninReason[]).filter((r) => SIGNIN_REASONS[r].completes);

export function signinReasonWords(reason: string): string {
  return (SIGNIN_REASONS as Record<string, { words: string }>)[reason]?.words ?? reason.replace(/_/g, ' ');
}

/** What a stored reason means to the person who signed in: '' for the plain "it worked". */
export function signinReasonForUser(reason: string): string {
  return (SIGNIN_REASONS as Record<string, { forUser: string }>)[reason]?.forUser ?? reason.replace(/_/g, ' ');
}
