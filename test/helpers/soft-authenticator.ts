// The software authenticator lives with `steadfast loadtest`, which drives passkey sign-ins with it.
export { SoftAuthenticator } from '../../src/loadtest/soft-authenticator.ts';
