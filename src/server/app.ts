/** Builds the Fastify app of a node: plugins, admission, security headers, problem answers, and every route module. */
import { endSilentConnectionsOnClose } from '../http/silent-connections.ts';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import Fastify from 'fastify';
import type { Logger } from 'pino';
import cookie from '@fastify/cookie';
import formbody from '@fastify/formbody';
import csrf from '@fastify/csrf-protection';
import swagger from '@fastify/swagger';
import { errorHandler, notFoundHandler, PROBLEM_CONTENT_TYPE, problemBody, sendProblem, toAppError } from '../http/problem.ts';
import { AppError } from '../errors/app-error.ts';
import { securityHeaders } from '../http/security-headers.ts';
import { cookieNames } from '../http/cookie-names.ts';
import { refuseForgeable } from '../http/forgery-guard.ts';
import { isOperator } from '../http/operator-access.ts';
import type { AdmissionClass } from '../admission/admission-class.ts';
import { requestClass } from '../admission/request-class.ts';
import { busy } from '../admission/bulkhead.ts';
import { runWithTicket, type WorkTicket } from '../admission/work-ticket.ts';
import { HASHING_DEADLINE_MS } from '../http/request-context.ts';
import type { Services } from './services.ts';
import { packageRoot } from '../package-root.ts';
import { signinApi } from './routes/signin-api.ts';
import { meApi } from './routes/me-api.ts';
import { adminApi } from '../admin/admin-api.ts';
import { consoleRoutes } from '../admin/routes/console-routes.ts';
import { IssuedPassHolder } from '../admin/issued-pass-holder.ts';
import { clusterAdminApi } from '../admin/cluster-api.ts';
import { configRoutes } from '../admin/routes/config-routes.ts';
import { policyHistoryRoutes } from '../admin/routes/policy-history-routes.ts';
import { oidcRoutes } from '../oidc/oidc-routes.ts';
import { appApi } from './routes/app-api.ts';
import { authenticatorApi } from './routes/authenticator-api.ts';
import { opsRoutes, type Readiness } from './routes/ops.ts';
import { signinRoutes } from '../portal/routes/signin-routes.ts';
import { tenantLookup } from '../http/page/tenant-lookup.ts';
import { pageFlash } from '../http/page/flash.ts';
import { securityInfoRoutes } from '../portal/routes/security-info-routes.ts';
import { mySigninsRoutes } from '../portal/routes/my-signins-routes.ts';
import { CHANGES_PAUSED_RETRY_AFTER_S } from '../store/fallback/fallback-dialect.ts';
import { recordRoutes } from './route-table.ts';
import { authenticatorRoutes } from '../portal/routes/authenticator-routes.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Which class admission control files the route under. */
    admissionClass?: AdmissionClass;
    /** Other sites call this route by design (OpenID Connect protocol endpoints): no same-origin check. */
    crossSite?: boolean;
    /**
     * Every call runs an Argon2id hash (a password or TAP check): refused at the
     * door, before its body is read, when the hashing pool would refuse it anyway.
     */
    hashes?: boolean;
    /** Goes on while the database is unreachable although not a sign-in (signing out: the revocation is journaled). */
    duringOutage?: boolean;
  }
  interface FastifyRequest {
    /** Aborted when the client's connection closes before the answer: queued work for it is dropped. */
    clientGone?: AbortSignal;
    /**
     * Gives the request's admission slot back before the response ends: a
     * download streamed from the report worker is no work for this thread, and
     * minutes in a slot would skew admission's estimate of how long requests take.
     */
    releaseAdmission?: () => void;
    /** When the request arrived (epoch ms), for work deadlines. */
    receivedAt: number;
    /** Its canary bucket while a configuration canary bakes (config/canary-slice.ts). */
    canaryBucket?: number | undefined;
    /** Its class, tenant and deadline, carried to the hashing pool. */
    workTicket?: WorkTicket;
  }
}

const PAUSED_CLASSES = new Set<string>(['self-service', 'finish-registration', 'admin', 'admin-emergency']);

export interface AppOptions {
  logger: Logger;
  readiness?: Readiness;
}

