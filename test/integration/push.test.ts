import { generateKeyPairSync } from 'node:crypto';
import { adminPersonSession } from '../helpers/admin-person.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.ts';
import type { Tenant } from '../../src/directory/tenant.ts';
import type { User } from '../../src/directory/users.ts';
import { backends, type Backend } from '../helpers/backends.ts';
import { api, startTestServer, type TestServer } from '../helpers/test-server.ts';
import { PushServiceStandIn } from '../helpers/push-service-standin.ts';
import { PushDevice } from '../helpers/push-device.ts';
import { subscriptionMessage } from '../../src/methods/push/device-signature.ts';

const PASSWORD = 'pia password 1';

/**
 * Push approval with number matching over the API: pairing, a request that
 * reaches the device by Web Push (checked by a push-service stand-in that
 * decrypts it), the device's signed answer, and everything that must be
 * refused: forged, replayed, expired and wrong-number approvals; the fatigue
 * limits; and no reachable device making push unavailable.
 */
for (const spec of backends) {
  describe.runIf(await spec.available())(`push approval on ${spec.name}`, () => {
    let backend: Backend;
    let server: TestServer;
    let pushService: PushServiceStandIn;
    let tenant: Tenant;
    const clock = new ManualClock(Date.now());
    let userSeq = 0;

    beforeAll(async () => {
      pushService = await PushServiceStandIn.start();
      backend = await spec.create({ STEADFAST_PUSH_SERVICES: '127.0.0.1' });
      server = await startTestServer(backend, { clock });
      tenant = await server.services.tenants.create('pu', 'Push Co');
    });
    afterAll(async () => {
      await server?.close();
      await backend?.cleanup();
      await pushService?.close();
    });

    /** A user with a paired device (subscribed to the stand-in) and, as a fallback, recovery codes. */
    async function pairedUser(opts: { subscribe?: boolean } = {}): Promise<{ user: User; device: PushDevice; username: string }> {
      const username = `pia${++userSeq}`;
      const user = await server.services.users.create(tenant.id, { username, passwordHash: await server.services.hasher.hash(PASSWORD) });
      const { reveal } = await server.services.methods.push!.enrol(tenant, user, {});
      const device = new PushDevice(server.url, 'pu', tenant.id);
      const paired = await device.pair(String(reveal.pairingUrl), opts.subscribe === false ? undefined : pushService.subscribe());
      expect(paired.status).toBe(200);
      expect(paired.body).toMatchObject({ username, tenant: { slug: 'pu', name: 'Push Co' } });
      await server.services.methods.get('recovery-codes')!.enrol(tenant, user, {});
      return { user, device, username };
    }

    async function startSignin(username: string) {
      const started = await api(server.url, 'POST', '/api/v1/t/pu/signin', { username, password: PASSWORD });
      expect(started.body.state).toBe('factor_required');
      return started.body.flow as string;
    }

    const status = async (flow: string) => (await api(server.url, 'GET', `/api/v1/t/pu/signin/${flow}/status`)).body.state;
    const challenge = (flow: string) => api(server.url, 'POST', `/api/v1/t/pu/signin/${flow}/challenge`, { method: 'push' });

    it('pairs a device once per link, and only with a P-256 public key', async () => {
      const user = await server.services.users.create(tenant.id, { username: 'pairer', passwordHash: await server.services.hasher.hash(PASSWORD) });
      const { reveal, credential } = await server.services.methods.push!.enrol(tenant, user, {});
      expect(String(reveal.pairingUrl)).toMatch(/\/t\/pu\/authenticator#pair=[A-Za-z0-9_-]+$/);
      expect(String(reveal.qrCodeSvg)).toContain('<svg');
      const device = new PushDevice(server.url, 'pu', tenant.id);
      const token = new URL(String(reveal.pairingUrl)).hash.slice('#pair='.length);
      // A private key, an RSA key and garbage are refused, and do not use the link up.
      const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ format: 'jwk' });
      for (const publicKey of [device.privateKey.export({ format: 'jwk' }), rsa, { kty: 'EC', crv: 'P-256', x: 'A'.repeat(43), y: 'A'.repeat(43) }]) {
        const bad = await api(server.url, 'POST', '/api/v1/t/pu/authenticator/pair', { token, publicKey });
        expect(bad.status).toBe(400);
      }
      expect((await device.pair(String(reveal.pairingUrl))).status).toBe(200);
      expect(device.deviceId).toBe(credential.id);
      const again = await new PushDevice(server.url, 'pu', tenant.id).pair(String(reveal.pairingUrl));
      expect(again.status).toBe(401);
      const [active] = await server.services.credentials.listForUser(tenant.id, user.id, 'active');
      expect(active).toMatchObject({ type: 'push', label: 'Test phone', publicData: { publicKey: { kty: 'EC', crv: 'P-256' } } });
      // A method added, in the audit log (and so in the owner's security notice), as every other (twenty-fourth round).
      const added = await server.services.audit.list(tenant.id, { limit: 5, userId: user.id, action: 'method.added' });
      expect(added.map((a) => a.details)).toEqual([{ type: 'push', label: 'Test phone', credentialId: credential.id, via: 'pairing' }]);
    });

    it('keeps at most two live streams per device: a third ends the oldest (twenty-fifth round: 2,000 were held open)', async () => {
      const { device } = await pairedUser();
      const open = async () => {
        const aborter = new AbortController();
        const res = await fetch(`${server.url}/api/v1/t/pu/authenticator/stream?${device.readQuery()}`, { signal: aborter.signal });
        expect(res.status).toBe(200);
        const reader = res.body!.getReader();
        /** Whether the server has ended this stream (within a second). */
        const ended = async () => {
          const deadline = Date.now() + 1000;
          while (Date.now() < deadline) {
            const next = await Promise.race([reader.read(), new Promise<'waiting'>((r) => setTimeout(() => r('waiting'), 200))]);
            if (next !== 'waiting' && next.done) return true;
          }
          return false;
        };
        return { ended, close: () => aborter.abort() };
      };
      const first = await open();
      const second = await open();
      expect(await first.ended()).toBe(false);
      const third = await open();
      expect(await first.ended()).toBe(true);
      expect(await second.ended()).toBe(false);
      expect(await third.ended()).toBe(false);
      second.close();
      third.close();
    });

    it('sends the request by Web Push (VAPID-signed, encrypted, without the number) and approves with the right number', async () => {
      const { device, username, user } = await pairedUser();
      const flow = await startSignin(username);
      expect(await status(flow)).toBe('none');
      const before = pushService.received.length;
      const started = await challenge(flow);
      expect(started.status).toBe(200);
      expect(started.body.push.number).toMatch(/^[1-9][0-9]$/);
      const number = started.body.push.number as string;

      // The push service got one message it could decrypt with the browser's keys, signed with the deployment's VAPID key.
      expect(pushService.received.length).toBe(before + 1);
      const message = pushService.received.at(-1)!;
      expect(message.vapidValid).toBe(true);
      expect(message.vapidKey).toBe((await api(server.url, 'GET', '/api/v1/t/pu/authenticator/config')).body.vapidPublicKey);
      expect(message.ttl).toBeGreaterThan(0);
      expect(message.ttl).toBeLessThanOrEqual(60);
      const payload = JSON.parse(message.plaintext);
      expect(payload).toMatchObject({ kind: 'signin-request', tenant: 'pu' });
      expect(message.plaintext).not.toContain(number === '10' ? '"number"' : `"${number}"`);
      expect(message.plaintext).not.toContain(flow);

      // Reloading the page shows the same request: no second push.
      const again = await challenge(flow);
      expect(again.body.push.number).toBe(number);
      expect(pushService.received.length).toBe(before + 1);

      const listed = await device.requests(clock.now());
      expect(listed.status).toBe(200);
      expect(listed.body.requests).toHaveLength(1);
      const request = listed.body.requests[0];
      expect(request).toMatchObject({ id: payload.id, username, ip: '127.0.0.1' });
      expect(JSON.stringify(listed.body)).not.toContain(flow);
      expect(JSON.stringify(request)).not.toMatch(new RegExp(`"number"`));
      expect(await status(flow)).toBe('pending');

      // Not approved yet: verifying fails (and counts as a try).
      expect((await api(server.url, 'POST', `/api/v1/t/pu/signin/${flow}/verify`, { method: 'push' })).status).toBe(401);

      const approval = device.answer(request, 'approve', number, clock.now());
      const approved = await device.send(request.id, approval);
      expect(approved.body).toEqual({ state: 'approved', reason: 'approved' });
      expect(await status(flow)).toBe('approved');
      // The same signed approval again: the request is gone.
      expect((await device.send(request.id, approval)).status).toBe(404);

      const done = await api(server.url, 'POST', `/api/v1/t/pu/signin/${flow}/verify`, { method: 'push' });
      expect(done.status).toBe(200);
      expect(done.body.state).toBe('complete');
      const me = await api(server.url, 'GET', '/api/v1/me', undefined, done.body.session.token);
      expect(me.body.session.amr).toEqual(expect.arrayContaining(['pwd', 'swk', 'mfa']));

      const log = await server.services.events.listForUser(tenant.id, user.id, 20);
      const reasons = log.items.filter((e) => e.method === 'push').map((e) => e.reason);
      expect(reasons).toEqual(expect.arrayContaining(['push_requested', 'push_approved', 'invalid_code', 'ok']));
    });

    it('refuses a forged approval and one signed for another request, time or number, without using the request up', async () => {
      const { device, username } = await pairedUser();
      const flow = await startSignin(username);
      const number = (await challenge(flow)).body.push.number as string;
      const request = (await device.requests(clock.now())).body.requests[0];

      const forger = new PushDevice(server.url, 'pu', tenant.id);
      forger.deviceId = device.deviceId;
      expect((await forger.send(request.id, forger.answer(request, 'approve', number, clock.now()))).status).toBe(401);
      // Signed for a different number than sent, for another flow, or long ago.
      const tampered = { ...device.answer(request, 'approve', number === '42' ? '43' : '42', clock.now()), number };
      expect((await device.send(request.id, tampered)).status).toBe(401);
      expect((await device.send(request.id, device.answer({ ...request, binding: 'x'.repeat(22) }, 'approve', number, clock.now()))).status).toBe(401);
      expect((await device.send(request.id, device.answer(request, 'approve', number, clock.now() - 10 * 60_000))).status).toBe(401);
      // A read signed by someone else is refused too.
      expect((await forger.requests(clock.now())).status).toBe(401);
      expect(await status(flow)).toBe('pending');
      expect((await device.send(request.id, device.answer(request, 'approve', number, clock.now()))).body.state).toBe('approved');
    });

    it('denies on a wrong number; the sign-in cannot finish with it', async () => {
      const { device, username } = await pairedUser();
      const flow = await startSignin(username);
      const number = (await challenge(flow)).body.push.number as string;
      const request = (await device.requests(clock.now())).body.requests[0];
      const wrong = number === '99' ? '98' : String(Number(number) + 1);
      expect((await device.send(request.id, device.answer(request, 'approve', wrong, clock.now()))).body).toEqual({ state: 'denied', reason: 'wrong-number' });
      expect(await status(flow)).toBe('denied');
      expect((await device.send(request.id, device.answer(request, 'approve', number, clock.now()))).status).toBe(404);
      expect((await api(server.url, 'POST', `/api/v1/t/pu/signin/${flow}/verify`, { method: 'push' })).status).toBe(401);
    });

    it('"this wasn\'t me" denies, flags the account and leaves it in the audit log and the sign-in log', async () => {
      const { device, username, user } = await pairedUser();
      const flow = await startSignin(username);
      await challenge(flow);
      const request = (await device.requests(clock.now())).body.requests[0];
      expect((await device.send(request.id, device.answer(request, 'deny', '', clock.now(), true))).body).toEqual({ state: 'denied', reason: 'not-me' });
      expect(await status(flow)).toBe('denied');
      expect((await server.services.users.get(tenant.id, user.id))!.flaggedAt).not.toBeNull();
      const audit = await server.services.audit.list(tenant.id, { limit: 5, userId: user.id });
      expect(audit.map((a) => a.action)).toContain('signin.reported');
      const log = await server.services.events.listForUser(tenant.id, user.id, 20);
      expect(log.items.map((e) => e.reason)).toContain('push_reported');
    });

    it('expires a request after 60 seconds', async () => {
      const { device, username } = await pairedUser();
      const flow = await startSignin(username);
      const number = (await challenge(flow)).body.push.number as string;
      const request = (await device.requests(clock.now())).body.requests[0];
      clock.advance(61_000);
      expect(await status(flow)).toBe('expired');
      expect((await device.requests(clock.now())).body.requests).toEqual([]);
      expect((await device.send(request.id, device.answer(request, 'approve', number, clock.now()))).status).toBe(404);
    });

    it('fatigue: one pending request per user, a pause after repeated denials, a few requests an hour', async () => {
      const { device, username } = await pairedUser();
      const first = await startSignin(username);
      await challenge(first);
      // Another sign-in (an attacker with the password) cannot push while one is pending.
      const second = await startSignin(username);
      const blocked = await challenge(second);
      expect(blocked.status).toBe(409);
      expect(blocked.body.type).toMatch(/\/push-pending$/);
      expect(blocked.headers.get('retry-after')).toBeTruthy();

      const deny = async () => {
        const request = (await device.requests(clock.now())).body.requests[0];
        expect((await device.send(request.id, device.answer(request, 'deny', '', clock.now()))).body.state).toBe('denied');
      };
      await deny();
      for (let i = 0; i < 2; i++) {
        expect((await challenge(await startSignin(username))).status).toBe(200);
        await deny();
      }
      const paused = await challenge(await startSignin(username));
      expect(paused.status).toBe(429);
      expect(paused.body.type).toMatch(/\/push-limit$/);

      // The hourly cap, for a user who approves everything.
      const other = await pairedUser();
      for (let i = 0; i < 5; i++) {
        const flow = await startSignin(other.username);
        const number = (await challenge(flow)).body.push.number as string;
        const request = (await other.device.requests(clock.now())).body.requests[0];
        expect((await other.device.send(request.id, other.device.answer(request, 'approve', number, clock.now()))).body.state).toBe('approved');
      }
      const capped = await challenge(await startSignin(other.username));
      expect(capped.status).toBe(429);
      expect(capped.body.type).toMatch(/\/push-limit$/);
    });

    it('makes push unavailable when no device can be reached, and offers the other methods', async () => {
      const { username, device } = await pairedUser({ subscribe: false });
      const flow = await startSignin(username);
      const down = await challenge(flow);
      expect(down.status).toBe(409);
      expect(down.body.type).toMatch(/\/method-unavailable$/);
      expect(down.body.methods.map((m: { type: string }) => m.type)).toEqual(['recovery-codes']);

      // A subscription the push service refuses is no way either; one it accepts is.
      const subscription = pushService.subscribe();
      expect((await device.subscribe(subscription, clock.now())).status).toBe(204);
      pushService.status = 500;
      try {
        expect((await challenge(flow)).status).toBe(409);
      } finally {
        pushService.status = 201;
      }
      expect((await challenge(flow)).status).toBe(200);
    });

    it('renews a Web Push subscription only with the device signature over all of it, and never back to an older one', async () => {
      const { device, username } = await pairedUser();
      const renewed = pushService.subscribe();
      const put = (body: unknown) => api(server.url, 'PUT', '/api/v1/t/pu/authenticator/subscription', body);
      const t = clock.now();

      // Another key naming this device, and this device's signature with other keys than the ones it signed, are refused.
      const thief = new PushDevice(server.url, 'pu', tenant.id);
      thief.deviceId = device.deviceId;
      expect((await thief.subscribe(renewed, t)).status).toBe(401);
      const swapped = { ...renewed, keys: pushService.subscribe().keys };
      expect(
        (await put({ device: device.deviceId, subscription: swapped, time: t, signature: device.sign(subscriptionMessage(device.deviceId, renewed, t)) }))
          .status,
      ).toBe(401);
      // So a sign-in still reaches the subscription the device paired with.
      const first = await startSignin(username);
      const before = pushService.received.length;
      expect((await challenge(first)).status).toBe(200);
      expect(pushService.received.length).toBe(before + 1);
      const original = pushService.received.at(-1)!.endpoint;
      expect(original).not.toBe(renewed.endpoint);
      const pending = (await device.requests(clock.now())).body.requests[0];
      expect((await device.send(pending.id, device.answer(pending, 'deny', '', clock.now()))).body.state).toBe('denied');

      // The device's own signed renewal is taken; replaying it, or an older signed change, is not.
      const signed = {
        device: device.deviceId,
        subscription: renewed,
        time: t + 1,
        signature: device.sign(subscriptionMessage(device.deviceId, renewed, t + 1)),
      };
      expect((await put(signed)).status).toBe(204);
      expect((await put(signed)).status).toBe(401);
      expect((await device.subscribe({ endpoint: original, keys: renewed.keys }, t)).status).toBe(401);
      const second = await startSignin(username);
      expect((await challenge(second)).status).toBe(200);
      expect(pushService.received.length).toBe(before + 2);
      expect(pushService.received.at(-1)!.endpoint).toBe(renewed.endpoint);
    });

    it('refuses a subscription to a push service not on the list', async () => {
      const { device } = await pairedUser({ subscribe: false });
      const evil = { endpoint: 'https://169.254.169.254/latest', keys: pushService.subscribe().keys };
      expect((await device.subscribe(evil, clock.now())).status).toBe(400);
    });
  });
}

