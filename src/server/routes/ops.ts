/** Health, readiness and metrics for load balancers and operators, and the drain on shutdown. */
import type { FastifyPluginAsync } from 'fastify';
import { AppError } from '../../errors/app-error.ts';
import { problemBody, PROBLEM_CONTENT_TYPE } from '../../http/problem.ts';
import type { Services } from '../services.ts';
import { statusPage } from '../../status/status-page.ts';
import { isOperator } from '../../http/operator-access.ts';
import { uptimeDays } from '../../incidents/uptime.ts';
import { COMPONENT_NAMES } from '../../incidents/component-watch.ts';
import { incidentsFeed } from '../../status/incidents-feed.ts';
import type { StatusHistory } from '../../status/status-page.ts';

export interface Readiness {
  /** Set while the node drains on shutdown, so the load balancer stops sending before it goes. */
  draining: boolean;
}

const CHECK_TIMEOUT_MS = 1000;

async function check(probe: () => Promise<void>): Promise<{ state: 'up' | 'down'; error?: string }> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      probe(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error('timed out')), CHECK_TIMEOUT_MS);
      }),
    ]);
    return { state: 'up' };
  } catch (err) {
    return { state: 'down', error: (err as Error).message.slice(0, 200) };
  } finally {
    clearTimeout(timer);
  }
}

/** What anyone may read of the status: each part's state in words, no engines, figures or vendors. */
function coarse(current: {
  status: string;
  components: {
    durable: { state: string; fallback?: string };
    ephemeral: { state: string; fallback?: string };
    delivery: Partial<Record<string, { state: string }>>;
  };
}) {
  const { durable, ephemeral, delivery } = current.components;
  return {
    status: current.status,
    components: {
      durable: { state: durable.state },
      ephemeral: { state: ephemeral.state },
      delivery: Object.fromEntries(Object.entries(delivery).map(([channel, health]) => [channel, { state: health!.state }])),
    },
  };
}

