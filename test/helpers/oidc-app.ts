import { createHash, randomBytes } from 'node:crypto';
import type { PageClient } from './page-client.ts';
import { api } from './test-server.ts';

/** A PKCE pair: the verifier the app keeps and the S256 challenge it sends with the request. */
export function pkce(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

/** Where a browser sent through the authorization code flow ended: the app's callback, Steadfast's sign-in, or a page of the provider's. */
export type AuthorizeEnd =
  | { ended: 'callback'; url: URL; verifier: string }
  | { ended: 'signin'; url: URL; verifier: string }
  | { ended: 'page'; status: number; text: string; verifier: string };

export interface OidcAppRegistration {
  /** The test server's base URL. */
  base: string;
  /** The slug of the tenant the administrator belongs to. */
  tenant: string;
  /** An administrator's session token (`adminPersonSession`): apps are a person's to make, not an admin API token's. */
  adminSession: string;
  name: string;
  callback: string;
  /** A public client (a single-page app): no secret, PKCE alone. */
  public?: boolean;
}

/**
 * A first-party OpenID Connect app registered with a tenant of a test server,
 * doing what a relying party does: send a browser through the authorization
 * code flow with PKCE, and redeem the code or a refresh token.
 */
export class OidcApp {
  private constructor(
    private readonly base: string,
    private readonly tenant: string,
    readonly clientId: string,
    private readonly clientSecret: string | undefined,
    readonly callback: string,
  ) {}

  static async register(r: OidcAppRegistration): Promise<OidcApp> {
    const body = { name: r.name, kind: 'oidc', redirectUris: [r.callback], firstParty: true, ...(r.public ? { public: true } : {}) };
    const res = await api(r.base, 'POST', '/api/v1/admin/apps', body, r.adminSession);
    if (res.status !== 201) throw new Error(`registering the app ${r.name} answered ${res.status}`);
    return new OidcApp(r.base, r.tenant, res.body.clientId, res.body.clientSecret, r.callback);
  }

  /** The same app talking to another node of the cluster. */
  at(base: string): OidcApp {
    return new OidcApp(base, this.tenant, this.clientId, this.clientSecret, this.callback);
  }

  /** The path that starts the flow (offline access, consent asked, state `st`; `params` change or add to that) and its PKCE verifier. */
  authorizationRequest(params: Record<string, string> = {}): { path: string; verifier: string } {
    const { verifier, challenge } = pkce();
    const query = new URLSearchParams({
      client_id: this.clientId,
      response_type: 'code',
      scope: 'openid offline_access',
      prompt: 'consent',
      redirect_uri: this.callback,
      code_challenge: challenge,
      code_challenge_method: 'S256',
      state: 'st',
      ...params,
    });
    return { path: `/t/${this.tenant}/oidc/auth?${query}`, verifier };
  }

  /**
   * The authorization code flow as the app drives a browser through it, following redirects to where it ends.
   * `beforeHop` is told of each location before the browser goes there (a test may change the browser meanwhile).
   */
  async authorize(browser: PageClient, params: Record<string, string> = {}, beforeHop?: (location: string) => Promise<void>): Promise<AuthorizeEnd> {
    const { path, verifier } = this.authorizationRequest(params);
    let location = path;
    for (let hop = 0; hop < 8; hop++) {
      await beforeHop?.(location);
      const res = await browser.get(location);
      if (res.status !== 303 && res.status !== 302) return { ended: 'page', status: res.status, text: res.text, verifier };
      const next = new URL(res.location!, this.base);
      if (next.href.startsWith(this.callback)) return { ended: 'callback', url: next, verifier };
      if (next.pathname.endsWith('/signin')) return { ended: 'signin', url: next, verifier };
      location = next.pathname + next.search;
    }
    throw new Error('too many redirects');
  }

  /** The flow up to the code at the callback; throws when it ends anywhere else. */
  async code(browser: PageClient, params: Record<string, string> = {}): Promise<{ code: string; verifier: string }> {
    const flow = await this.authorize(browser, params);
    const code = flow.ended === 'callback' ? flow.url.searchParams.get('code') : null;
    if (!code) throw new Error(`the authorization code flow ended without a code: ${flow.ended === 'page' ? flow.status : flow.url.href}`);
    return { code, verifier: flow.verifier };
  }

  /** A request to the token endpoint, with the client's credentials when it has a secret. */
  async token(body: Record<string, string>): Promise<{ status: number; body: Record<string, string> }> {
    const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
    if (this.clientSecret) headers.authorization = `Basic ${Buffer.from(`${this.clientId}:${this.clientSecret}`).toString('base64')}`;
    const res = await fetch(`${this.base}/t/${this.tenant}/oidc/token`, { method: 'POST', headers, body: new URLSearchParams(body).toString() });
    return { status: res.status, body: (await res.json()) as Record<string, string> };
  }

  redeem(c: { code: string; verifier: string }) {
    return this.token({ grant_type: 'authorization_code', code: c.code, redirect_uri: this.callback, code_verifier: c.verifier });
  }

  refresh(refreshToken: string) {
    return this.token({ grant_type: 'refresh_token', refresh_token: refreshToken });
  }

  /** The status the userinfo endpoint answers an access token with. */
  async userinfo(accessToken: string): Promise<number> {
    return (await fetch(`${this.base}/t/${this.tenant}/oidc/userinfo`, { headers: { authorization: `Bearer ${accessToken}` } })).status;
  }
}
