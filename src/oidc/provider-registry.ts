/** One OpenID Connect provider per tenant, built on first use and rebuilt when its keys change. */
import type Provider from 'oidc-provider';
import type { Configuration, KoaContextWithOIDC } from 'oidc-provider';
import type { Clock } from '../clock.ts';
import type { Db } from '../store/durable/database.ts';
import type { EphemeralStore } from '../store/ephemeral/ephemeral-store.ts';
import type { KeyRing } from '../crypto/key-ring.ts';
import type { Tenant } from '../directory/tenant.ts';
import type { Users } from '../directory/users.ts';
import type { Apps } from '../directory/apps.ts';
import { storageAdapterFor } from './storage-adapter.ts';
import type { SigningKeys } from './signing-keys.ts';

/** `acr` values: whether the sign-in proved a second factor. */
export const ACR_MFA = 'urn:steadfast:acr:mfa';
export const ACR_PASSWORD = 'urn:steadfast:acr:pwd';
/** Values a relying party may send in `acr_values` to demand a second factor. */
const MFA_REQUESTS = new Set([ACR_MFA, 'mfa', 'http://schemas.openid.net/pape/policies/2007/06/multi-factor']);

export const requestsMfa = (acrValues: string | undefined) => (acrValues ?? '').split(' ').some((v) => MFA_REQUESTS.has(v));

export interface ProviderDeps {
  db: Db;
  ephemeral: EphemeralStore;
  clock: Clock;
  keyRing: KeyRing;
  users: Users;
  apps: Apps;
  keys: SigningKeys;
  publicUrl: string;
  /** Renders oidc-provider's own pages (errors, logout) in Steadfast's layout. */
  pages: {
    error(tenant: Tenant, title: string, detail: string): string;
    logout(tenant: Tenant, form: string, clientName: string | undefined): string;
    loggedOut(tenant: Tenant, clientName: string | undefined, stillSignedIn: boolean): string;
  };
  onLogout?: (ctx: KoaContextWithOIDC, tenant: Tenant) => Promise<void>;
  /**
   * The browser's Steadfast session in this tenant (a full one, still live, of
   * an active user), or undefined: the provider's session is good only while it is.
   * `owesSecondFactor`: the tenant's policy as it is now requires MFA and the session has not proved a second factor.
   */
  steadfastSession(ctx: KoaContextWithOIDC, tenant: Tenant): Promise<(SteadfastSessionRef & { owesSecondFactor: boolean }) | undefined>;
  /**
   * Records that the provider's session (its id) stands on this Steadfast
   * session, so that ending the Steadfast session by any way (the pages, or the
   * API, which sees no provider cookie) ends the provider's and its grants.
   */
  linkSessions(tenantId: string, providerSessionId: string, steadfast: SteadfastSessionRef): Promise<void>;
  /** The id of the Steadfast session the provider's session was linked to, if any. */
  linkedSession(tenantId: string, providerSessionId: string): Promise<string | undefined>;
  /**
   * Records that a grant was used in this Steadfast session (a code of it was issued there), so that ending the
   * session ends the grant and its tokens, whatever became of the provider's session meanwhile.
   */
  linkGrant(tenantId: string, grantId: string, steadfast: SteadfastSessionRef): Promise<void>;
  /** Whether this Steadfast session (an authorization code's) is still live: a full session of this user. */
  sessionLive(tenantId: string, sessionId: string, userId: string): Promise<boolean>;
  /** Whether the tenant's policy, as it stands now, requires a second factor. */
  mfaRequired(tenantId: string): Promise<boolean>;
  /** The provider's session lasts no longer than a Steadfast session. */
  sessionLifetimeSeconds: number;
  /** Told of the provider's own failures (a bug or a store outage), without tokens or codes. */
  onServerError?: (tenant: Tenant, err: Error) => void;
}

/** A Steadfast session as the provider's session depends on it. */
export interface SteadfastSessionRef {
  id: string;
  userId: string;
  expiresAt: number;
}

/**
 * The Steadfast session an authorization request was found to stand on (by the policy check below), kept per
 * request: the code that request issues is stamped with it (storage-adapter.ts).
 */
const standsOn = new WeakMap<object, SteadfastSessionRef>();

/** How long an app's sign-in may take at Steadfast's pages. */
export const INTERACTION_TTL_S = 600;

// Checked at most this often: a rotated key reaches every node within it.
const KEY_CHECK_MS = 30_000;

/**
 * One OpenID Connect provider per tenant (its issuer is `{publicUrl}/t/{slug}`),
 * built on first use and rebuilt when the tenant's signing keys change.
 */
export class OidcProviders {
  private readonly cache = new Map<string, { provider: Provider; version: string; checkedAt: number }>();

  constructor(private readonly deps: ProviderDeps) {}