// Browser assets are read once at start and served from this node: no CDN, nothing from other hosts.
const WEB = new URL('web/', packageRoot());
const ASSETS: Record<string, { type: string; body: string }> = {
  'steadfast.css': { type: 'text/css; charset=utf-8', body: readFileSync(new URL('steadfast.css', WEB), 'utf8') },
  'steadfast.js': { type: 'text/javascript; charset=utf-8', body: readFileSync(new URL('steadfast.js', WEB), 'utf8') },
  'authenticator.js': { type: 'text/javascript; charset=utf-8', body: readFileSync(new URL('authenticator.js', WEB), 'utf8') },
  'authenticator-renewal.js': { type: 'text/javascript; charset=utf-8', body: readFileSync(new URL('authenticator-renewal.js', WEB), 'utf8') },
  'authenticator-totp.js': { type: 'text/javascript; charset=utf-8', body: readFileSync(new URL('authenticator-totp.js', WEB), 'utf8') },
  'authenticator-icon.svg': { type: 'image/svg+xml', body: readFileSync(new URL('authenticator-icon.svg', WEB), 'utf8') },
  'webauthn-browser.js': {
    type: 'text/javascript; charset=utf-8',
    // The package's export map hides its browser bundle; it sits beside the CommonJS entry.
    body: readFileSync(join(dirname(createRequire(import.meta.url).resolve('@simplewebauthn/browser')), '..', 'dist', 'bundle', 'index.umd.min.js'), 'utf8'),
  },
};

// The Steadfast Authenticator's service worker, served under each tenant's app path (its scope).
const SERVICE_WORKER = readFileSync(new URL('authenticator-sw.js', WEB), 'utf8');

export type App = Awaited<ReturnType<typeof buildApp>>;

