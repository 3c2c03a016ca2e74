import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sqliteMemory, type Backend } from '../helpers/backends.ts';
import { api, startTestServer, type JsonResponse, type TestServer } from '../helpers/test-server.ts';
import { totpCode } from '../helpers/totp.ts';

const PASSWORD = 'busy password 1';
const NO_LIMITS = { sourceFailures: 1e6, accountFailures: 1e6, accountSourceFailures: 1e6 };

/**
 * A real node driven past deliberately tiny limits (one hash at a time, two
 * waiting; four requests per class, two waiting) by one tenant's surge of
 * password sign-ins, right and wrong, while the traffic that matters goes on:
 * second factors of sign-ins already past their password, new users setting
 * up their first method, another tenant signing in, an administrator issuing
 * a TAP and resetting methods. Assertions are about who gets through, never
 * about timings: the waits are set so long that only places decide.
 */
describe('overload: one tenant surges, everyone else still gets through', () => {
  let backend: Backend;
  let server: TestServer;
  let adminToken = '';
  let victimId = '';
  const flows: { flow: string; secret: string }[] = [];
  const registrations: string[] = [];
  const quietSecrets: string[] = [];

  const signin = (tenant: string, username: string, password = PASSWORD) => api(server.url, 'POST', `/api/v1/t/${tenant}/signin`, { username, password });

  /** Signs a new user in and confirms an authenticator app with its registration session; its TOTP secret. */
  const withTotp = async (tenant: string, username: string) => {
    const first = await signin(tenant, username);
    expect(first.body.state).toBe('registration_required');
    const enrol = await api(server.url, 'POST', '/api/v1/me/methods', { type: 'totp' }, first.body.session.token);
    await api(server.url, 'POST', `/api/v1/me/methods/${enrol.body.id}/confirm`, { code: totpCode(enrol.body.secret, Date.now()) }, first.body.session.token);
    return enrol.body.secret as string;
  };

  beforeAll(async () => {
    backend = await sqliteMemory.create({
      STEADFAST_HASHING_CONCURRENCY: '1',
      STEADFAST_HASHING_QUEUE: '2',
      STEADFAST_HASHING_MAX_WAIT_MS: '60000',
      STEADFAST_ADMISSION_LIMIT: '4',
      STEADFAST_ADMISSION_QUEUE: '2',
      STEADFAST_ADMISSION_MAX_WAIT_MS: '60000',
    });
    server = await startTestServer(backend, { limits: NO_LIMITS });
    const { tenants, users, hasher, adminTokens } = server.services;
    const surge = await tenants.create('surge');
    const quiet = await tenants.create('quiet');
    const hash = await hasher.hash(PASSWORD);
    for (let i = 0; i < 40; i++) await users.create(surge.id, { username: `u${i}`, passwordHash: hash });
    for (let i = 0; i < 3; i++) await users.create(surge.id, { username: `m${i}`, passwordHash: hash });
    for (let i = 0; i < 3; i++) await users.create(surge.id, { username: `new${i}`, passwordHash: hash });
    for (let i = 0; i < 3; i++) await users.create(quiet.id, { username: `q${i}`, passwordHash: hash });
    victimId = (await users.create(surge.id, { username: 'locked-out', passwordHash: hash })).id;
    adminToken = (await adminTokens.create(surge.id, 'admin')).token;

    // Before the surge: sign-ins that are past their password, and new users holding a registration session.
    for (let i = 0; i < 3; i++) {
      const secret = await withTotp('surge', `m${i}`);
      const started = await signin('surge', `m${i}`);
      expect(started.body.state).toBe('factor_required');
      flows.push({ flow: started.body.flow, secret });
    }
    // The other tenant's users have an authenticator app, as people do: they sign in with both steps.
    for (let i = 0; i < 3; i++) quietSecrets.push(await withTotp('quiet', `q${i}`));
    for (let i = 0; i < 3; i++) {
      const first = await signin('surge', `new${i}`);
      expect(first.body.session.token).toMatch(/^sfs_reg\./);
      registrations.push(first.body.session.token);
    }
  });
  afterAll(async () => {
    await server?.close();
    await backend?.cleanup();
  });

  /**
   * Keeps `concurrency` password sign-ins of the surging tenant in flight (one
   * in three with a wrong password, which costs the same hash) until stopped.
   */
  function surge(concurrency: number) {
    const results: JsonResponse[] = [];
    let stopped = false;
    let sent = 0;
    const worker = async () => {
      while (!stopped && sent < 5000) {
        const i = sent++;
        results.push(await signin('surge', `u${i % 40}`, i % 3 === 0 ? 'wrong password' : PASSWORD));
      }
    };
    const workers = Array.from({ length: concurrency }, worker);
    return {
      results,
      async stop() {
        stopped = true;
        await Promise.all(workers);
        return results;
      },
    };
  }

  /** Until the hashing pool is full: one running, its queue at the limit. */
  async function saturated() {
    for (let i = 0; i < 100_000; i++) {
      const { running, queued } = server.services.hasher.pool.state;
      if (running === 1 && queued === 2) return;
      await new Promise((r) => setImmediate(r));
    }
    throw new Error('the surge never filled the hashing pool');
  }

  it('finishes second factors, first set-ups, the other tenant and emergency actions; refuses only the surge, fast and politely', async () => {
    const load = surge(12);
    await saturated();

    // Sign-ins already past their password.
    const verified = [];
    for (const { flow, secret } of flows) {
      verified.push(await api(server.url, 'POST', `/api/v1/t/surge/signin/${flow}/verify`, { method: 'totp', code: totpCode(secret, Date.now() + 30_000) }));
    }
    // New users setting up their first method: an authenticator app, confirmed...
    const setups = [];
    for (const token of registrations.slice(0, 2)) {
      const enrol = await api(server.url, 'POST', '/api/v1/me/methods', { type: 'totp' }, token);
      const confirm =
        enrol.status === 201
          ? await api(server.url, 'POST', `/api/v1/me/methods/${enrol.body.id}/confirm`, { code: totpCode(enrol.body.secret, Date.now()) }, token)
          : enrol;
      setups.push([enrol.status, confirm.status]);
    }
    // ...and then recovery codes (a registration session may not make them its only method, so the one that
    // has just confirmed its app does): ten Argon2id hashes through the full pool, ahead of the surge.
    await saturated();
    const codes = await api(server.url, 'POST', '/api/v1/me/methods', { type: 'recovery-codes' }, registrations[0]);
    // Another tenant signing in at its own low rate: password, then its authenticator app's code.
    const quiet = [];
    for (let i = 0; i < 3; i++) {
      await saturated();
      const password = await signin('quiet', `q${i}`);
      const factor =
        password.body.state === 'factor_required'
          ? await api(server.url, 'POST', `/api/v1/t/quiet/signin/${password.body.flow}/verify`, {
              method: 'totp',
              code: totpCode(quietSecrets[i]!, Date.now() + 30_000),
            })
          : password;
      quiet.push([password.status, password.body.state, factor.status]);
    }
    // An administrator getting a locked-out person back in, during their own tenant's surge.
    await saturated();
    const tap = await api(server.url, 'POST', `/api/v1/admin/users/${victimId}/tap`, { minutes: 60 }, adminToken);
    const reset = await api(server.url, 'POST', `/api/v1/admin/users/${victimId}/reset-methods`, undefined, adminToken);
    const results = await load.stop();

    expect(verified.map((r) => r.status)).toEqual([200, 200, 200]);
    expect(setups).toEqual([
      [201, 200],
      [201, 200],
    ]);
    expect(codes.status).toBe(201);
    expect(codes.body.codes).toHaveLength(10);
    expect(quiet).toEqual(Array.from({ length: 3 }, () => [200, 'factor_required', 200]));
    expect(tap.status).toBe(201);
    expect(reset.status).toBe(200);

    // The surge itself: some checked (right or wrong), the rest refused at once with a problem and Retry-After.
    const refused = results.filter((r) => r.status === 503);
    const checked = results.filter((r) => r.status === 200 || r.status === 401);
    expect(refused.length + checked.length).toBe(results.length);
    expect(refused.length).toBeGreaterThan(0);
    expect(checked.length).toBeGreaterThan(0);
    for (const r of refused) {
      expect(r.contentType).toMatch(/^application\/problem\+json/);
      expect(r.body.type).toMatch(/\/unavailable$/);
      expect(Number(r.headers.get('retry-after'))).toBeGreaterThan(0);
      // Refused at the door or at the pool, the answer carries the same security headers as any other.
      expect(r.headers.get('content-security-policy')).toBeTruthy();
    }

    // Where it was refused: by tenant and class, at the hashing pool; never the quiet tenant or anything that matters.
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    const shedLines = metrics.split('\n').filter((l) => /^steadfast_(admission|hashing)_shed_total\{/.test(l) && !/ 0$/.test(l));
    expect(shedLines.length).toBeGreaterThan(0);
    for (const line of shedLines) expect(line).toMatch(/class="start-signin",tenant="surge"/);
    expect(metrics).toMatch(/steadfast_hashing_shed_total\{class="start-signin",tenant="surge",reason="queue-full"\} [1-9]/);
    expect(metrics).toMatch(/steadfast_hashing_admitted_total\{class="finish-registration"\} (1[0-9]|[2-9][0-9])/);
    expect(metrics).toMatch(/steadfast_hashing_admitted_total\{class="admin-emergency"\} [1-9]/);
    expect(metrics).toMatch(/steadfast_admission_admitted_total\{class="finish-registration"\} [1-9]/);
  });

  it('gives every slot back, also when clients leave mid-request', async () => {
    const leaving = Array.from({ length: 12 }, (_, i) => {
      const abort = new AbortController();
      setTimeout(() => abort.abort(), 1 + (i % 4) * 5);
      return fetch(`${server.url}/api/v1/t/surge/signin`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username: `u${i}`, password: PASSWORD }),
        signal: abort.signal,
      }).then(
        (r) => r.text(),
        () => undefined,
      );
    });
    await Promise.all(leaving);
    // The server may still be finishing work whose client left; it must end with nothing held.
    let state = { admission: { inFlight: -1, queued: -1 }, passwordHashing: { running: -1, queued: -1 } };
    for (let i = 0; i < 200 && (state.admission.inFlight !== 0 || state.passwordHashing.running !== 0); i++) {
      state = (await api(server.url, 'GET', '/readyz')).body.components;
      if (state.admission.inFlight !== 0 || state.passwordHashing.running !== 0) await new Promise((r) => setTimeout(r, 20));
    }
    expect(state.admission).toMatchObject({ inFlight: 0, queued: 0 });
    expect(state.passwordHashing).toMatchObject({ running: 0, queued: 0, limit: 1 });
    expect((await signin('surge', 'u1')).status).toBe(200);
  });

  it('never holds back health, readiness and metrics, and shows the shedding', async () => {
    const load = surge(12);
    await saturated();
    const [health, ready, metrics] = await Promise.all([api(server.url, 'GET', '/healthz'), api(server.url, 'GET', '/readyz'), fetch(`${server.url}/metrics`)]);
    await load.stop();
    expect(health.status).toBe(200);
    expect(ready.status).toBe(200);
    expect(ready.body.components.admission).toMatchObject({ state: 'up', limit: 4 });
    // Busy with the surge; how many wait at the instant readiness looks depends on whether a hash has
    // just finished and its client not yet sent the next (a race on a loaded machine), so only bounds.
    const pool = ready.body.components.passwordHashing;
    expect(pool).toMatchObject({ state: 'up', limit: 1 });
    expect(pool.running + pool.queued).toBeGreaterThan(0);
    expect(pool.queued).toBeLessThanOrEqual(2);
    const text = await metrics.text();
    expect(text).toContain('steadfast_admission_limit 4');
    expect(text).toContain('steadfast_hashing_concurrency 1');
    expect(text).toMatch(/steadfast_admission_class_in_flight\{class="start-signin"\} [1-9]/);
    const status = await api(server.url, 'GET', '/api/v1/status');
    expect(status.body).toMatchObject({ status: 'operational', components: { admission: { limit: 4, shedTotal: expect.any(Number) } } });
    expect(status.body.components.admission.shedTotal).toBeGreaterThan(0);
  });
});
