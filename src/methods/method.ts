import type { Credential } from './credentials.ts';
import type { User } from '../directory/users.ts';
import type { Tenant } from '../directory/tenants.ts';

/** What a new enrolment returns to the user; shown once, never stored in this form. */
export interface Enrolment {
  credential: Credential;
  /** Fields for the API answer, such as the TOTP secret or the recovery codes. */
  reveal: Record<string, unknown>;
}

export interface EnrolInput {
  label?: string | undefined;
}

export interface VerifyInput {
  code?: string | undefined;
}

/**
 * One authentication method. A method knows nothing of HTTP or of the store
 * behind its dependencies, which it gets at construction. Registered once in
 * `registry.ts`.
 */
export interface Method {
  readonly type: string;
  /** Authentication method reference values (RFC 8176) that a success with this method adds. */
  readonly amr: readonly string[];
  /** Whether registering it needs a confirmation code before it becomes active. */
  readonly needsConfirmation: boolean;
  enrol(tenant: Tenant, user: User, input: EnrolInput): Promise<Enrolment>;
  /** Shows a pending credential's set-up details again (the QR code after a mistyped code). */
  reveal?(tenant: Tenant, user: User, credential: Credential): Promise<Record<string, unknown>>;
  /** Proves a pending credential works; the method activates it on success. */
  confirm?(credential: Credential, code: string): Promise<boolean>;
  /** Starts a sign-in challenge (sends a code, builds options); nothing for TOTP. */
  challenge(credential: Credential): Promise<Record<string, unknown>>;
  /** Checks the proof against one active credential, consuming it where single-use. */
  verify(credential: Credential, input: VerifyInput): Promise<boolean>;
}
