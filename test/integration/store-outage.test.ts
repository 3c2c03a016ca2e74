import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.ts';
import { postgresRedis, type Backend } from '../helpers/backends.ts';
import { PrivateRedis } from '../helpers/private-redis.ts';
import { api, startTestServer, type TestServer } from '../helpers/test-server.ts';
import { totpCode } from '../helpers/totp.ts';

const PASSWORD = 'olive long passphrase 42';

/** Polls (bounded, no fixed sleep in the assertion) until `probe` holds: a reconnect happens in its own time. */
async function eventually(probe: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await probe()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`never happened: ${what}`);
}

describe.runIf((await postgresRedis.available()) && PrivateRedis.available())('when Redis goes away', () => {
  let backend: Backend;
  let server: TestServer;
  let redis: PrivateRedis;
  let secret = '';
  const clock = new ManualClock(Date.UTC(2026, 10, 30, 9, 0, 0));

  const start = () => api(server.url, 'POST', '/api/v1/t/outage/signin', { username: 'olive', password: PASSWORD });
  const verify = (flow: string, code = totpCode(secret, clock.now())) =>
    api(server.url, 'POST', `/api/v1/t/outage/signin/${flow}/verify`, { method: 'totp', code });

  beforeAll(async () => {
    redis = await PrivateRedis.start();
    backend = await postgresRedis.create({ STEADFAST_REDIS_URL: redis.url });
    server = await startTestServer(backend, { logLevel: 'silent', clock });
    const tenant = await server.services.tenants.create('outage');
    const admin = (await server.services.adminTokens.create(tenant.id, 'admin')).token;
    expect((await api(server.url, 'POST', '/api/v1/admin/users', { username: 'olive', password: PASSWORD }, admin)).status).toBe(201);
    const first = await start();
    const added = await api(server.url, 'POST', '/api/v1/me/methods', { type: 'totp' }, first.body.session.token);
    clock.advance(30_000);
    expect(
      (
        await api(
          server.url,
          'POST',
          `/api/v1/me/methods/${added.body.id}/confirm`,
          { code: totpCode(added.body.secret, clock.now()) },
          first.body.session.token,
        )
      ).status,
    ).toBe(200);
    secret = added.body.secret;
  });
  afterAll(async () => {
    await server?.close();
    await redis?.down();
    await backend?.cleanup();
  });

  it('keeps signing in from the durable fallback, holds replay protection, and says so', async () => {
    const before = await start();
    expect(before.body.state).toBe('factor_required');

    await redis.down();
    // A flow held only in Redis is gone with it: the user starts again, and that works.
    const flow = await start();
    expect(flow.status).toBe(200);
    expect(flow.body.state).toBe('factor_required');
    clock.advance(30_000);
    const code = totpCode(secret, clock.now());
    const done = await verify(flow.body.flow, code);
    expect(done.status).toBe(200);
    expect(done.body.state).toBe('complete');
    expect(done.body.session.token).toBeTruthy();

    // The same code again, in a fresh flow: the step was consumed in the durable store.
    const again = await start();
    expect(again.status).toBe(200);
    const replay = await verify(again.body.flow, code);
    expect(replay.status).toBe(401);
    expect(replay.body.type).toMatch(/\/code-already-used$/);
    // The finished flow cannot be finished twice.
    expect((await verify(flow.body.flow)).status).not.toBe(200);

    // Wrong passwords are still answered and counted (by the node's insurance limiter), never 503.
    const wrong = await api(server.url, 'POST', '/api/v1/t/outage/signin', { username: 'olive', password: 'not it' });
    expect(wrong.status).toBe(401);

    const ready = await api(server.url, 'GET', '/readyz');
    expect(ready.status).toBe(200);
    expect(ready.body.components.ephemeral).toMatchObject({ state: 'down', fallback: 'durable' });
    const status = await api(server.url, 'GET', '/api/v1/status');
    expect(status.body.status).toBe('degraded');
    expect(status.body.components.ephemeral).toMatchObject({ state: 'down', fallback: 'durable' });
    expect(await (await fetch(`${server.url}/status`)).text()).toContain('sign-ins continue with a fallback');
    expect(await (await fetch(`${server.url}/metrics`)).text()).toContain('steadfast_ephemeral_serving{tier="durable"} 1');

    // A flow started during the outage finishes after Redis returns (read through to the fallback tier).
    const during = await start();
    await redis.up();
    await eventually(async () => (await api(server.url, 'GET', '/readyz')).body.components?.ephemeral?.state === 'up', 'Redis reconnects');
    clock.advance(30_000);
    const after = await verify(during.body.flow);
    expect(after.status).toBe(200);
    expect(after.body.state).toBe('complete');
    expect((await verify(during.body.flow)).status).not.toBe(200);
    expect(server.services.ephemeral.servingFrom()).toBe('redis');
  });

  it('a node starts while Redis is down and signs people in', async () => {
    await redis.down();
    const second = await startTestServer(backend, { logLevel: 'silent', clock });
    try {
      const flow = await api(second.url, 'POST', '/api/v1/t/outage/signin', { username: 'olive', password: PASSWORD });
      expect(flow.status).toBe(200);
      clock.advance(30_000);
      // Finished on the first node: the flow is in the shared durable fallback.
      const done = await verify(flow.body.flow);
      expect(done.status).toBe(200);
    } finally {
      await second.close();
      await redis.up();
    }
  });
});
