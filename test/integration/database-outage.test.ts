import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.ts';
import { loadConfig } from '../../src/config/config.ts';
import { testMasterKey, type Backend } from '../helpers/backends.ts';
import { PrivatePostgres } from '../helpers/private-postgres.ts';
import { PrivateRedis } from '../helpers/private-redis.ts';
import { api, startTestServer, type TestServer } from '../helpers/test-server.ts';
import { totpCode } from '../helpers/totp.ts';
import { PageClient, flowOf } from '../helpers/page-client.ts';
import { adminPersonSession } from '../helpers/admin-person.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';

const PASSWORD = 'a returning user passphrase';

async function eventually(probe: () => Promise<boolean> | boolean, what: string): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if (await probe()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`never happened: ${what}`);
}

describe.runIf(PrivatePostgres.available() && PrivateRedis.available())('when PostgreSQL goes away', () => {
  let pg: PrivatePostgres;
  let redis: PrivateRedis;
  let backend: Backend;
  let server: TestServer;
  let admin = '';
  const dir = mkdtempSync(join(tmpdir(), 'steadfast-outage-'));
  const clock = new ManualClock(Date.UTC(2026, 10, 30, 9, 0, 0));
  const users: Record<string, { id: string; secret: string; codes: string[]; session: string }> = {};

  const call = (method: string, path: string, body?: unknown, token?: string) => api(server.url, method, path, body, token);
  const signIn = async (username: string, factor: { method: string; code: string }) => {
    const start = await call('POST', '/api/v1/t/acme/signin', { username, password: PASSWORD });
    if (start.status !== 200) return start;
    return call('POST', `/api/v1/t/acme/signin/${start.body.flow}/verify`, factor);
  };
  const totpNow = (username: string) => {
    clock.advance(30_000);
    return { method: 'totp', code: totpCode(users[username]!.secret, clock.now()) };
  };

  beforeAll(async () => {
    [pg, redis] = await Promise.all([PrivatePostgres.start(), PrivateRedis.start()]);
    const config = loadConfig({
      STEADFAST_DATA_DIR: dir,
      STEADFAST_MASTER_KEY: testMasterKey(),
      STEADFAST_DATABASE_URL: pg.url,
      STEADFAST_REDIS_URL: redis.url,
      PORT: '0',
      STEADFAST_LOG_LEVEL: 'silent',
    });
    backend = { name: 'private postgres+redis', config, cleanup: async () => {} };
    server = await startTestServer(backend, { clock, logLevel: 'silent' });
    const tenant = await server.services.tenants.create('acme', 'Acme');
    admin = (await server.services.adminTokens.create(tenant.id, 'admin')).token;
    for (const username of ['olive', 'rick', 'dora', 'mike']) {
      const created = await call('POST', '/api/v1/admin/users', { username, password: PASSWORD }, admin);
      expect(created.status).toBe(201);
      const start = await call('POST', '/api/v1/t/acme/signin', { username, password: PASSWORD });
      const token = start.body.session.token as string;
      const added = await call('POST', '/api/v1/me/methods', { type: 'totp' }, token);
      clock.advance(30_000);
      expect((await call('POST', `/api/v1/me/methods/${added.body.id}/confirm`, { code: totpCode(added.body.secret, clock.now()) }, token)).status).toBe(200);
      users[username] = { id: created.body.id, secret: added.body.secret, codes: [], session: '' };
      const full = await signIn(username, totpNow(username));
      expect(full.status).toBe(200);
      users[username]!.session = full.body.session.token;
      const rc = await call('POST', '/api/v1/me/methods', { type: 'recovery-codes' }, users[username]!.session);
      expect(rc.status).toBe(201);
      users[username]!.codes = rc.body.codes;
    }
  }, 120_000);

  afterAll(async () => {
    await server?.close();
    await Promise.all([pg?.destroy(), redis?.down()]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('signs returning users in from the local fallback, pauses changes, and replays everything when it returns', async () => {
    // Changes made before the outage reach the fallback (the change feed): a disabled user, a revoked session, a removed method.
    expect((await call('PATCH', `/api/v1/admin/users/${users.dora!.id}`, { status: 'disabled' }, admin)).status).toBe(200);
    const mikeMethods = await call('GET', '/api/v1/me/methods', undefined, users.mike!.session);
    const mikeTotp = mikeMethods.body.find((m: { type: string }) => m.type === 'totp');
    // A new phone first: recovery codes alone are no method to be left with.
    const newPhone = await call('POST', '/api/v1/me/methods', { type: 'totp' }, users.mike!.session);
    expect(newPhone.status).toBe(201);
    const confirmed = await call(
      'POST',
      `/api/v1/me/methods/${newPhone.body.id}/confirm`,
      { code: totpCode(newPhone.body.secret, clock.now()) },
      users.mike!.session,
    );
    expect(confirmed.status).toBe(200);
    expect((await call('DELETE', `/api/v1/me/methods/${mikeTotp.id}`, undefined, users.mike!.session)).status).toBe(204);
    const revoked = await signIn('rick', totpNow('rick'));
    expect((await call('DELETE', '/api/v1/me/session', undefined, revoked.body.session.token)).status).toBe(204);
    await server.services.fallback!.pollOnce();
    expect(server.services.fallback!.ageSeconds()).toBeLessThan(5);

    // The sealed file never holds a secret in clear.
    await server.services.fallback!.snapshot!.save(join(dir, 'fallback-snapshot.sealed'), server.services.keyRing);
    const file = readFileSync(join(dir, 'fallback-snapshot.sealed'), 'utf8');
    expect(file).not.toContain('olive');
    expect(file).not.toContain('$argon2');

    await pg.down();

    // Password + TOTP.
    const olive = await signIn('olive', totpNow('olive'));
    expect(olive.status).toBe(200);
    expect(olive.body.state).toBe('complete');
    const outageSession = olive.body.session.token as string;
    expect(server.services.fallback!.mode).toBe('fallback');
    expect((await call('GET', '/api/v1/me', undefined, outageSession)).status).toBe(200);
    // A session from before the outage keeps working.
    expect((await call('GET', '/api/v1/me', undefined, users.olive!.session)).status).toBe(200);
    // The same TOTP code again is refused.
    const replay = await signIn('olive', { method: 'totp', code: totpCode(users.olive!.secret, clock.now()) });
    expect(replay.status).toBe(401);

    // Recovery code, single use.
    const rick = await signIn('rick', { method: 'recovery-codes', code: users.rick!.codes[0]! });
    expect(rick.status).toBe(200);
    expect((await signIn('rick', { method: 'recovery-codes', code: users.rick!.codes[0]! })).status).toBe(401);
    // The session revoked before the outage stays revoked.
    expect((await call('GET', '/api/v1/me', undefined, revoked.body.session.token)).status).toBe(401);

    // The disabled user and the removed method stay out.
    expect((await signIn('dora', totpNow('dora'))).status).not.toBe(200);
    expect((await signIn('mike', { method: 'totp', code: totpCode(users.mike!.secret, clock.now()) })).status).not.toBe(200);

    // Changes are paused with a clear answer.
    const change = await call('POST', '/api/v1/me/methods', { type: 'totp' }, outageSession);
    expect(change.status).toBe(503);
    expect(change.body.type).toMatch(/\/changes-paused$/);
    expect(change.body.detail).toMatch(/changes are paused while the database is unreachable/);
    expect(Number(change.headers.get('retry-after'))).toBeGreaterThan(0);
    expect((await call('POST', '/api/v1/admin/users', { username: 'newbie' }, admin)).status).toBe(503);

    // Visible.
    const ready = await call('GET', '/readyz');
    expect(ready.status).toBe(200);
    const status = await call('GET', '/api/v1/status');
    expect(status.body.components.durable).toMatchObject({ state: 'down', fallback: 'local-fallback', changes: 'paused' });
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics).toMatch(/steadfast_fallback_active 1/);
    const depth = server.services.fallback!.journal.depth;
    expect(depth).toBeGreaterThan(0);

    // A node restarted during the outage comes up from its sealed snapshot and serves sign-ins and sessions.
    await server.close();
    server = await startTestServer(backend, { clock, logLevel: 'silent' });
    expect(server.services.fallback!.mode).toBe('fallback');
    expect((await call('GET', '/api/v1/me', undefined, outageSession)).status).toBe(200);
    const again = await signIn('olive', totpNow('olive'));
    expect(again.status).toBe(200);
    expect(server.services.fallback!.journal.depth).toBeGreaterThan(depth);

    // The database returns: the journal is replayed, then statements go to it again.
    await pg.up();
    await eventually(() => server.services.fallback!.mode === 'primary', 'the journal is replayed');
    expect(server.services.fallback!.journal.depth).toBe(0);
    expect(server.services.fallback!.rejected).toBe(0);
    const db = server.services.durable.primaryDb!;
    // Nothing lost: the outage's sign-in events and sessions are in the database.
    const events = await db
      .selectFrom('signin_events')
      .select(['username', 'outcome', 'reason'])
      .where('username', '=', 'olive')
      .where('outcome', '=', 'success')
      .where('reason', '=', 'ok')
      .execute();
    expect(events.length).toBeGreaterThanOrEqual(2);
    expect((await call('GET', '/api/v1/me', undefined, outageSession)).status).toBe(200);
    // Nothing replayed: the recovery code used during the outage is used in the database too.
    expect((await signIn('rick', { method: 'recovery-codes', code: users.rick!.codes[0]! })).status).toBe(401);
    // Replaying again changes nothing (each entry's id is remembered).
    const replays = await db
      .selectFrom('outage_replays')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow();
    expect(Number(replays.n)).toBeGreaterThan(0);
    // Changes work again.
    expect((await call('POST', '/api/v1/admin/users', { username: 'newbie' }, admin)).status).toBe(201);
  }, 120_000);

  it('holds single use and shares sessions across nodes through Redis, and both nodes replay', async () => {
    const otherDir = mkdtempSync(join(tmpdir(), 'steadfast-outage-b-'));
    const nodeB = await startTestServer({ ...backend, config: { ...backend.config, dataDir: otherDir, nodeName: 'node-b' } }, { clock, logLevel: 'silent' });
    const onB = (method: string, path: string, body?: unknown, token?: string) => api(nodeB.url, method, path, body, token);
    try {
      await server.services.fallback!.pollOnce();
      await nodeB.services.fallback!.pollOnce();
      await pg.down();

      // A TOTP code used on node A is refused on node B (the hold in Redis), before the database can say so.
      const code = totpNow('olive');
      const onA = await signIn('olive', code);
      expect(onA.status).toBe(200);
      const startB = await onB('POST', '/api/v1/t/acme/signin', { username: 'olive', password: PASSWORD });
      expect(startB.status).toBe(200);
      expect((await onB('POST', `/api/v1/t/acme/signin/${startB.body.flow}/verify`, code)).status).toBe(401);

      // A session issued on A during the outage works on B; signed out on B, it ends on A too.
      const session = onA.body.session.token as string;
      expect((await onB('GET', '/api/v1/me', undefined, session)).status).toBe(200);
      expect((await onB('DELETE', '/api/v1/me/session', undefined, session)).status).toBe(204);
      expect((await call('GET', '/api/v1/me', undefined, session)).status).toBe(401);

      // A recovery code used on B is refused on A.
      const rickB = await onB('POST', '/api/v1/t/acme/signin', { username: 'rick', password: PASSWORD });
      expect((await onB('POST', `/api/v1/t/acme/signin/${rickB.body.flow}/verify`, { method: 'recovery-codes', code: users.rick!.codes[1] })).status).toBe(200);
      expect((await signIn('rick', { method: 'recovery-codes', code: users.rick!.codes[1]! })).status).toBe(401);

      await pg.up();
      await eventually(() => server.services.fallback!.mode === 'primary' && nodeB.services.fallback!.mode === 'primary', 'both nodes replay');
      expect(server.services.fallback!.journal.depth + nodeB.services.fallback!.journal.depth).toBe(0);
      // After recovery the database refuses them everywhere.
      expect((await onB('GET', '/api/v1/me', undefined, session)).status).toBe(401);
      expect((await onB('POST', '/api/v1/t/acme/signin', { username: 'rick', password: PASSWORD })).status).toBe(200);
      const rickAgain = await onB('POST', '/api/v1/t/acme/signin', { username: 'rick', password: PASSWORD });
      expect((await onB('POST', `/api/v1/t/acme/signin/${rickAgain.body.flow}/verify`, { method: 'recovery-codes', code: users.rick!.codes[1] })).status).toBe(
        401,
      );
    } finally {
      await nodeB.close();
      rmSync(otherDir, { recursive: true, force: true });
    }
  }, 120_000);

  it('signs returning users in with both the database and Redis down', async () => {
    await server.services.fallback!.pollOnce();
    await Promise.all([pg.down(), redis.down()]);
    try {
      const code = totpNow('olive');
      const done = await signIn('olive', code);
      expect(done.status).toBe(200);
      expect(done.body.state).toBe('complete');
      expect((await call('GET', '/api/v1/me', undefined, done.body.session.token)).status).toBe(200);
      expect((await signIn('olive', code)).status).toBe(401);
      const status = await call('GET', '/api/v1/status');
      expect(status.body.components.durable).toMatchObject({ state: 'down', fallback: 'local-fallback' });
      expect(status.body.components.ephemeral.state).toBe('down');
    } finally {
      await Promise.all([pg.up(), redis.up()]);
    }
    await eventually(() => server.services.fallback!.mode === 'primary', 'the journal is replayed');
    expect(server.services.fallback!.journal.depth).toBe(0);
  }, 120_000);

  it('remembers a browser signed in during the outage, during it and after the replay', async () => {
    const person = await adminPersonSession(server.services, 'acme');
    expect((await call('PUT', '/api/v1/admin/policy', { rememberedDeviceDays: 7 }, person)).status).toBe(200);
    await server.services.fallback!.pollOnce();
    await pg.down();
    const browser = new PageClient(server.url);
    try {
      const start = await browser.post('/t/acme/signin', { username: 'olive', password: PASSWORD }, { from: '/t/acme/signin' });
      const flow = flowOf(start);
      expect(flow).toBeTruthy();
      const verified = await browser.post(
        '/t/acme/signin/verify',
        { flow: flow!, method: 'totp', code: totpNow('olive').code, remember: 'on' },
        { from: start.location! },
      );
      // Signed in from the fallback, and the browser remembered (journaled like the session).
      expect(verified.status).toBe(303);
      expect(verified.location).toBe('/t/acme/my/security-info');
      expect(server.services.fallback!.mode).toBe('fallback');
      expect(browser.cookies.get('sf_device')).toMatch(/^sfd_/);
      await browser.post('/t/acme/signout', {}, { from: '/t/acme/signin/tap' });
      const during = await browser.post('/t/acme/signin', { username: 'olive', password: PASSWORD }, { from: '/t/acme/signin' });
      // Remembered on this node's fallback at once: the password alone signs in, still during the outage.
      expect(during.status).toBe(303);
      expect(during.location).toBe('/t/acme/my/security-info');
    } finally {
      await pg.up();
    }
    await eventually(() => server.services.fallback!.mode === 'primary', 'the journal is replayed');
    expect(server.services.fallback!.rejected).toBe(0);

    // Back on the database: the same browser signs in with the password alone, and the session says so.
    await browser.post('/t/acme/signout', {}, { from: '/t/acme/signin/tap' });
    const again = await browser.post('/t/acme/signin', { username: 'olive', password: PASSWORD }, { from: '/t/acme/signin' });
    expect(again.status).toBe(303);
    expect(flowOf(again)).toBeUndefined();
    expect((await server.services.sessions.authenticate(browser.cookies.get('sf_session')!))!.amr).toEqual(['pwd']);
    // Another browser still gets the second step.
    const other = await new PageClient(server.url).post('/t/acme/signin', { username: 'olive', password: PASSWORD }, { from: '/t/acme/signin' });
    expect(flowOf(other)).toBeTruthy();
  }, 120_000);
});
