import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { AppError } from '../../errors/app-error.ts';
import { problemCatalog } from '../../errors/catalog.ts';
import { formRoute } from '../../http/page/form-route.ts';
import { sendPage } from '../../http/page/send-page.ts';
import type { TenantPolicy } from '../../directory/policy.ts';
import { placeProblem, type PlacedProblem } from '../views/policy-problems.ts';
import type { FlashData, PageFlash } from '../../http/page/flash.ts';
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

// Stranded users named on the policy page; the rest are counted.
const STRANDED_SHOWN = 20;

export interface PolicyRoutesDeps extends ConsoleAccessDeps {
  admin: Pick<Administration, 'setPolicy' | 'policyCanary' | 'strandedBy' | 'strandedUsers'>;
  flash: PageFlash;
}

// The policy as the form's fields, as strings (the flash carries strings only); lists joined with commas.
function policyValues(policy: TenantPolicy): Record<string, string> {
  return {
    mfaRequired: policy.mfaRequired ? 'on' : '',
    allowedMethods: policy.allowedMethods.join(','),
    tapMinMinutes: String(policy.tap.minMinutes),
    tapMaxMinutes: String(policy.tap.maxMinutes),
    tapDefaultMinutes: String(policy.tap.defaultMinutes),
    tapOneTimeDefault: policy.tap.oneTimeDefault ? 'on' : '',
    accountFailures: String(policy.lockout.accountFailures),
    blockMinutes: String(policy.lockout.blockMinutes),
    rememberedDeviceDays: String(policy.rememberedDeviceDays),
    signinEventDays: String(policy.retention.signinEventDays),
    auditDays: String(policy.retention.auditDays),
    failMode: policy.failMode,
  };
}

// The choices of the form's fields (the number fields are shown from the strings themselves), over the saved policy.
function chosenPolicy(values: Record<string, string>, saved: TenantPolicy): TenantPolicy {
  const failMode = values.failMode === 'closed' || values.failMode === 'tap-only' ? values.failMode : saved.failMode;
  return {
    ...saved,
    mfaRequired: values.mfaRequired === 'on',
    allowedMethods: (values.allowedMethods ?? '').split(',').filter(Boolean) as TenantPolicy['allowedMethods'],
    tap: { ...saved.tap, oneTimeDefault: values.tapOneTimeDefault === 'on' },
    failMode,
  };
}

/**
 * The console's policy editor: the form, and saving it with every problem
 * named at its field. The post answers with a redirect to the form
 * (post-redirect-get); what was typed, or saved, and the problems travel in
 * the flash bound to the administrator's session. Problems are kept in order
 * as `fieldErrors` keyed "index:field".
 */
export function policyRoutes(deps: PolicyRoutesDeps): FastifyPluginAsyncTypebox {
  const { adminOr, viewer, actor } = consoleAccess(deps);
  return async (app) => {
    app.get('/t/:tenant/admin/policy', consoleView(PageParams, Type.Object({})), async (request, reply) => {
      const p = await adminOr(request, reply);
      if (!p) return reply;
      const [canary, stranded] = await Promise.all([
        deps.admin.policyCanary(p.tenant),
        deps.admin.strandedUsers(p.tenant, p.tenant.policy.allowedMethods, STRANDED_SHOWN),
      ]);
      const canaryNotice = canary && {
        kind: 'info' as const,
        text: `Version ${canary.version} of this policy is on its canary (${canary.canaryPercent}% of users) until ${new Date(canary.createdAt + canary.bakeSeconds * 1000).toISOString().replace('T', ' ').slice(0, 16)} UTC. Changes here are refused until it is promoted or rolled back.`,
      };
      const flash = deps.flash.read(request, reply, p.tenant.slug, p.session.id);
      const mine = flash?.for === 'policy' ? flash : undefined;
      const problems: PlacedProblem[] = Object.entries(mine?.fieldErrors ?? {})
        .map(([key, text]) => ({ index: Number(key.slice(0, key.indexOf(':'))), field: key.slice(key.indexOf(':') + 1) || undefined, text }))
        .sort((a, b) => a.index - b.index)
        .map(({ field, text }) => ({ field, text }));
      const values = mine?.values;
      return sendPage(
        reply,
        policyView({
          ...viewer(reply, p),
          policy: values ? chosenPolicy(values, p.tenant.policy) : p.tenant.policy,
          values,
          notice: mine?.notice ?? canaryNotice,
          problems,
          historyLink: canary !== undefined,
          stranded,
        }),
      );
    });

    app.post('/t/:tenant/admin/policy', formRoute(app, 'admin', PageParams, PolicyForm), async (request, reply) => {
      const p = await adminOr(request, reply, { change: true });
      if (!p) return reply;
      const b = request.body;
      // Numbers as typed: a blank or a word reaches the validator as it is and is named there.
      const num = (v: string | undefined) => (v === undefined || v.trim() === '' || Number.isNaN(Number(v)) ? v : Number(v));
      const allowedMethods = b.allowedMethods === undefined ? [] : Array.isArray(b.allowedMethods) ? b.allowedMethods : [b.allowedMethods];
      const input = {
        mfaRequired: b.mfaRequired === 'on',
        allowedMethods,
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
      const go = (data: FlashData) => {
        deps.flash.set(reply, p.tenant.slug, p.session.id, { for: 'policy', ...data });
        return reply.redirect(`/t/${p.tenant.slug}/admin/policy`, 303);
      };
      try {
        const policy = await deps.admin.setPolicy(p.tenant, actor(p), input);
        // Users left with only methods of types no longer allowed sign in with a pass only: said now, not found
        // out at their next sign-in (twenty-fifth round).
        const stranded = await deps.admin.strandedBy(p.tenant, policy.allowedMethods);
        const strandedText =
          stranded === 0
            ? ''
            : ` ${stranded} ${stranded === 1 ? 'user has' : 'users have'} only sign-in methods this policy no longer allows: they sign in with a Temporary Access Pass only, until you issue one or allow their method again.`;
        // The saved policy travels too: another node may serve the page before its tenant cache has it.
        return go({
          notice: { kind: stranded === 0 ? 'info' : 'error', text: `Policy saved. Every node applies it within a few seconds.${strandedText}` },
          values: policyValues(policy),
        });
      } catch (err) {
        // The form shows what was typed, every field of it: numbers as the strings typed, the choices as chosen.
        const typed: Record<string, string> = {
          ...Object.fromEntries(NUMBER_FIELDS.map((name) => [name, b[name] ?? ''])),
          mfaRequired: b.mfaRequired === 'on' ? 'on' : '',
          allowedMethods: allowedMethods.join(','),
          tapOneTimeDefault: b.tapOneTimeDefault === 'on' ? 'on' : '',
          failMode: b.failMode ?? '',
        };
        if (err instanceof AppError && err.code === 'canary-in-progress') {
          // Nothing was saved: a version is on its canary, and the history page (linked while it bakes) is where it is finished or rolled back.
          return go({ notice: { kind: 'error', text: `The policy was not saved: ${err.detail ?? err.message}.` }, values: typed });
        }
        if (!(err instanceof AppError) || err.code !== 'invalid-policy') throw err;
        const problems = Array.isArray(err.extra.problems) ? (err.extra.problems as string[]) : [problemCatalog['invalid-policy'].title];
        const placed = problems.map(placeProblem);
        return go({
          notice: { kind: 'error', text: 'The policy was not saved. Correct these and save again:' },
          values: typed,
          fieldErrors: Object.fromEntries(placed.map((x, i) => [`${i}:${x.field ?? ''}`, x.text])),
        });
      }
    });
  };
}
