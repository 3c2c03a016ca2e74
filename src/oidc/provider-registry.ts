import type Provider from 'oidc-provider';
import type { Configuration, KoaContextWithOIDC } from 'oidc-provider';
import type { Clock } from '../clock.ts';
import type { Db } from '../store/durable/database.ts';
import type { EphemeralStore } from '../store/ephemeral/ephemeral-store.ts';
import type { KeyRing } from '../crypto/key-ring.ts';
import type { Tenant } from '../directory/tenants.ts';
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
    loggedOut(tenant: Tenant, clientName: string | undefined): string;
  };
  onLogout?: (ctx: KoaContextWithOIDC, tenant: Tenant) => Promise<void>;
  /** Told of the provider's own failures (a bug or a store outage), without tokens or codes. */
  onServerError?: (tenant: Tenant, err: Error) => void;
  trustProxy: boolean;
}

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
    const provider = new oidc.default(`${this.deps.publicUrl}/t/${tenant.slug}`, await this.configuration(tenant, oidc.interactionPolicy));
    // Behind a TLS-terminating proxy (STEADFAST_TRUST_PROXY) the provider takes the scheme from X-Forwarded-Proto.
    provider.proxy = this.deps.trustProxy;
    // Signing out of the apps signs out of Steadfast's pages too.
    provider.on('end_session.success', (ctx: KoaContextWithOIDC) => void this.deps.onLogout?.(ctx, tenant));
    provider.on('server_error', (_ctx: KoaContextWithOIDC, err: Error) => this.deps.onServerError?.(tenant, err));
    this.cache.set(tenant.id, { provider, version: await this.deps.keys.version(tenant.id), checkedAt: now });
    return provider;
  }

  private async configuration(tenant: Tenant, interactionPolicy: typeof import('oidc-provider').interactionPolicy): Promise<Configuration> {
    const { deps } = this;
    const policy = interactionPolicy.base();
    // `acr_values` asking for a second factor the current session has not proved sends the user through sign-in again.
    policy.get('login')!.checks.add(
      new interactionPolicy.Check('mfa_requested', 'the app asked for multi-factor authentication', 'login_required', (ctx) => {
        return requestsMfa(ctx.oidc.params?.acr_values as string | undefined) && ctx.oidc.session?.acr !== ACR_MFA;
      }),
    );
    return {
      adapter: storageAdapterFor(deps, tenant.id),
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
            ctx.body = deps.pages.loggedOut(tenant, ctx.oidc.client?.clientName);
          },
        },
      },
      pkce: { required: (_ctx, client) => client.clientAuthMethod === 'none' },
      // Refresh tokens for every app allowed them, rotated at each use (a replayed old one revokes the grant).
      issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
      rotateRefreshToken: true,
      ttl: {
        AccessToken: 3600,
        AuthorizationCode: 60,
        IdToken: 3600,
        Interaction: INTERACTION_TTL_S,
        Session: 14 * 24 * 3600,
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