  async forTenant(tenant: Tenant): Promise<Provider> {
    const now = this.deps.clock.now();
    const hit = this.cache.get(tenant.id);
    if (hit && now - hit.checkedAt < KEY_CHECK_MS) return hit.provider;
    const version = await this.deps.keys.version(tenant.id);
    if (hit && hit.version === version) {
      hit.checkedAt = now;
      return hit.provider;
    }
    // Loaded on first use: on Node 20 the library prints a runtime warning at import,
    // which the command line's one-line errors must not carry.
    const oidc = await import('oidc-provider');
    const provider = new oidc.default(
      `${this.deps.publicUrl}/t/${tenant.slug}`,
      await this.configuration(tenant, oidc.interactionPolicy, oidc.errors, () => oidc.default.ctx),
    );
    // The provider reads host and scheme from X-Forwarded-Host/-Proto, which the routes set from
    // STEADFAST_PUBLIC_URL on every request (whatever a client or proxy sent).
    provider.proxy = true;
    // Signing out of the apps signs out of Steadfast's pages too.
    provider.on('end_session.success', (ctx: KoaContextWithOIDC) => void this.deps.onLogout?.(ctx, tenant));
    provider.on('server_error', (_ctx: KoaContextWithOIDC, err: Error) => this.deps.onServerError?.(tenant, err));
    this.cache.set(tenant.id, { provider, version: await this.deps.keys.version(tenant.id), checkedAt: now });
    return provider;
  }

