import type { FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../errors/app-error.ts';
import type { Services } from '../server/services.ts';
import type { Session } from '../sessions/sessions.ts';
import type { User } from '../directory/users.ts';
import type { Tenant } from '../directory/tenants.ts';
import { requireSessionMay, type SessionAction } from '../sessions/session-scope.ts';

import { cookieNames } from './cookie-names.ts';

export interface Principal {
  session: Session;
  user: User;
  tenant: Tenant;
  /** The token this request came with, for ending exactly this session. */
  token: string;
}

/** The bearer token of a request, if it sent one. */
export function bearerToken(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (typeof header !== 'string') return undefined;
  return /^Bearer\s+(\S+)$/i.exec(header)?.[1];
}

/** The token a request authenticates with: its bearer token, or else the session cookie. */
export function presentedToken(services: Services, request: FastifyRequest): string | undefined {
  if (typeof request.headers.authorization === 'string') return bearerToken(request);
  return request.cookies[cookieNames(services.config.publicUrl).session];
}

/**
 * The signed-in user behind a request, or undefined. A session whose user is
 * gone or disabled counts as no session.
 */
export async function findPrincipal(services: Services, request: FastifyRequest): Promise<Principal | undefined> {
  const token = presentedToken(services, request);
  if (!token) return undefined;
  const session = await services.sessions.authenticate(token);
  if (!session) return undefined;
  const user = await services.users.get(session.tenantId, session.userId);
  if (!user || user.status !== 'active') return undefined;
  const tenant = await services.tenants.findById(session.tenantId);
  if (!tenant) return undefined;
  return { session, user, tenant, token };
}

/** For API routes: the principal whose session may do `action`, or a 401/403 problem. */
export async function requirePrincipal(services: Services, request: FastifyRequest, action: SessionAction): Promise<Principal> {
  const principal = await findPrincipal(services, request);
  if (!principal) throw new AppError('unauthenticated');
  requireSessionMay(principal.session.scope, action);
  return principal;
}

/** Who is calling an admin route, and for which tenant. */
export interface AdminCaller {
  tenant: Tenant;
  /** Recorded in the audit log: `admin-token:{id}` or `user:{id}`. */
  actor: string;
}

/**
 * For admin API routes: an admin token (`sfa_…`), or the session of a user the
 * tenant made an administrator, signed in with a second factor (and, to change
 * anything, within the last 10 minutes). The tenant is the token's or the
 * session's: another tenant's ids are simply not found.
 */
export async function requireAdmin(services: Services, request: FastifyRequest): Promise<AdminCaller> {
  const token = presentedToken(services, request);
  if (!token) throw new AppError('unauthenticated');
  if (token.startsWith('sfa_')) {
    const record = await services.adminTokens.authenticate(token);
    const tenant = record && (await services.tenants.findById(record.tenantId));
    if (!record || !tenant) throw new AppError('unauthenticated');
    return { tenant, actor: `admin-token:${record.id}` };
  }
  const principal = await findPrincipal(services, request);
  if (!principal) throw new AppError('unauthenticated');
  requireAdministrator(services, principal, request.method !== 'GET');
  return { tenant: principal.tenant, actor: `user:${principal.user.id}` };
}

/**
 * The one rule for a person administering a tenant: an administrator of it,
 * with a full session that proved a second factor in this sign-in (whatever
 * the tenant's own MFA policy; a remembered browser is not one), and, to
 * change anything, a sign-in within the last 10 minutes.
 */
export function requireAdministrator(services: Services, principal: Principal, change: boolean): void {
  if (!principal.user.isAdmin || principal.session.scope !== 'full') throw new AppError('forbidden', 'this account is not an administrator of its organisation');
  if (!principal.session.amr.includes('mfa')) throw new AppError('second-factor-required');
  if (change) services.sessions.requireRecent(principal.session);
}

export function setSessionCookie(reply: FastifyReply, services: Services, token: string, expiresAt: string): void {
  reply.setCookie(cookieNames(services.config.publicUrl).session, token, {
    httpOnly: true,
    sameSite: 'lax',
    secure: services.config.publicUrl.startsWith('https:'),
    path: '/',
    expires: new Date(expiresAt),
  });
}

export function clearSessionCookie(reply: FastifyReply, services: Services): void {
  reply.clearCookie(cookieNames(services.config.publicUrl).session, { path: '/', httpOnly: true, sameSite: 'lax', secure: services.config.publicUrl.startsWith('https:') });
}
