import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.ts';
import { AppError } from '../../src/errors/app-error.ts';
import { DEFAULT_POLICY } from '../../src/directory/policy.ts';
import type { Tenant } from '../../src/directory/tenant.ts';
import type { Credential } from '../../src/methods/credentials.ts';
import type { MethodRegistry } from '../../src/methods/registry.ts';
import { MemoryEphemeralStore } from '../../src/store/ephemeral/memory-store.ts';
import { KnownBrowsers } from '../../src/signin/known-browsers.ts';
import { AnonymousStarts } from '../../src/signin/anonymous-starts.ts';
import { whatPasswordAloneOpens } from '../../src/signin/password-registers.ts';
import { methodChoices } from '../../src/signin/method-choices.ts';
import { apiState } from '../../src/signin/next-step.ts';
import { flowFailuresKey, flowKey } from '../../src/signin/flow.ts';
import { sourceKey } from '../../src/signin/source-key.ts';

/** The small pieces of the sign-in (signin/): each one's promise at its edges, fast enough for `npm run mutate`. */
const DAY = 86_400_000;

describe('known-browser marks', () => {
  const clock = new ManualClock(Date.UTC(2026, 10, 30, 9));
  const marks = new KnownBrowsers(Buffer.alloc(32, 7), clock);

  it('recognise the account they were issued to for 90 days, and no other', () => {
    const { token, expiresAt } = marks.issue('t1', 'u1');
    expect(token).toMatch(/^sfb_[A-Za-z0-9_-]{22}\.\d+\.[A-Za-z0-9_-]{43}$/);
    expect(expiresAt).toBe(clock.now() + 90 * DAY);
    expect(marks.recognises(token, 't1', 'u1')).toBe(true);
    expect(marks.recognises(token, 't1', 'u2')).toBe(false);
    expect(marks.recognises(token, 't2', 'u1')).toBe(false);
    expect(marks.recognises(undefined, 't1', 'u1')).toBe(false);
    // Another key's mark is no mark.
    expect(new KnownBrowsers(Buffer.alloc(32, 8), clock).recognises(token, 't1', 'u1')).toBe(false);

    const later = new ManualClock(clock.now());
    const aging = new KnownBrowsers(Buffer.alloc(32, 7), later);
    const mark = aging.issue('t1', 'u1').token;
    later.advance(90 * DAY - 1000);
    expect(aging.recognises(mark, 't1', 'u1')).toBe(true);
    later.advance(1000);
    expect(aging.recognises(mark, 't1', 'u1')).toBe(false);
  });

  it('are void once issued before the account last ended its sessions', () => {
    const { token } = marks.issue('t1', 'u1');
    expect(marks.recognises(token, 't1', 'u1', null)).toBe(true);
    expect(marks.recognises(token, 't1', 'u1', clock.now() - 1000)).toBe(true);
    expect(marks.recognises(token, 't1', 'u1', clock.now())).toBe(false);
    expect(marks.recognises(token, 't1', 'u1', clock.now() + 1000)).toBe(false);
  });

  it('cannot be altered or made up', () => {
    const { token } = marks.issue('t1', 'u1');
    const [tag, expires, mac] = token.slice(4).split('.') as [string, string, string];
    const flip = (s: string) => (s.startsWith('A') ? 'B' : 'A') + s.slice(1);
    for (const bad of [
      `sfx_${tag}.${expires}.${mac}`,
      `sfb_${flip(tag)}.${expires}.${mac}`,
      `sfb_${tag}.${Number(expires) + 1}.${mac}`,
      `sfb_${tag}.${expires}.${flip(mac)}`,
      `sfb_${tag}.${expires}.${mac.slice(1)}`,
      `sfb_${tag}.${expires}.${mac}x`,
      `sfb_${tag}.${expires}`,
      `sfb_${tag}..${mac}`,
      `sfb_.${expires}.${mac}`,
      `sfb_${tag}.1e12.${mac}`,
      `sfb_${tag}.${expires}.${mac}.${'x'.repeat(200)}`,
      `sfb_${tag}.1${expires.padStart(12, '0')}.${mac}`,
      '',
    ]) {
      expect(marks.recognises(bad, 't1', 'u1'), bad).toBe(false);
    }
  });

  it('refuse a long token before any work, even one whose parts are right', () => {
    const { token } = marks.issue('t1', 'u1');
    expect(token.length).toBeLessThanOrEqual(200);
    expect(marks.recognises(`${token}${'.'.repeat(201 - token.length)}`, 't1', 'u1')).toBe(false);
  });
});

