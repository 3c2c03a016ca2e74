import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.ts';
import type { SigninEventInput } from '../../src/activity/signin-events.ts';
import type { Services } from '../../src/server/services.ts';
import type { Tenant } from '../../src/directory/tenants.ts';
import type { User } from '../../src/directory/users.ts';
import { secretContext, type Credential } from '../../src/methods/credentials.ts';
import { decisionMessage, readMessage, subscriptionMessage } from '../../src/methods/push/device-signature.ts';
import { PushChallenges } from '../../src/methods/push/push-challenges.ts';
import { PushLive } from '../../src/methods/push/push-live.ts';
import { createPushMethod, PAIRING_LIFETIME_MS, type PushMethod } from '../../src/methods/push/push-method.ts';
import { WebPushSender, type SendResult, type WebPushSubscription } from '../../src/methods/push/web-push-sender.ts';
import type { FlowContext } from '../../src/methods/method.ts';
import { createUser, rejection, startCoreServices, withPolicy, type CoreServices } from './core-services.ts';

/**
 * The push method at the level of its own promises (no HTTP, SQLite, a
 * stand-in for the Web Push sender): pairing once per link, the signed reads
 * and answers of a device (who may answer which request, with what number,
 * when), what each answer records, the request reaching a device or not, and
 * the verification that takes an approval once. test/integration/push.test.ts
 * proves the same over HTTP with a push-service stand-in.
 */
const ORIGIN = 'https://login.example.com';
const PUSH_HOST = 'push.example.net';