  private async configuration(
    tenant: Tenant,
    interactionPolicy: typeof import('oidc-provider').interactionPolicy,
    errors: typeof import('oidc-provider').errors,
    currentContext: () => unknown,
  ): Promise<Configuration> {
    const { deps } = this;
    const policy = interactionPolicy.base();
    // `acr_values` asking for a second factor the current session has not proved sends the user through sign-in again.
    policy.get('login')!.checks.add(
      new interactionPolicy.Check('mfa_requested', 'the app asked for multi-factor authentication', 'login_required', (ctx) => {
        return requestsMfa(ctx.oidc.params?.acr_values as string | undefined) && ctx.oidc.session?.acr !== ACR_MFA;
      }),
    );
    // The provider's session stands on Steadfast's: on every authorization request the browser must still
    // hold a live Steadfast session of the same user, or the user signs in again. Signing out of Steadfast,
    // an administrator ending the sessions, a reset or a disabled account all end the apps' silent sign-in too.
    policy.get('login')!.checks.add(
      new interactionPolicy.Check('steadfast_session_ended', 'the Steadfast session behind this sign-in has ended', 'login_required', async (ctx) => {
        const accountId = ctx.oidc.session?.accountId;
        if (!accountId) return interactionPolicy.Check.NO_NEED_TO_PROMPT;
        const steadfast = await deps.steadfastSession(ctx, tenant);
        if (steadfast?.userId !== accountId) return interactionPolicy.Check.REQUEST_PROMPT;
        // The tenant may have come to require MFA since this provider session was made (and this provider, kept
        // per tenant, was built with the policy of then): a session that has not proved a second factor signs in
        // again, where the sign-in page asks for one. It is the page that checks the requirement; a provider
        // session that stands on the live one never reaches it.
        if (steadfast.owesSecondFactor) return interactionPolicy.Check.REQUEST_PROMPT;
        // No other Steadfast session passes for the one the provider's sign-in was made in: what an app is told
        // (amr, acr, auth_time) must be what the live session proved. The provider's session can outlive the one
        // it was made in (an idle Steadfast session ends, the provider's does not), and a later sign-in (the
        // password alone on a remembered browser, a pass) must not pass for it. A provider session not linked to
        // the live one (linked to another, or to none, as after "No, stay signed in" from another session) is
        // signed in again from the live session: at once, without a page, when that is enough. Only the request
        // resumed from that fresh sign-in (its login result) is linked, once; later requests find the link.
        // A login result is what one Steadfast session proved (its amr, acr, auth_time): it is taken only from
        // the browser that still holds that session, not from one that signed in again meanwhile (a password
        // alone on a remembered browser must not inherit the second factor of a session that has ended).
        const login = ctx.oidc.result?.login as { steadfastSession?: unknown } | undefined;
        if (login && login.steadfastSession !== steadfast.id) return interactionPolicy.Check.REQUEST_PROMPT;
        const linked = await deps.linkedSession(tenant.id, ctx.oidc.session!.jti);
        if (linked !== steadfast.id) {
          if (!login) return interactionPolicy.Check.REQUEST_PROMPT;
          await deps.linkSessions(tenant.id, ctx.oidc.session!.jti, steadfast);
        }
        // Every code is issued after this check passed, in the same request: it is stamped with this session.
        standsOn.set(ctx, steadfast);
        return interactionPolicy.Check.NO_NEED_TO_PROMPT;
      }),
    );
    return {
      adapter: storageAdapterFor(deps, tenant.id, errors, () => standsOn.get(currentContext() as object)),
      jwks: { keys: (await deps.keys.forTenant(tenant.id)) as never },
      cookies: { keys: [deps.keyRing.deriveKey(`oidc-cookies:${tenant.id}`).toString('base64url')], long: { signed: true }, short: { signed: true } },
      routes: {
        authorization: '/oidc/auth',
        token: '/oidc/token',
        userinfo: '/oidc/userinfo',
        jwks: '/oidc/jwks',
        end_session: '/oidc/session/end',
        revocation: '/oidc/token/revocation',
        introspection: '/oidc/token/introspection',
        pushed_authorization_request: '/oidc/request',
      },
      scopes: ['openid', 'offline_access', 'profile', 'email', 'phone'],
      claims: {
        // acr and amr always: apps decide on them (was a second factor used, and which).
        openid: ['sub', 'acr', 'amr', 'auth_time'],
        profile: ['preferred_username', 'name'],
        email: ['email', 'email_verified'],
        phone: ['phone_number', 'phone_number_verified'],
      },
      acrValues: [ACR_MFA, ACR_PASSWORD],
      // The scope's claims go into the ID token too: most apps read the username from it and never call userinfo.
      conformIdTokenClaims: false,
      async findAccount(_ctx, sub) {
        const user = await deps.users.get(tenant.id, sub);
        if (!user || user.status !== 'active') return undefined;
        return {
          accountId: sub,
          async claims() {
            return {
              sub,
              preferred_username: user.username,
              name: user.username,
              ...(user.email ? { email: user.email, email_verified: false } : {}),
              ...(user.phone ? { phone_number: user.phone, phone_number_verified: false } : {}),
            };
          },
        };
      },
      extraClientMetadata: { properties: ['urn:steadfast:first_party'] },
      // An authorization request is kept (interaction, pushed request) with all its parameters; the free-text ones
      // are bounded so nobody stores tens of kilobytes a request. The others are checked against lists or formats.
      extraParams: boundedFreeTextParams(errors),
      // First-party apps are the tenant's own: they skip the consent page.
      async loadExistingGrant(ctx) {
        const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session!.grantIdFor(ctx.oidc.client!.clientId);
        // A grant can be gone though the session names it (revoked after a replayed refresh token).
        const existing = grantId ? await ctx.oidc.provider.Grant.find(grantId) : undefined;
        if (existing || ctx.oidc.client!['urn:steadfast:first_party'] !== true) return existing;
        const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client!.clientId, accountId: ctx.oidc.session!.accountId! });
        grant.addOIDCScope('openid offline_access profile email phone');
        await grant.save();
        return grant;
      },
      interactions: {
        policy,
        url: (_ctx, interaction) => `/t/${tenant.slug}/oidc/interaction/${interaction.uid}`,
      },
      features: {
        devInteractions: { enabled: false },
        revocation: { enabled: true },
        rpInitiatedLogout: {
          enabled: true,
          async logoutSource(ctx, form) {
            ctx.type = 'html';
            ctx.body = deps.pages.logout(tenant, form, ctx.oidc.client?.clientName);
          },
          async postLogoutSuccessSource(ctx) {
            ctx.type = 'html';
            // After "No, stay signed in" the browser is still signed in to Steadfast, and the page says so.
            const stillSignedIn = (await deps.steadfastSession(ctx, tenant)) !== undefined;
            ctx.body = deps.pages.loggedOut(tenant, ctx.oidc.client?.clientName, stillSignedIn);
          },
        },
      },
      // PKCE for every client, confidential ones too (OAuth 2.1): a stolen code is worthless without the verifier.
      pkce: { required: () => true },
      // Refresh tokens only for a grant that asked for `offline_access` and had it consented to (the provider
      // drops the scope without `prompt=consent`), rotated at each use (a replayed old one revokes the grant).
      issueRefreshToken: async (_ctx, client, code) => client.grantTypeAllowed('refresh_token') && code.scopes.has('offline_access'),
      rotateRefreshToken: true,
      ttl: {
        AccessToken: 3600,
        AuthorizationCode: 60,
        IdToken: 3600,
        Interaction: INTERACTION_TTL_S,
        Session: deps.sessionLifetimeSeconds,
        Grant: 30 * 24 * 3600,
        RefreshToken: 30 * 24 * 3600,
      },
      async renderError(ctx, out) {
        ctx.type = 'html';
        ctx.body = deps.pages.error(tenant, 'The app could not sign you in', String(out.error_description ?? out.error));
      },
    };
  }
}

/** The longest free-text authorization parameter kept: far above any real `state` or `nonce` (a JWT state included). */
export const MAX_FREE_TEXT_PARAM = 2048;
const FREE_TEXT_PARAMS = ['state', 'nonce', 'login_hint', 'ui_locales', 'claims_locales', 'acr_values', 'scope', 'display'] as const;

/** Validators (oidc-provider's `extraParams`) that refuse a free-text parameter over the bound with invalid_request. */
function boundedFreeTextParams(errors: typeof import('oidc-provider').errors): Record<string, (ctx: unknown, value: string | undefined) => Promise<void>> {
  const check = (name: string) => async (_ctx: unknown, value: string | undefined) => {
    if (typeof value === 'string' && value.length > MAX_FREE_TEXT_PARAM)
      throw new errors.InvalidRequest(`${name} is too long (at most ${MAX_FREE_TEXT_PARAM} characters)`);
  };
  return Object.fromEntries(FREE_TEXT_PARAMS.map((name) => [name, check(name)]));
}
