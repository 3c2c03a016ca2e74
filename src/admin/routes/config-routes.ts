import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { RequestAuth } from '../../http/authenticate.ts';
import type { ConfigRollouts } from '../../config/config-rollouts.ts';
import { refuseTokenFor } from '../administration.ts';
import { tenantScope, type ConfigVersion } from '../../config/config-versions.ts';
import type { Incidents, Incident } from '../../incidents/incidents.ts';
import type { AuditLog } from '../../activity/audit-log.ts';
import { AppError } from '../../errors/app-error.ts';

/** What the policy-version and incident routes need, and nothing more. */
export interface ConfigRoutesDeps {
  auth: Pick<RequestAuth, 'requireAdmin'>;
  rollouts: ConfigRollouts;
  incidents: Incidents;
  audit: Pick<AuditLog, 'append'>;
}

const bearer = [{ bearerAuth: [] }];
const config = { admissionClass: 'admin' as const };
const tags = ['admin'];
const Any = Type.Object({}, { additionalProperties: true });

const versionView = (v: ConfigVersion) => ({
  version: v.version,
  state: v.state,
  policy: v.document,
  changes: v.diff,
  by: v.actor,
  appliedAt: new Date(v.createdAt).toISOString(),
  canaryPercent: v.canaryPercent,
  bakeSeconds: v.bakeSeconds,
  decidedAt: v.decidedAt === null ? null : new Date(v.decidedAt).toISOString(),
  reason: v.reason,
});

const incidentView = (i: Incident) => ({
  id: i.id,
  component: i.component,
  title: i.title,
  advice: i.advice,
  source: i.source,
  everyone: i.tenantId === '',
  startedAt: new Date(i.startedAt).toISOString(),
  expectedEndAt: i.expectedEndAt === null ? null : new Date(i.expectedEndAt).toISOString(),
  endedAt: i.endedAt === null ? null : new Date(i.endedAt).toISOString(),
  updates: i.updates.map((u) => ({ at: new Date(u.at).toISOString(), text: u.text })),
});

const time = (value: string | null | undefined, name: string): number | null | undefined => {
  if (value === undefined || value === null) return value;
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) throw new AppError('invalid-request', `${name} is not a date-time`);
  return ms;
};

/**
 * A tenant's policy as versions with a staged rollout (canary, bake,
 * automatic rollback), and the tenant's own incidents for its status page.
 */
