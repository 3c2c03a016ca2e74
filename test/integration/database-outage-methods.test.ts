import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.ts';
import { loadConfig } from '../../src/config/config.ts';
import { testMasterKey, type Backend } from '../helpers/backends.ts';
import { PrivatePostgres } from '../helpers/private-postgres.ts';
import { PrivateRedis } from '../helpers/private-redis.ts';
import { SoftAuthenticator } from '../helpers/soft-authenticator.ts';
import { api, startTestServer, type TestServer } from '../helpers/test-server.ts';
import { codeIn, startSmtpStandIn, startTwilioStandIn, type SmtpStandIn, type StandIn } from '../helpers/vendor-standins.ts';

/**
 * Issue 12 for the methods database-outage.test.ts does not cover: SMS, voice
 * and email codes (their providers still answer), passkeys and security keys,
 * and Temporary Access Passes, all verified from the local fallback while
 * PostgreSQL is stopped, and replayed once when it returns.
 */
const PASSWORD = 'a returning user passphrase';
const ORIGIN = 'https://login.example.test';
const TWILIO = { accountSid: 'AC0123456789abcdef', authToken: 'twilio-test-token' };

async function eventually(probe: () => Promise<boolean> | boolean, what: string): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if (await probe()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`never happened: ${what}`);
}