/** Apps that check passwords themselves: push as an out-of-band method with number matching, the app shows the number. */
for (const spec of backends) {
  describe.runIf(await spec.available())(`push over the app API on ${spec.name}`, () => {
    let backend: Backend;
    let server: TestServer;
    let pushService: PushServiceStandIn;
    let tenant: Tenant;
    let apiKey = '';
    const appCall = (method: string, path: string, body?: unknown) => api(server.url, method, path, body, apiKey);

    beforeAll(async () => {
      pushService = await PushServiceStandIn.start();
      backend = await spec.create({ STEADFAST_PUSH_SERVICES: '127.0.0.1' });
      server = await startTestServer(backend);
      tenant = await server.services.tenants.create('ap', 'App Co');
      const created = await api(server.url, 'POST', '/api/v1/admin/apps', { name: 'VPN', kind: 'api' }, await adminPersonSession(server.services, 'ap'));
      apiKey = created.body.apiKey;
      const user = await server.services.users.create(tenant.id, { username: 'vic', passwordHash: await server.services.hasher.hash(PASSWORD) });
      const { reveal } = await server.services.methods.push!.enrol(tenant, user, {});
      const device = new PushDevice(server.url, 'ap', tenant.id);
      expect((await device.pair(String(reveal.pairingUrl), pushService.subscribe())).status).toBe(200);
      devices.set('vic', device);
    });
    afterAll(async () => {
      await server?.close();
      await backend?.cleanup();
      await pushService?.close();
    });
    const devices = new Map<string, PushDevice>();

    it('offers push, shows the number in the app, and allows once the user approves with it', async () => {
      const pre = await appCall('POST', '/api/v1/app/preauth', { username: 'vic' });
      expect(pre.body.result).toBe('auth');
      expect(pre.body.methods.map((m: { type: string }) => m.type)).toEqual(['push']);
      const started = await appCall('POST', '/api/v1/app/auth', { username: 'vic', method: 'push' });
      expect(started.status).toBe(200);
      expect(started.body).toMatchObject({ result: 'challenge', push: { number: expect.stringMatching(/^[1-9][0-9]$/) } });
      const { txid } = started.body;
      expect((await appCall('GET', `/api/v1/app/auth/${txid}`)).body.state).toBe('pending');

      const device = devices.get('vic')!;
      const request = (await device.requests()).body.requests[0];
      expect(request.app).toBe('VPN');
      expect((await device.send(request.id, device.answer(request, 'approve', started.body.push.number))).body.state).toBe('approved');
      const done = await appCall('GET', `/api/v1/app/auth/${txid}`);
      expect(done.body).toEqual({ state: 'allow', amr: ['swk'] });
      // Read again: the same outcome, no second verification.
      expect((await appCall('GET', `/api/v1/app/auth/${txid}`)).body.state).toBe('allow');
    });

    it('answers deny when the user denies', async () => {
      const started = await appCall('POST', '/api/v1/app/auth', { username: 'vic', method: 'push' });
      const device = devices.get('vic')!;
      const request = (await device.requests()).body.requests[0];
      await device.send(request.id, device.answer(request, 'deny', ''));
      expect((await appCall('GET', `/api/v1/app/auth/${started.body.txid}`)).body.state).toBe('deny');
    });
  });
}
