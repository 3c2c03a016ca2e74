/**
 * What a method says about itself, so that every page, the policy, the
 * sign-in order and the API derive from one place. Each method's folder
 * exports its descriptor beside its implementation; `registry.ts` lists them.
 */
export interface MethodDescriptor<Type extends string = string> {
  readonly type: Type;
  /** What people call it in headings and lists: "Authenticator app". */
  readonly name: string;
  /** In a sentence, lower case: "Second step: authenticator app". */
  readonly noun: string;
  /** Offered before weaker ones (after the user's default): phishing-resistant first, recovery codes last. */
  readonly strength: number;
  /** How the sign-in page asks for it. */
  readonly signin: {
    readonly prompt: string;
    /**
     * `numeric` and `text` take a typed code; `webauthn` runs a browser ceremony;
     * `approval` waits for the person to approve on another device (a number to match is shown).
     */
    readonly input: 'numeric' | 'text' | 'webauthn' | 'approval';
    /** The label of the code field: "Code from the app". */
    readonly codeLabel?: string;
    /** Longest code a person types, for the field's `maxlength`. */
    readonly maxLength?: number;
    /**
     * Any of the user's credentials of this type will do, so the challenge names
     * them all and the page offers the type once (passkeys, paired devices).
     */
    readonly anyCredential?: boolean;
    /** What the page says when a try failed: "That key was not accepted."; "That code didn't work." when absent. */
    readonly retry?: string;
  };
  /** RFC 8176 `amr` values a success can prove. */
  readonly amr: readonly string[];
  /** Its codes travel over a delivery channel that can be down (sms, voice, email). */
  readonly outOfBand: boolean;
  /** Resists phishing (bound to the origin): counted for the console's coverage figures. */
  readonly phishingResistant: boolean;
  /**
   * How a user adds one on the security-info page: the form that page shows,
   * or `null` when users cannot add it themselves (a pass is the administrator's).
   */
  readonly enrolment: { readonly form: 'webauthn' | 'totp' | 'phone' | 'email' | 'generate' | 'pair' } | null;
  /**
   * Proved at set-up (a code from the app or the phone, a WebAuthn ceremony), so
   * a registration session may add it as the user's first method. Recovery codes
   * are not: handing them out proves nothing.
   */
  readonly provesPossessionAtSetup: boolean;
}

/**
 * Whether starting a challenge sends something to the person (a code, a
 * request to approve): such a challenge is not started again just because a
 * try failed, or every mistyped code would send another.
 */
export const challengeSends = (d: Pick<MethodDescriptor, 'outOfBand' | 'signin'>): boolean => d.outOfBand || d.signin.input === 'approval';
