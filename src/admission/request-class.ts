import type { IncomingHttpHeaders } from 'node:http';
import { isRegistrationToken } from '../sessions/registration-token.ts';
import type { AdmissionClass } from './admission-class.ts';

const BEARER = /^Bearer\s+(\S+)$/i;
const SESSION_COOKIE = /(?:^|;\s*)sf_session=([^;\s]*)/;

/**
 * The class a request is admitted under, from what is known before its body
 * is read: the route's configured class (unknown paths count as `admin`),
 * raised to `finish-registration` for self-service calls made with a
 * registration-scoped session (a new user setting up the method they need to
 * sign in at all). The session is recognised by its token's mark, without a
 * lookup: refusing must stay cheap, and the mark grants no access.
 */
export function requestClass(routeClass: AdmissionClass | undefined, headers: IncomingHttpHeaders): AdmissionClass {
  const cls = routeClass ?? 'admin';
  if (cls === 'self-service' && isRegistrationToken(presentedSessionToken(headers))) return 'finish-registration';
  return cls;
}

/** The bearer token, else the session cookie, read from the raw headers (the cookie parser has not run yet). */
function presentedSessionToken(headers: IncomingHttpHeaders): string | undefined {
  const authorization = headers.authorization;
  if (typeof authorization === 'string') return BEARER.exec(authorization)?.[1];
  const cookie = headers.cookie;
  return typeof cookie === 'string' ? SESSION_COOKIE.exec(cookie)?.[1] : undefined;
}
