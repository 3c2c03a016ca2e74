/** Loads @simplewebauthn/server on first use, so commands that never see a passkey do not pay for it. */
import type * as SimpleWebAuthn from '@simplewebauthn/server';

export type { AuthenticationResponseJSON, PublicKeyCredentialCreationOptionsJSON, RegistrationResponseJSON } from '@simplewebauthn/server';

// @simplewebauthn/server takes about a quarter of a second to load. It loads on
// the first ceremony (a server preloads it at start, see server/start.ts), so
// CLI commands that never run one do not wait for it.
let loading: Promise<typeof SimpleWebAuthn> | undefined;
export const loadSimpleWebAuthn = () => (loading ??= import('@simplewebauthn/server'));

export const generateRegistrationOptions: typeof SimpleWebAuthn.generateRegistrationOptions = async (options) =>
  (await loadSimpleWebAuthn()).generateRegistrationOptions(options);
export const verifyRegistrationResponse: typeof SimpleWebAuthn.verifyRegistrationResponse = async (options) =>
  (await loadSimpleWebAuthn()).verifyRegistrationResponse(options);
export const generateAuthenticationOptions: typeof SimpleWebAuthn.generateAuthenticationOptions = async (options) =>
  (await loadSimpleWebAuthn()).generateAuthenticationOptions(options);
export const verifyAuthenticationResponse: typeof SimpleWebAuthn.verifyAuthenticationResponse = async (options) =>
  (await loadSimpleWebAuthn()).verifyAuthenticationResponse(options);
