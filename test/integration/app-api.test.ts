import { writeFileSync } from 'node:fs';
import { adminPersonSession } from '../helpers/admin-person.ts';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SteadfastClient, SteadfastError } from 'steadfast/client';
import { ManualClock } from '../../src/clock.ts';
import { backends, type Backend } from '../helpers/backends.ts';
import { startTestServer, type TestServer } from '../helpers/test-server.ts';
import { totpCode } from '../helpers/totp.ts';
import { codeIn, startWebhookReceiver, type StandIn } from '../helpers/vendor-standins.ts';

const PASSWORD = 'correct horse battery staple';
const HOOK = 'app-api-webhook-secret-01';

/** The REST app API, driven through the project's own client (`steadfast/client`). */
for (const spec of backends) {
  describe.runIf(await spec.available())(`app API and client on ${spec.name}`, () => {
    let backend: Backend;
    let server: TestServer;
    let gateway: StandIn;
    let admin: SteadfastClient;
    let app: SteadfastClient;
    let totpSecret = '';
    // The server's clock: TOTP steps move when the test says, not with the wall clock.
    const clock = new ManualClock(Date.now());

    const caught = async (promise: Promise<unknown>): Promise<SteadfastError> => {
      try {
        await promise;
      } catch (err) {
        expect(err).toBeInstanceOf(SteadfastError);
        return err as SteadfastError;
      }
      throw new Error('the call succeeded');
    };

    /** A user who signed in once and set up the given method. */
    const userWith = async (username: string, method: 'totp' | 'sms') => {
      await admin.admin.createUser({ username, password: PASSWORD });
      const start = await new SteadfastClient({ baseUrl: server.url }).signin.start('acme', { username, password: PASSWORD });
      const me = admin.withToken(start.session!.token).me;
      if (method === 'totp') {
        const added = await me.addMethod({ type: 'totp' });
        totpSecret = String(added.secret);
        await me.confirm(added.id, totpCode(totpSecret, clock.now()));
      } else {
        const added = await me.addMethod({ type: 'sms', to: '+447700900500' });
        await me.confirm(added.id, codeIn(gateway.received.at(-1)));
      }
    };

    beforeAll(async () => {
      gateway = await startWebhookReceiver(HOOK);
      const configFile = join(tmpdir(), `steadfast-appapi-${process.pid}-${spec.name}.json`);
      writeFileSync(
        configFile,
        JSON.stringify({
          delivery: { sms: [{ name: 'gateway', type: 'webhook', url: gateway.url, secret: HOOK, resetAfterMs: 300 }], code: { resendCooldownSeconds: 5 } },
        }),
      );
      backend = await spec.create({ STEADFAST_CONFIG: configFile });
      server = await startTestServer(backend, { clock });
      const tenant = await server.services.tenants.create('acme', 'Acme');
      admin = new SteadfastClient({ baseUrl: server.url, token: (await server.services.adminTokens.create(tenant.id, 'admin')).token });
      // Apps are a person's to make: an administrator's session, not the admin token.
      const person = new SteadfastClient({ baseUrl: server.url, token: await adminPersonSession(server.services, 'acme') });
      const created = await person.admin.createApp({ name: 'VPN', kind: 'api' });
      app = new SteadfastClient({ baseUrl: server.url, token: created.apiKey });
      await userWith('tom', 'totp');
      await userWith('sue', 'sms');
    });
    afterAll(async () => {
      await server?.close();
      await backend?.cleanup();
      await gateway?.close();
    });

    it('tells the app what each user can do', async () => {
      expect(await app.app.preauth('nobody')).toMatchObject({ result: 'deny', reason: 'no such user' });
      expect(await app.app.preauth('TOM')).toMatchObject({ result: 'auth', methods: [{ type: 'totp', available: true }] });
      await admin.admin.createUser({ username: 'newbie' });
      expect(await app.app.preauth('newbie')).toMatchObject({ result: 'enroll', enrollUrl: expect.stringMatching(/\/t\/acme\/my\/security-info$/) });
      expect((await caught(new SteadfastClient({ baseUrl: server.url, token: 'sfk_not-a-key' }).app.preauth('tom'))).status).toBe(401);
    });

    it('lets no password in on its own after a reset or a report, even where MFA is optional: a pass is the way (twenty-sixth round)', async () => {
      const tenant = (await server.services.tenants.findBySlug('acme'))!;
      const optional = { ...tenant, policy: { ...tenant.policy, mfaRequired: false } };
      await server.services.tenants.setPolicy(tenant, optional.policy);
      try {
        const plain = await admin.admin.createUser({ username: 'plain-one', password: 'a password of theirs 42' });
        expect(await app.app.preauth('plain-one')).toMatchObject({ result: 'allow' });
        await server.services.admin.resetMethods(optional, 'cli', plain.id);
        expect(await app.app.preauth('plain-one')).toMatchObject({ result: 'deny', reason: expect.stringContaining('predates a methods reset') });
        const reported = await admin.admin.createUser({ username: 'flagged-one', password: 'a password of theirs 42' });
        clock.advance(1000);
        await server.services.users.flag(tenant.id, reported.id);
        expect(await app.app.preauth('flagged-one')).toMatchObject({ result: 'deny' });
        // A pass they hold is a second factor the app can check.
        await server.services.admin.issuePass(optional, 'cli', reported.id, { minutes: 60, oneTime: true });
        expect(await app.app.preauth('flagged-one')).toMatchObject({ result: 'auth', methods: [{ type: 'tap' }] });
      } finally {
        await server.services.tenants.setPolicy(tenant, tenant.policy);
      }
    });

    it('verifies a TOTP code, once, with no Steadfast session', async () => {
      clock.advance(30_000);
      const code = totpCode(totpSecret, clock.now());
      const wrong = await caught(app.app.auth({ username: 'tom', method: 'totp', code: code === '000000' ? '111111' : '000000' }));
      expect(wrong).toMatchObject({ status: 401, code: 'invalid-code' });
      expect(await app.app.auth({ username: 'tom', method: 'totp', code })).toEqual({ result: 'allow', amr: ['otp'] });
      expect((await caught(app.app.auth({ username: 'tom', method: 'totp', code }))).code).toBe('code-already-used');
      const [event] = (await admin.admin.signins({ user: 'tom', outcome: 'success', method: 'totp' })).items;
      expect(event).toMatchObject({ app: 'VPN', step: 'second-factor' });
    });

    it('sends an SMS code, reports the challenge pending, then allowed', async () => {
      const challenge = await app.app.auth({ username: 'sue', method: 'sms' });
      expect(challenge).toMatchObject({ result: 'challenge', txid: expect.any(String), delivery: { channel: 'sms', to: '+••••••••••00' } });
      expect(await app.app.status(challenge.txid!)).toEqual({ state: 'pending' });
      // Another user's challenge is not this one's.
      expect((await caught(app.app.auth({ username: 'tom', method: 'sms', code: '123456', txid: challenge.txid! }))).code).toBe('flow-not-found');
      const done = await app.app.auth({ username: 'sue', method: 'sms', code: codeIn(gateway.received.at(-1)), txid: challenge.txid! });
      expect(done).toEqual({ result: 'allow', amr: ['sms'] });
      expect(await app.app.status(challenge.txid!)).toEqual({ state: 'allow', amr: ['sms'] });
      expect(await app.app.status('no-such-transaction')).toEqual({ state: 'expired' });
    });

    it('limits how often an app may ask about one user', async () => {
      let refused: SteadfastError | undefined;
      for (let i = 0; i < 40 && !refused; i++) {
        await app.app.preauth('tom').catch((err: unknown) => {
          refused = err as SteadfastError;
        });
      }
      expect(refused).toMatchObject({ status: 429, code: 'too-many-requests' });
      expect(refused!.retryAfter).toBeGreaterThan(0);
      // Other users are not held back.
      expect((await app.app.preauth('sue')).result).toBe('auth');
    });

    it('gives the admin API and self-service through the same client', async () => {
      const users = await admin.admin.users({ q: 's' });
      // (Besides the administrator whose session made the app, adminPersonSession.)
      expect(users.items.map((u) => u.username).filter((name) => !name.startsWith('policy-admin-'))).toEqual(['sue']);
      const csv = await admin.admin.signinsCsv({ user: 'sue' });
      expect(csv.split('\r\n')[0]).toMatch(/^id,at,userId,username/);
      expect((await admin.admin.audit({ action: 'app.created' })).items[0]).toMatchObject({ details: { name: 'VPN', kind: 'api' } });
      expect((await admin.ops.status()).status).toBe('operational');
    });

    // Last: it leaves the gateway's breaker open (the breaker's reset is proved in test/unit/provider-chain.test.ts).
    it('keeps a sent challenge pending while the channel goes down', async () => {
      const challenge = await app.app.auth({ username: 'sue', method: 'sms' });
      gateway.behave({ kind: 'fail', status: 503 });
      // Three failed sends in a row open the gateway's breaker: text messages are now unavailable.
      for (let i = 0; i < 3; i++) expect((await caught(app.app.auth({ username: 'sue', method: 'sms' }))).code).toBe('method-unavailable');
      expect((await app.app.preauth('sue')).methods[0]).toMatchObject({ type: 'sms', available: false });
      expect(await app.app.status(challenge.txid!)).toEqual({ state: 'pending' });
      // The code already sent still works.
      const done = await app.app.auth({ username: 'sue', method: 'sms', code: codeIn(gateway.received.at(-1)), txid: challenge.txid! });
      expect(done.result).toBe('allow');
    });
  });
}
