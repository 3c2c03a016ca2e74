import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { RequestAuth } from '../http/authenticate.ts';
import type { ClusterMonitor } from '../cluster/cluster-monitor.ts';

export const ClusterNode = Type.Object({
  name: Type.String(),
  state: Type.Union([Type.Literal('up'), Type.Literal('draining'), Type.Literal('down')]),
  capacityPerSecond: Type.Number(),
  loadPerSecond: Type.Number(),
  lastSeen: Type.String({ format: 'date-time' }),
});

export const ClusterHeadroom = Type.Object({
  nodes: Type.Array(ClusterNode),
  capacityPerSecond: Type.Number({ description: 'password sign-ins per second the nodes that are up carry together' }),
  peakLoadPerSecond: Type.Number({ description: 'busiest interval of the peak window (default 7 days), password checks per second' }),
  survivesNodeLoss: Type.Boolean(),
  capacityAfterLossPerSecond: Type.Number(),
});

export interface ClusterAdminApiDeps {
  auth: Pick<RequestAuth, 'requireAdmin'>;
  cluster: Pick<ClusterMonitor, 'view' | 'clustered'>;
}

/** `GET /api/v1/admin/cluster`: the headroom with the warning administrators act on. */
export function clusterAdminApi(deps: ClusterAdminApiDeps): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.get(
      '/api/v1/admin/cluster',
      {
        schema: {
          tags: ['admin'],
          security: [{ bearerAuth: [] }],
          summary: 'Cluster members, capacity, observed peak and whether losing the largest node is survivable; `warning` says what to do when it is not',
          response: { 200: Type.Object({ ...ClusterHeadroom.properties, warning: Type.Union([Type.String(), Type.Null()]) }) },
        },
        config: { admissionClass: 'admin' },
      },
      async (request) => {
        await deps.auth.requireAdmin(request);
        const view = await deps.cluster.view();
        const warning =
          deps.cluster.clustered && !view.survivesNodeLoss
            ? `This cluster would not survive losing a node at its observed peak: losing the largest node leaves ${view.capacityAfterLossPerSecond} password sign-ins per second for a peak of ${view.peakLoadPerSecond}. Add a node or capacity before changing anything.`
            : null;
        return { ...view, warning };
      },
    );
  };
}
