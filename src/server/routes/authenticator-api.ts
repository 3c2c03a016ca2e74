import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { ServerResponse } from 'node:http';
import { AppError } from '../../errors/app-error.ts';
import { requestContext } from '../../http/request-context.ts';
import type { Tenants } from '../../directory/tenants.ts';
import type { MethodRegistry } from '../../methods/registry.ts';
import { TenantParams } from '../../http/api-schemas.ts';

export interface AuthenticatorApiDeps {
  tenants: Pick<Tenants, 'findBySlug'>;
  methods: Pick<MethodRegistry, 'push'>;
}

// How often an open stream looks for a request another node opened, and re-marks the app as open.
const STREAM_LOOK_MS = 2000;
/**
 * The most live streams one device holds on a node: an app reconnecting opens a new one before the old one is
 * seen to close. A new stream beyond them ends the device's oldest, so a device (or whoever holds its key) cannot
 * pile up streams, each a timer and a store read every two seconds (twenty-fifth round: 2,000 of them).
 */
export const STREAMS_PER_DEVICE = 2;

const DeviceRequest = Type.Object({
  id: Type.String(),
  binding: Type.String({ description: 'names the sign-in flow; part of what the device signs' }),
  username: Type.String(),
  app: Type.Union([Type.String(), Type.Null()]),
  ip: Type.Union([Type.String(), Type.Null()]),
  userAgent: Type.Union([Type.String(), Type.Null()]),
  createdAt: Type.String({ format: 'date-time' }),
  expiresAt: Type.String({ format: 'date-time' }),
});

const SignedRead = Type.Object({
  device: Type.String({ minLength: 1, maxLength: 64 }),
  time: Type.Integer({ minimum: 0 }),
  sig: Type.String({ minLength: 1, maxLength: 200 }),
});

/**
 * What the Steadfast Authenticator calls: pairing with a one-time link, its
 * pending requests (a list, or a live stream while the app is open), its
 * answers, and its Web Push subscription. Every call after pairing is signed
 * by the device's key; the app keeps no other secret.
 */
