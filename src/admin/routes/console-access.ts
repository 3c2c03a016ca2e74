import type { TSchema } from '@fastify/type-provider-typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../../errors/app-error.ts';
import type { Principal, RequestAuth } from '../../http/authenticate.ts';
import { principalOr } from '../../http/page/principal-or.ts';
import { sendPage } from '../../http/page/send-page.ts';
import type { TenantLookup } from '../../http/page/tenant-lookup.ts';
import type { ClusterMonitor } from '../../cluster/cluster-monitor.ts';
import type { ConsoleViewer } from '../views/console-layout.ts';
import { refusalView, type ConsoleRefusal } from '../views/refusal-view.ts';

export interface ConsoleAccessDeps {
  tenants: TenantLookup;
  auth: Pick<RequestAuth, 'findPrincipal' | 'requireAdministrator'>;
  /** For the warning every console page shows when the cluster is short of headroom. */
  cluster: Pick<ClusterMonitor, 'latest' | 'clustered'>;
}

const REFUSALS: Partial<Record<string, ConsoleRefusal>> = {
  'reauthentication-required': 'reauthentication-required',
  'second-factor-required': 'second-factor-required',
};

/**
 * Who may use the console, shared by its route modules: `adminOr` answers the
 * signed-in administrator, or undefined after a redirect to sign in or a
 * refusal page; `viewer` is what every console page shows of them.
 */
export function consoleAccess(deps: ConsoleAccessDeps) {
  const signedIn = principalOr(deps);

  /**
   * A change (`change`) also needs a sign-in within the last 10 minutes: an
   * administrator's forgotten session must not reset anyone.
   */
  const adminOr = async (request: FastifyRequest, reply: FastifyReply, options: { change?: boolean } = {}): Promise<Principal | undefined> => {
    const p = await signedIn(request, reply, 'admin');
    if (!p) return undefined;
    try {
      deps.auth.requireAdministrator(p, options.change === true);
      return p;
    } catch (err) {
      if (!(err instanceof AppError)) throw err;
      const refusal = REFUSALS[err.code] ?? 'not-administrator';
      void sendPage(reply, refusalView({ tenant: p.tenant, username: p.user.username, csrf: reply.generateCsrf(), refusal }), 403);
      return undefined;
    }
  };

  const viewer = (reply: FastifyReply, p: Principal): ConsoleViewer => {
    const latest = deps.cluster.latest;
    return {
      tenant: p.tenant,
      username: p.user.username,
      csrf: reply.generateCsrf(),
      shortfall: latest && deps.cluster.clustered && !latest.survivesNodeLoss ? latest : undefined,
    };
  };

  /** Who an administrator's actions are recorded as in the audit log. */
  const actor = (p: Principal) => `user:${p.user.id}`;

  return { adminOr, viewer, actor };
}

/** The schema and admission class of a console page (hidden from the API document). */
export const consoleView = <P extends TSchema, Q extends TSchema>(params: P, querystring: Q) => ({
  schema: { params, querystring, hide: true },
  config: { admissionClass: 'admin' as const },
});