describe.runIf(PrivatePostgres.available() && PrivateRedis.available())('codes, passkeys and passes while PostgreSQL is down', () => {
  let pg: PrivatePostgres;
  let redis: PrivateRedis;
  let backend: Backend;
  let server: TestServer;
  let sms: StandIn;
  let calls: StandIn;
  let mail: SmtpStandIn;
  let admin = '';
  const ids: Record<string, string> = {};
  const dir = mkdtempSync(join(tmpdir(), 'steadfast-outage-methods-'));
  const clock = new ManualClock(Date.UTC(2026, 10, 30, 9, 0, 0));
  const passkey = new SoftAuthenticator(ORIGIN);
  const securityKey = new SoftAuthenticator(ORIGIN, Buffer.alloc(16, 7), false);

  const call = (method: string, path: string, body?: unknown, token?: string) => api(server.url, method, path, body, token);
  const passwordStep = async (username: string) => {
    const start = await call('POST', '/api/v1/t/acme/signin', { username, password: PASSWORD });
    expect(start.status).toBe(200);
    expect(start.body.state).toBe('factor_required');
    return start.body.flow as string;
  };
  const verify = (flow: string, body: unknown) => call('POST', `/api/v1/t/acme/signin/${flow}/verify`, body);

  /** A user whose first method (a phone number or address) is confirmed with the code sent to it; answers the registration session. */
  const userWith = async (username: string, type: 'sms' | 'voice' | 'email', to: string, inbox: () => { received: { text: string }[] }) => {
    const created = await call('POST', '/api/v1/admin/users', { username, password: PASSWORD }, admin);
    expect(created.status).toBe(201);
    ids[username] = created.body.id;
    const start = await call('POST', '/api/v1/t/acme/signin', { username, password: PASSWORD });
    expect(start.body.state).toBe('registration_required');
    const token = start.body.session.token as string;
    const enrol = await call('POST', '/api/v1/me/methods', { type, to }, token);
    expect(enrol.status).toBe(201);
    const confirm = await call('POST', `/api/v1/me/methods/${enrol.body.id}/confirm`, { code: codeIn(inbox().received.at(-1) as never) }, token);
    expect(confirm.status).toBe(200);
    return token;
  };

  /** A code method's whole sign-in: the password, a challenge sent through the provider, the code it carried. */
  const codeSignIn = async (username: string, type: 'sms' | 'voice' | 'email', inbox: () => { received: { text: string }[] }) => {
    const flow = await passwordStep(username);
    const before = inbox().received.length;
    const challenge = await call('POST', `/api/v1/t/acme/signin/${flow}/challenge`, { method: type });
    expect(challenge.status).toBe(200);
    expect(challenge.body.delivery.channel).toBe(type);
    expect(inbox().received.length).toBe(before + 1);
    const code = codeIn(inbox().received.at(-1) as never);
    return { flow, code, done: await verify(flow, { method: type, code }) };
  };

  beforeAll(async () => {
    [pg, redis, sms, calls, mail] = await Promise.all([
      PrivatePostgres.start(),
      PrivateRedis.start(),
      startTwilioStandIn(TWILIO),
      startTwilioStandIn(TWILIO),
      startSmtpStandIn(),
    ]);
    const configFile = join(dir, 'delivery.json');
    writeFileSync(
      configFile,
      JSON.stringify({
        delivery: {
          sms: [{ name: 'primary', type: 'twilio', baseUrl: sms.url, ...TWILIO, from: '+15005550006' }],
          voice: [{ name: 'calls', type: 'twilio', baseUrl: calls.url, ...TWILIO, from: '+15005550006' }],
          email: [{ name: 'mail', type: 'smtp', host: '127.0.0.1', port: mail.port, from: 'Acme sign-in <no-reply@example.test>', timeoutMs: 3000 }],
          code: { resendCooldownSeconds: 5 },
        },
      }),
    );
    const config = loadConfig({
      STEADFAST_DATA_DIR: join(dir, 'node-a'),
      STEADFAST_MASTER_KEY: testMasterKey(),
      STEADFAST_DATABASE_URL: pg.url,
      STEADFAST_REDIS_URL: redis.url,
      STEADFAST_CONFIG: configFile,
      STEADFAST_PUBLIC_URL: ORIGIN,
      PORT: '0',
      STEADFAST_LOG_LEVEL: 'silent',
    });
    backend = { name: 'private postgres+redis', config, cleanup: async () => {} };
    server = await startTestServer(backend, { clock, logLevel: 'silent' });
    const tenant = await server.services.tenants.create('acme', 'Acme');
    admin = (await server.services.adminTokens.create(tenant.id, 'admin')).token;

    await userWith('sam', 'sms', '+44 7700 900123', () => sms);
    await userWith('vic', 'voice', '+44 7700 900456', () => calls);
    await userWith('eve', 'email', 'eve@example.test', () => mail);

    // Wanda: an email address first (to get past registration), then a passkey and a security key.
    const token = await userWith('wanda', 'email', 'wanda@example.test', () => mail);
    for (const [authenticator, kind] of [
      [passkey, 'passkey'],
      [securityKey, 'security-key'],
    ] as const) {
      const options = await call('POST', '/api/v1/me/methods/webauthn/options', { kind }, token);
      expect(options.status).toBe(200);
      expect(
        (await call('POST', '/api/v1/me/methods', { type: 'webauthn', label: kind, attestation: authenticator.register(options.body) }, token)).status,
      ).toBe(201);
    }

    // Tom and Tess have passes: one single-use, one for the day.
    await userWith('tom', 'email', 'tom@example.test', () => mail);
    await userWith('tess', 'email', 'tess@example.test', () => mail);
  }, 180_000);

  afterAll(async () => {
    await server?.close();
    await Promise.all([pg?.destroy(), redis?.down(), sms?.close(), calls?.close(), mail?.close()]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('sends and checks SMS, voice and email codes from the fallback, each code once', async () => {
    await server.services.fallback!.pollOnce();
    await pg.down();
    try {
      for (const [username, type, inbox] of [
        ['sam', 'sms', () => sms],
        ['vic', 'voice', () => calls],
        ['eve', 'email', () => mail],
      ] as const) {
        const { code, done } = await codeSignIn(username, type, inbox);
        expect(done.status, `${type} code`).toBe(200);
        expect(done.body.state).toBe('complete');
        expect(server.services.fallback!.mode).toBe('fallback');
        expect((await call('GET', '/api/v1/me', undefined, done.body.session.token)).status).toBe(200);
        // The code is spent: a fresh flow cannot use it again.
        const again = await passwordStep(username);
        expect((await verify(again, { method: type, code })).status, `${type} code again`).toBe(401);
        // A wrong code is refused and counted, never a 5xx.
        clock.advance(6000);
        const other = await passwordStep(username);
        expect((await call('POST', `/api/v1/t/acme/signin/${other}/challenge`, { method: type })).status).toBe(200);
        const wrong = await verify(other, { method: type, code: code === '000000' ? '111111' : '000000' });
        expect(wrong.status).toBe(401);
        expect(wrong.body.type).toMatch(/\/invalid-code$/);
      }
    } finally {
      await pg.up();
    }
    await eventually(() => server.services.fallback!.mode === 'primary', 'the journal is replayed');
    expect(server.services.fallback!.rejected).toBe(0);
    const events = await server.services.durable
      .primaryDb!.selectFrom('signin_events')
      .select(['username', 'method'])
      .where('outcome', '=', 'success')
      .where('username', 'in', ['sam', 'vic', 'eve'])
      .execute();
    for (const type of ['sms', 'voice', 'email']) expect(events.some((e) => e.method === type)).toBe(true);
  }, 120_000);

  it('signs in with a passkey alone and a security key after the password from the fallback; a cloned counter is refused', async () => {
    await server.services.fallback!.pollOnce();
    await pg.down();
    let counterAfter = 0;
    try {
      // Passkey alone (discoverable, user verified).
      const start = await call('POST', '/api/v1/t/acme/signin/passkey');
      expect(start.status).toBe(200);
      const alone = await verify(start.body.flow, { method: 'passkey', assertion: passkey.assert(start.body.webauthn.challenge) });
      expect(alone.status).toBe(200);
      expect(server.services.fallback!.mode).toBe('fallback');
      expect((await call('GET', '/api/v1/me', undefined, alone.body.session.token)).body).toMatchObject({
        username: 'wanda',
        session: { amr: expect.arrayContaining(['hwk', 'user', 'mfa']) },
      });

      // Security key as the second factor.
      const flow = await passwordStep('wanda');
      const challenge = await call('POST', `/api/v1/t/acme/signin/${flow}/challenge`, { method: 'webauthn' });
      expect(challenge.status).toBe(200);
      const second = await verify(flow, { method: 'webauthn', assertion: securityKey.assert(challenge.body.webauthn.challenge) });
      expect(second.status).toBe(200);
      expect(second.body.state).toBe('complete');

      // The passkey's counter moved on in the fallback: an assertion repeating the last counter is a clone's.
      const next = await call('POST', '/api/v1/t/acme/signin/passkey');
      const cloned = await verify(next.body.flow, { method: 'passkey', assertion: passkey.assert(next.body.webauthn.challenge, { counter: passkey.counter }) });
      expect(cloned.status).toBe(401);
      counterAfter = passkey.counter;
      // Registering a key is a change: paused.
      expect((await call('POST', '/api/v1/me/methods/webauthn/options', { kind: 'passkey' }, alone.body.session.token)).status).toBe(503);
    } finally {
      await pg.up();
    }
    await eventually(() => server.services.fallback!.mode === 'primary', 'the journal is replayed');
    expect(server.services.fallback!.rejected).toBe(0);
    // The counter reached during the outage is the database's now: the clone's counter stays refused.
    const tenant = (await server.services.tenants.findBySlug('acme'))!;
    const stored = await server.services.credentials.findByExternalId(tenant.id, passkey.id);
    expect(Number(stored!.publicData.counter)).toBeGreaterThanOrEqual(counterAfter);
    const after = await call('POST', '/api/v1/t/acme/signin/passkey');
    expect(
      (await verify(after.body.flow, { method: 'passkey', assertion: passkey.assert(after.body.webauthn.challenge, { counter: counterAfter }) })).status,
    ).toBe(401);
  }, 120_000);

  it('takes Temporary Access Passes from the fallback: a one-time pass once, a day pass again, and issuing waits for the database', async () => {
    const once = await call('POST', `/api/v1/admin/users/${ids.tom}/tap`, { minutes: 60, oneTime: true }, admin);
    expect(once.status).toBe(201);
    const day = await call('POST', `/api/v1/admin/users/${ids.tess}/tap`, { minutes: 60, oneTime: false }, admin);
    expect(day.status).toBe(201);
    await server.services.fallback!.pollOnce();
    await pg.down();
    try {
      // In place of the password.
      const first = await call('POST', '/api/v1/t/acme/signin', { username: 'tom', tap: once.body.code });
      expect(first.status).toBe(200);
      expect(first.body.session.token).toBeTruthy();
      expect(server.services.fallback!.mode).toBe('fallback');
      expect((await call('POST', '/api/v1/t/acme/signin', { username: 'tom', tap: once.body.code })).status).toBe(401);

      // As the second factor, twice for a pass that is not one-time.
      for (let i = 0; i < 2; i++) {
        const flow = await passwordStep('tess');
        const done = await verify(flow, { method: 'tap', code: day.body.code });
        expect(done.status).toBe(200);
        expect(done.body.state).toBe('complete');
      }

      // Issuing a pass is an administrator's change: paused, with Retry-After.
      const paused = await call('POST', `/api/v1/admin/users/${ids.tom}/tap`, { minutes: 60, oneTime: true }, admin);
      expect(paused.status).toBe(503);
      expect(paused.body.type).toMatch(/\/changes-paused$/);
      expect(Number(paused.headers.get('retry-after'))).toBeGreaterThan(0);
    } finally {
      await pg.up();
    }
    await eventually(() => server.services.fallback!.mode === 'primary', 'the journal is replayed');
    expect(server.services.fallback!.rejected).toBe(0);
    // The one-time pass used during the outage is used in the database too.
    expect((await call('POST', '/api/v1/t/acme/signin', { username: 'tom', tap: once.body.code })).status).toBe(401);
    const tess = await passwordStep('tess');
    expect((await verify(tess, { method: 'tap', code: day.body.code })).status).toBe(200);
  }, 120_000);

  it('holds a signature counter across two nodes during the outage, and the highest counter survives replay in any order', async () => {
    const bDir = join(dir, 'node-b');
    const nodeBBackend = { ...backend, config: { ...backend.config, dataDir: bDir, nodeName: 'node-b' } };
    let nodeB = await startTestServer(nodeBBackend, { clock, logLevel: 'silent' });
    const onB = (method: string, path: string, body?: unknown) => api(nodeB.url, method, path, body);
    const passkeyOn = async (on: typeof call, counter?: number) => {
      const start = await on('POST', '/api/v1/t/acme/signin/passkey');
      expect(start.status).toBe(200);
      return on('POST', `/api/v1/t/acme/signin/${start.body.flow}/verify`, {
        method: 'passkey',
        assertion: passkey.assert(start.body.webauthn.challenge, counter === undefined ? {} : { counter }),
      });
    };
    const pass = await call('POST', `/api/v1/admin/users/${ids.tom}/tap`, { minutes: 60, oneTime: true }, admin);
    expect(pass.status).toBe(201);
    clock.advance(60_000);
    const outageBegan = clock.now();
    try {
      await server.services.fallback!.pollOnce();
      await nodeB.services.fallback!.pollOnce();
      await pg.down();

      // The genuine passkey signs in on B: its counter moves on there, and in Redis.
      expect((await passkeyOn(onB)).status).toBe(200);
      expect(nodeB.services.fallback!.mode).toBe('fallback');
      const seenOnB = passkey.counter;
      // A clone with the same counter on A, whose snapshot still holds the older one: refused.
      const cloned = await passkeyOn(call, seenOnB);
      expect(cloned.status).toBe(401);
      expect(server.services.fallback!.mode).toBe('fallback');
      // The genuine one goes on, on A.
      expect((await passkeyOn(call)).status).toBe(200);
      const highest = passkey.counter;
      expect(highest).toBeGreaterThan(seenOnB);

      // A one-time pass used on B is refused on A.
      expect((await onB('POST', '/api/v1/t/acme/signin', { username: 'tom', tap: pass.body.code })).status).toBe(200);
      expect((await call('POST', '/api/v1/t/acme/signin', { username: 'tom', tap: pass.body.code })).status).toBe(401);

      // B goes away with its journal (the lower counter) and replays it only after A replayed the higher one.
      await nodeB.close();
      await pg.up();
      await eventually(() => server.services.fallback!.mode === 'primary', 'A replays');
      nodeB = await startTestServer(nodeBBackend, { clock, logLevel: 'silent' });
      expect(nodeB.services.fallback!.journal.depth).toBe(0);
      expect(nodeB.services.fallback!.rejected).toBe(0);
      expect(server.services.fallback!.rejected).toBe(0);

      const tenant = (await server.services.tenants.findBySlug('acme'))!;
      const stored = (await server.services.credentials.findByExternalId(tenant.id, passkey.id))!;
      expect(stored.signCount).toBe(highest);
      // The clone refused on A is marked for the user and the administrator (this outage's mark, replayed).
      expect(stored.publicData.cloneSuspectedAt).toBeGreaterThanOrEqual(outageBegan);
      // After recovery the database refuses the counters the outage reached, on either node.
      expect((await passkeyOn(onB, highest)).status).toBe(401);
      expect((await passkeyOn(call, seenOnB)).status).toBe(401);
      expect((await passkeyOn(call, highest + 1)).status).toBe(200);
      expect((await call('POST', '/api/v1/t/acme/signin', { username: 'tom', tap: pass.body.code })).status).toBe(401);
    } finally {
      await nodeB.close();
    }
  }, 120_000);
});
