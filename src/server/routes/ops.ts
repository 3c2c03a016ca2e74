import type { FastifyPluginAsync } from 'fastify';
import { AppError } from '../../errors/app-error.ts';
import { problemBody, PROBLEM_CONTENT_TYPE } from '../../http/problem.ts';
import type { Services } from '../services.ts';
import { statusPage } from '../../status/status-page.ts';

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

/** Liveness and readiness for load balancers and orchestrators. */
export function opsRoutes(services: Services, readiness: Readiness): FastifyPluginAsync {
  return async (app) => {
    app.get('/healthz', { config: { admissionClass: 'ops' }, schema: { tags: ['operations'] } }, async () => ({ status: 'ok' }));

    /** Everything the status JSON and page show, measured now. */
    const currentStatus = async () => {
      const [durable, ephemeral, cluster] = await Promise.all([
        check(() => services.durable.ping()),
        check(() => services.ephemeral.ping()),
        // Membership is read fresh; with both stores away, the last heartbeat's view.
        services.cluster.view().catch(() => services.cluster.latest ?? null),
      ]);
      const shed = (await services.metrics.shed.get()).values.reduce((n, v) => n + v.value, 0);
      const components = {
        durable: { state: durable.state, engine: services.durable.engine },
        ephemeral: { state: ephemeral.state, engine: services.ephemeral.kind },
        admission: { state: 'up' as const, ...services.admission.state, shedTotal: shed },
        delivery: services.delivery.health(),
      };
      const channelTrouble = Object.values(components.delivery).some((c) => c.state !== 'up');
      const down = durable.state === 'down' || ephemeral.state === 'down' || channelTrouble;
      return { status: down ? ('degraded' as const) : readiness.draining ? ('draining' as const) : ('operational' as const), components, cluster };
    };

    app.get('/api/v1/status', { config: { admissionClass: 'ops' }, schema: { tags: ['operations'], summary: 'Component health and load shedding, for status pages and tenants' } }, currentStatus);

    app.get('/status', { config: { admissionClass: 'ops' }, schema: { hide: true } }, async (_request, reply) => {
      const { status, components, cluster } = await currentStatus();
      return reply.type('text/html; charset=utf-8').header('cache-control', 'no-store').send(statusPage(status, components, cluster));
    });

    app.get('/readyz', { config: { admissionClass: 'ops' }, schema: { tags: ['operations'] } }, async (_request, reply) => {
      const [durable, ephemeral] = await Promise.all([check(() => services.durable.ping()), check(() => services.ephemeral.ping())]);
      const components = {
        durable: { ...durable, engine: services.durable.engine },
        ephemeral: { ...ephemeral, engine: services.ephemeral.kind },
        passwordHashing: { state: 'up' as const, queued: services.hasher.pending },
        // Shedding load is the node working as designed, not a reason to take it out of rotation.
        admission: { state: 'up' as const, ...services.admission.state },
        // A vendor outage is shared by every node: taking nodes out of rotation would not route around it.
        delivery: services.delivery.health(),
      };
      const ready = !readiness.draining && durable.state === 'up' && ephemeral.state === 'up';
      if (ready) return { status: 'ready', components };
      const detail = readiness.draining ? 'this node is shutting down' : 'a store this node needs is unreachable';
      return reply
        .code(503)
        .header('retry-after', '5')
        .type(PROBLEM_CONTENT_TYPE)
        .send({ ...problemBody(new AppError('unavailable', detail)), status: 503, components, draining: readiness.draining });
    });
  };
}
