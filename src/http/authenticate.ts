/** Who a request is: a session (full or registration-only), an admin token or an app key; admin needs a full session with a second factor. */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../errors/app-error.ts';
import type { Session, Sessions } from '../sessions/sessions.ts';
import type { User, Users } from '../directory/users.ts';
import type { Tenant, Tenants } from '../directory/tenants.ts';
import { tokenActor, type AdminTokens } from '../directory/admin-tokens.ts';
import { requireSessionMay, type SessionAction } from '../sessions/session-scope.ts';
import { cookieNames } from './cookie-names.ts';

export interface Principal {
  session: Session;
  user: User;
  tenant: Tenant;
  /** The token this request came with, for ending exactly this session. */
  token: string;
}

/** Who is calling an admin route, and for which tenant. */
export interface AdminCaller {
  tenant: Tenant;
  /** Recorded in the audit log: `admin-token:{id}` or `user:{id}`. */
  actor: string;
}

/** The bearer token of a request, if it sent one. */
export function bearerToken(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  // Stryker disable next-line ConditionalExpression: equivalent (Node keeps one Authorization header, a string or absent, and the pattern does not match "undefined")
  if (typeof header !== 'string') return undefined;
  return /^Bearer\s+(\S+)$/i.exec(header)?.[1];
}

export interface RequestAuthDeps {
  sessions: Pick<Sessions, 'authenticate' | 'requireRecent'>;
  users: Pick<Users, 'get'>;
  tenants: Pick<Tenants, 'findById'>;
  adminTokens: Pick<AdminTokens, 'authenticate'>;
  publicUrl: string;
}

/**
 * Who is behind a request: the session (bearer token or cookie), the
 * administrator (admin token or session), and the session cookie itself.
 * Built once in the composition root; route modules get it instead of the
 * stores it reads.
 */
export class RequestAuth {
  private readonly cookie: string;
  private readonly https: boolean;

  constructor(private readonly deps: RequestAuthDeps) {
    this.cookie = cookieNames(deps.publicUrl).session;
    this.https = deps.publicUrl.startsWith('https:');
  }

  /** The token a request authenticates with: its bearer token, or else the session cookie. */
  presentedToken(request: FastifyRequest): string | undefined {
    if (typeof request.headers.authorization === 'string') return bearerToken(request);
    return request.cookies[this.cookie];
  }

  /** The signed-in user behind a request, or undefined. A session whose user is gone or disabled counts as no session. */
  async findPrincipal(request: FastifyRequest): Promise<Principal | undefined> {
    const token = this.presentedToken(request);
    if (!token) return undefined;
    const session = await this.deps.sessions.authenticate(token);
    if (!session) return undefined;
    const user = await this.deps.users.get(session.tenantId, session.userId);
    if (!user || user.status !== 'active') return undefined;
    const tenant = await this.deps.tenants.findById(session.tenantId);
    if (!tenant) return undefined;
    return { session, user, tenant, token };
  }

  /** For API routes: the principal whose session may do `action`, or a 401/403 problem. */
  async requirePrincipal(request: FastifyRequest, action: SessionAction): Promise<Principal> {
    const principal = await this.findPrincipal(request);
    if (!principal) throw new AppError('unauthenticated');
    requireSessionMay(principal.session.scope, action);
    return principal;
  }

  /**
   * For admin API routes: an admin token (`sfa_…`), or the session of a user
   * the tenant made an administrator (see `requireAdministrator`). The tenant is
   * the token's or the session's: another tenant's ids are simply not found.
   */
  async requireAdmin(request: FastifyRequest): Promise<AdminCaller> {
    const token = this.presentedToken(request);
    if (!token) throw new AppError('unauthenticated');
    if (token.startsWith('sfa_')) {
      const record = await this.deps.adminTokens.authenticate(token);
      const tenant = record && (await this.deps.tenants.findById(record.tenantId));
      if (!record || !tenant) throw new AppError('unauthenticated');
      return { tenant, actor: tokenActor(record.id) };
    }
    const principal = await this.findPrincipal(request);
    if (!principal) throw new AppError('unauthenticated');
    this.requireAdministrator(principal, request.method !== 'GET');
    return { tenant: principal.tenant, actor: `user:${principal.user.id}` };
  }

  /**
   * The one rule for a person administering a tenant: an administrator of it,
   * with a full session that proved a second factor in this sign-in (whatever
   * the tenant's own MFA policy; a remembered browser is not one), and, to
   * change anything, a sign-in within the last 10 minutes.
   */
  requireAdministrator(principal: Principal, change: boolean): void {
    if (!principal.user.isAdmin || principal.session.scope !== 'full')
      throw new AppError('forbidden', 'this account is not an administrator of its organisation');
    if (!principal.session.amr.includes('mfa')) throw new AppError('second-factor-required');
    if (change) this.deps.sessions.requireRecent(principal.session);
  }

  setSessionCookie(reply: FastifyReply, token: string, expiresAt: string): void {
    reply.setCookie(this.cookie, token, { httpOnly: true, sameSite: 'lax', secure: this.https, path: '/', expires: new Date(expiresAt) });
  }

  clearSessionCookie(reply: FastifyReply): void {
    reply.clearCookie(this.cookie, { path: '/', httpOnly: true, sameSite: 'lax', secure: this.https });
  }
}
