/** Health, readiness and metrics for load balancers and operators, and the drain on shutdown. */
import type { FastifyPluginAsync } from 'fastify';
import { AppError } from '../../errors/app-error.ts';
import { problemBody, PROBLEM_CONTENT_TYPE } from '../../http/problem.ts';
import type { Services } from '../services.ts';
import { statusPage } from '../../status/status-page.ts';
import { isOperator } from '../../http/operator-access.ts';

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
function coarse(current: { status: string; components: { durable: { state: string }; ephemeral: { state: string }; delivery: Partial<Record<string, { state: string }>> } }) {
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
        durable: { state: durable.state, engine: services.durable.engine },
        ephemeral: { state: ephemeral.state, engine: services.ephemeral.kind },
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

    app.get('/status', { config: { admissionClass: 'ops' }, schema: { hide: true } }, async (_request, reply) => {
      const { status, components, cluster } = await currentStatus();
      return reply.type('text/html; charset=utf-8').header('cache-control', 'no-store').send(statusPage(status, components, cluster));
    });

    app.get('/readyz', { config: { admissionClass: 'ops' }, schema: { tags: ['operations'] } }, async (request, reply) => {
      const [durable, ephemeral] = await Promise.all([check(() => services.durable.ping()), check(() => services.ephemeral.ping())]);
      const components = {
        durable: { ...durable, engine: services.durable.engine },
        ephemeral: { ...ephemeral, engine: services.ephemeral.kind },
        passwordHashing: { state: 'up' as const, ...services.hasher.pool.state },
        // Shedding load is the node working as designed, not a reason to take it out of rotation.
        admission: { state: 'up' as const, ...services.admission.state },
        // A vendor outage is shared by every node: taking nodes out of rotation would not route around it.
        delivery: services.delivery.health(),
      };
      const ready = !readiness.draining && durable.state === 'up' && ephemeral.state === 'up';
      // A load balancer needs the status code; the figures are for operators.
      const shown = isOperator(request, services.config.opsToken) ? components : { durable: { state: durable.state }, ephemeral: { state: ephemeral.state } };
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
