import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sqliteMemory, type Backend } from '../helpers/backends.ts';
import { api, startTestServer, type TestServer } from '../helpers/test-server.ts';
import { totpCode } from '../helpers/totp.ts';

/**
 * A real node driven past a deliberately tiny admission limit: who is refused,
 * with what, and that a sign-in already past its password still finishes.
 * Assertions are about behaviour, never about timings.
 */
describe('overload: refuse early, keep finishing started sign-ins', () => {
  let backend: Backend;
  let server: TestServer;
  let secret = '';

  beforeAll(async () => {
    backend = await sqliteMemory.create({ STEADFAST_ADMISSION_LIMIT: '1', STEADFAST_ADMISSION_QUEUE: '2', STEADFAST_ADMISSION_MAX_WAIT_MS: '30000' });
    // One hash at a time, so every password sign-in holds the only slot for a while.
    server = await startTestServer(backend, { hasher: { concurrency: 1 }, limits: { sourceFailures: 1e6, accountFailures: 1e6, accountSourceFailures: 1e6 } });
    const tenant = await server.services.tenants.create('busy');
    const hash = await server.services.hasher.hash('busy password 1');
    for (let i = 0; i < 40; i++) await server.services.users.create(tenant.id, { username: `u${i}`, passwordHash: hash });
    const first = await api(server.url, 'POST', '/api/v1/t/busy/signin', { username: 'u0', password: 'busy password 1' });
    const enrol = await api(server.url, 'POST', '/api/v1/me/methods', { type: 'totp' }, first.body.session.token);
    secret = enrol.body.secret;
    await api(server.url, 'POST', `/api/v1/me/methods/${enrol.body.id}/confirm`, { code: totpCode(secret, Date.now()) }, first.body.session.token);
  });
  afterAll(async () => {
    await server.close();
    await backend.cleanup();
  });

  it('answers the surplus at once with 503 problem+json and Retry-After, and lets a second factor through the surge', async () => {
    // A sign-in past its password, waiting to finish.
    const started = await api(server.url, 'POST', '/api/v1/t/busy/signin', { username: 'u0', password: 'busy password 1' });
    expect(started.body.state).toBe('factor_required');

    const surge = Array.from({ length: 40 }, (_, i) => api(server.url, 'POST', '/api/v1/t/busy/signin', { username: `u${i}`, password: 'busy password 1' }));
    // Sent while the surge holds the slot and fills the queue: it outranks every waiting start and takes a queued one's place.
    await new Promise((r) => setImmediate(r));
    const finish = api(server.url, 'POST', `/api/v1/t/busy/signin/${started.body.flow}/verify`, { method: 'totp', code: totpCode(secret, Date.now() + 30_000) });
    const results = await Promise.all(surge);
    const finished = await finish;

    expect(finished.status).toBe(200);
    const refused = results.filter((r) => r.status === 503);
    const served = results.filter((r) => r.status === 200);
    expect(refused.length + served.length).toBe(results.length);
    expect(refused.length).toBeGreaterThan(0);
    expect(served.length).toBeGreaterThan(0);
    for (const r of refused) {
      expect(r.contentType).toMatch(/^application\/problem\+json/);
      expect(r.body.type).toMatch(/\/unavailable$/);
      expect(Number(r.headers.get('retry-after'))).toBeGreaterThan(0);
    }
  });

  it('gives every slot back, also when clients leave mid-request', async () => {
    const leaving = Array.from({ length: 12 }, (_, i) => {
      const abort = new AbortController();
      setTimeout(() => abort.abort(), 1 + (i % 4) * 5);
      return fetch(`${server.url}/api/v1/t/busy/signin`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username: `u${i}`, password: 'busy password 1' }),
        signal: abort.signal,
      }).then(
        (r) => r.text(),
        () => undefined,
      );
    });
    await Promise.all(leaving);
    // The server may still be finishing work whose client left; it must end with nothing held.
    let state = { inFlight: -1, queued: -1 };
    for (let i = 0; i < 200 && (state.inFlight !== 0 || state.queued !== 0); i++) {
      state = (await api(server.url, 'GET', '/readyz')).body.components.admission;
      if (state.inFlight !== 0) await new Promise((r) => setTimeout(r, 20));
    }
    expect(state).toMatchObject({ inFlight: 0, queued: 0 });
    expect((await api(server.url, 'POST', '/api/v1/t/busy/signin', { username: 'u1', password: 'busy password 1' })).status).toBe(200);
  });

  it('never holds back health, readiness and metrics, and shows the shedding', async () => {
    const surge = Array.from({ length: 20 }, (_, i) => api(server.url, 'POST', '/api/v1/t/busy/signin', { username: `u${i}`, password: 'busy password 1' }));
    const [health, ready, metrics] = await Promise.all([api(server.url, 'GET', '/healthz'), api(server.url, 'GET', '/readyz'), fetch(`${server.url}/metrics`)]);
    await Promise.all(surge);
    expect(health.status).toBe(200);
    expect(ready.status).toBe(200);
    expect(ready.body.components.admission).toMatchObject({ state: 'up', limit: 1 });
    const text = await metrics.text();
    expect(text).toMatch(/steadfast_admission_shed_total\{class="start-signin",tenant="busy",reason="queue-full"\} [1-9]/);
    expect(text).toMatch(/steadfast_admission_admitted_total\{class="finish-signin"\} [1-9]/);
    expect(text).toContain('steadfast_admission_limit 1');
    const status = await api(server.url, 'GET', '/api/v1/status');
    expect(status.body).toMatchObject({ status: 'operational', components: { admission: { limit: 1, shedTotal: expect.any(Number) } } });
    expect(status.body.components.admission.shedTotal).toBeGreaterThan(0);
  });
});
