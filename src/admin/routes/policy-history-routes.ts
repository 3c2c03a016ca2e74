import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply } from 'fastify';
import type { Principal } from '../../http/authenticate.ts';
import { formRoute } from '../../http/page/form-route.ts';
import { sendPage } from '../../http/page/send-page.ts';
import { shownError } from '../../http/page/shown-error.ts';
import type { ConfigRollouts } from '../../config/config-rollouts.ts';
import { diffDocuments } from '../../config/config-diff.ts';
import { tenantScope, type ConfigVersions } from '../../config/config-versions.ts';
import type { Tenants } from '../../directory/tenants.ts';
import type { Notice } from '../views/console-layout.ts';
import { policyHistoryView } from '../views/policy-history-view.ts';
import { policyRollbackConfirmView } from '../views/policy-rollback-view.ts';
import { consoleAccess, consoleView, type ConsoleAccessDeps } from './console-access.ts';

export interface PolicyHistoryDeps extends ConsoleAccessDeps {
  versions: Pick<ConfigVersions, 'get'>;
  rollouts: Pick<ConfigRollouts, 'status' | 'rollback'>;
  policies: Pick<Tenants, 'storedPolicy'>;
}

const PageParams = Type.Object({ tenant: Type.String({ minLength: 1, maxLength: 64 }) });
// Versions travel as text and are read after the administrator is known: a malformed one is a page that says so, not a 400 before any check.
const VersionField = Type.Optional(Type.String({ maxLength: 12 }));
const versionOf = (value: string | undefined) => (value !== undefined && /^[1-9]\d{0,8}$/.test(value) ? Number(value) : undefined);

/**
 * The console's policy history: every version with its diff, and a rollback
 * to any earlier version (or the end of a canary) in two steps: the button on
 * the history leads to a confirmation page saying what will change for whom;
 * its form (CSRF, a recent sign-in, as every console change) does it, through
 * the same rollout the API and the CLI use, so it is audited and kept in the
 * history; then back to the history (post-redirect-get).
 */
export function policyHistoryRoutes(deps: PolicyHistoryDeps): FastifyPluginAsyncTypebox {
  const { adminOr, viewer, actor } = consoleAccess(deps);
  return async (app) => {
    const historyPage = async (reply: FastifyReply, p: Principal, notice?: Notice, status = 200) => {
      const { history, lastGood } = await deps.rollouts.status(tenantScope(p.tenant.id));
      return sendPage(reply, policyHistoryView({ ...viewer(reply, p), versions: history, current: lastGood?.version, notice }), status);
    };

    app.get('/t/:tenant/admin/policy/history', consoleView(PageParams, Type.Object({ done: VersionField })), async (request, reply) => {
      const p = await adminOr(request, reply);
      if (!p) return reply;
      const done = versionOf(request.query.done);
      const version = done === undefined ? undefined : await deps.versions.get(tenantScope(p.tenant.id), done);
      const notice: Notice | undefined = version
        ? {
            kind: 'info',
            text:
              version.state === 'rolled-back'
                ? `Version ${version.version} is rolled back: everyone is on the current policy.`
                : `Version ${version.version} is the policy for everyone now. Every node applies it within a few seconds.`,
          }
        : undefined;
      return historyPage(reply, p, notice);
    });

    app.get('/t/:tenant/admin/policy/history/rollback', consoleView(PageParams, Type.Object({ version: VersionField })), async (request, reply) => {
      const p = await adminOr(request, reply);
      if (!p) return reply;
      const number = versionOf(request.query.version);
      const version = number === undefined ? undefined : await deps.versions.get(tenantScope(p.tenant.id), number);
      if (!version) return historyPage(reply, p, { kind: 'error', text: 'There is no such version of this policy.' }, 404);
      const current = (await deps.policies.storedPolicy(p.tenant.id)) ?? p.tenant.policy;
      return sendPage(reply, policyRollbackConfirmView({ ...viewer(reply, p), version, changes: diffDocuments(current, version.document) }));
    });

    app.post(
      '/t/:tenant/admin/policy/history/rollback',
      formRoute(
        app,
        'admin',
        PageParams,
        Type.Object({ _csrf: Type.Optional(Type.String({ maxLength: 200 })), version: VersionField, reason: Type.Optional(Type.String({ maxLength: 500 })) }),
      ),
      async (request, reply) => {
        const p = await adminOr(request, reply, { change: true });
        if (!p) return reply;
        const version = versionOf(request.body.version);
        if (version === undefined) return historyPage(reply, p, { kind: 'error', text: 'There is no such version of this policy.' }, 404);
        try {
          const done = await deps.rollouts.rollback(tenantScope(p.tenant.id), {
            version,
            actor: actor(p),
            reason: request.body.reason?.trim() || 'rolled back from the admin console',
          });
          return await reply.redirect(`/t/${encodeURIComponent(p.tenant.slug)}/admin/policy/history?done=${done.version}`, 303);
        } catch (err) {
          const { text, status } = shownError(err);
          return historyPage(reply, p, { kind: 'error', text: `Nothing was rolled back: ${text[0]!.toLowerCase()}${text.slice(1)}` }, status);
        }
      },
    );
  };
}
