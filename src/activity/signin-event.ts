/**
 * Every reason a sign-in event records (a stable machine word, stored), with
 * what it means to the person who signed in; '' for the plain "it worked".
 * Recording takes only these words, and pages read their meaning from here, so
 * the two cannot disagree.
 */
export const SIGNIN_REASONS = {
  ok: '',
  factor_required: 'second step asked for',
  registration_required: 'asked to add a method',
  remembered_device: 'remembered browser',
  invalid_credentials: 'wrong username or password',
  invalid_code: 'wrong code or key',
  account_disabled: 'account disabled',
  no_usable_method: 'no sign-in method could be used',
} as const;
export type SigninReason = keyof typeof SIGNIN_REASONS;

/** What a stored reason means in words; an unknown one (a newer release's) as its own words. */
export function reasonText(reason: string): string {
  return Object.hasOwn(SIGNIN_REASONS, reason) ? SIGNIN_REASONS[reason as SigninReason] : reason.replace(/_/g, ' ');
}

/** One sign-in attempt as it is shown: to its user, and (with whose it was) to administrators. */
export interface SigninEvent {
  id: string;
  at: number;
  ip: string | null;
  userAgent: string | null;
  app: string | null;
  step: string;
  method: string | null;
  outcome: 'success' | 'failure';
  reason: string;
  reportedAt: number | null;
}

export interface AdminSigninEvent extends SigninEvent {
  userId: string | null;
  username: string;
}
