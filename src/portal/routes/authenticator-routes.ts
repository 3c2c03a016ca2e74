import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { TenantLookup } from '../../http/page/tenant-lookup.ts';
import { authenticatorManifest, authenticatorView } from '../views/authenticator-views.ts';

const PageParams = Type.Object({ tenant: Type.String({ minLength: 1, maxLength: 64 }) });

export interface AuthenticatorRoutesDeps {
  tenants: TenantLookup;
  /** The service worker's script (web/authenticator-sw.js). */
  serviceWorker: string;
}

/**
 * The Steadfast Authenticator as a Progressive Web App at /t/{t}/authenticator:
 * the page, its manifest and its service worker, all from this node (the
 * worker is served under the app's path, so its scope is the app's).
 */
export function authenticatorRoutes(deps: AuthenticatorRoutesDeps): FastifyPluginAsyncTypebox {
  return async (app) => {
    const opts = { schema: { params: PageParams, hide: true }, config: { admissionClass: 'self-service' as const } };

    for (const path of ['/t/:tenant/authenticator', '/t/:tenant/authenticator/']) {
      app.get(path, opts, async (request, reply) => {
        const tenant = await deps.tenants.require(request.params.tenant);
        return reply.type('text/html; charset=utf-8').header('cache-control', 'no-cache').send(authenticatorView({ tenant }));
      });
    }

    app.get('/t/:tenant/authenticator/manifest.webmanifest', opts, async (request, reply) => {
      const tenant = await deps.tenants.require(request.params.tenant);
      return reply
        .type('application/manifest+json; charset=utf-8')
        .header('cache-control', 'public, max-age=3600')
        .send(JSON.stringify(authenticatorManifest({ tenant })));
    });

    app.get('/t/:tenant/authenticator/sw.js', opts, async (request, reply) => {
      const tenant = await deps.tenants.require(request.params.tenant);
      return (
        reply
          .type('text/javascript; charset=utf-8')
          // Browsers look for a new worker on every visit when it is not cached long.
          .header('cache-control', 'no-cache')
          .header('service-worker-allowed', `/t/${tenant.slug}/authenticator`)
          .send(deps.serviceWorker)
      );
    });
  };
}