/** Liveness and readiness for load balancers and orchestrators. */
export function opsRoutes(services: Services, readiness: Readiness): FastifyPluginAsync {
  return async (app) => {
    app.get('/healthz', { config: { admissionClass: 'ops' }, schema: { tags: ['operations'] } }, async () => ({ status: 'ok' }));

    /** While Redis is away, where flows and codes go instead (words anyone may read: no engine names beyond the tier). */
    const fallback = (state: 'up' | 'down') => {
      const serving = services.ephemeral.servingFrom();
      return state === 'down' && serving !== services.ephemeral.kind ? { fallback: serving } : {};
    };

    /** While the database is away, that sign-in runs from the local fallback (and how stale it is; the journal waiting). */
    const durableFallback = (state: 'up' | 'down', detailed: boolean) => {
      const fallback = services.fallback;
      if (!fallback || (state === 'up' && !fallback.usesFallback())) return {};
      const signin = fallback.snapshot ? 'local-fallback' : 'unavailable';
      return detailed
        ? {
            fallback: signin,
            mode: fallback.mode,
            fallbackAgeSeconds: Math.round(fallback.ageSeconds()),
            journalDepth: fallback.journal.depth,
            changes: 'paused',
          }
        : { fallback: signin, changes: 'paused' };
    };

    /** Everything the status JSON and page show, measured now. */
    const currentStatus = async () => {
      const [durable, ephemeral, cluster] = await Promise.all([
        check(() => services.durable.ping()),
        check(() => services.ephemeral.ping()),
        // Membership is read fresh; with both stores away, the last heartbeat's view.
        services.cluster.view().catch(() => services.cluster.latest ?? null),
      ]);
      const count = async (counter: typeof services.metrics.shed) => (await counter.get()).values.reduce((n, v) => n + v.value, 0);
      // Refused at the door and refused at the hashing pool alike.
      const shed = (await count(services.metrics.shed)) + (await count(services.metrics.hashingShed));
      const components = {
        durable: { state: durable.state, engine: services.durable.engine, ...durableFallback(durable.state, true) },
        ephemeral: { state: ephemeral.state, engine: services.ephemeral.kind, ...fallback(ephemeral.state) },
        admission: { state: 'up' as const, ...services.admission.state, shedTotal: shed },
        delivery: services.delivery.health(),
      };
      const channelTrouble = Object.values(components.delivery).some((c) => c.state !== 'up');
      const down = durable.state === 'down' || ephemeral.state === 'down' || channelTrouble;
      return { status: down ? ('degraded' as const) : readiness.draining ? ('draining' as const) : ('operational' as const), components, cluster };
    };

    app.get(
      '/api/v1/status',
      {
        config: { admissionClass: 'ops' },
        schema: {
          tags: ['operations'],
          summary: 'Component health in words anyone may read; operators (this host, or STEADFAST_OPS_TOKEN) also get engines, admission figures and providers',
        },
      },
      async (request) => {
        const current = await currentStatus();
        return isOperator(request, services.config.opsToken) ? current : coarse(current);
      },
    );

    /** Incidents and 90-day bars, for everyone (no tenant) or for one tenant; empty when the store cannot say. */
    const history = async (tenant: { id: string; name: string; slug: string } | undefined, channels: string[]): Promise<StatusHistory> => {
      const base = tenant ? `/t/${tenant.slug}/status` : '/status';
      const [current, recent] = await Promise.all([services.incidents.current(tenant?.id), services.incidents.recent(tenant?.id)]).catch(() => [[], []]);
      const now = services.clock.now();
      const components = ['durable', 'ephemeral', ...channels, 'config'];
      return {
        current,
        recent,
        bars: components.map((c) => ({ label: COMPONENT_NAMES[c] ?? c, days: uptimeDays(recent, c, now) })),
        feedUrl: `${base}/feed.atom`,
        ...(tenant ? { tenantName: tenant.name } : {}),
      };
    };
    const feed = async (tenant: { id: string; name: string; slug: string } | undefined) => {
      const base = `${services.config.publicUrl}${tenant ? `/t/${tenant.slug}/status` : '/status'}`;
      return incidentsFeed({
        selfUrl: `${base}/feed.atom`,
        pageUrl: base,
        title: `${tenant ? tenant.name : 'Steadfast'} incidents`,
        incidents: await services.incidents.recent(tenant?.id),
        now: services.clock.now(),
      });
    };
    const tenantOf = async (slug: string) => {
      const tenant = await services.tenants.findBySlug(slug);
      if (!tenant) throw new AppError('not-found', 'no such tenant');
      return tenant;
    };

    app.get('/status', { config: { admissionClass: 'ops' }, schema: { hide: true } }, async (_request, reply) => {
      const { status, components, cluster } = await currentStatus();
      const page = statusPage(status, components, cluster, await history(undefined, Object.keys(components.delivery)));
      return reply.type('text/html; charset=utf-8').header('cache-control', 'no-store').send(page);
    });
    app.get('/status/feed.atom', { config: { admissionClass: 'ops' }, schema: { hide: true } }, async (_request, reply) =>
      reply
        .type('application/atom+xml; charset=utf-8')
        .header('cache-control', 'no-store')
        .send(await feed(undefined)),
    );

    // A tenant's own page: the same components, its own incidents besides everyone's; no node figures.
    app.get<{ Params: { tenant: string } }>('/t/:tenant/status', { config: { admissionClass: 'ops' }, schema: { hide: true } }, async (request, reply) => {
      const tenant = await tenantOf(request.params.tenant);
      const { status, components } = await currentStatus();
      const page = statusPage(status, components, null, await history(tenant, Object.keys(components.delivery)));
      return reply.type('text/html; charset=utf-8').header('cache-control', 'no-store').send(page);
    });
    app.get<{ Params: { tenant: string } }>(
      '/t/:tenant/status/feed.atom',
      { config: { admissionClass: 'ops' }, schema: { hide: true } },
      async (request, reply) =>
        reply
          .type('application/atom+xml; charset=utf-8')
          .header('cache-control', 'no-store')
          .send(await feed(await tenantOf(request.params.tenant))),
    );

    app.get('/readyz', { config: { admissionClass: 'ops' }, schema: { tags: ['operations'] } }, async (request, reply) => {
      const [durable, ephemeral] = await Promise.all([check(() => services.durable.ping()), check(() => services.ephemeral.ping())]);
      const components = {
        durable: { ...durable, engine: services.durable.engine, ...durableFallback(durable.state, true) },
        ephemeral: { ...ephemeral, engine: services.ephemeral.kind, ...fallback(ephemeral.state) },
        passwordHashing: { state: 'up' as const, ...services.hasher.pool.state },
        // Shedding load is the node working as designed, not a reason to take it out of rotation.
        admission: { state: 'up' as const, ...services.admission.state },
        // A vendor outage is shared by every node: taking nodes out of rotation would not route around it.
        delivery: services.delivery.health(),
      };
      // Redis away with a fallback serving is the node working as designed (every node shares the outage;
      // taking them out of rotation would turn it into a full one).
      const ephemeralServes = ephemeral.state === 'up' || 'fallback' in components.ephemeral;
      // The same for the database when this node signs in from its local fallback.
      const durableServes = durable.state === 'up' || components.durable.fallback === 'local-fallback';
      const ready = !readiness.draining && durableServes && ephemeralServes;
      // A load balancer needs the status code; the figures are for operators.
      const shown = isOperator(request, services.config.opsToken)
        ? components
        : { durable: { state: durable.state, ...durableFallback(durable.state, false) }, ephemeral: { state: ephemeral.state, ...fallback(ephemeral.state) } };
      if (ready) return { status: 'ready', components: shown };
      const detail = readiness.draining ? 'this node is shutting down' : 'a store this node needs is unreachable';
      return reply
        .code(503)
        .header('retry-after', '5')
        .type(PROBLEM_CONTENT_TYPE)
        .send({ ...problemBody(new AppError('unavailable', detail)), status: 503, components: shown, draining: readiness.draining });
    });
  };
}
