import { createServer, connect, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresRedis, type Backend } from '../helpers/backends.ts';
import { REDIS_URL } from '../helpers/services-available.ts';
import { freePort } from '../helpers/free-port.ts';
import { api, startTestServer, type TestServer } from '../helpers/test-server.ts';

/** A TCP relay in front of Redis that the test can cut and restore, as a network failure would. */
class Relay {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  constructor(
    readonly port: number,
    private readonly target: { host: string; port: number },
  ) {}
  async up(): Promise<void> {
    this.server = createServer((client) => {
      const upstream = connect(this.target);
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => s.destroy());
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => this.server!.listen(this.port, '127.0.0.1', resolve));
  }
  async down(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()) ?? resolve());
  }
}

describe.runIf(await postgresRedis.available())('when Redis goes away', () => {
  let backend: Backend;
  let server: TestServer;
  let relay: Relay;

  beforeAll(async () => {
    const redis = new URL(REDIS_URL);
    relay = new Relay(await freePort(), { host: redis.hostname, port: Number(redis.port || 6379) });
    await relay.up();
    backend = await postgresRedis.create({ STEADFAST_REDIS_URL: `redis://127.0.0.1:${relay.port}` });
    server = await startTestServer(backend, { logLevel: 'silent' });
    const tenant = await server.services.tenants.create('outage');
    await server.services.users.create(tenant.id, { username: 'olive', passwordHash: await server.services.hasher.hash('olive password') });
  });
  afterAll(async () => {
    await relay.down();
    await server?.close();
    await backend?.cleanup();
  });

  it('answers 503 with Retry-After, says so on /readyz, and recovers when Redis returns', async () => {
    expect((await api(server.url, 'POST', '/api/v1/t/outage/signin', { username: 'olive', password: 'olive password' })).status).toBe(200);

    await relay.down();
    const during = await api(server.url, 'POST', '/api/v1/t/outage/signin', { username: 'olive', password: 'olive password' });
    expect(during.status).toBe(503);
    expect(during.contentType).toMatch(/^application\/problem\+json/);
    expect(during.body.type).toMatch(/\/unavailable$/);
    expect(Number(during.headers.get('retry-after'))).toBeGreaterThan(0);
    const ready = await api(server.url, 'GET', '/readyz');
    expect(ready.status).toBe(503);
    expect(ready.body.components.ephemeral.state).toBe('down');
    expect(ready.body.components.durable.state).toBe('up');

    await relay.up();
    let status = 0;
    // ioredis reconnects with back-off; bounded wait, no fixed sleep.
    for (let i = 0; i < 100 && status !== 200; i++) {
      status = (await api(server.url, 'POST', '/api/v1/t/outage/signin', { username: 'olive', password: 'olive password' })).status;
      if (status !== 200) await new Promise((r) => setTimeout(r, 100));
    }
    expect(status).toBe(200);
  });
});