export function configRoutes(deps: ConfigRoutesDeps): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.get(
      '/api/v1/admin/policy/versions',
      {
        schema: {
          tags,
          security: bearer,
          summary: 'The policy history: the last good version, the canary baking (if any), every version with its diff',
          response: { 200: Any },
        },
        config,
      },
      async (request) => {
        const { tenant } = await deps.auth.requireAdmin(request);
        const status = await deps.rollouts.status(tenantScope(tenant.id));
        return {
          lastGood: status.lastGood ? versionView(status.lastGood) : null,
          canary: status.canary ? versionView(status.canary) : null,
          history: status.history.map(versionView),
        };
      },
    );

    app.post(
      '/api/v1/admin/policy/versions',
      {
        schema: {
          tags,
          security: bearer,
          summary:
            "A new policy version: to a canary of the tenant's users first (`canaryPercent`, by stable hash), compared with the rest for `bakeSeconds`, then promoted or rolled back by itself; without a canary, to everyone at once. An administrator's session only: `403` to an admin token",
          body: Type.Object({
            policy: Any,
            canaryPercent: Type.Optional(Type.Number({ minimum: 0, maximum: 50 })),
            bakeSeconds: Type.Optional(Type.Integer({ minimum: 10, maximum: 86_400 })),
          }),
          response: { 201: Any },
        },
        config,
      },
      async (request, reply) => {
        const { tenant, actor } = await deps.auth.requireAdmin(request);
        const version = await deps.rollouts.applyPolicy(tenant, request.body.policy, {
          canaryPercent: request.body.canaryPercent,
          bakeSeconds: request.body.bakeSeconds,
          actor,
        });
        return reply.code(201).send(versionView(version));
      },
    );

    app.post(
      '/api/v1/admin/policy/rollback',
      {
        schema: {
          tags,
          security: bearer,
          summary:
            "End the policy canary at once, or make an earlier version (default: the good one before the last) current again (an administrator's session only: `403` to an admin token)",
          body: Type.Object({ version: Type.Optional(Type.Integer({ minimum: 1 })), reason: Type.Optional(Type.String({ maxLength: 500 })) }),
          response: { 200: Any },
        },
        config,
      },
      async (request) => {
        const { tenant, actor } = await deps.auth.requireAdmin(request);
        // (Not a token's to do: ConfigRollouts.rollback refuses it, as every change of the policy.)
        return versionView(
          await deps.rollouts.rollback(tenantScope(tenant.id), {
            version: request.body.version,
            actor,
            reason: request.body.reason ?? 'rolled back by an administrator',
          }),
        );
      },
    );

    app.get(
      '/api/v1/admin/incidents',
      { schema: { tags, security: bearer, summary: "Incidents of the last 90 days this tenant's users see", response: { 200: Type.Array(Any) } }, config },
      async (request) => {
        const { tenant } = await deps.auth.requireAdmin(request);
        return (await deps.incidents.recent(tenant.id)).map(incidentView);
      },
    );

    app.post(
      '/api/v1/admin/incidents',
      {
        schema: {
          tags,
          security: bearer,
          summary:
            "Post an incident on the tenant's status page (/t/{tenant}/status), with what users should do and when it should be over (an administrator's session only: `403` to an admin token)",
          body: Type.Object({
            component: Type.String({ minLength: 1, maxLength: 100 }),
            title: Type.String({ minLength: 1, maxLength: 300 }),
            advice: Type.String({ minLength: 1, maxLength: 2000 }),
            expectedEndAt: Type.Optional(Type.String({ format: 'date-time' })),
          }),
          response: { 201: Any },
        },
        config,
      },
      async (request, reply) => {
        const { tenant, actor } = await deps.auth.requireAdmin(request);
        // What every user of the tenant reads and trusts ("sign in at … meanwhile"): a person's to say, or the
        // node's own (incidents it opens by itself), not a leaked token's.
        refuseTokenFor(actor, 'posting an incident');
        const { component, title, advice, expectedEndAt } = request.body;
        const incident = await deps.incidents.open({
          tenantId: tenant.id,
          component,
          title,
          advice,
          source: 'admin',
          expectedEndAt: time(expectedEndAt, 'expectedEndAt') ?? null,
        });
        await deps.audit.append(tenant.id, { actor, action: 'incident.posted', details: { incident: incident.id, component, title } });
        return reply.code(201).send(incidentView(incident));
      },
    );

    app.patch(
      '/api/v1/admin/incidents/:id',
      {
        schema: {
          tags,
          security: bearer,
          summary: "Update one of the tenant's incidents: a note, a new expected end, or resolved (an administrator's session only: `403` to an admin token)",
          params: Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) }),
          body: Type.Object({
            text: Type.Optional(Type.String({ minLength: 1, maxLength: 2000 })),
            expectedEndAt: Type.Optional(Type.Union([Type.String({ format: 'date-time' }), Type.Null()])),
            resolved: Type.Optional(Type.Boolean()),
          }),
          response: { 200: Any },
        },
        config,
      },
      async (request) => {
        const { tenant, actor } = await deps.auth.requireAdmin(request);
        refuseTokenFor(actor, 'changing an incident');
        const { text, expectedEndAt, resolved } = request.body;
        const change: { text?: string; expectedEndAt?: number | null; resolved?: boolean } = {};
        if (text !== undefined) change.text = text;
        const end = time(expectedEndAt, 'expectedEndAt');
        if (end !== undefined) change.expectedEndAt = end;
        if (resolved !== undefined) change.resolved = resolved;
        const incident = await deps.incidents.update(request.params.id, tenant.id, change);
        await deps.audit.append(tenant.id, { actor, action: 'incident.updated', details: { incident: incident.id, resolved: incident.endedAt !== null } });
        return incidentView(incident);
      },
    );
  };
}