describe('anonymous starts', () => {
  it('allow 60 a minute from one source, then ask it to wait, and keep sources apart', async () => {
    const clock = new ManualClock(Date.UTC(2026, 10, 30, 9));
    const starts = new AnonymousStarts(new MemoryEphemeralStore(clock));
    for (let i = 0; i < 60; i++) await starts.take('203.0.113.5');
    const refused = await starts.take('203.0.113.5').then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(refused).toBeInstanceOf(AppError);
    expect((refused as AppError).code).toBe('too-many-requests');
    // Blocked for the minute: told to come back then, not in a second.
    expect((refused as AppError).retryAfter).toBe(60);
    await starts.take('203.0.113.6');
    // One IPv6 host holds a whole /64: its addresses share a budget.
    for (let i = 0; i < 60; i++) await starts.take(`2001:db8:1:2::${i.toString(16)}`);
    await expect(starts.take('2001:db8:1:2:ffff::1')).rejects.toMatchObject({ code: 'too-many-requests' });
  });

  it('pass a store failure on as it is', async () => {
    const clock = new ManualClock(Date.UTC(2026, 10, 30, 9));
    const store = new MemoryEphemeralStore(clock);
    const starts = new AnonymousStarts(store);
    const limiter = (starts as unknown as { limiter: { consume: () => Promise<unknown> } }).limiter;
    limiter.consume = () => Promise.reject(new Error('store down'));
    await expect(starts.take('203.0.113.5')).rejects.toThrow('store down');
  });
});

