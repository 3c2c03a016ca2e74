/** A tenant's sign-in policy. Unknown or damaged fields read back as the strict default. */
export interface TenantPolicy {
  /** When true, every sign-in needs a second factor and the last method cannot be removed. */
  mfaRequired: boolean;
  /** Method types users of this tenant may register and use. */
  allowedMethods: string[];
  /** WebAuthn authenticator models (AAGUIDs) allowed to register; empty allows any. */
  webauthnAaguids: string[];
  /** Temporary Access Pass lifetimes an administrator may choose, in minutes, and what is offered first. */
  tap: { minMinutes: number; maxMinutes: number; defaultMinutes: number; oneTimeDefault: boolean };
  /** Days a browser may skip the second factor after one; 0 turns remembering off. */
  rememberedDeviceDays: number;
  /** Consecutive failures before an account's guesses are held back, and for how long. */
  lockout: { accountFailures: number; blockMinutes: number };
  /**
   * When none of a user's methods can be used (every channel they use is down):
   * `closed` refuses the sign-in and tells the user to ask for a TAP;
   * `tap-only` goes on to the second factor and accepts only a TAP there.
   * Never open: no setting lets a password alone through.
   */
  failMode: 'closed' | 'tap-only';
  /**
   * How long records are kept, in days; a sweeper in every node removes older
   * ones in small batches. The audit log is cut behind a signed checkpoint, so
   * what is left still verifies.
   */
  retention: { signinEventDays: number; auditDays: number };
}