export async function buildApp(services: Services, options: AppOptions) {
  const app = Fastify({
    loggerInstance: options.logger,
    trustProxy: trustedProxies(services.config.trustProxy),
    bodyLimit: 64 * 1024,
    // Request ids are generated here; a client-sent id is never trusted into the logs.
    requestIdHeader: false,
    // Draining is answered below, as problem+json with Retry-After.
    return503OnClosing: false,
    // Malformed URLs are answered as problem+json like every other client error.
    frameworkErrors: (error, _request, reply) => sendProblem(reply, toAppError(error)),
    routerOptions: { maxParamLength: 200 },
  });

  recordRoutes(app);
  endSilentConnectionsOnClose(app);

  // Declared up front so every request object has the same shape.
  app.decorateRequest('receivedAt', 0);
  app.decorateRequest('clientGone', undefined);
  app.decorateRequest('releaseAdmission', undefined);
  app.decorateRequest('workTicket', undefined);
  app.decorateRequest('canaryBucket', undefined);

  const readiness = options.readiness ?? { draining: false };
  const ownOrigins = [new URL(services.config.publicUrl).origin];
  const headers = securityHeaders({ https: services.config.publicUrl.startsWith('https:') });
  // The answer to a password check the hashing pool refuses at the door, made
  // once: in a surge it is most answers, so it skips the error handler, the
  // serialiser and the send hooks (the same problem+json and headers as sendProblem).
  const shedBody = Buffer.from(JSON.stringify(problemBody(busy())));
  const shedHeaders = { ...headers, 'content-type': `${PROBLEM_CONTENT_TYPE}; charset=utf-8`, 'retry-after': '1', 'content-length': String(shedBody.length) };

  app.addHook('onRequest', async (request, reply) => {
    reply.headers(headers);
    // API answers carry sessions, tokens and people's details: no cache or proxy keeps them (a route may say otherwise).
    if (request.url.startsWith('/api/')) reply.header('cache-control', 'no-store');
    const route = request.routeOptions.config;
    const cls = requestClass(route?.admissionClass, request.headers);
    if (cls === 'ops') return;
    if (readiness.draining) {
      reply.header('connection', 'close');
      return sendProblem(reply, new AppError('unavailable', 'this node is shutting down; retry and another node will answer', {}, 1));
    }
    // While sign-in runs from the local fallback, changes (self-service, administration) wait for the
    // database: made now they could not be checked against it or seen by other nodes. Sign-in goes on.
    if (services.fallback?.usesFallback() && PAUSED_CLASSES.has(cls) && request.method !== 'GET' && request.method !== 'HEAD' && !route?.duringOutage) {
      return sendProblem(
        reply,
        new AppError(
          'changes-paused',
          'changes are paused while the database is unreachable; signing in still works, try this again later',
          {},
          CHANGES_PAUSED_RETRY_AFTER_S,
        ),
      );
    }
    // Admission before any work, the body included: refusing must stay cheap.
    const slug = (request.params as { tenant?: string } | undefined)?.tenant;
    const tenant = slug && services.tenants.isKnown(slug) ? slug : 'other';
    // A password check the hashing pool has no room for is refused first of
    // all, before its lane slot, its body and its look-ups are spent on it: in
    // a surge this is most requests, so it must cost next to nothing.
    if (route?.hashes && services.hasher.pool.refusesAtOnce(cls, tenant)) {
      reply.hijack();
      reply.raw.writeHead(503, shedHeaders).end(shedBody);
      return reply;
    }
    request.receivedAt = Date.now();
    const gone = new AbortController();
    const onClose = () => gone.abort();
    request.raw.socket?.once('close', onClose);
    request.clientGone = gone.signal;
    // The response's 'close' comes exactly once, whether it was sent or the
    // client left: the one place a slot is sure to be given back.
    reply.raw.once('close', () => request.raw.socket?.off('close', onClose));
    // While a configuration canary bakes, the client's stable bucket picks its slice (admission lanes, providers, policy).
    const bucket = services.runtime.bucketFor(slug, request.ip);
    request.canaryBucket = bucket;
    const releaseSlot = await services.admission.admit(cls, tenant, gone.signal, bucket);
    request.releaseAdmission = releaseSlot;
    if (reply.raw.closed) releaseSlot();
    else reply.raw.once('close', releaseSlot);
    request.workTicket = { cls, tenant, signal: gone.signal, deadline: request.receivedAt + HASHING_DEADLINE_MS, hashed: false, bucket };
    const forged = refuseForgeable(request, ownOrigins);
    if (forged) return sendProblem(reply, forged);
  });

  // Every answer of a request in a canary comparison counts towards it (refusals at admission included).
  app.addHook('onResponse', async (request, reply) => {
    if (request.canaryBucket === undefined) return;
    const cls = requestClass(request.routeOptions.config?.admissionClass, request.headers);
    const slug = (request.params as { tenant?: string } | undefined)?.tenant;
    services.runtime.observe(slug, request.canaryBucket, cls, reply.statusCode, reply.elapsedTime);
  });

  // The handler and everything it starts run as the work of this request's
  // ticket, so the hashing pool knows whose hash it is (callback style: the
  // handler is called from `done`, inside the ticket's context).
  app.addHook('preHandler', (request, _reply, done) => {
    if (request.workTicket) runWithTicket(request.workTicket, done);
    else done();
  });

  // NUL is valid JSON but no text column takes it (PostgreSQL refuses it
  // outright): turned away here, before anything is read or written.
  app.addHook('preValidation', async (request) => {
    if (hasNul(request.params) || hasNul(request.query) || hasNul(request.body)) throw new AppError('invalid-request', 'text must not contain NUL characters');
    // A request sent with no body at all (no content type) means "nothing to add": an empty object, so a route whose
    // fields are all optional (a reset, a pass with the default lifetime) takes it, and one with required fields names them.
    if (request.body === undefined && request.method !== 'GET' && request.method !== 'HEAD') request.body = {};
  });

  app.setErrorHandler(errorHandler);
  app.setNotFoundHandler(notFoundHandler);

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Steadfast API',
        version: '1',
        description:
          'Sign-in, self-service, admin, app and operations API of Steadfast. Errors are RFC 9457 problem+json. OpenID Connect: discovery at /t/{tenant}/.well-known/openid-configuration.',
      },
      components: {
        securitySchemes: {
          bearerAuth: { type: 'http', scheme: 'bearer', description: 'A session token (sfs_…), or for /admin an admin token (sfa_…)' },
          apiKeyAuth: { type: 'http', scheme: 'bearer', description: 'An app API key (sfk_…) from POST /api/v1/admin/apps {kind: "api"}' },
        },
      },
    },
  });
  await app.register(cookie);
  await app.register(formbody, { bodyLimit: 16 * 1024 });
  await app.register(csrf, {
    cookieKey: cookieNames(services.config.publicUrl).csrf,
    cookieOpts: { path: '/', httpOnly: true, sameSite: 'lax', secure: services.config.publicUrl.startsWith('https:') },
    getToken: (request) => (request.body as Record<string, string> | undefined)?._csrf,
  });

  app.get<{ Params: { name: string } }>('/assets/:name', { schema: { hide: true }, config: { admissionClass: 'ops' } }, async (request, reply) => {
    // An own property only: `__proto__` or `toString` must not reach the object's prototype.
    const asset = Object.hasOwn(ASSETS, request.params.name) ? ASSETS[request.params.name] : undefined;
    if (!asset) throw new AppError('not-found');
    return reply.type(asset.type).header('cache-control', 'public, max-age=3600').send(asset.body);
  });
  app.get('/', { schema: { hide: true }, config: { admissionClass: 'ops' } }, async (_request, reply) =>
    sendProblem(reply, new AppError('not-found', 'sign in at /t/{tenant}/signin')),
  );

  app.get('/metrics', { schema: { hide: true }, config: { admissionClass: 'ops' } }, async (request, reply) => {
    // Per-tenant volumes and provider names are for operators only.
    if (!isOperator(request, services.config.opsToken))
      throw new AppError('forbidden', 'metrics are served to this host, or with the operator token (STEADFAST_OPS_TOKEN)');
    return reply.type(services.metrics.registry.contentType).send(await services.metrics.registry.metrics());
  });
  app.get('/api/v1/openapi.json', { schema: { hide: true }, config: { admissionClass: 'ops' } }, async () => app.swagger());

  await app.register(opsRoutes(services, readiness));
  await app.register(signinApi({ tenants: services.tenants, signin: services.signin }));
  await app.register(authenticatorApi({ tenants: services.tenants, methods: services.methods }));
  await app.register(
    meApi({
      auth: services.auth,
      management: services.management,
      passwords: services.passwords,
      events: services.events,
      reports: services.reports,
      sessions: services.sessions,
      oidcRevocation: services.oidcRevocation,
    }),
  );
  await app.register(adminApi({ auth: services.auth, admin: services.admin, users: services.users }));
  await app.register(clusterAdminApi({ auth: services.auth, cluster: services.cluster }));
  await app.register(configRoutes({ auth: services.auth, rollouts: services.rollouts, incidents: services.incidents, audit: services.audit }));
  await app.register(
    appApi({
      apps: services.apps,
      tenants: services.tenants,
      users: services.users,
      signin: services.signin,
      ephemeral: services.ephemeral,
      publicUrl: services.config.publicUrl,
    }),
  );
  const tenantPages = tenantLookup(services.tenants);
  const flash = pageFlash({ sealer: services.keyRing, now: () => services.clock.now(), secure: services.config.publicUrl.startsWith('https:') });
  await app.register(
    signinRoutes({
      tenants: tenantPages,
      signin: services.signin,
      auth: services.auth,
      sessions: services.sessions,
      oidcRevocation: services.oidcRevocation,
      knownBrowsers: services.knownBrowsers,
      flash,
      publicUrl: services.config.publicUrl,
    }),
  );
  await app.register(
    securityInfoRoutes({
      tenants: tenantPages,
      auth: services.auth,
      management: services.management,
      sessions: services.sessions,
      passwords: services.passwords,
      flash,
      codeLifetimeMinutes: services.config.delivery.code.lifetimeMinutes,
    }),
  );
  await app.register(authenticatorRoutes({ tenants: tenantPages, serviceWorker: SERVICE_WORKER }));
  await app.register(
    mySigninsRoutes({ tenants: tenantPages, auth: services.auth, events: services.events, reports: services.reports, passwords: services.passwords, flash }),
  );
  await app.register(
    consoleRoutes({
      tenants: tenantPages,
      auth: services.auth,
      cluster: services.cluster,
      admin: services.admin,
      users: services.users,
      passes: new IssuedPassHolder({ ephemeral: services.ephemeral, keyRing: services.keyRing }),
      activity: services.signinActivity,
      coverage: services.coverage,
      delivery: services.delivery,
      deliveryHealth: services.deliveryHealth,
      publicUrl: services.config.publicUrl,
      flash,
    }),
  );
  await app.register(
    policyHistoryRoutes({
      auth: services.auth,
      tenants: tenantPages,
      cluster: services.cluster,
      versions: services.configVersions,
      rollouts: services.rollouts,
      policies: services.tenants,
    }),
  );
  await app.register(
    oidcRoutes({
      tenants: services.tenants,
      oidc: services.oidc,
      auth: services.auth,
      anonymousStarts: services.anonymousStarts,
      ephemeral: services.ephemeral,
      clock: services.clock,
      publicUrl: services.config.publicUrl,
    }),
  );
  return app;
}

/**
 * Fastify's trust for X-Forwarded-For. A hop count trusts the nearest N
 * addresses (the socket's peer first): the deployment promises that only its
 * proxies reach the node. Addresses and networks trust only those peers.
 */
function trustedProxies(setting: false | number | string[]): false | string[] | ((address: string, hop: number) => boolean) {
  if (typeof setting === 'number') return (_address, hop) => hop < setting;
  return setting;
}

function hasNul(value: unknown, depth = 0): boolean {
  if (typeof value === 'string') return value.includes('\u0000');
  if (typeof value !== 'object' || value === null || depth > 32) return false;
  for (const [key, inner] of Object.entries(value)) if (key.includes('\u0000') || hasNul(inner, depth + 1)) return true;
  return false;
}
