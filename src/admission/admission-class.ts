/**
 * What a request is for. When work has to wait or be refused, the class says
 * what goes first:
 *
 * 1. `finish-signin`: a sign-in already past its password (second factor,
 *    OpenID Connect and app-API continuations); `finish-registration`: a
 *    registration-scoped session setting up its first method (a new user, or one
 *    whose methods were reset, who cannot sign in until it is done);
 *    `admin-emergency`: an administrator issuing a Temporary Access Pass,
 *    resetting methods or ending sessions, so that locked-out people get back in
 *    during a sign-in surge;
 * 2. `start-signin`: the password (or TAP) step and the sign-in pages;
 * 3. `self-service`: everything else a signed-in user does;
 * 4. `admin`: administration and reporting, and unknown paths.
 *
 * `ops` (health, readiness, metrics, static assets) is never held back.
 */
export type AdmissionClass = 'ops' | SheddableClass;

export const SHEDDABLE_CLASSES = ['finish-signin', 'finish-registration', 'admin-emergency', 'start-signin', 'self-service', 'admin'] as const;
export type SheddableClass = (typeof SHEDDABLE_CLASSES)[number];

/** Work done outside any request (the command line, start-up): never refused, served last. */
export type WorkClass = SheddableClass | 'background';

/** Higher goes first. Classes of equal rank take turns by tenant. */
export const PRIORITY: Readonly<Record<WorkClass, number>> = Object.freeze({
  'finish-signin': 4,
  'finish-registration': 4,
  'admin-emergency': 4,
  'start-signin': 3,
  'self-service': 2,
  admin: 1,
  background: 0,
});
