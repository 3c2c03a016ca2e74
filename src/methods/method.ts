/** The interface every authentication method implements: enrol, confirm, challenge and verify within a flow. */
import type { Activation, Credential } from './credentials.ts';

export type { Activation } from './credentials.ts';
import type { User } from '../directory/users.ts';
import type { Tenant } from '../directory/tenant.ts';
import type { SentCode } from './out-of-band/sent-code.ts';

/** What a new enrolment returns to the user; shown once, never stored in this form. */
export interface Enrolment {
  credential: Credential;
  /** Fields for the API answer, such as the TOTP secret or the recovery codes. */
  reveal: Record<string, unknown>;
}

export interface EnrolInput {
  label?: string | undefined;
  /** WebAuthn: the browser's registration response. */
  attestation?: unknown;
  /** SMS and voice: a phone number; email: an address. */
  to?: string | undefined;
  /** Who asks (the session and its address), for the send limits of methods that send codes. */
  requester?: { origin: string; ip: string } | undefined;
  /** Activate only as the user's first method (a registration session adding it); see `Activation`. */
  activation?: Activation | undefined;
  /** The session adding it (see `NewCredential.bySession`). */
  bySession?: string | undefined;
}

/** What a started challenge gives the person (and the API answer): where a code went, WebAuthn options. */
export interface ChallengeResult {
  delivery?: SentCode;
  /** PublicKeyCredentialRequestOptionsJSON. */
  webauthn?: object;
  /** A request waiting for approval on another device: the number the person types there. */
  push?: { number: string; expiresAt: string };
}

/** Where a challenge that is answered elsewhere (a push approval) stands; `none` when none was started. */
export type ApprovalState = 'none' | 'pending' | 'approved' | 'denied' | 'expired';

/** The sign-in flow a challenge or verification belongs to. */
export interface FlowContext {
  flowId: string;
  tenant: Tenant;
  /** Passkey sign-in: the authenticator must verify the user (PIN or biometric). */
  requireUserVerification?: boolean;
  /** The address the sign-in comes from, for the send limits of methods that send codes. */
  ip?: string | undefined;
  /** Who is signing in, and from which browser and app: what an approval request shows and the sign-in log records. */
  username?: string | undefined;
  userAgent?: string | undefined;
  app?: string | undefined;
}

export interface VerifyInput {
  code?: string | undefined;
  /** WebAuthn: the browser's authentication response. */
  assertion?: unknown;
}

export interface Verified {
  credential: Credential;
  /** Authentication method references (RFC 8176) this success proves. */
  amr: string[];
}

/**
 * One authentication method. A method knows nothing of HTTP or of the store
 * behind its dependencies, which it gets at construction. Registered once in
 * `registry.ts`.
 */
export interface Method {
  readonly type: string;
  /** Whether enrolling already proves the user holds the factor (a WebAuthn ceremony does; handing out recovery codes does not). */
  readonly enrolmentProvesPossession: boolean;
  /** Whether a challenge could be started now (a delivery channel with a working provider); always, when absent. */
  available?(): boolean;
  enrol(tenant: Tenant, user: User, input: EnrolInput): Promise<Enrolment>;
  /** Shows a pending credential's set-up details again (the QR code after a mistyped code). */
  reveal?(tenant: Tenant, user: User, credential: Credential): Promise<Record<string, unknown>>;
  /** Proves a pending credential works; the method activates it on success (as `activation` allows). */
  confirm?(credential: Credential, code: string, activation?: Activation): Promise<boolean>;
  /**
   * Starts a sign-in challenge over the user's credentials of this type (sends a
   * code, builds WebAuthn options); nothing for TOTP.
   */
  challenge(candidates: Credential[], flow: FlowContext): Promise<ChallengeResult>;
  /** Checks the proof against the candidates, consuming it where single-use; the credential that matched, if any. */
  verify(candidates: Credential[], input: VerifyInput, flow: FlowContext): Promise<Verified | undefined>;
  /** Whether a typed code has the method's form at all (six digits); one that has not is no guess and costs no attempt. */
  wellFormed?(code: string): boolean;
  /**
   * Whether a code `verify` refused is exactly the one this user's credential
   * was last used with, still on the screen of their app (the code that just
   * confirmed it), and in how many seconds the next code shows. The sign-in
   * charges no attempt for it: see SigninService.verifyInFlow for why that is safe.
   */
  justUsed?(candidates: Credential[], code: string): Promise<{ nextInSeconds: number } | undefined>;
  /** A challenge answered elsewhere (approved on a device): where the flow's stands. Absent for methods the person answers here. */
  status?(flow: FlowContext): Promise<ApprovalState>;
}