/** A Steadfast Authenticator: a P-256 key signing what the app signs. */
class Device {
  readonly privateKey: KeyObject;
  readonly publicJwk: Record<string, unknown>;
  id = '';
  constructor() {
    const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    this.privateKey = pair.privateKey;
    this.publicJwk = pair.publicKey.export({ format: 'jwk' }) as Record<string, unknown>;
  }
  sign(message: string): string {
    return sign('sha256', Buffer.from(message), { key: this.privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url');
  }
  answer(request: { id: string; binding: string }, decision: 'approve' | 'deny', number: string, time: number, notMe?: boolean) {
    const signature = this.sign(
      decisionMessage({ decision, challengeId: request.id, binding: request.binding, number: decision === 'approve' ? number : '', time }),
    );
    return { decision, number, time, signature, ...(notMe === undefined ? {} : { notMe }) };
  }
}

let endpoints = 0;
const subscriptionFor = (): WebPushSubscription => ({
  endpoint: `https://${PUSH_HOST}/send/${++endpoints}`,
  keys: { p256dh: 'B'.repeat(87), auth: 'C'.repeat(22) },
});

describe('push approval on SQLite', () => {
  let core: CoreServices;
  let s: Services;
  let tenant: Tenant;
  let otherTenant: Tenant;
  const clock = new ManualClock(Date.UTC(2026, 10, 30, 10));
  let push: PushMethod;
  let requests: PushChallenges;
  let live: PushLive;
  const events: SigninEventInput[] = [];
  const reported: { tenant: string; userId: string; details: Record<string, unknown> }[] = [];
  const pairedTold: { tenant: string; userId: string; device: { id: string; label: string } }[] = [];
  const sent: { endpoint: string; payload: string; ttl: number }[] = [];
  let sendResult: SendResult = 'sent';
  let flowN = 0;

  const flowFor = (user: User, over: Partial<FlowContext> = {}): FlowContext => ({
    flowId: `flow-${++flowN}`,
    tenant,
    username: user.username,
    ip: '203.0.113.7',
    userAgent: 'Browser/1',
    app: 'Mail',
    ...over,
  });

  /** A user with a device paired (subscribed to Web Push unless told otherwise). */
  const paired = async (opts: { subscribe?: boolean; t?: Tenant } = {}) => {
    const t = opts.t ?? tenant;
    const user = await createUser(s, t);
    const { credential, reveal } = await push.enrol(t, user, {});
    const device = new Device();
    const token = String(reveal.pairingUrl).split('#pair=')[1]!;
    const result = await push.pair(t, token, {
      publicKey: device.publicJwk,
      name: 'Phone',
      subscription: opts.subscribe === false ? undefined : subscriptionFor(),
    });
    device.id = result.deviceId;
    expect(result).toEqual({ deviceId: credential.id, username: user.username });
    // Told as a method added (to the audit log, and so to the owner's notice), with the name the device gave.
    expect(pairedTold.at(-1)).toEqual({ tenant: t.id, userId: user.id, device: { id: credential.id, label: 'Phone' } });
    return { user, device, credential: (await s.credentials.get(t.id, user.id, credential.id))! };
  };
  const candidates = async (user: User, t: Tenant = tenant) => (await s.credentials.listForUser(t.id, user.id, 'active')).filter((c) => c.type === 'push');
  const request = async (user: User, flow: FlowContext = flowFor(user)) => {
    const result = await push.challenge(await candidates(user), flow);
    const challenge = (await requests.pendingFor(flow.tenant.id, user.id))!;
    return { flow, number: result.push!.number, challenge, result };
  };

  beforeAll(async () => {
    core = await startCoreServices(clock, { STEADFAST_PUBLIC_URL: ORIGIN });
    s = core.services;
    tenant = await s.tenants.create('push');
    otherTenant = await s.tenants.create('push-other');
    requests = new PushChallenges(s.ephemeral, clock);
    live = new PushLive(s.ephemeral);
    const webPush = new WebPushSender({
      vapid: async () => ({ publicKey: 'vapid-public', privateKey: 'x' }),
      subject: 'mailto:ops@example.com',
      allowedHosts: [PUSH_HOST],
    });
    webPush.send = async (subscription, payload, ttl) => {
      sent.push({ endpoint: subscription.endpoint, payload, ttl });
      return sendResult;
    };
    push = createPushMethod({
      credentials: s.credentials,
      keyRing: s.keyRing,
      clock,
      ephemeral: s.ephemeral,
      publicUrl: ORIGIN,
      pushChallenges: requests,
      webPush,
      pushLive: live,
      recordSignin: async (event) => {
        events.push(event);
      },
      onPushReported: async (t, userId, details) => {
        reported.push({ tenant: t.id, userId, details });
      },
      onPaired: async (t, userId, device) => {
        pairedTold.push({ tenant: t.id, userId, device });
      },
    });
  });
  afterAll(async () => {
    await core?.stop();
  });

  it('is the push method, whose enrolment proves nothing until a device pairs', async () => {
    expect(push.type).toBe('push');
    expect(push.enrolmentProvesPossession).toBe(false);
    expect(push.live).toBe(live);
    expect(await push.vapidPublicKey()).toBe('vapid-public');
  });

  it('enrols a pending device with a pairing link for ten minutes', async () => {
    const user = await createUser(s, tenant);
    const { credential, reveal } = await push.enrol(tenant, user, { label: '  My phone  ' });
    expect(credential).toMatchObject({ tenantId: tenant.id, userId: user.id, type: 'push', state: 'pending', label: 'My phone', externalId: credential.id });
    expect(reveal).toEqual({
      pairingUrl: expect.stringMatching(new RegExp(`^${ORIGIN}/t/push/authenticator#pair=[A-Za-z0-9_-]{32}$`)),
      qrCodeSvg: expect.stringContaining('<svg'),
      expiresAt: new Date(clock.now() + PAIRING_LIFETIME_MS).toISOString(),
      lifetimeMinutes: 10,
    });
    expect(PAIRING_LIFETIME_MS).toBe(600_000);
    expect((await push.enrol(tenant, user, {})).credential.label).toBe('Steadfast Authenticator');
    expect((await push.enrol(tenant, user, { label: '   ' })).credential.label).toBe('Steadfast Authenticator');
    // The link works for its ten minutes, not longer.
    const late = await push.enrol(tenant, user, {});
    clock.advance(PAIRING_LIFETIME_MS);
    const token = String(late.reveal.pairingUrl).split('#pair=')[1]!;
    const told = pairedTold.length;
    expect(await rejection(push.pair(tenant, token, { publicKey: new Device().publicJwk }))).toMatchObject({ code: 'invalid-code' });
    expect(pairedTold).toHaveLength(told);
    const inTime = await push.enrol(tenant, user, {});
    clock.advance(PAIRING_LIFETIME_MS - 1);
    expect((await push.pair(tenant, String(inTime.reveal.pairingUrl).split('#pair=')[1]!, { publicKey: new Device().publicJwk })).deviceId).toBe(
      inTime.credential.id,
    );
    // Paired without a name: told under the set-up's own label.
    expect(pairedTold.at(-1)!.device).toEqual({ id: inTime.credential.id, label: 'Steadfast Authenticator' });
  });

  it('pairs a device once per link, with its key, name and sealed subscription', async () => {
    const user = await createUser(s, tenant);
    const { credential, reveal } = await push.enrol(tenant, user, {});
    const token = String(reveal.pairingUrl).split('#pair=')[1]!;
    const device = new Device();
    // A bad key or subscription is refused before the link is used.
    expect(await rejection(push.pair(tenant, token, { publicKey: { ...device.publicJwk, crv: 'P-384' } }))).toEqual({
      code: 'invalid-request',
      detail: 'publicKey must be a P-256 public key (JWK)',
      extra: {},
      retryAfter: undefined,
    });
    for (const subscription of [{ endpoint: 'https://evil.example/x', keys: subscriptionFor().keys }, 'nope', { endpoint: `https://${PUSH_HOST}/x` }]) {
      expect(await rejection(push.pair(tenant, token, { publicKey: device.publicJwk, subscription })), JSON.stringify(subscription)).toMatchObject({
        code: 'invalid-request',
        detail: 'subscription is not a push subscription this server can send to',
      });
    }
    // Another tenant's link is no link here; a token too long is not looked up.
    expect(await rejection(push.pair(otherTenant, token, { publicKey: device.publicJwk }))).toMatchObject({ code: 'invalid-code' });
    const again = await push.reveal!(tenant, user, credential);
    const token2 = String(again.pairingUrl).split('#pair=')[1]!;
    expect(await rejection(push.pair(tenant, `${token2}${'x'.repeat(65 - token2.length)}`, { publicKey: device.publicJwk }))).toMatchObject({
      code: 'invalid-code',
      detail: 'This pairing link has expired or was used. Add the authenticator again from your security info.',
    });
    expect(await rejection(push.pair(tenant, 7 as never, { publicKey: device.publicJwk }))).toMatchObject({ code: 'invalid-code' });

    const subscription = subscriptionFor();
    clock.advance(1234);
    const result = await push.pair(tenant, token2, { publicKey: device.publicJwk, name: `  ${'n'.repeat(120)}  `, subscription });
    expect(result).toEqual({ deviceId: credential.id, username: user.username });
    const stored = (await s.credentials.get(tenant.id, user.id, credential.id))!;
    expect(stored).toMatchObject({ state: 'active', label: 'n'.repeat(100) });
    expect(stored.publicData).toEqual({
      publicKey: { kty: 'EC', crv: 'P-256', x: device.publicJwk.x, y: device.publicJwk.y },
      pairedAt: new Date(clock.now()).toISOString(),
    });
    expect(JSON.parse(s.keyRing.open(stored.secret!, secretContext('push', credential.id)).toString('utf8'))).toEqual(subscription);
    // Once: the same link, or the first one taken above, pairs nothing more.
    expect(await rejection(push.pair(tenant, token2, { publicKey: device.publicJwk }))).toMatchObject({ code: 'invalid-code' });
    expect(await rejection(push.pair(tenant, token, { publicKey: device.publicJwk }))).toMatchObject({ code: 'invalid-code' });
    // A new link for a device already paired does not pair another key over it.
    const third = String((await push.reveal!(tenant, user, credential)).pairingUrl).split('#pair=')[1]!;
    expect(await rejection(push.pair(tenant, third, { publicKey: new Device().publicJwk }))).toMatchObject({
      code: 'invalid-code',
      detail: 'This pairing link has expired or was used. Add the authenticator again from your security info.',
    });
    expect((await s.credentials.get(tenant.id, user.id, credential.id))!.publicData.publicKey).toEqual(stored.publicData.publicKey);
  });

  it('pairs without a subscription or a name, keeping the label and no secret', async () => {
    const user = await createUser(s, tenant);
    const { credential, reveal } = await push.enrol(tenant, user, { label: 'Work phone' });
    const token = String(reveal.pairingUrl).split('#pair=')[1]!;
    await push.pair(tenant, token, { publicKey: new Device().publicJwk, name: '   ', subscription: null });
    expect(await s.credentials.get(tenant.id, user.id, credential.id)).toMatchObject({ state: 'active', label: 'Work phone', secret: null });
  });

  it('pairs nothing when the set-up was removed meanwhile', async () => {
    const user = await createUser(s, tenant);
    const { credential, reveal } = await push.enrol(tenant, user, {});
    await s.credentials.deletePending(credential);
    expect(await rejection(push.pair(tenant, String(reveal.pairingUrl).split('#pair=')[1]!, { publicKey: new Device().publicJwk }))).toMatchObject({
      code: 'invalid-code',
    });
  });

  it('pairs as a first method only while the user has no other', async () => {
    const user = await createUser(s, tenant);
    const first = await push.enrol(tenant, user, { activation: 'first-method' });
    // Another method activated meanwhile: the first-method link no longer activates.
    const other = await push.enrol(tenant, user, {});
    await push.pair(tenant, String(other.reveal.pairingUrl).split('#pair=')[1]!, { publicKey: new Device().publicJwk });
    expect(await rejection(push.pair(tenant, String(first.reveal.pairingUrl).split('#pair=')[1]!, { publicKey: new Device().publicJwk }))).toMatchObject({
      code: 'already-registered',
    });
  });

  it('authenticates a device by its signed read, fresh within two minutes either way', async () => {
    const { device, credential } = await paired();
    const at = (offset: number) => clock.now() + offset;
    const read = (time: number, id = device.id, by = device) => push.authenticateDevice(tenant, id, time, by.sign(readMessage(id, time)));
    expect((await read(at(0))).id).toBe(credential.id);
    expect((await read(at(120_000))).id).toBe(credential.id);
    expect((await read(at(-120_000))).id).toBe(credential.id);
    for (const time of [at(120_001), at(-120_001), at(0) + 0.5]) {
      expect(await rejection(read(time)), String(time)).toEqual({
        code: 'unauthenticated',
        detail: 'this device is not paired, or its signature did not verify',
        extra: {},
        retryAfter: undefined,
      });
    }
    // Another key naming this device, a signature over another read, and ids that are no device's.
    expect(await rejection(read(at(0), device.id, new Device()))).toMatchObject({ code: 'unauthenticated' });
    expect(await rejection(push.authenticateDevice(tenant, device.id, at(0), device.sign(readMessage(device.id, at(1)))))).toMatchObject({
      code: 'unauthenticated',
    });
    for (const id of ['', 'x'.repeat(65), `${device.id}/`, `/${device.id}`, 'no-such-device']) {
      expect(await rejection(push.authenticateDevice(tenant, id, at(0), device.sign(readMessage(id, at(0))))), id).toMatchObject({
        code: 'unauthenticated',
      });
    }
    // The same device through another tenant, or a tenant that no longer allows push.
    expect(await rejection(push.authenticateDevice(otherTenant, device.id, at(0), device.sign(readMessage(device.id, at(0)))))).toMatchObject({
      code: 'unauthenticated',
    });
    const noPush = withPolicy(tenant, { allowedMethods: tenant.policy.allowedMethods.filter((m) => m !== 'push') });
    expect(await rejection(push.authenticateDevice(noPush, device.id, at(0), device.sign(readMessage(device.id, at(0)))))).toMatchObject({
      code: 'unauthenticated',
    });
  });

  it('authenticates no device still pending, and no credential of another type', async () => {
    const user = await createUser(s, tenant);
    const { credential } = await push.enrol(tenant, user, {});
    const device = new Device();
    const t = clock.now();
    expect(await rejection(push.authenticateDevice(tenant, credential.id, t, device.sign(readMessage(credential.id, t))))).toMatchObject({
      code: 'unauthenticated',
    });
    // A credential of another type whose external id is a device-like id, given a push key in its public data.
    const other = await s.credentials.insert({
      tenantId: tenant.id,
      userId: user.id,
      type: 'webauthn',
      label: 'key',
      state: 'active',
      externalId: 'webauthn-external-id',
      publicData: { publicKey: device.publicJwk },
    });
    expect(other.externalId).toBe('webauthn-external-id');
    expect(await rejection(push.authenticateDevice(tenant, 'webauthn-external-id', t, device.sign(readMessage('webauthn-external-id', t))))).toMatchObject({
      code: 'unauthenticated',
    });
    // Push credentials whose external ids are no device ids (too long, or not url-safe), with a key that signs: not looked up.
    for (const externalId of ['d'.repeat(65), '.device']) {
      await s.credentials.insert({
        tenantId: tenant.id,
        userId: user.id,
        type: 'push',
        label: 'odd',
        state: 'active',
        externalId,
        publicData: { publicKey: device.publicJwk },
      });
      expect(await rejection(push.authenticateDevice(tenant, externalId, t, device.sign(readMessage(externalId, t)))), externalId).toMatchObject({
        code: 'unauthenticated',
      });
    }
    // A push credential not active, though it has a key that signs.
    await s.credentials.insert({
      tenantId: tenant.id,
      userId: user.id,
      type: 'push',
      label: 'waiting',
      state: 'pending',
      externalId: 'pending-device',
      publicData: { publicKey: device.publicJwk },
    });
    expect(await rejection(push.authenticateDevice(tenant, 'pending-device', t, device.sign(readMessage('pending-device', t))))).toMatchObject({
      code: 'unauthenticated',
    });
    // A push credential whose stored key is no key.
    const broken = await s.credentials.insert({
      tenantId: tenant.id,
      userId: user.id,
      type: 'push',
      label: 'broken',
      state: 'active',
      externalId: 'broken-device',
      publicData: { publicKey: { kty: 'EC' } },
    });
    expect(broken.state).toBe('active');
    expect(await rejection(push.authenticateDevice(tenant, 'broken-device', t, device.sign(readMessage('broken-device', t))))).toMatchObject({
      code: 'unauthenticated',
    });
  });

  it('sends a request to the devices, shows it without the number, and records it once', async () => {
    const { user, device, credential } = await paired();
    const second = await push.enrol(tenant, user, {});
    const phone2 = new Device();
    await push.pair(tenant, String(second.reveal.pairingUrl).split('#pair=')[1]!, { publicKey: phone2.publicJwk, subscription: subscriptionFor() });
    // A set-up not yet paired has no key: it gets no request (it is among the candidates only here).
    const unpaired = (await push.enrol(tenant, user, {})).credential;
    const before = sent.length;
    const eventsBefore = events.length;
    const flow = flowFor(user);
    const result = await push.challenge([unpaired, ...(await candidates(user))], flow);
    const challenge = (await requests.pendingFor(tenant.id, user.id))!;
    const number = result.push!.number;
    expect(challenge.deviceIds).toHaveLength(2);
    expect(result).toEqual({ push: { number: challenge.number, expiresAt: new Date(clock.now() + 60_000).toISOString() } });
    expect(number).toMatch(/^[1-9][0-9]$/);
    expect(challenge).toMatchObject({
      tenantId: tenant.id,
      userId: user.id,
      username: user.username,
      flowId: flow.flowId,
      deviceIds: expect.arrayContaining([credential.id, second.credential.id]),
      context: { app: 'Mail', ip: '203.0.113.7', userAgent: 'Browser/1' },
    });
    // Both devices were sent it by Web Push, with the request's lifetime, and nothing that answers it.
    expect(sent.slice(before).map((x) => x.ttl)).toEqual([60, 60]);
    expect(JSON.parse(sent.at(-1)!.payload)).toEqual({ v: 1, kind: 'signin-request', tenant: 'push', id: challenge.id, app: 'Mail', ip: '203.0.113.7' });
    expect(events.slice(eventsBefore)).toEqual([
      {
        tenantId: tenant.id,
        userId: user.id,
        username: user.username,
        ip: '203.0.113.7',
        userAgent: 'Browser/1',
        app: 'Mail',
        step: 'second-factor',
        outcome: 'success',
        reason: 'push_requested',
        method: 'push',
      },
    ]);
    // The device sees it, never the number.
    const seen = await push.pendingFor(tenant, credential);
    expect(seen).toEqual({
      id: challenge.id,
      binding: challenge.binding,
      username: user.username,
      app: 'Mail',
      ip: '203.0.113.7',
      userAgent: 'Browser/1',
      createdAt: new Date(clock.now()).toISOString(),
      expiresAt: new Date(clock.now() + 60_000).toISOString(),
    });
    // A reload asks again: the same number, nothing sent or recorded again.
    clock.advance(5_000);
    expect((await push.challenge(await candidates(user), flow)).push).toEqual(result.push);
    expect(sent.length).toBe(before + 2);
    expect(events.length).toBe(eventsBefore + 1);
    expect(await push.status!(flow)).toBe('pending');
    expect(await push.status!(flowFor(user))).toBe('none');
    // A device of the user that the request was not sent to sees nothing.
    const third = await push.enrol(tenant, user, {});
    await push.pair(tenant, String(third.reveal.pairingUrl).split('#pair=')[1]!, { publicKey: new Device().publicJwk });
    const thirdDevice = (await s.credentials.get(tenant.id, user.id, third.credential.id))!;
    expect(await push.pendingFor(tenant, thirdDevice)).toBeUndefined();
    expect(device.id).toBe(credential.id);
  });

  it('shows a request without app, address or browser as nulls', async () => {
    const { user, credential } = await paired();
    const flow = flowFor(user, { app: undefined, ip: undefined, userAgent: undefined, username: undefined });
    const before = sent.length;
    const eventsBefore = events.length;
    const { challenge } = await request(user, flow);
    expect(challenge.username).toBe('');
    expect(await push.pendingFor(tenant, credential)).toMatchObject({ app: null, ip: null, userAgent: null });
    expect(JSON.parse(sent[before]!.payload)).toMatchObject({ app: null, ip: null });
    expect(events[eventsBefore]).toMatchObject({ ip: undefined, userAgent: undefined, app: undefined });
    // Nothing pending for a user without a request.
    const other = await paired();
    expect(await push.pendingFor(tenant, other.credential)).toBeUndefined();
  });

  it('reaches an open app without Web Push, and a device without a subscription only there', async () => {
    const { user, credential } = await paired({ subscribe: false });
    await live.markOpen(tenant.id, credential.id);
    let woken = 0;
    const stop = live.watch(tenant.id, user.id, () => woken++);
    const before = sent.length;
    try {
      const { challenge } = await request(user);
      expect(challenge.deviceIds).toEqual([credential.id]);
      expect(sent.length).toBe(before);
      expect(woken).toBe(1);
    } finally {
      stop();
    }
  });

  it('is unavailable when no device can be reached, leaving no request behind', async () => {
    // No paired device with a key.
    const nobody = await createUser(s, tenant);
    expect(await rejection(push.challenge([], flowFor(nobody)))).toMatchObject({
      code: 'method-unavailable',
      detail: 'No paired device can get sign-in requests',
    });
    const pending = (await push.enrol(tenant, nobody, {})).credential;
    expect(await rejection(push.challenge([pending], flowFor(nobody)))).toMatchObject({ code: 'method-unavailable' });

    // A closed app without a subscription; a push service that refuses; one that says the subscription is gone.
    const { user } = await paired({ subscribe: false });
    for (const result of ['none', 'failed', 'gone'] as const) {
      const { user: u, credential } = result === 'none' ? { user, credential: undefined } : await paired();
      sendResult = result === 'none' ? 'sent' : result;
      const eventsBefore = events.length;
      try {
        const flow = flowFor(u);
        expect(await rejection(push.challenge(await candidates(u), flow)), result).toMatchObject({
          code: 'method-unavailable',
          detail: 'Sign-in requests cannot reach your device right now',
        });
        // Withdrawn: nothing pending, nothing recorded, and the next request may go out.
        expect(await requests.pendingFor(tenant.id, u.id)).toBeUndefined();
        expect(await push.status!(flow)).toBe('none');
        expect(events.length).toBe(eventsBefore);
        if (credential) {
          const after = (await s.credentials.get(tenant.id, u.id, credential.id))!;
          // A subscription the push service says is gone is dropped; one that failed once is kept.
          expect(after.secret === null, result).toBe(result === 'gone');
        }
      } finally {
        sendResult = 'sent';
      }
    }
    // A device whose sealed subscription does not open (sealed for another credential) is not reachable either.
    const { user: u2, credential: c2 } = await paired({ subscribe: false });
    await s.credentials.replaceSecret(c2, s.keyRing.seal(JSON.stringify(subscriptionFor()), secretContext('push', 'another-id')));
    expect(await rejection(push.challenge(await candidates(u2), flowFor(u2)))).toMatchObject({ code: 'method-unavailable' });
    // One device reached of two is enough.
    const second = await push.enrol(tenant, u2, {});
    await push.pair(tenant, String(second.reveal.pairingUrl).split('#pair=')[1]!, { publicKey: new Device().publicJwk, subscription: subscriptionFor() });
    expect((await push.challenge(await candidates(u2), flowFor(u2))).push?.number).toMatch(/^[0-9]{2}$/);
  });

  describe('a device answers', () => {
    const ctx = { ip: '198.51.100.20', userAgent: 'Authenticator/1' };

    it('approves with the number shown, recorded as the sign-in, and the verification takes it once', async () => {
      const { user, device, credential } = await paired();
      const { flow, number, challenge } = await request(user);
      expect(await push.verify(await candidates(user), {}, flow)).toBeUndefined();
      clock.advance(3_000);
      let woken = 0;
      const stop = live.watch(tenant.id, user.id, () => woken++);
      const eventsBefore = events.length;
      try {
        expect(await push.decide(tenant, device.id, challenge.id, device.answer(challenge, 'approve', number, clock.now()), ctx)).toEqual({
          state: 'approved',
          reason: 'approved',
        });
      } finally {
        stop();
      }
      expect(woken).toBe(1);
      // The sign-in's own browser and address are recorded, not the device's.
      expect(events.slice(eventsBefore)).toEqual([
        {
          tenantId: tenant.id,
          userId: user.id,
          username: user.username,
          ip: '203.0.113.7',
          userAgent: 'Browser/1',
          app: 'Mail',
          step: 'second-factor',
          outcome: 'success',
          reason: 'push_approved',
          method: 'push',
        },
      ]);
      expect(await push.status!(flow)).toBe('approved');
      // A replay of the same signed answer finds nothing.
      expect(await rejection(push.decide(tenant, device.id, challenge.id, device.answer(challenge, 'approve', number, clock.now()), ctx))).toMatchObject({
        code: 'not-found',
      });
      // Another flow's verification takes nothing; this flow's takes it once, with the device as credential.
      expect(await push.verify(await candidates(user), {}, flowFor(user))).toBeUndefined();
      clock.advance(1_000);
      const verified = await push.verify(await candidates(user), {}, flow);
      expect(verified).toEqual({ credential: expect.objectContaining({ id: credential.id }), amr: ['swk'] });
      expect((await s.credentials.get(tenant.id, user.id, credential.id))!.lastUsedAt).toBe(clock.now());
      expect(await push.verify(await candidates(user), {}, flow)).toBeUndefined();
    });

    it('takes the approval as the device that gave it, and none for a device that is no longer a candidate', async () => {
      const { user, device } = await paired();
      const second = await push.enrol(tenant, user, {});
      await push.pair(tenant, String(second.reveal.pairingUrl).split('#pair=')[1]!, { publicKey: new Device().publicJwk, subscription: subscriptionFor() });
      const { flow, number, challenge } = await request(user);
      await push.decide(tenant, device.id, challenge.id, device.answer(challenge, 'approve', number, clock.now()), ctx);
      const others = (await candidates(user)).filter((c) => c.id !== device.id);
      expect(others.map((c) => c.id)).toEqual([second.credential.id]);
      expect(await push.verify(others, {}, flow)).toBeUndefined();
      // Taken by that refused verification all the same: once is once.
      expect(await push.verify(await candidates(user), {}, flow)).toBeUndefined();
      const next = await request(user);
      await push.decide(tenant, device.id, next.challenge.id, device.answer(next.challenge, 'approve', next.number, clock.now()), ctx);
      expect((await push.verify([...others, ...(await candidates(user))], {}, next.flow))?.credential.id).toBe(device.id);
    });

    it('lets one of two racing answers decide, and tells the other the request was answered', async () => {
      const { user, device } = await paired();
      const second = await push.enrol(tenant, user, {});
      const phone2 = new Device();
      await push.pair(tenant, String(second.reveal.pairingUrl).split('#pair=')[1]!, { publicKey: phone2.publicJwk, subscription: subscriptionFor() });
      phone2.id = second.credential.id;
      const { flow, number, challenge } = await request(user);
      const results = await Promise.allSettled([
        push.decide(tenant, device.id, challenge.id, device.answer(challenge, 'approve', number, clock.now()), ctx),
        push.decide(tenant, phone2.id, challenge.id, phone2.answer(challenge, 'deny', '', clock.now()), ctx),
      ]);
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      expect((results.find((r) => r.status === 'rejected') as PromiseRejectedResult).reason).toMatchObject({
        code: 'not-found',
        detail: 'This request has expired or was already answered.',
      });
      expect(['approved', 'denied']).toContain(await push.status!(flow));
    });

    it('denies with a wrong number, a denial and a report, each recorded as such', async () => {
      const cases = [
        { decision: 'approve', wrong: true, notMe: undefined, state: 'denied', reason: 'wrong-number', event: 'push_wrong_number' },
        { decision: 'deny', wrong: false, notMe: undefined, state: 'denied', reason: 'denied', event: 'push_denied' },
        { decision: 'deny', wrong: false, notMe: false, state: 'denied', reason: 'denied', event: 'push_denied' },
        { decision: 'deny', wrong: false, notMe: true, state: 'denied', reason: 'not-me', event: 'push_reported' },
        // "Not me" means nothing on an approval.
        { decision: 'approve', wrong: false, notMe: true, state: 'approved', reason: 'approved', event: 'push_approved' },
      ] as const;
      for (const c of cases) {
        const { user, device } = await paired();
        const { flow, number, challenge } = await request(user);
        const typed = c.wrong ? String(((Number(number) - 9) % 90) + 10) : number;
        const eventsBefore = events.length;
        const reportsBefore = reported.length;
        const answer = device.answer(challenge, c.decision, typed, clock.now(), c.notMe);
        expect(await push.decide(tenant, device.id, challenge.id, answer, ctx), JSON.stringify(c)).toEqual({ state: c.state, reason: c.reason });
        expect(events.slice(eventsBefore).map((e) => [e.outcome, e.reason, e.ip])).toEqual([
          [c.state === 'approved' ? 'success' : 'failure', c.event, '203.0.113.7'],
        ]);
        expect(reported.slice(reportsBefore)).toEqual(
          c.reason === 'not-me' ? [{ tenant: tenant.id, userId: user.id, details: { via: 'push', deviceId: device.id, app: 'Mail', ip: '203.0.113.7' } }] : [],
        );
        expect(await push.status!(flow)).toBe(c.state);
        expect((await push.verify(await candidates(user), {}, flow)) !== undefined).toBe(c.state === 'approved');
      }
    });

    it('reports "not me" for a request without app or address as nulls', async () => {
      const { user, device } = await paired();
      const { challenge } = await request(user, flowFor(user, { app: undefined, ip: undefined }));
      const reportsBefore = reported.length;
      await push.decide(tenant, device.id, challenge.id, device.answer(challenge, 'deny', '', clock.now(), true), ctx);
      expect(reported.slice(reportsBefore).map((r) => r.details)).toEqual([{ via: 'push', deviceId: device.id, app: null, ip: null }]);
    });

    it('refuses a forged, altered or stale answer, records it with the device, and leaves the request open', async () => {
      const { user, device } = await paired();
      const { flow, number, challenge } = await request(user);
      const now = clock.now();
      const good = device.answer(challenge, 'approve', number, now);
      const forgeries = [
        // Another key.
        new Device().answer(challenge, 'approve', number, now),
        // The signed answer with another number, decision or time than it signed.
        { ...good, number: String(((Number(number) - 9) % 90) + 10) },
        { ...good, decision: 'deny' as const },
        { ...good, time: now + 1 },
        // Signed over another request id or flow binding.
        device.answer({ id: 'other-request', binding: challenge.binding }, 'approve', number, now),
        device.answer({ id: challenge.id, binding: 'another-binding' }, 'approve', number, now),
        // Signed, but too old or too far ahead.
        device.answer(challenge, 'approve', number, now - 120_001),
        device.answer(challenge, 'approve', number, now + 120_001),
        device.answer(challenge, 'deny', '', now - 120_001),
      ];
      for (const forged of forgeries) {
        const eventsBefore = events.length;
        expect(await rejection(push.decide(tenant, device.id, challenge.id, forged, ctx)), JSON.stringify(forged)).toEqual({
          code: 'unauthenticated',
          detail: 'the device signature did not verify',
          extra: {},
          retryAfter: undefined,
        });
        expect(events.slice(eventsBefore)).toEqual([
          expect.objectContaining({ outcome: 'failure', reason: 'push_bad_signature', ip: ctx.ip, userAgent: ctx.userAgent, app: 'Mail', userId: user.id }),
        ]);
      }
      expect(await push.status!(flow)).toBe('pending');
      // Signed exactly two minutes ago is fresh still; a deny signs no number, whatever number it carries.
      const edge = device.answer(challenge, 'deny', '', now - 120_000);
      expect(await push.decide(tenant, device.id, challenge.id, { ...edge, number }, ctx)).toEqual({ state: 'denied', reason: 'denied' });
    });

    it('takes an answer signed two minutes ahead, and records a forgery without a context from the request', async () => {
      const { user, device } = await paired();
      const { number, challenge } = await request(user);
      const eventsBefore = events.length;
      await rejection(push.decide(tenant, device.id, challenge.id, new Device().answer(challenge, 'approve', number, clock.now()), {}));
      expect(events[eventsBefore]).toMatchObject({ ip: '203.0.113.7', userAgent: 'Browser/1' });
      expect(await push.decide(tenant, device.id, challenge.id, device.answer(challenge, 'approve', number, clock.now() + 120_000), ctx)).toEqual({
        state: 'approved',
        reason: 'approved',
      });
      expect(user.id).toEqual(expect.any(String));
    });

    it("answers another tenant's, an unknown or an answered request the same, and only the devices it was sent to may answer", async () => {
      const { user, device } = await paired();
      const { number, challenge } = await request(user);
      const answer = device.answer(challenge, 'approve', number, clock.now());
      const notFound = { code: 'not-found', detail: 'This request has expired or was already answered.', extra: {}, retryAfter: undefined };
      expect(await rejection(push.decide(otherTenant, device.id, challenge.id, answer, ctx))).toEqual(notFound);
      expect(await rejection(push.decide(tenant, device.id, 'no-such-request', answer, ctx))).toEqual(notFound);
      // A device of another user of the tenant, with its own valid signature over this request.
      const stranger = await paired();
      expect(
        await rejection(push.decide(tenant, stranger.device.id, challenge.id, stranger.device.answer(challenge, 'approve', number, clock.now()), ctx)),
      ).toEqual(notFound);
      // No device by that id; a pending one; the tenant no longer allows push.
      expect(await rejection(push.decide(tenant, 'no-such-device', challenge.id, answer, ctx))).toEqual({
        code: 'unauthenticated',
        detail: 'this device is not paired',
        extra: {},
        retryAfter: undefined,
      });
      const noPush = withPolicy(tenant, { allowedMethods: tenant.policy.allowedMethods.filter((m) => m !== 'push') });
      expect(await rejection(push.decide(noPush, device.id, challenge.id, answer, ctx))).toMatchObject({ code: 'unauthenticated' });
      // None of these used the request up.
      expect(await push.decide(tenant, device.id, challenge.id, answer, ctx)).toEqual({ state: 'approved', reason: 'approved' });
      // Answered: not found, whoever asks.
      expect(await rejection(push.decide(tenant, device.id, challenge.id, answer, ctx))).toEqual(notFound);
    });

    it('refuses a device of another tenant that the request names, and a device whose key is gone', async () => {
      const { user, device, credential } = await paired();
      const { number, challenge } = await request(user);
      // The request naming a device id of another tenant (a store entry that should not be).
      const foreign = await paired({ t: otherTenant });
      expect(
        await rejection(push.decide(otherTenant, foreign.device.id, challenge.id, foreign.device.answer(challenge, 'approve', number, clock.now()), ctx)),
      ).toMatchObject({
        code: 'not-found',
      });
      await s.durable.db
        .updateTable('credentials')
        .set({ public_data: JSON.stringify({ publicKey: null }) })
        .where('id', '=', credential.id)
        .execute();
      expect(await rejection(push.decide(tenant, device.id, challenge.id, device.answer(challenge, 'approve', number, clock.now()), ctx))).toMatchObject({
        code: 'unauthenticated',
        detail: 'this device is not paired',
      });
    });

    it('answers no request once it expired', async () => {
      const { user, device } = await paired();
      const { flow, number, challenge } = await request(user);
      clock.advance(60_000);
      expect(await rejection(push.decide(tenant, device.id, challenge.id, device.answer(challenge, 'approve', number, clock.now()), ctx))).toMatchObject({
        code: 'not-found',
      });
      expect(await push.status!(flow)).toBe('expired');
      expect(await push.verify(await candidates(user), {}, flow)).toBeUndefined();
    });
  });

  describe('a device changes its subscription', () => {
    const current = async (c: Credential) => {
      const row = (await s.credentials.get(c.tenantId, c.userId, c.id))!;
      return row.secret === null ? null : (JSON.parse(s.keyRing.open(row.secret, secretContext('push', c.id)).toString('utf8')) as unknown);
    };

    it('with its signature over all of it, newer each time, and to none', async () => {
      const { device, credential } = await paired({ subscribe: false });
      const next = subscriptionFor();
      const t = clock.now();
      await push.subscribe(tenant, device.id, next, t, device.sign(subscriptionMessage(device.id, next, t)));
      expect(await current(credential)).toEqual(next);
      // The same change again, or an older one, is refused.
      const older = subscriptionFor();
      for (const [subscription, time] of [
        [next, t],
        [older, t - 1],
      ] as const) {
        expect(await rejection(push.subscribe(tenant, device.id, subscription, time, device.sign(subscriptionMessage(device.id, subscription, time))))).toEqual(
          {
            code: 'unauthenticated',
            detail: 'this subscription change is older than one already made',
            extra: {},
            retryAfter: undefined,
          },
        );
      }
      expect(await current(credential)).toEqual(next);
      await push.subscribe(tenant, device.id, null, t + 1, device.sign(subscriptionMessage(device.id, null, t + 1)));
      expect(await current(credential)).toBeNull();
      // Four minutes on, a change newer than the last is still needed.
      clock.advance(3 * 60_000);
      const later = subscriptionFor();
      await push.subscribe(tenant, device.id, later, clock.now(), device.sign(subscriptionMessage(device.id, later, clock.now())));
      expect(await current(credential)).toEqual(later);
    });

    it('remembers the last change for longer than a signed change stays fresh, for each device apart', async () => {
      const a = await paired({ subscribe: false });
      const b = await paired({ subscribe: false });
      const t = clock.now();
      const first = subscriptionFor();
      const change = (d: Device, sub: WebPushSubscription, time: number) =>
        push.subscribe(tenant, d.id, sub, time, d.sign(subscriptionMessage(d.id, sub, time)));
      await change(a.device, first, t + 5);
      // Another device's change, signed earlier than this one's, is its own.
      const other = subscriptionFor();
      await change(b.device, other, t);
      expect(await current(b.credential)).toEqual(other);
      // Almost two minutes on, the first change is still fresh: replayed, it is still refused.
      clock.advance(119_000);
      expect(await rejection(change(a.device, first, t + 5))).toMatchObject({
        code: 'unauthenticated',
        detail: 'this subscription change is older than one already made',
      });
      expect(await current(a.credential)).toEqual(first);
    });

    it('never with keys, an endpoint or a time other than it signed, nor by another key or device', async () => {
      const { device, credential } = await paired();
      const before = await current(credential);
      const next = subscriptionFor();
      const t = clock.now();
      const signature = device.sign(subscriptionMessage(device.id, next, t));
      const unauth = { code: 'unauthenticated', detail: 'this device is not paired, or its signature did not verify', extra: {}, retryAfter: undefined };
      for (const [id, subscription, time, sig] of [
        [device.id, { ...next, keys: { p256dh: 'D'.repeat(87), auth: next.keys.auth } }, t, signature],
        [device.id, { ...next, endpoint: `${next.endpoint}x` }, t, signature],
        [device.id, next, t + 1, signature],
        [device.id, null, t, signature],
        [device.id, next, t, new Device().sign(subscriptionMessage(device.id, next, t))],
        [device.id, next, t - 120_001, device.sign(subscriptionMessage(device.id, next, t - 120_001))],
        ['no-such-device', next, t, device.sign(subscriptionMessage('no-such-device', next, t))],
      ] as const) {
        expect(await rejection(push.subscribe(tenant, id, subscription, time, sig))).toEqual(unauth);
      }
      expect(await current(credential)).toEqual(before);
      // A subscription to a push service not on the list is refused as such.
      const evil = { ...next, endpoint: 'https://169.254.169.254/latest' };
      expect(await rejection(push.subscribe(tenant, device.id, evil, t, device.sign(subscriptionMessage(device.id, evil, t))))).toMatchObject({
        code: 'invalid-request',
        detail: 'subscription is not a push subscription this server can send to',
      });
      expect(await current(credential)).toEqual(before);
    });
  });
});