export function authenticatorApi(deps: AuthenticatorApiDeps): FastifyPluginAsyncTypebox {
  const tags = ['authenticator'];
  const config = { admissionClass: 'finish-signin' as const };
  return async (app) => {
    const streams = new Set<ServerResponse>();
    /** Each device's streams on this node, oldest first. */
    const byDevice = new Map<string, ServerResponse[]>();
    // A node shutting down ends its streams, so closing does not wait on phones; the apps reconnect elsewhere.
    app.addHook('preClose', async () => {
      for (const stream of streams) stream.end();
    });

    const context = async (slug: string) => {
      const push = deps.methods.push;
      const tenant = await deps.tenants.findBySlug(slug);
      if (!tenant || !push) throw new AppError('not-found', 'no such tenant');
      return { tenant, push };
    };

    app.get(
      '/api/v1/t/:tenant/authenticator/config',
      {
        schema: {
          tags,
          summary: "The app's settings: the VAPID public key to subscribe to Web Push with",
          params: TenantParams,
          response: { 200: Type.Object({ vapidPublicKey: Type.String() }) },
        },
        config,
      },
      async (request) => {
        const { push } = await context(request.params.tenant);
        return { vapidPublicKey: await push.vapidPublicKey() };
      },
    );

    app.post(
      '/api/v1/t/:tenant/authenticator/pair',
      {
        schema: {
          tags,
          summary: 'Pair a device: the token from the pairing link, the public half of its P-256 key (JWK), a name, and optionally its Web Push subscription',
          params: TenantParams,
          body: Type.Object({
            token: Type.String({ minLength: 1, maxLength: 64 }),
            publicKey: Type.Object({}, { additionalProperties: true }),
            name: Type.Optional(Type.String({ maxLength: 100 })),
            subscription: Type.Optional(Type.Union([Type.Object({}, { additionalProperties: true }), Type.Null()])),
          }),
          response: {
            200: Type.Object({ deviceId: Type.String(), username: Type.String(), tenant: Type.Object({ slug: Type.String(), name: Type.String() }) }),
          },
        },
        config,
      },
      async (request) => {
        const { tenant, push } = await context(request.params.tenant);
        const paired = await push.pair(tenant, request.body.token, request.body);
        return { ...paired, tenant: { slug: tenant.slug, name: tenant.name } };
      },
    );

    app.get(
      '/api/v1/t/:tenant/authenticator/requests',
      {
        schema: {
          tags,
          summary: "The sign-in requests waiting for this device's user; signed: `sig` is the device's signature over the read statement",
          params: TenantParams,
          querystring: SignedRead,
          response: { 200: Type.Object({ requests: Type.Array(DeviceRequest) }) },
        },
        config,
      },
      async (request, reply) => {
        const { tenant, push } = await context(request.params.tenant);
        const { device, time, sig } = request.query;
        const dev = await push.authenticateDevice(tenant, device, time, sig);
        reply.header('cache-control', 'no-store');
        const pending = await push.pendingFor(tenant, dev);
        return { requests: pending ? [pending] : [] };
      },
    );

    app.get(
      '/api/v1/t/:tenant/authenticator/stream',
      {
        schema: {
          tags,
          summary: 'The same, as a live stream (Server-Sent Events, `event: request`) while the app is open',
          params: TenantParams,
          querystring: SignedRead,
        },
        config: { admissionClass: 'self-service' as const },
      },
      async (request, reply) => {
        const { tenant, push } = await context(request.params.tenant);
        const { device, time, sig } = request.query;
        const dev = await push.authenticateDevice(tenant, device, time, sig);
        // A stream is open for minutes: it holds no admission slot (it is no work while it waits).
        request.releaseAdmission?.();
        reply.hijack();
        const raw = reply.raw;
        raw.writeHead(200, {
          ...(reply.getHeaders() as Record<string, string>),
          'content-type': 'text/event-stream; charset=utf-8',
          'cache-control': 'no-store',
          'x-accel-buffering': 'no',
        });
        streams.add(raw);
        const ofDevice = byDevice.get(dev.id) ?? [];
        byDevice.set(dev.id, ofDevice);
        ofDevice.push(raw);
        while (ofDevice.length > STREAMS_PER_DEVICE) ofDevice.shift()!.end();
        let last: string | undefined;
        let looking = false;
        const look = async () => {
          if (looking || raw.writableEnded) return;
          looking = true;
          try {
            const pending = await push.pendingFor(tenant, dev);
            const id = pending?.id ?? '';
            if (id !== last) {
              last = id;
              raw.write(`event: request\ndata: ${JSON.stringify(pending ?? null)}\n\n`);
            }
          } catch {
            // The store is away for a moment: the next look tries again.
          } finally {
            looking = false;
          }
        };
        const timer = setInterval(() => {
          raw.write(': still here\n\n');
          // Marked open on every look: a request is never refused for an app whose stream is up.
          void push.live
            .markOpen(tenant.id, dev.id)
            .catch(() => undefined)
            .then(look);
        }, STREAM_LOOK_MS);
        const stopWatching = push.live.watch(tenant.id, dev.userId, () => void look());
        raw.on('close', () => {
          clearInterval(timer);
          stopWatching();
          streams.delete(raw);
          const left = (byDevice.get(dev.id) ?? []).filter((other) => other !== raw);
          if (left.length > 0) {
            // Another stream of the device is up (this one was replaced): the app is still open.
            byDevice.set(dev.id, left);
            return;
          }
          byDevice.delete(dev.id);
          void push.live.markClosed(tenant.id, dev.id).catch(() => undefined);
        });
        await push.live.markOpen(tenant.id, dev.id);
        raw.write('retry: 3000\n\n');
        await look();
      },
    );

    app.post(
      '/api/v1/t/:tenant/authenticator/requests/:id',
      {
        schema: {
          tags,
          summary:
            'Approve (with the number the person typed) or deny (optionally "this wasn\'t me") a request; `signature` is the device\'s ECDSA P-256 signature over the decision statement. A wrong number denies the request',
          params: Type.Object({ tenant: Type.String({ minLength: 1, maxLength: 64 }), id: Type.String({ minLength: 1, maxLength: 64 }) }),
          body: Type.Object({
            device: Type.String({ minLength: 1, maxLength: 64 }),
            decision: Type.Union([Type.Literal('approve'), Type.Literal('deny')]),
            number: Type.Optional(Type.String({ maxLength: 4 })),
            notMe: Type.Optional(Type.Boolean()),
            time: Type.Integer({ minimum: 0 }),
            signature: Type.String({ minLength: 1, maxLength: 200 }),
          }),
          response: { 200: Type.Object({ state: Type.Union([Type.Literal('approved'), Type.Literal('denied')]), reason: Type.String() }) },
        },
        config,
      },
      async (request) => {
        const { tenant, push } = await context(request.params.tenant);
        const { device, decision, number, notMe, time, signature } = request.body;
        const ctx = requestContext(request);
        return push.decide(
          tenant,
          device,
          request.params.id,
          { decision, number: number ?? '', notMe, time, signature },
          { ip: ctx.ip, userAgent: ctx.userAgent },
        );
      },
    );

    app.put(
      '/api/v1/t/:tenant/authenticator/subscription',
      {
        schema: {
          tags,
          summary: "Set (or with null remove) the device's Web Push subscription; signed over the subscribe statement",
          params: TenantParams,
          body: Type.Object({
            device: Type.String({ minLength: 1, maxLength: 64 }),
            subscription: Type.Union([Type.Object({}, { additionalProperties: true }), Type.Null()]),
            time: Type.Integer({ minimum: 0 }),
            signature: Type.String({ minLength: 1, maxLength: 200 }),
          }),
          response: { 204: Type.Null() },
        },
        config,
      },
      async (request, reply) => {
        const { tenant, push } = await context(request.params.tenant);
        const { device, subscription, time, signature } = request.body;
        await push.subscribe(tenant, device, subscription, time, signature);
        return reply.code(204).send(null);
      },
    );
  };
}
