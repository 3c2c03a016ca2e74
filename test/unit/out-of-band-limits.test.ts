import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.ts';
import { KeyedHasher } from '../../src/crypto/keyed-hash.ts';
import { AppError } from '../../src/errors/app-error.ts';
import { MemoryEphemeralStore } from '../../src/store/ephemeral/memory-store.ts';
import { OneTimeCodes } from '../../src/methods/out-of-band/one-time-codes.ts';
import { SendLimits, type SendTarget } from '../../src/methods/out-of-band/send-limits.ts';
import { MeetingPoint } from '../helpers/meeting-point.ts';

/**
 * Codes sent by text, call or email (methods/out-of-band/): the send caps
 * that stop message pumping, and the edges of a code's attempts and lifetime.
 * Fast enough for `npm run mutate`; test/unit/delivery-pieces.test.ts has the rest.
 */
const HOUR = 3_600_000;
const refusal = (promise: Promise<unknown>) =>
  promise.then(
    () => undefined,
    (err: unknown) => (err instanceof AppError ? { code: err.code, retryAfter: err.retryAfter } : { code: 'not-an-app-error', err }),
  );

describe('send limits', () => {
  const settings = { perDestinationPerHour: 3, perUserPerHour: 5, perTenantPerHour: 12, perSessionPerHour: 4, perSourcePerHour: 6 };
  const make = () => {
    const clock = new ManualClock(Date.UTC(2026, 10, 30, 9));
    return { clock, limits: new SendLimits(new MemoryEphemeralStore(clock), settings) };
  };
  let n = 0;
  const target = (over: Partial<SendTarget> = {}): SendTarget => ({ tenantId: 't1', userId: `u${++n}`, destinationKey: `d${n}`, ...over });
  const sends = async (limits: SendLimits, count: number, make: (i: number) => SendTarget) => {
    const out: string[] = [];
    for (let i = 0; i < count; i++) out.push((await refusal(limits.consume(make(i))))?.code ?? 'ok');
    return out;
  };

  it('caps sends to one destination an hour, whoever asks, and says when to try again', async () => {
    const { limits } = make();
    expect(await sends(limits, 4, () => target({ destinationKey: 'same' }))).toEqual(['ok', 'ok', 'ok', 'send-limit']);
    const refused = await refusal(limits.consume(target({ destinationKey: 'same' })));
    expect(refused!.retryAfter).toBeGreaterThan(HOUR / 1000 - 5);
    expect(refused!.retryAfter).toBeLessThanOrEqual(HOUR / 1000);
  });

  it('caps sends per user, per tenant, per session and per source, each apart', async () => {
    const { limits } = make();
    expect(await sends(limits, 6, () => target({ userId: 'one' }))).toEqual([...Array(5).fill('ok'), 'send-limit']);
    expect(await sends(limits, 1, () => target({ userId: 'one', tenantId: 't2' }))).toEqual(['ok']);
    const { limits: l2 } = make();
    expect(await sends(l2, 13, () => target())).toEqual([...Array(12).fill('ok'), 'send-limit']);
    expect(await sends(l2, 1, () => target({ tenantId: 't2' }))).toEqual(['ok']);
    const { limits: l3 } = make();
    expect(await sends(l3, 5, (i) => target({ requester: { origin: 'session:s1', ip: `203.0.113.${i}` } }))).toEqual([...Array(4).fill('ok'), 'send-limit']);
    expect(await sends(l3, 1, () => target({ requester: { origin: 'session:s2', ip: '203.0.113.99' } }))).toEqual(['ok']);
    const { limits: l4 } = make();
    expect(await sends(l4, 7, (i) => target({ tenantId: `t${i}`, requester: { origin: `session:${i}`, ip: `2001:db8:1:2::${i + 1}` } }))).toEqual([
      ...Array(6).fill('ok'),
      'send-limit',
    ]);
    // Without a requester (a flow with no address) the session and source caps do not apply.
    expect(await sends(l4, 1, (i) => target({ tenantId: `tx${i}` }))).toEqual(['ok']);
  });

  it('gives back the points a refused send took, and the owner’s and tenant’s, never the asker’s, when nothing went out', async () => {
    const { limits } = make();
    // The user's cap is reached; the destination's points taken on the way are given back each time.
    for (let i = 0; i < 5; i++) await limits.consume(target({ userId: 'busy', destinationKey: `d-busy-${i}` }));
    for (let i = 0; i < 5; i++) expect((await refusal(limits.consume(target({ userId: 'busy', destinationKey: 'fresh' }))))?.code).toBe('send-limit');
    expect(await sends(limits, 4, () => target({ destinationKey: 'fresh' }))).toEqual(['ok', 'ok', 'ok', 'send-limit']);

    // A provider outage: nothing went out ten times over, and the user, the destination and the tenant still
    // have every send (each refunded), from a fresh session and source.
    const { limits: l2 } = make();
    for (let i = 0; i < 10; i++) {
      const refund = await l2.consume(target({ userId: 'u-refund', destinationKey: 'd-refund', requester: { origin: `session:r${i}`, ip: `203.0.113.${i}` } }));
      await refund();
    }
    expect(await sends(l2, 3, () => target({ userId: 'u-refund', destinationKey: 'd-refund' }))).toEqual(['ok', 'ok', 'ok']);
    // Whoever asked pays for every send a provider tried, sent or not (round 28: failed sends to addresses that
    // fail on purpose cost nothing, and opened the provider's breaker for everyone).
    const { limits: l3 } = make();
    const asker = (i: number) => target({ destinationKey: `d-fail-${i}`, requester: { origin: 'session:a', ip: `203.0.113.${i}` } });
    for (let i = 0; i < 4; i++) await (await l3.consume(asker(i)))();
    expect((await refusal(l3.consume(asker(9))))?.code).toBe('send-limit');
    const { limits: l4 } = make();
    const fromOnePlace = (i: number) => target({ destinationKey: `d-fail-${i}`, requester: { origin: `session:${i}`, ip: '203.0.113.50' } });
    for (let i = 0; i < 6; i++) await (await l4.consume(fromOnePlace(i)))();
    expect((await refusal(l4.consume(fromOnePlace(9))))?.code).toBe('send-limit');
  });

  it('gives back only the points a refused send took: a refusal adds nothing to the limits it did not reach', async () => {
    const { limits } = make();
    // The destination's cap (3) is reached; each refusal there must not lend the user's cap (5) a point.
    const user = 'lender';
    expect(await sends(limits, 5, () => target({ userId: user, destinationKey: 'one-phone' }))).toEqual(['ok', 'ok', 'ok', 'send-limit', 'send-limit']);
    expect(await sends(limits, 3, (i) => target({ userId: user, destinationKey: `other-phone-${i}` }))).toEqual(['ok', 'ok', 'send-limit']);
  });

  it('passes a store failure on as it is', async () => {
    const { limits } = make();
    (limits as unknown as { user: { consume: () => Promise<unknown> } }).user.consume = () => Promise.reject(new Error('store down'));
    expect(await refusal(limits.consume(target()))).toMatchObject({ code: 'not-an-app-error' });
  });
});

