import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.ts';
import { AppError } from '../../src/errors/app-error.ts';
import {
  decisionMessage,
  flowBinding,
  parseDevicePublicKey,
  readMessage,
  subscriptionMessage,
  verifyDeviceSignature,
  type DevicePublicKey,
} from '../../src/methods/push/device-signature.ts';
import { DEFAULT_PUSH_LIMITS, PushChallenges, type PushChallenge } from '../../src/methods/push/push-challenges.ts';
import { MemoryEphemeralStore } from '../../src/store/ephemeral/memory-store.ts';

/**
 * The pieces of push approval that need no services: the device's key and
 * signatures (what it signs, and what a forger can and cannot change), and the
 * requests in the ephemeral store (the number, single use, expiry, the one
 * pending request per user, the fatigue limits). test/core/push.test.ts drives
 * the method itself; test/integration/push.test.ts the same over HTTP.
 */

const newKey = () => {
  const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = pair.publicKey.export({ format: 'jwk' }) as { kty: string; crv: string; x: string; y: string };
  return {
    jwk,
    private: pair.privateKey.export({ format: 'jwk' }),
    sign: (message: string) => sign('sha256', Buffer.from(message), { key: pair.privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url'),
  };
};

describe('a device public key', () => {
  const { jwk, private: priv } = newKey();

  it('is a P-256 public JWK, copied to exactly its four fields', () => {
    const parsed = parseDevicePublicKey({ ...jwk, ext: true, key_ops: ['verify'], alg: 'ES256' });
    expect(parsed).toEqual({ kty: 'EC', crv: 'P-256', x: jwk.x, y: jwk.y });
    expect(Object.keys(parsed!)).toEqual(['kty', 'crv', 'x', 'y']);
  });

  it('is refused when it is anything else, a private key above all', () => {
    for (const value of [
      undefined,
      null,
      'EC',
      42,
      { ...jwk, kty: 'RSA' },
      { ...jwk, kty: undefined },
      { ...jwk, crv: 'P-384' },
      { ...jwk, crv: undefined },
      priv,
      { ...jwk, d: undefined },
      { ...jwk, x: 7 },
      { ...jwk, y: 7 },
      { ...jwk, x: undefined },
      { ...jwk, y: [jwk.y] },
      // Coordinates of the wrong length or alphabet (base64url decoding would skip a stray character: the pattern must not).
      { ...jwk, x: jwk.x.slice(1) },
      { ...jwk, y: jwk.y.slice(1) },
      { ...jwk, x: `${jwk.x}A` },
      { ...jwk, x: `.${jwk.x}` },
      { ...jwk, x: `${jwk.x}.` },
      { ...jwk, y: `.${jwk.y}` },
      { ...jwk, y: `${jwk.y}.` },
      { ...jwk, x: `${jwk.x.slice(1)}=` },
      // A point not on the curve.
      { ...jwk, x: 'A'.repeat(43), y: 'A'.repeat(43) },
      { ...jwk, y: jwk.x },
    ]) {
      expect(parseDevicePublicKey(value), JSON.stringify(value)).toBeUndefined();
    }
  });
});

describe('what a device signs', () => {
  it('names the protocol, the action and every field that makes the answer this one, one per line', () => {
    expect(decisionMessage({ decision: 'approve', challengeId: 'c1', binding: 'b1', number: '42', time: 1_700_000_000_123 })).toBe(
      'steadfast-push-v1\napprove\nc1\nb1\n42\n1700000000123',
    );
    expect(decisionMessage({ decision: 'deny', challengeId: 'c2', binding: 'b2', number: '', time: 5 })).toBe('steadfast-push-v1\ndeny\nc2\nb2\n\n5');
    expect(readMessage('dev-1', 99)).toBe('steadfast-push-v1\nread\ndev-1\n99');
    expect(subscriptionMessage('dev-1', { endpoint: 'https://push.example/e', keys: { p256dh: 'P', auth: 'A' } }, 7)).toBe(
      'steadfast-push-v1\nsubscribe\ndev-1\nhttps://push.example/e\nP\nA\n7',
    );
    expect(subscriptionMessage('dev-1', null, 7)).toBe('steadfast-push-v1\nsubscribe\ndev-1\n\n\n\n7');
  });

  it('binds the flow by a hash of its handle, 22 characters of SHA-256', () => {
    const expected = createHash('sha256').update('push-flow:flow-1').digest('base64url').slice(0, 22);
    expect(flowBinding('flow-1')).toBe(expected);
    expect(flowBinding('flow-1')).toHaveLength(22);
    expect(flowBinding('flow-2')).not.toBe(expected);
  });
});

describe('a device signature', () => {
  const device = newKey();
  const key = parseDevicePublicKey(device.jwk)!;
  const message = readMessage('dev', 1);

  it('verifies a P1363 signature by the key over exactly the message, again from the cached key', () => {
    const signature = device.sign(message);
    expect(verifyDeviceSignature(key, message, signature)).toBe(true);
    expect(verifyDeviceSignature(key, message, signature)).toBe(true);
    // A copy of the key (not the cached object) verifies too.
    expect(verifyDeviceSignature({ ...key }, message, signature)).toBe(true);
    expect(verifyDeviceSignature(key, readMessage('dev', 2), signature)).toBe(false);
    expect(verifyDeviceSignature(parseDevicePublicKey(newKey().jwk)!, message, signature)).toBe(false);
  });

  it('refuses a signature of another shape without trying it', () => {
    const signature = device.sign(message);
    const der = sign('sha256', Buffer.from(message), generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey).toString('base64url');
    for (const bad of ['', signature.slice(1), `${signature}A`, `.${signature}`, `${signature}.`, `${signature.slice(0, 85)}=`, der]) {
      expect(verifyDeviceSignature(key, message, bad), bad).toBe(false);
    }
  });

  it('is false, not an error, for a key that is not a key', () => {
    const broken: DevicePublicKey = { kty: 'EC', crv: 'P-256', x: 'A'.repeat(43), y: 'A'.repeat(43) };
    expect(verifyDeviceSignature(broken, message, device.sign(message))).toBe(false);
  });
});

describe('push requests in the ephemeral store', () => {
  const clock = new ManualClock(Date.UTC(2026, 10, 30, 12));
  let store: MemoryEphemeralStore;
  let requests: PushChallenges;
  let n = 0;
  const fresh = (over: Partial<{ tenantId: string; userId: string; flowId: string }> = {}) => ({
    tenantId: 't1',
    userId: `u${++n}`,
    username: `user${n}`,
    flowId: `flow-${n}`,
    deviceIds: ['d1', 'd2'],
    context: { app: 'Mail', ip: '192.0.2.1', userAgent: 'UA' },
    ...over,
  });
  const setup = (limits = DEFAULT_PUSH_LIMITS) => {
    store = new MemoryEphemeralStore(clock);
    requests = new PushChallenges(store, clock, limits);
  };
  const refusal = async (promise: Promise<unknown>) =>
    promise.then(
      () => undefined,
      (err: unknown) => (err instanceof AppError ? { code: err.code, retryAfter: err.retryAfter, detail: err.detail } : { err }),
    );
  afterEach(() => setup());
  setup();

  it('opens a request with a two-digit number, the flow bound by hash, for the lifetime', async () => {
    const input = fresh();
    const { challenge, fresh: isNew } = await requests.open(input);
    expect(isNew).toBe(true);
    expect(challenge).toEqual({
      ...input,
      id: expect.stringMatching(/^[A-Za-z0-9_-]{22}$/),
      binding: flowBinding(input.flowId),
      number: expect.stringMatching(/^[1-9][0-9]$/),
      createdAt: clock.now(),
      expiresAt: clock.now() + 60_000,
    });
    expect(await requests.get(challenge.id)).toEqual(challenge);
    expect(await requests.pendingFor('t1', input.userId)).toEqual(challenge);
    expect(await requests.state(input.flowId)).toBe('pending');
    // Another tenant's user of the same id has nothing pending.
    expect(await requests.pendingFor('t2', input.userId)).toBeUndefined();
    // Numbers are drawn from 10 to 99.
    const numbers = new Set<string>();
    for (let i = 0; i < 300; i++) numbers.add((await requests.open(fresh())).challenge.number);
    expect([...numbers].every((x) => Number(x) >= 10 && Number(x) <= 99)).toBe(true);
    expect(numbers.size).toBeGreaterThan(50);
  });

  it("gives a flow its own pending request again, and refuses another flow's while one is pending", async () => {
    const input = fresh();
    const { challenge } = await requests.open(input);
    clock.advance(1_000);
    expect(await requests.open(input)).toEqual({ challenge, fresh: false });
    clock.advance(29_500);
    // 29.5 s left: the refusal says 30.
    expect(await refusal(requests.open({ ...input, flowId: 'another' }))).toMatchObject({ code: 'push-pending', retryAfter: 30 });
    // Only that user's slot: another user, or the same user id in another tenant, opens.
    expect((await requests.open(fresh())).fresh).toBe(true);
    expect((await requests.open({ ...input, tenantId: 't2', flowId: 'elsewhere' })).fresh).toBe(true);
    // Once it expired, another flow's opens.
    clock.advance(29_500);
    expect(await requests.get(challenge.id)).toBeUndefined();
    expect(await requests.state(input.flowId)).toBe('expired');
    const next = await requests.open({ ...input, flowId: 'another' });
    expect(next.fresh).toBe(true);
    expect(next.challenge.id).not.toBe(challenge.id);
  });

  it('lets exactly one of two racing requests for one user out', async () => {
    const input = fresh();
    const results = await Promise.allSettled([requests.open(input), requests.open({ ...input, flowId: 'racing' })]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const refused = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    expect(refused.reason).toMatchObject({ code: 'push-pending', retryAfter: 60 });
    expect(await requests.state('racing')).toBe('none');
  });

  it('answers a request once: the right number approves, anything else denies, and an answer after the lifetime is none', async () => {
    const approve = await requests.open(fresh());
    const c = approve.challenge;
    clock.advance(10_000);
    const decided = await requests.decide(c.id, 'd2', 'approve', c.number, false);
    expect(decided).toEqual({
      challenge: c,
      outcome: { state: 'approved', reason: 'approved', challengeId: c.id, flowId: c.flowId, deviceId: 'd2', at: clock.now() },
    });
    expect(await requests.state(c.flowId)).toBe('approved');
    // Once: a replay, or the other device, finds nothing; the slot is free.
    expect(await requests.decide(c.id, 'd1', 'approve', c.number, false)).toBeUndefined();
    expect(await requests.pendingFor('t1', c.userId)).toBeUndefined();

    const cases = [
      ['approve', 'wrong', false, 'wrong-number'],
      ['approve', 'wrong', true, 'wrong-number'],
      ['deny', 'right', false, 'denied'],
      ['deny', 'right', true, 'not-me'],
    ] as const;
    for (const [decision, which, notMe, reason] of cases) {
      const { challenge } = await requests.open(fresh());
      const number = which === 'right' ? challenge.number : String(((Number(challenge.number) - 9) % 90) + 10);
      expect(number === challenge.number).toBe(which === 'right');
      const answer = await requests.decide(challenge.id, 'd1', decision, number, notMe);
      expect(answer?.outcome, `${decision} ${which} ${notMe}`).toMatchObject({ state: 'denied', reason });
      expect(await requests.state(challenge.flowId)).toBe('denied');
      expect(await requests.takeApproval(challenge.flowId)).toBeUndefined();
      // Still denied: a refused take consumes nothing.
      expect(await requests.state(challenge.flowId)).toBe('denied');
    }

    // At its expiry to the millisecond, a request takes no answer.
    const late = (await requests.open(fresh())).challenge;
    clock.advance(60_000);
    expect(await requests.decide(late.id, 'd1', 'approve', late.number, false)).toBeUndefined();
    const early = (await requests.open(fresh())).challenge;
    clock.advance(59_999);
    expect((await requests.decide(early.id, 'd1', 'approve', early.number, false))?.outcome.state).toBe('approved');
    expect(await requests.decide('no-such-id', 'd1', 'approve', '10', false)).toBeUndefined();
  });

  it('is found live until its expiry, to the millisecond', async () => {
    const { challenge } = await requests.open(fresh());
    clock.advance(59_999);
    expect(await requests.get(challenge.id)).toEqual(challenge);
    expect(await requests.pendingFor('t1', challenge.userId)).toEqual(challenge);
    // The store keeps it a moment longer than its expiry says (a store's TTL may round up): it is not live.
    await store.set(`push:c:${challenge.id}`, { ...challenge, expiresAt: clock.now() + 1 }, 60_000);
    clock.advance(1);
    expect(await requests.get(challenge.id)).toBeUndefined();
    expect(await requests.pendingFor('t1', challenge.userId)).toBeUndefined();
    expect(await requests.state(challenge.flowId)).toBe('expired');
    expect(await requests.decide(challenge.id, 'd1', 'approve', challenge.number, false)).toBeUndefined();
  });

  it('hands the approval to the verification of its own flow, once', async () => {
    expect(await requests.takeApproval('nothing')).toBeUndefined();
    expect(await requests.state('nothing')).toBe('none');
    const { challenge } = await requests.open(fresh());
    expect(await requests.takeApproval(challenge.flowId)).toBeUndefined();
    await requests.decide(challenge.id, 'd1', 'approve', challenge.number, false);
    const taken = await requests.takeApproval(challenge.flowId);
    expect(taken).toMatchObject({ state: 'approved', flowId: challenge.flowId, deviceId: 'd1', challengeId: challenge.id });
    expect(await requests.takeApproval(challenge.flowId)).toBeUndefined();

    // A link from another flow to this request (a store entry that should not be) takes nothing.
    const other = (await requests.open(fresh())).challenge;
    await requests.decide(other.id, 'd1', 'approve', other.number, false);
    await store.set('push:flow:intruder', other.id, 60_000);
    expect(await requests.takeApproval('intruder')).toBeUndefined();
  });

  it("keeps each request's outcome apart: the state and the approval of one flow are its own", async () => {
    const a = (await requests.open(fresh())).challenge;
    const b = (await requests.open(fresh())).challenge;
    await requests.decide(a.id, 'd1', 'approve', a.number, false);
    await requests.decide(b.id, 'd1', 'deny', '', false);
    expect(await requests.state(a.flowId)).toBe('approved');
    expect(await requests.state(b.flowId)).toBe('denied');
    expect(await requests.takeApproval(a.flowId)).toMatchObject({ flowId: a.flowId, state: 'approved' });
  });

  it('gives an approval to one of two racing verifications', async () => {
    const { challenge } = await requests.open(fresh());
    await requests.decide(challenge.id, 'd1', 'approve', challenge.number, false);
    const taken = await Promise.all([requests.takeApproval(challenge.flowId), requests.takeApproval(challenge.flowId)]);
    expect(taken.filter(Boolean)).toEqual([expect.objectContaining({ flowId: challenge.flowId })]);
  });

  it('refuses another request, as pending and without an error, while the slot names a request gone from the store', async () => {
    const input = fresh();
    const { challenge } = await requests.open(input);
    // The request evicted (a store under memory pressure), its slot still held.
    await store.delete(`push:c:${challenge.id}`);
    expect(await store.get(`push:pending:t1:${input.userId}`)).toBe(challenge.id);
    expect(await refusal(requests.open({ ...input, flowId: 'after-eviction' }))).toMatchObject({ code: 'push-pending', retryAfter: 60 });
    expect(await requests.pendingFor('t1', input.userId)).toBeUndefined();
  });

  it('withdraws a request nobody was told of: the request, its link and the slot go, a newer slot stays', async () => {
    const input = fresh();
    const { challenge } = await requests.open(input);
    await requests.withdraw(challenge);
    expect(await requests.get(challenge.id)).toBeUndefined();
    expect(await requests.state(input.flowId)).toBe('none');
    expect(await requests.pendingFor('t1', input.userId)).toBeUndefined();
    const again = await requests.open({ ...input, flowId: 'next' });
    expect(again.fresh).toBe(true);

    // A request that expired, and a newer one since: withdrawing (or answering) the old one leaves the newer one pending.
    clock.advance(60_000);
    const newer = await requests.open({ ...input, flowId: 'newer' });
    await requests.withdraw(again.challenge);
    expect(await requests.pendingFor('t1', input.userId)).toEqual(newer.challenge);
    expect(await refusal(requests.open({ ...input, flowId: 'third' }))).toMatchObject({ code: 'push-pending' });
  });

  it('pauses requests after three denials within the pause, for that user only', async () => {
    const input = fresh();
    for (let i = 0; i < 2; i++) {
      const { challenge } = await requests.open({ ...input, flowId: `f${i}` });
      await requests.decide(challenge.id, 'd1', 'deny', '', false);
    }
    // An approval counts nothing.
    const approved = (await requests.open({ ...input, flowId: 'ok' })).challenge;
    await requests.decide(approved.id, 'd1', 'approve', approved.number, false);
    const third = (await requests.open({ ...input, flowId: 'f2' })).challenge;
    await requests.decide(third.id, 'd1', 'approve', 'xx', false);
    expect(await refusal(requests.open({ ...input, flowId: 'f3' }))).toEqual({
      code: 'push-limit',
      retryAfter: 900,
      detail: 'Sign-in requests to your device are paused after several were denied; use another method',
    });
    // Another user, and this user in another tenant, are not paused.
    expect((await requests.open(fresh())).fresh).toBe(true);
    expect((await requests.open({ ...input, tenantId: 't2', flowId: 'other-tenant' })).fresh).toBe(true);
    // The pause ends 15 minutes after the first denial.
    clock.advance(15 * 60_000);
    expect((await requests.open({ ...input, flowId: 'f4' })).fresh).toBe(true);
  });

  it('sends a user at most five requests an hour, and the sixth leaves no request behind', async () => {
    const input = fresh();
    const opened: PushChallenge[] = [];
    for (let i = 0; i < 5; i++) {
      const { challenge } = await requests.open({ ...input, flowId: `h${i}` });
      opened.push(challenge);
      await requests.decide(challenge.id, 'd1', 'approve', challenge.number, false);
    }
    expect(await refusal(requests.open({ ...input, flowId: 'h5' }))).toMatchObject({ code: 'push-limit', retryAfter: 900 });
    expect(await requests.pendingFor('t1', input.userId)).toBeUndefined();
    expect(await requests.state('h5')).toBe('none');
    // Another user, or this user of another tenant, still gets requests.
    expect((await requests.open(fresh())).fresh).toBe(true);
    expect((await requests.open({ ...input, tenantId: 't2', flowId: 'other-tenant' })).fresh).toBe(true);
    // The count is an hour's.
    clock.advance(3_600_000 - 1);
    expect(await refusal(requests.open({ ...input, flowId: 'h6' }))).toMatchObject({ code: 'push-limit' });
    clock.advance(1);
    expect((await requests.open({ ...input, flowId: 'h7' })).fresh).toBe(true);
  });

  it('counts no withdrawn request towards the hour: a phone that is off does not use up the five', async () => {
    const input = fresh();
    for (let i = 0; i < 7; i++) await requests.withdraw((await requests.open({ ...input, flowId: `off${i}` })).challenge);
    for (let i = 0; i < 5; i++) {
      const { challenge } = await requests.open({ ...input, flowId: `on${i}` });
      await requests.decide(challenge.id, 'd1', 'approve', challenge.number, false);
    }
    expect(await refusal(requests.open({ ...input, flowId: 'on5' }))).toMatchObject({ code: 'push-limit' });
  });

  it('takes its limits from the ones given', async () => {
    setup({ lifetimeMs: 5_000, perHour: 1, denialsBeforePause: 1, pauseMs: 60_000 });
    const input = fresh();
    const { challenge } = await requests.open(input);
    expect(challenge.expiresAt).toBe(clock.now() + 5_000);
    await requests.decide(challenge.id, 'd1', 'deny', '', false);
    expect(await refusal(requests.open({ ...input, flowId: 'x' }))).toMatchObject({ code: 'push-limit', retryAfter: 60 });
    expect((await requests.open({ ...fresh(), userId: 'same', flowId: 'a' })).fresh).toBe(true);
    expect(await refusal(requests.open({ ...fresh(), userId: 'same', flowId: 'b' }))).toMatchObject({ code: 'push-pending', retryAfter: 5 });
    clock.advance(5_000);
    expect(await refusal(requests.open({ ...fresh(), userId: 'same', flowId: 'c' }))).toMatchObject({ code: 'push-limit', retryAfter: 900 });
  });
});
