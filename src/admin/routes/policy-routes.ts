import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { AppError } from '../../errors/app-error.ts';
import { problemCatalog } from '../../errors/catalog.ts';
import { formRoute } from '../../http/page/form-route.ts';
import { sendPage } from '../../http/page/send-page.ts';
import type { TenantPolicy } from '../../directory/policy.ts';
import { placeProblem } from '../views/policy-problems.ts';
import type { Administration } from '../administration.ts';
import { policyView } from '../views/policy-view.ts';
import { consoleAccess, consoleView, type ConsoleAccessDeps } from './console-access.ts';

const Field = (max = 200) => Type.Optional(Type.String({ maxLength: max }));
const PageParams = Type.Object({ tenant: Type.String({ minLength: 1, maxLength: 64 }) });
const PolicyForm = Type.Object({
  _csrf: Field(),
  mfaRequired: Field(5),
  allowedMethods: Type.Optional(Type.Union([Type.String({ maxLength: 40 }), Type.Array(Type.String({ maxLength: 40 }), { maxItems: 20 })])),
  tapMinMinutes: Field(10),
  tapMaxMinutes: Field(10),
  tapDefaultMinutes: Field(10),
  tapOneTimeDefault: Field(5),
  accountFailures: Field(10),
  blockMinutes: Field(10),
  rememberedDeviceDays: Field(10),
  failMode: Field(20),
  signinEventDays: Field(10),
  auditDays: Field(10),
});

// The form's number fields, kept as typed when the policy is not saved.
const NUMBER_FIELDS = [
  'tapMinMinutes',
  'tapMaxMinutes',
  'tapDefaultMinutes',
  'accountFailures',
  'blockMinutes',
  'rememberedDeviceDays',
  'signinEventDays',
  'auditDays',
] as const;

export interface PolicyRoutesDeps extends ConsoleAccessDeps {
  admin: Pick<Administration, 'setPolicy'>;
}

/** The console's policy editor: the form, and saving it with every problem named. */
export function policyRoutes(deps: PolicyRoutesDeps): FastifyPluginAsyncTypebox {
  const { adminOr, viewer, actor } = consoleAccess(deps);
  return async (app) => {
    app.get('/t/:tenant/admin/policy', consoleView(PageParams, Type.Object({})), async (request, reply) => {
      const p = await adminOr(request, reply);
      return p ? sendPage(reply, policyView({ ...viewer(reply, p), policy: p.tenant.policy })) : reply;
    });

    app.post('/t/:tenant/admin/policy', formRoute(app, 'admin', PageParams, PolicyForm), async (request, reply) => {
      const p = await adminOr(request, reply, { change: true });
      if (!p) return reply;
      const b = request.body;
      // Numbers as typed: a blank or a word reaches the validator as it is and is named there.
      const num = (v: string | undefined) => (v === undefined || v.trim() === '' || Number.isNaN(Number(v)) ? v : Number(v));
      const input = {
        mfaRequired: b.mfaRequired === 'on',
        allowedMethods: b.allowedMethods === undefined ? [] : Array.isArray(b.allowedMethods) ? b.allowedMethods : [b.allowedMethods],
        tap: {
          minMinutes: num(b.tapMinMinutes),
          maxMinutes: num(b.tapMaxMinutes),
          defaultMinutes: num(b.tapDefaultMinutes),
          oneTimeDefault: b.tapOneTimeDefault === 'on',
        },
        lockout: { accountFailures: num(b.accountFailures), blockMinutes: num(b.blockMinutes) },
        rememberedDeviceDays: num(b.rememberedDeviceDays),
        failMode: b.failMode ?? p.tenant.policy.failMode,
        retention: { signinEventDays: num(b.signinEventDays), auditDays: num(b.auditDays) },
      };
      try {
        const policy = await deps.admin.setPolicy(p.tenant, actor(p), input);
        return sendPage(
          reply,
          policyView({ ...viewer(reply, p), policy, notice: { kind: 'info', text: 'Policy saved. Every node applies it within a few seconds.' } }),
        );
      } catch (err) {
        if (!(err instanceof AppError) || err.code !== 'invalid-policy') throw err;
        const problems = Array.isArray(err.extra.problems) ? (err.extra.problems as string[]) : [problemCatalog['invalid-policy'].title];
        // The form shows what was typed, every field of it: numbers as the strings typed, the choices as chosen.
        const saved = p.tenant.policy;
        const typed: TenantPolicy = {
          ...saved,
          mfaRequired: input.mfaRequired,
          allowedMethods: input.allowedMethods as TenantPolicy['allowedMethods'],
          tap: { ...saved.tap, oneTimeDefault: input.tap.oneTimeDefault },
          failMode: input.failMode === 'closed' || input.failMode === 'tap-only' ? input.failMode : saved.failMode,
        };
        const values = Object.fromEntries(NUMBER_FIELDS.map((name) => [name, b[name] ?? '']));
        const notice = { kind: 'error' as const, text: 'The policy was not saved. Correct these and save again:' };
        return sendPage(reply, policyView({ ...viewer(reply, p), policy: typed, notice, problems: problems.map(placeProblem), values }), 400);
      }
    });
  };
}
