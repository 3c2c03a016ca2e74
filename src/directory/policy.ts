/** A tenant's method policy. Issue-by-issue it grows; unknown fields from older versions are dropped on read. */
export interface TenantPolicy {
  /** When true, every sign-in needs a second factor and the last method cannot be removed. */
  mfaRequired: boolean;
  /** Method types users of this tenant may register and use. */
  allowedMethods: string[];
  /** WebAuthn authenticator models (AAGUIDs) allowed to register; empty allows any. */
  webauthnAaguids: string[];
}

export const ALL_METHOD_TYPES = ['totp', 'webauthn', 'sms', 'voice', 'email', 'push', 'recovery-codes', 'tap'] as const;

export const DEFAULT_POLICY: Readonly<TenantPolicy> = Object.freeze({
  mfaRequired: true,
  allowedMethods: [...ALL_METHOD_TYPES],
  webauthnAaguids: [],
});

export function parsePolicy(json: string): TenantPolicy {
  let raw: Partial<TenantPolicy> = {};
  try {
    raw = JSON.parse(json) as Partial<TenantPolicy>;
  } catch {
    // A damaged policy falls back to the strict default, never to "no MFA".
  }
  return {
    mfaRequired: typeof raw.mfaRequired === 'boolean' ? raw.mfaRequired : DEFAULT_POLICY.mfaRequired,
    allowedMethods: Array.isArray(raw.allowedMethods) ? raw.allowedMethods.filter((m) => typeof m === 'string') : [...DEFAULT_POLICY.allowedMethods],
    webauthnAaguids: Array.isArray(raw.webauthnAaguids) ? raw.webauthnAaguids.filter((m) => typeof m === 'string') : [],
  };
}
