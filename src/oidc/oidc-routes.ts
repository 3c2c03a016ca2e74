import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type Provider from 'oidc-provider';
import { AppError } from '../errors/app-error.ts';
import type { Principal } from '../http/authenticate.ts';
import type { Clock } from '../clock.ts';
import type { RequestAuth } from '../http/authenticate.ts';
import type { Tenants } from '../directory/tenants.ts';
import type { EphemeralStore } from '../store/ephemeral/ephemeral-store.ts';
import type { AnonymousStarts } from '../signin/anonymous-starts.ts';
import type { OidcProviders } from './provider-registry.ts';
import type { Tenant } from '../directory/tenant.ts';
import { ACR_MFA, ACR_PASSWORD, INTERACTION_TTL_S, requestsMfa } from './provider-registry.ts';
import { oidcPages } from './oidc-pages.ts';
import { formRoute } from '../http/page/form-route.ts';
import { CONTINUE_COOKIE } from '../http/cookie-names.ts';
import { contentSecurityPolicy, securityHeaders } from '../http/security-headers.ts';
import { NumberRecord, parseRecord } from '../store/parse-record.ts';

const TenantParams = Type.Object({ tenant: Type.String({ minLength: 1, maxLength: 64 }) });
const InteractionParams = Type.Object({
  tenant: Type.String({ minLength: 1, maxLength: 64 }),
  uid: Type.String({ minLength: 10, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$' }),
});

/**
 * OpenID Connect: the protocol endpoints are oidc-provider's own (a certified
 * implementation), handed the raw request under the tenant's issuer path; the
 * interaction (who is signing in) is Steadfast's sign-in pages and session.
 */
export interface OidcRoutesDeps {
  tenants: Pick<Tenants, 'findBySlug'>;
  oidc: Pick<OidcProviders, 'forTenant'>;
  auth: Pick<RequestAuth, 'findPrincipal'>;
  anonymousStarts: Pick<AnonymousStarts, 'take'>;
  ephemeral: Pick<EphemeralStore, 'get' | 'set'>;
  clock: Clock;
  publicUrl: string;
}

export function oidcRoutes(services: OidcRoutesDeps): FastifyPluginAsyncTypebox {
  return async (app) => {
    const tenantOf = async (slug: string): Promise<Tenant> => {
      const tenant = await services.tenants.findBySlug(slug);
      if (!tenant) throw new AppError('not-found', 'no such tenant');
      return tenant;
    };

    const https = services.publicUrl.startsWith('https:');
    const publicOrigin = new URL(services.publicUrl);
    // The provider's own pages (errors, sign-out, a form_post answer) get the same headers as every page.
    // Its form_post answer posts to the app's callback, on an origin only the provider knows, so form-action
    // is open there; the provider adds the hash of its one inline script to script-src itself.
    const providerHeaders = { ...securityHeaders({ https }), 'content-security-policy': contentSecurityPolicy({ https, formTargets: ['*'] }) };

    /** Hands the request to the tenant's provider, with the URL as the provider sees it (below its issuer path). */
    const delegate = async (request: FastifyRequest<{ Params: { tenant: string } }>, reply: FastifyReply) => {
      const tenant = await tenantOf(request.params.tenant);
      // The provider's router forgives case and a trailing slash; Steadfast's limits and admission classes
      // match exact paths. Only the provider's own spelling is served, so no spelling slips past them.
      const endpoint = /^\/t\/[^/]+(\/oidc\/[^/?]+)?(\/[^?]*)?/.exec(request.url);
      if (endpoint?.[1] && (endpoint[1] !== endpoint[1].toLowerCase() || endpoint[2] === '/')) throw new AppError('not-found');
      // A new authorization request leaves an interaction in the store for minutes: limited per source.
      if (endpoint?.[1] === '/oidc/auth' && endpoint[2] === undefined) await services.anonymousStarts.take(request.ip);
      // So does a pushed one (kept a minute); a public client's is as anonymous as the above, so it shares the
      // budget. A confidential client authenticates with HTTP Basic (its only method here), so a request without
      // it is either a public client's or refused before anything is stored; a public client sending Basic is refused.
      else if (endpoint?.[1] === '/oidc/request' && endpoint[2] === undefined && !request.headers.authorization)
        await services.anonymousStarts.take(request.ip);
      const provider = await services.oidc.forTenant(tenant);
      reply.hijack();
      for (const [name, value] of Object.entries(providerHeaders)) reply.raw.setHeader(name, value);
      // Every URL the provider builds (discovery, redirects) comes from STEADFAST_PUBLIC_URL, never from
      // the Host or X-Forwarded-* headers a client sent: the provider reads these, and they are set here.
      request.raw.headers.host = publicOrigin.host;
      request.raw.headers['x-forwarded-host'] = publicOrigin.host;
      request.raw.headers['x-forwarded-proto'] = publicOrigin.protocol.slice(0, -1);
      const raw = request.raw as typeof request.raw & { originalUrl?: string };
      raw.originalUrl = raw.url;
      raw.url = raw.url!.slice(`/t/${tenant.slug}`.length) || '/';
      provider.callback()(raw, reply.raw);
    };

    // The protocol endpoints read their own bodies: in this scope Fastify leaves the stream unread.
    await app.register(async (raw) => {
      raw.removeAllContentTypeParsers();
      raw.addContentTypeParser('*', (_request, _payload, done) => done(null));
      // Apps and their users' browsers call the protocol endpoints from their own sites by design.
      const config = { admissionClass: 'finish-signin' as const, crossSite: true };
      raw.get(
        '/t/:tenant/.well-known/openid-configuration',
        { schema: { params: TenantParams, tags: ['oidc'], summary: 'OpenID Connect discovery for the tenant' }, config },
        delegate,
      );
      raw.route({
        method: ['GET', 'POST', 'OPTIONS'],
        url: '/t/:tenant/oidc/*',
        schema: { params: Type.Object({ tenant: Type.String({ minLength: 1, maxLength: 64 }), '*': Type.String() }), hide: true },
        config,
        handler: delegate,
      });
      // A new authorization request starts a sign-in: it waits behind those already under way, like a password.
      raw.route({
        method: ['GET', 'POST'],
        url: '/t/:tenant/oidc/auth',
        schema: { params: TenantParams, hide: true },
        config: { ...config, admissionClass: 'start-signin' as const },
        handler: delegate,
      });
    });

    /**
     * Whether Steadfast's session is good enough for this app's request; `fresh`
     * when it needs a sign-in made for this request (prompt=login, max_age,
     * a second factor the session has not proved).
     */
    const sufficientSession = async (principal: Principal | undefined, tenant: Tenant, details: Awaited<ReturnType<Provider['interactionDetails']>>) => {
      const wantsLogin = ((details.prompt.reasons ?? []) as string[]).includes('login_prompt');
      const maxAge = details.params.max_age === undefined ? undefined : Number(details.params.max_age);
      const wantsRecent = maxAge !== undefined && Number.isFinite(maxAge);
      // For prompt=login and max_age, a sign-in made after we first sent the user to sign in for this request
      // will do: marked the first time, with a session or without one (else the sign-in made for the request
      // would come before the mark, and the user would be sent to sign in twice).
      const markKey = `oidc-login-prompt:${tenant.id}:${details.uid}`;
      const mark = wantsLogin || wantsRecent ? parseRecord(NumberRecord, await services.ephemeral.get(markKey)) : undefined;
      const sendToSignIn = async (fresh: boolean) => {
        if ((wantsLogin || wantsRecent) && mark === undefined) await services.ephemeral.set(markKey, services.clock.now(), INTERACTION_TTL_S * 1000);
        return { ok: false, fresh };
      };
      if (!principal || principal.tenant.id !== tenant.id || principal.session.scope !== 'full') return sendToSignIn(false);
      const { session } = principal;
      const signedInForThis = mark !== undefined && session.authTime >= mark;
      if (wantsLogin && !signedInForThis) return sendToSignIn(true);
      if (wantsRecent && services.clock.now() - session.authTime > maxAge * 1000 && !signedInForThis) return sendToSignIn(true);
      if (needsMfa(tenant, details) && !session.amr.includes('mfa')) return { ok: false, fresh: true };
      return { ok: true, fresh: false };
    };
    /**
     * An app's sign-in needs a second factor proved in the session when the app asks for one (`acr_values`), and
     * whenever the tenant requires MFA: a remembered browser skips the second factor on the user's own pages only,
     * never for an app that might not check the `acr` it is given.
     */
    const needsMfa = (tenant: Tenant, details: Awaited<ReturnType<Provider['interactionDetails']>>) =>
      tenant.policy.mfaRequired || requestsMfa(details.params.acr_values as string | undefined);

    app.get(
      '/t/:tenant/oidc/interaction/:uid',
      { schema: { params: InteractionParams, hide: true }, config: { admissionClass: 'finish-signin' } },
      async (request, reply) => {
        const tenant = await tenantOf(request.params.tenant);
        const provider = await services.oidc.forTenant(tenant);
        const details = await provider.interactionDetails(request.raw, reply.raw).catch(() => {
          throw new AppError('flow-not-found', 'this sign-in for an app has expired; start again from the app');
        });
        if (details.uid !== request.params.uid) throw new AppError('flow-not-found', 'this sign-in for an app has expired; start again from the app');
        const principal = await services.auth.findPrincipal(request);

        if (details.prompt.name === 'login') {
          const { ok, fresh } = await sufficientSession(principal, tenant, details);
          if (!ok) {
            const kind = needsMfa(tenant, details) ? 'oidc-mfa' : 'oidc';
            const username = principal?.tenant.id === tenant.id ? `&username=${encodeURIComponent(principal.user.username)}` : '';
            return reply.redirect(`/t/${tenant.slug}/signin?next=${kind}:${details.uid}${fresh ? '&fresh=1' : ''}${username}`, 303);
          }
          const { session, user } = principal!;
          // The way back from registering a first method has been taken.
          reply.raw.setHeader('set-cookie', `${CONTINUE_COOKIE}=; Path=/t/${tenant.slug}/; Max-Age=0; HttpOnly; SameSite=Lax`);
          reply.hijack();
          return provider.interactionFinished(
            request.raw,
            reply.raw,
            {
              login: {
                accountId: user.id,
                amr: session.amr,
                acr: session.amr.includes('mfa') ? ACR_MFA : ACR_PASSWORD,
                ts: Math.floor(session.authTime / 1000),
                // Whose proof this is: the request resumes only in the browser that still holds this session.
                steadfastSession: session.id,
              },
            },
            { mergeWithLastSubmission: false },
          );
        }

        if (details.prompt.name === 'consent') {
          const client = await provider.Client.find(String(details.params.client_id));
          // The tenant's own apps were consented to by its administrator: what they ask for (staying signed
          // in with `offline_access` included) is granted without a page.
          if (client?.['urn:steadfast:first_party'] === true && details.session?.accountId) {
            const grantId = await grantWhatIsMissing(provider, details);
            reply.hijack();
            return provider.interactionFinished(request.raw, reply.raw, { consent: { grantId } }, { mergeWithLastSubmission: true });
          }
          const scopes = String(details.params.scope ?? 'openid')
            .split(' ')
            .filter(Boolean);
          // Allowing ends, through redirects, at the app's callback: the form may lead there and nowhere else.
          const targets = [...new Set((client?.redirectUris ?? []).map((u) => new URL(u).origin))];
          return reply
            .type('text/html; charset=utf-8')
            .header('cache-control', 'no-store')
            .header('content-security-policy', contentSecurityPolicy({ https: services.publicUrl.startsWith('https:'), formTargets: targets }))
            .send(
              oidcPages.consent(
                tenant,
                client?.clientName ?? 'This app',
                scopes,
                `/t/${tenant.slug}/oidc/interaction/${details.uid}/consent`,
                reply.generateCsrf(),
              ),
            );
        }
        throw new AppError('invalid-state', `this app asked for a step Steadfast does not offer (${details.prompt.name})`);
      },
    );

    app.post(
      '/t/:tenant/oidc/interaction/:uid/consent',
      formRoute(
        app,
        'finish-signin',
        InteractionParams,
        Type.Object({ decision: Type.Optional(Type.String({ maxLength: 10 })), _csrf: Type.Optional(Type.String({ maxLength: 200 })) }),
      ),
      async (request, reply) => {
        const tenant = await tenantOf(request.params.tenant);
        const provider = await services.oidc.forTenant(tenant);
        const details = await provider.interactionDetails(request.raw, reply.raw).catch(() => {
          throw new AppError('flow-not-found', 'this sign-in for an app has expired; start again from the app');
        });
        if (details.prompt.name !== 'consent' || !details.session?.accountId) throw new AppError('invalid-state', 'there is nothing to allow here');
        if (request.body.decision !== 'allow') {
          reply.hijack();
          return provider.interactionFinished(
            request.raw,
            reply.raw,
            { error: 'access_denied', error_description: 'The user did not allow the app' },
            { mergeWithLastSubmission: false },
          );
        }
        const grantId = await grantWhatIsMissing(provider, details);
        reply.hijack();
        return provider.interactionFinished(request.raw, reply.raw, { consent: { grantId } }, { mergeWithLastSubmission: true });
      },
    );
  };
}

/** Adds what the consent prompt found missing to the grant (a new one if there is none) and saves it. */
async function grantWhatIsMissing(provider: Provider, details: Awaited<ReturnType<Provider['interactionDetails']>>): Promise<string> {
  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId: details.session!.accountId, clientId: String(details.params.client_id) });
  if (!grant) throw new AppError('flow-not-found');
  const missing = details.prompt.details as { missingOIDCScope?: string[]; missingOIDCClaims?: string[]; missingResourceScopes?: Record<string, string[]> };
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) grant.addResourceScope(indicator, scopes.join(' '));
  return grant.save();
}
