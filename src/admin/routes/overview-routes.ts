import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { sendPage } from '../../http/page/send-page.ts';
import type { SigninActivity } from '../../activity/signin-activity.ts';
import type { RegistrationCoverage } from '../../methods/registration-coverage.ts';
import type { Delivery } from '../../delivery/delivery.ts';
import type { DeliveryHealthLog } from '../../delivery/delivery-health-log.ts';
import type { Channel } from '../../delivery/channel.ts';
import { overviewView } from '../views/overview-view.ts';
import { consoleAccess, consoleView, type ConsoleAccessDeps } from './console-access.ts';

const PageParams = Type.Object({ tenant: Type.String({ minLength: 1, maxLength: 64 }) });

export interface OverviewRoutesDeps extends ConsoleAccessDeps {
  activity: Pick<SigninActivity, 'lastDay'>;
  /** The tenant's registration coverage, counted by the database. */
  coverage: (tenantId: string) => Promise<RegistrationCoverage>;
  delivery: Pick<Delivery, 'health'>;
  deliveryHealth: Pick<DeliveryHealthLog, 'lastDay'>;
}

/** The console's overview page: charts of the tenant's last day and its users' registration. */
export function overviewRoutes(deps: OverviewRoutesDeps): FastifyPluginAsyncTypebox {
  const { adminOr, viewer } = consoleAccess(deps);
  return async (app) => {
    app.get('/t/:tenant/admin/overview', consoleView(PageParams, Type.Object({})), async (request, reply) => {
      const p = await adminOr(request, reply);
      if (!p) return reply;
      const health = deps.delivery.health();
      const configured = (Object.entries(health) as [Channel, NonNullable<(typeof health)[Channel]>][]).flatMap(([channel, h]) =>
        h.providers.map((pr) => ({ channel, provider: pr.name, state: pr.state })),
      );
      const [day, coverage, days] = await Promise.all([
        deps.activity.lastDay(p.tenant.id),
        deps.coverage(p.tenant.id),
        deps.deliveryHealth.lastDay(configured.map(({ channel, provider }) => ({ channel, provider }))),
      ]);
      const providers = configured.map((c, i) => ({ ...c, hours: days[i]!.hours }));
      return sendPage(reply, overviewView({ ...viewer(reply, p), day, coverage, providers }));
    });
  };
}