describe('source keys', () => {
  it('key IPv4 by address and IPv6 by its /64, however written', () => {
    expect(sourceKey('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(sourceKey('2001:DB8:00a0:0::')).toBe('2001:db8:a0:0::/64');
    expect(sourceKey('::FFFF:198.51.100.4')).toBe('198.51.100.4');
    expect(sourceKey('fe80::1:2:3:4')).toBe('fe80:0:0:0::/64');
    expect(sourceKey('2001:db8:1:2:3::')).toBe('2001:db8:1:2::/64');
    expect(sourceKey('::')).toBe('0:0:0:0::/64');
    expect(sourceKey('::2001:db8:1:2')).toBe('0:0:0:0::/64');
    expect(sourceKey('2001::2:3:4:5:6:7')).toBe('2001:0:2:3::/64');
    expect(sourceKey('::ffff:198.51.100.45')).toBe('198.51.100.45');
    // Only a mapped IPv4 address is one: an IPv6 host that ends its address with a dotted quad is still its /64, whatever
    // quad it writes (or it could take a new key for every guess).
    expect(sourceKey('2001:db8::ffff:198.51.100.4')).toBe('2001:db8:0:0::/64');
    expect(sourceKey('2001:db8::ffff:198.51.100.5')).toBe('2001:db8:0:0::/64');
  });
});

describe('method choices', () => {
  const tenant = {
    id: 't',
    slug: 't',
    name: 'T',
    policy: { ...DEFAULT_POLICY, allowedMethods: ['totp', 'sms', 'webauthn', 'recovery-codes', 'email'] },
    createdAt: 0,
  } as Tenant;
  const registry = {
    get: (type: string) => (type === 'retired' ? undefined : {}),
    available: (type: string) => type !== 'sms',
  } as unknown as MethodRegistry;
  let n = 0;
  const credential = (type: string, isDefault = false): Credential =>
    ({ id: `c${++n}-${type}`, type, label: `${type} label`, isDefault }) as unknown as Credential;

  it('puts the default first when it works, then the strongest, the unusable last, recovery codes after the rest', () => {
    const active = [credential('recovery-codes'), credential('sms', true), credential('totp'), credential('email'), credential('webauthn')];
    const choices = methodChoices(tenant, active, registry);
    expect(choices.map((c) => c.type)).toEqual(['webauthn', 'totp', 'email', 'recovery-codes', 'sms']);
    expect(choices[4]).toEqual({ id: active[1]!.id, type: 'sms', label: 'sms label', available: false, default: true });
    expect(choices[0]).toEqual({ id: active[4]!.id, type: 'webauthn', label: 'webauthn label', available: true, default: false });
    const withDefault = methodChoices(tenant, [credential('webauthn'), credential('email', true), credential('totp')], registry);
    expect(withDefault.map((c) => c.type)).toEqual(['email', 'webauthn', 'totp']);
  });

  it('lists what the tenant no longer allows as unusable (still the user’s: never "no method"), and leaves out what this server does not know', () => {
    const voice = credential('voice', true);
    const choices = methodChoices(tenant, [voice, credential('retired'), credential('totp')], registry);
    expect(choices.map((c) => [c.type, c.available])).toEqual([
      ['totp', true],
      ['voice', false],
    ]);
    expect(choices[1]).toEqual({ id: voice.id, type: 'voice', label: 'voice label', available: false, default: true });
  });
});

describe('next steps and flow keys', () => {
  const session = { token: 'sfs_x', expiresAt: '2026-11-30T10:00:00.000Z', userId: 'u' };
  it('render each step as the API promises', () => {
    expect(apiState({ kind: 'factor', flow: 'f', methods: [] })).toEqual({ state: 'factor_required', flow: 'f', methods: [] });
    expect(apiState({ kind: 'register', methods: [], session })).toEqual({ state: 'registration_required', flow: null, methods: [], session });
    expect(apiState({ kind: 'done', methods: [], session })).toEqual({ state: 'complete', flow: null, methods: [], session });
  });
  it("keep a browser's flows and an app's transactions in separate keyspaces", () => {
    expect(flowKey({ id: 'abc' })).toBe('flow:abc');
    expect(flowKey({ id: 'abc', appId: 'app' })).toBe('apptx:abc');
    expect(flowFailuresKey({ id: 'abc' })).toBe('flow:abc:fails');
    expect(flowFailuresKey({ id: 'abc', appId: 'app' })).toBe('apptx:abc:fails');
  });
});

describe('what the right password opens on its own', () => {
  const choice = (type: string) => ({ id: type, type, label: type, available: true, default: false });
  const user = (over: Partial<{ mustRegister: boolean; flaggedAt: number | null; methodsResetAt: number | null; passwordChangedAt: number | null }> = {}) => ({
    mustRegister: false,
    flaggedAt: null,
    methodsResetAt: null,
    passwordChangedAt: 100,
    ...over,
  });
  const reset = { mustRegister: true, methodsResetAt: 200 };

  it('asks for a method the user has, whatever else holds, and never more', () => {
    for (const mfa of [true, false]) {
      expect(whatPasswordAloneOpens(user(reset), [choice('totp')], mfa)).toEqual({ opens: 'factor' });
      expect(whatPasswordAloneOpens(user({ flaggedAt: 300 }), [choice('sms'), choice('tap')], mfa)).toEqual({ opens: 'factor' });
    }
  });

  it('opens a registration, or where MFA is optional a session, for a user with no method, unless the password predates a reset or report', () => {
    expect(whatPasswordAloneOpens(user(), [], true)).toEqual({ opens: 'registration' });
    expect(whatPasswordAloneOpens(user({ mustRegister: true }), [], false)).toEqual({ opens: 'registration' });
    expect(whatPasswordAloneOpens(user(), [], false)).toEqual({ opens: 'session' });
    expect(whatPasswordAloneOpens(user(), [choice('tap')], false)).toEqual({ opens: 'session' });
    expect(whatPasswordAloneOpens(user(reset), [], true)).toEqual({ opens: 'nothing', why: 'password_predates_reset' });
    expect(whatPasswordAloneOpens(user({ flaggedAt: 300 }), [], false)).toEqual({ opens: 'nothing', why: 'password_predates_report' });
    // Where MFA is optional, a pass held changes nothing: the password alone is what the session would rest on.
    expect(whatPasswordAloneOpens(user({ flaggedAt: 300 }), [choice('tap')], false)).toEqual({ opens: 'nothing', why: 'password_predates_report' });
    expect(whatPasswordAloneOpens(user({ ...reset, passwordChangedAt: 201 }), [], true)).toEqual({ opens: 'registration' });
  });

  it('asks for the pass when a pass is all the user holds and a second factor is needed', () => {
    expect(whatPasswordAloneOpens(user(), [choice('tap')], true)).toEqual({ opens: 'factor' });
    expect(whatPasswordAloneOpens(user(reset), [choice('tap')], false)).toEqual({ opens: 'factor' });
  });
});