describe('one-time codes at their edges', () => {
  const make = (maxAttempts = 3) => {
    const clock = new ManualClock(Date.UTC(2026, 10, 30, 9));
    const store = new MemoryEphemeralStore(clock);
    return { clock, store, codes: new OneTimeCodes(store, new KeyedHasher(Buffer.alloc(32, 9)), clock, { digits: 6, lifetimeMs: 300_000, maxAttempts }) };
  };
  const wrongFor = (code: string) => (code === '000000' ? '111111' : '000000');

  it('lets the right code in on the last attempt, and not after it', async () => {
    const { codes } = make(3);
    const { code, expiresAt } = await codes.issue('s');
    expect(code).toMatch(/^[0-9]{6}$/);
    expect(await codes.check('s', wrongFor(code))).toBe(false);
    expect(await codes.check('s', wrongFor(code))).toBe(false);
    expect(await codes.check('s', ` ${code} `)).toBe(true);
    expect(expiresAt).toBeGreaterThan(0);

    const { codes: c2 } = make(3);
    const second = await c2.issue('s');
    for (let i = 0; i < 3; i++) expect(await c2.check('s', wrongFor(second.code))).toBe(false);
    expect(await c2.check('s', second.code)).toBe(false);
  });

  it("counts each scope's attempts apart, and destroys a code at its last wrong attempt", async () => {
    const { codes, store } = make(3);
    const a = await codes.issue('scope-a');
    const b = await codes.issue('scope-b');
    for (const [scope, code] of [
      ['scope-a', a.code],
      ['scope-a', a.code],
      ['scope-b', b.code],
      ['scope-b', b.code],
    ] as const)
      expect(await codes.check(scope, wrongFor(code))).toBe(false);
    // Four wrong answers in all, two for each: the right code of either still gets in on its third attempt.
    expect(await codes.check('scope-b', b.code)).toBe(true);
    expect(await codes.check('scope-a', wrongFor(a.code))).toBe(false);
    // That was the last attempt: it took the code itself away, not only its use.
    expect(await store.get('otc:scope-a')).toBeUndefined();
    expect(await codes.check('scope-a', a.code)).toBe(false);
  });

  it('restarts the attempts with a new code, and lives exactly its lifetime', async () => {
    const { codes, clock } = make(3);
    const first = await codes.issue('s');
    expect(first.expiresAt).toBe(clock.now() + 300_000);
    await codes.check('s', wrongFor(first.code));
    await codes.check('s', wrongFor(first.code));
    const second = await codes.issue('s');
    await codes.check('s', wrongFor(second.code));
    await codes.check('s', wrongFor(second.code));
    expect(await codes.check('s', second.code)).toBe(true);

    const third = await codes.issue('s');
    clock.advance(300_000 - 1);
    expect(await codes.check('s', third.code)).toBe(true);
    const fourth = await codes.issue('s');
    clock.advance(300_000);
    expect(await codes.check('s', fourth.code)).toBe(false);
  });

  it('lets only one of two right answers at once through', async () => {
    const { codes, store } = make(3);
    const { code } = await codes.issue('s');
    const meet = new MeetingPoint(2).holdCalls(store, 'take');
    try {
      // One that ends before it reaches the take lets the other go on, so a break fails here rather than hangs.
      const racer = () => codes.check('s', code).finally(() => meet.met === 0 && void meet.arrive());
      const both = await Promise.all([racer(), racer()]);
      expect(both.filter(Boolean)).toHaveLength(1);
    } finally {
      meet.restore();
    }
    // A revoked code is gone.
    const again = await codes.issue('r');
    await codes.revoke('r');
    expect(await codes.check('r', again.code)).toBe(false);
  });
});
