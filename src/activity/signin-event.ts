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
