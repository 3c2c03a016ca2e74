/**
 * Every problem Steadfast answers with: a stable code (the last segment of the
 * problem `type` URI), its HTTP status and a human title. docs/errors.md is kept
 * in step with this list by a test.
 */
export const PROBLEM_BASE = 'https://steadfast.dev/problems/';

export const problemCatalog = {
  'invalid-request': { status: 400, title: 'The request is not valid' },
  'malformed-code': { status: 400, title: 'That is not a code of the right form' },
  'invalid-policy': { status: 400, title: 'The policy is not valid' },
  'invalid-config': { status: 400, title: 'The configuration is not valid; nothing was applied' },
  'destination-not-allowed': { status: 400, title: 'Codes cannot be sent to numbers in that country here; use another method' },
  'invalid-credentials': { status: 401, title: 'The username or password is incorrect' },
  'invalid-code': { status: 401, title: 'The code is incorrect or has already been used' },
  'code-already-used': { status: 401, title: 'This code was just used; wait for the next one' },
  unauthenticated: { status: 401, title: 'Sign-in is required' },
  forbidden: { status: 403, title: 'This action is not allowed' },
  'csrf-failed': { status: 403, title: 'The form has expired; reload the page and try again' },
  'cross-site-request': { status: 403, title: "This request came from another site; use Steadfast's own pages" },
  'registration-only': { status: 403, title: 'Register a sign-in method first' },
  'reauthentication-required': { status: 403, title: 'Sign in again to change your sign-in methods' },
  'second-factor-required': { status: 403, title: 'Sign in with a second factor to do this' },
  'account-disabled': { status: 403, title: 'This account is disabled; contact your administrator' },
  'password-cannot-register': {
    status: 403,
    title: 'This password no longer signs in on its own; sign in with a Temporary Access Pass from your administrator',
  },
  'not-found': { status: 404, title: 'Not found' },
  'flow-not-found': { status: 404, title: 'This sign-in has expired or is unknown; start again' },
  'method-not-allowed': { status: 405, title: 'Method not allowed' },
  conflict: { status: 409, title: 'The request conflicts with the current state' },
  'canary-in-progress': {
    status: 409,
    title: 'A change is on its canary: wait for it to be promoted or rolled back, or roll it back, before changing it again',
  },
  'invalid-state': { status: 409, title: 'This step does not fit where the sign-in is' },
  'method-unavailable': { status: 409, title: 'This sign-in method is unavailable right now' },
  'method-not-permitted': { status: 409, title: 'This method type is not allowed by your organisation' },
  'last-method': { status: 409, title: 'The last sign-in method cannot be removed while MFA is required' },
  'push-pending': { status: 409, title: 'A sign-in request is already waiting on your device; answer it or let it expire first' },
  'already-registered': { status: 409, title: 'This account has a sign-in method now; sign in with it to add another' },
  'uri-too-long': { status: 414, title: 'A part of the path is too long' },
  'payload-too-large': { status: 413, title: 'The request body is too large' },
  'unsupported-media-type': { status: 415, title: 'The request body must be JSON' },
  'too-many-requests': { status: 429, title: 'Too many attempts; wait and try again' },
  'code-recently-sent': { status: 429, title: 'A code was sent moments ago; wait a little before asking for another' },
  'send-limit': { status: 429, title: 'Too many codes were sent; wait before asking for another, or use another method' },
  'push-limit': { status: 429, title: 'Too many sign-in requests were sent to your device; wait, or use another method' },
  internal: { status: 500, title: 'Something went wrong on our side' },
  unavailable: { status: 503, title: 'The service is temporarily unavailable; try again shortly' },
  'changes-paused': { status: 503, title: 'Changes are paused while the database is unreachable; sign-in keeps working, try the change again later' },
  'no-usable-method': { status: 503, title: 'None of your sign-in methods can be used right now; ask your administrator for a Temporary Access Pass' },
} as const satisfies Record<string, { status: number; title: string }>;

export type ProblemCode = keyof typeof problemCatalog;
