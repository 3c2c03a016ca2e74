import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ManualClock } from '../../src/clock.ts';
import type { Services } from '../../src/server/services.ts';
import type { Tenant } from '../../src/directory/tenants.ts';
import type { User } from '../../src/directory/users.ts';
import { AppError } from '../../src/errors/app-error.ts';
import { MemoryEphemeralStore } from '../../src/store/ephemeral/memory-store.ts';
import { AbuseLimits, PASSWORD_CHANGE_FAILURES_PER_DAY, familiarShare, type Attempt } from '../../src/signin/abuse-limits.ts';
import { requireMayAdd, requireSessionMay, sessionMay, type SessionAction } from '../../src/sessions/session-scope.ts';
import { RequestAuth, bearerToken } from '../../src/http/authenticate.ts';
import type { Session } from '../../src/sessions/sessions.ts';
import { createRecoveryCodesMethod, formatRecoveryCode, remainingRecoveryCodes } from '../../src/methods/recovery-codes/recovery-codes-method.ts';
import { Credentials } from '../../src/methods/credentials.ts';
import { createUser, startCoreServices, type CoreServices } from './core-services.ts';
import { MeetingPoint } from '../helpers/meeting-point.ts';
import { AccessPasses } from '../../src/methods/tap/access-passes.ts';
import { SingleUseHolds } from '../../src/methods/single-use-holds.ts';

/**
 * The security-critical modules at the level of their own promises, fast
 * enough (no HTTP, cheap Argon2id, SQLite in a temporary directory) to run for
 * every mutant `npm run mutate` makes. The HTTP suites prove the same rules
 * from outside; these pin the edges: exact limits, each refusal's reason,
 * each single-use guard.
 */
const codeOf = (fn: () => unknown): string | undefined => {
  try {
    fn();
  } catch (err) {
    return err instanceof AppError ? err.code : 'not-an-app-error';
  }
  return undefined;
};
const rejection = async (promise: Promise<unknown>) =>
  promise.then(
    () => undefined,
    (err: unknown) => (err instanceof AppError ? { code: err.code, retryAfter: err.retryAfter, detail: err.detail } : { code: 'not-an-app-error' }),
  );

describe('session scope', () => {
  const all: SessionAction[] = [
    'view-account',
    'list-methods',
    'add-method',
    'confirm-method',
    'resend-confirmation',
    'sign-out',
    'change-method',
    'remove-method',
    'view-signins',
    'report-signin',
    'change-password',
    'administer',
    'sign-in-to-app',
  ];
  const registrationMay = ['view-account', 'list-methods', 'add-method', 'confirm-method', 'resend-confirmation', 'sign-out'];

  it('lets a full session do everything and a registration session only set-up', () => {
    for (const action of all) {
      expect(sessionMay('full', action), action).toBe(true);
      expect(sessionMay('register', action), action).toBe(registrationMay.includes(action));
      expect(
        codeOf(() => requireSessionMay('register', action)),
        action,
      ).toBe(registrationMay.includes(action) ? undefined : 'registration-only');
      expect(
        codeOf(() => requireSessionMay('full', action)),
        action,
      ).toBeUndefined();
    }
  });

  it('lets a registration session add only a method that proves itself at set-up', () => {
    for (const type of ['totp', 'webauthn', 'sms', 'voice', 'email'])
      expect(
        codeOf(() => requireMayAdd('register', type)),
        type,
      ).toBeUndefined();
    expect(codeOf(() => requireMayAdd('register', 'recovery-codes'))).toBe('registration-only');
    expect(codeOf(() => requireMayAdd('register', 'no-such-method'))).toBe('registration-only');
    expect(codeOf(() => requireMayAdd('full', 'recovery-codes'))).toBeUndefined();
  });
});

describe('abuse limits', () => {
  const clock = new ManualClock(Date.UTC(2026, 10, 30, 9));
  const fresh = (options = {}) => new AbuseLimits(new MemoryEphemeralStore(clock), options);
  const attempt = (over: Partial<Attempt> = {}): Attempt => ({ factor: 'password', account: 't|acct', ip: '203.0.113.1', ...over });
  const spend = async (limits: AbuseLimits, n: number, make: (i: number) => Attempt) => {
    const outcomes: string[] = [];
    for (let i = 0; i < n; i++) outcomes.push((await rejection(limits.begin(make(i))))?.code ?? 'ok');
    return outcomes;
  };

  it('gives a familiar part a tenth of the budget, at least one', () => {
    expect([familiarShare(100), familiarShare(20), familiarShare(10), familiarShare(9), familiarShare(1), familiarShare(0)]).toEqual([10, 2, 1, 1, 1, 1]);
  });

  it('holds one source after 100 failures, whoever they target, for the window', async () => {
    const limits = fresh();
    const outcomes = await spend(limits, 101, (i) => attempt({ account: `t|user-${i}` }));
    expect(outcomes.slice(0, 100).every((o) => o === 'ok')).toBe(true);
    const refused = await rejection(limits.begin(attempt({ account: 't|someone-else' })));
    expect(refused).toMatchObject({ code: 'too-many-requests' });
    expect(refused!.retryAfter).toBeGreaterThan(14 * 60);
    expect(refused!.retryAfter).toBeLessThanOrEqual(15 * 60);
    expect(outcomes[100]).toBe('too-many-requests');
    // Another source is not held.
    expect(await rejection(limits.begin(attempt({ ip: '198.51.100.2' })))).toBeUndefined();
  });

  it('caps wrong current passwords in password changes for the account across sources, apart from the sign-in budget', async () => {
    const limits = fresh();
    const change = (i: number) => attempt({ factor: 'password-change', account: 't|user:u', ip: `198.18.${i}.1` });
    // From ever more sources, each under its own limit of 10: the account's day of 20 runs out.
    const outcomes = await spend(limits, PASSWORD_CHANGE_FAILURES_PER_DAY + 1, (i) => change(Math.floor(i / 5)));
    expect(outcomes).toEqual([...Array(PASSWORD_CHANGE_FAILURES_PER_DAY).fill('ok'), 'too-many-requests']);
    expect(await rejection(limits.begin(change(99)))).toMatchObject({ code: 'too-many-requests' });
    // The owner still signs in: the sign-in budget is another counter.
    expect(await rejection(limits.begin(attempt({ account: 't|user:u', ip: '198.18.99.1' })))).toBeUndefined();
    // Another account is not touched.
    expect(await rejection(limits.begin(attempt({ factor: 'password-change', account: 't|user:v', ip: '198.18.99.1' })))).toBeUndefined();
  });

  it('holds one source on one account after 10 failures', async () => {
    const limits = fresh();
    expect(await spend(limits, 11, () => attempt())).toEqual([...Array(10).fill('ok'), 'too-many-requests']);
    expect(await rejection(limits.begin(attempt({ ip: '198.51.100.7' })))).toBeUndefined();
  });

  it("holds an account after 80 strangers' failures for a day, without lifting; familiar parts get 10 each and block", async () => {
    for (const factor of ['password', 'second-factor'] as const) {
      const limits = fresh();
      const outcomes = await spend(limits, 81, (i) => attempt({ factor, ip: `198.18.${i}.1` }));
      expect(
        outcomes.filter((o) => o === 'ok'),
        factor,
      ).toHaveLength(80);
      const held = await rejection(limits.begin(attempt({ factor, ip: '198.18.250.1' })));
      expect(held!.retryAfter, factor).toBeGreaterThan(23 * 3600);
      // The familiar parts are apart.
      expect(await spend(limits, 11, () => attempt({ factor, place: 'familiar-source', ip: '192.0.2.1' })), factor).toEqual([
        ...Array(10).fill('ok'),
        'too-many-requests',
      ]);
      const blocked = await rejection(limits.begin(attempt({ factor, place: 'familiar-source', ip: '192.0.2.1' })));
      expect(blocked!.retryAfter).toBeLessThanOrEqual(3600);
      expect(await spend(limits, 10, (i) => attempt({ factor, place: 'known-browser', ip: `192.0.3.${i}` })), factor).toEqual(Array(10).fill('ok'));
    }
  });

  it("applies the lower of the tenant's and the node's limits", async () => {
    const limits = fresh({ accountFailures: 50, accountBlockSeconds: 600 });
    const tenantLower = await spend(limits, 12, (i) => attempt({ ip: `198.18.${i}.2`, accountFailures: 10, accountBlockSeconds: 7200 }));
    expect(tenantLower.filter((o) => o === 'ok')).toHaveLength(8);
    const familiar = await spend(limits, 2, () => attempt({ place: 'familiar-source', ip: '192.0.2.9', accountFailures: 10, accountBlockSeconds: 7200 }));
    expect(familiar).toEqual(['ok', 'too-many-requests']);
    const wait = await rejection(limits.begin(attempt({ place: 'familiar-source', ip: '192.0.2.9', accountFailures: 10, accountBlockSeconds: 7200 })));
    expect(wait!.retryAfter).toBeLessThanOrEqual(600);
    const nodeLower = fresh({ accountFailures: 10 });
    expect((await spend(nodeLower, 10, (i) => attempt({ ip: `198.18.${i}.3`, accountFailures: 100 }))).filter((o) => o === 'ok')).toHaveLength(8);
  });

  it('counts passwords and second factors apart, and never charges an account for a TAP or a password change', async () => {
    const limits = fresh({ accountFailures: 10, accountSourceFailures: 1000, sourceFailures: 1000 });
    await spend(limits, 8, (i) => attempt({ ip: `198.18.${i}.4` }));
    expect(await rejection(limits.begin(attempt({ ip: '198.18.99.4' })))).toMatchObject({ code: 'too-many-requests' });
    expect(await rejection(limits.begin(attempt({ factor: 'second-factor', ip: '198.18.99.4' })))).toBeUndefined();
    for (const factor of ['tap', 'password-change'] as const)
      expect(await spend(limits, 20, (i) => attempt({ factor, ip: `198.18.${i}.5` })), factor).toEqual(Array(20).fill('ok'));
  });

  it('costs a refused attempt nothing, and a success restarts the count and makes the source familiar for that factor', async () => {
    const limits = fresh({ accountSourceFailures: 2, sourceFailures: 1000, accountFailures: 1000 });
    const a = attempt({ ip: '203.0.113.50' });
    expect(await spend(limits, 3, () => a)).toEqual(['ok', 'ok', 'too-many-requests']);
    // The refusal gave back the points the other counters took: another account from here is untouched.
    for (let i = 0; i < 5; i++) await rejection(limits.begin(a));
    const other = attempt({ ip: '203.0.113.50', account: 't|other' });
    expect(await spend(limits, 2, () => other)).toEqual(['ok', 'ok']);
    expect(await limits.isFamiliarSource('password', other.account, other.ip)).toBe(false);
    await limits.succeeded(other);
    expect(await limits.isFamiliarSource('password', other.account, other.ip)).toBe(true);
    expect(await limits.isFamiliarSource('second-factor', other.account, other.ip)).toBe(false);
    expect(await spend(limits, 3, () => other)).toEqual(['ok', 'ok', 'too-many-requests']);
  });
  it('asks a refused source to wait for the longest of the limits it hit', async () => {
    const limits = fresh({ accountFailures: 10, accountSourceFailures: 8, sourceFailures: 1000 });
    // The eighth failure spends both the source's share of the account and the strangers' budget (10 - 2 × 1).
    expect(await spend(limits, 9, () => attempt({ ip: '203.0.113.80' }))).toEqual([...Array(8).fill('ok'), 'too-many-requests']);
    const refused = await rejection(limits.begin(attempt({ ip: '203.0.113.80' })));
    expect(refused!.retryAfter).toBeGreaterThan(23 * 3600);
  });

  it("gives a source back only its own point on a success: spraying others' accounts is not forgotten by signing in to one's own", async () => {
    const limits = fresh({ sourceFailures: 5, accountSourceFailures: 1000, accountFailures: 1000 });
    const ip = '203.0.113.90';
    expect(await spend(limits, 4, (i) => attempt({ ip, account: `t|victim-${i}` }))).toEqual(Array(4).fill('ok'));
    const own = attempt({ ip, account: 't|attacker' });
    await limits.begin(own);
    await limits.succeeded(own);
    // Four failures stay counted: one more, then refused.
    expect(await spend(limits, 2, (i) => attempt({ ip, account: `t|victim-${10 + i}` }))).toEqual(['ok', 'too-many-requests']);
  });

  it('keeps a source familiar for 30 days after a success there', async () => {
    const limits = fresh();
    const a = attempt({ ip: '203.0.113.95', factor: 'second-factor' });
    await limits.succeeded(a);
    clock.advance(30 * 86_400_000 - 1000);
    expect(await limits.isFamiliarSource('second-factor', a.account, a.ip)).toBe(true);
    expect(await limits.isFamiliarSource('password', a.account, a.ip)).toBe(false);
    clock.advance(1000);
    expect(await limits.isFamiliarSource('second-factor', a.account, a.ip)).toBe(false);
  });

  it('gives back on a refund exactly what begin took', async () => {
    const limits = fresh({ accountSourceFailures: 2, sourceFailures: 3, accountFailures: 10 });
    const a = attempt({ ip: '203.0.113.60' });
    for (let i = 0; i < 20; i++) {
      await limits.begin(a);
      await limits.refund(a);
    }
    // Nothing was left charged: the per-source-and-account limit still has both its points.
    expect(await spend(limits, 3, () => a)).toEqual(['ok', 'ok', 'too-many-requests']);
    // And the account's strangers' budget (10 - 2 × 1 = 8) is whole for other sources.
    const limits2 = fresh({ accountFailures: 10, accountSourceFailures: 1000, sourceFailures: 1000 });
    for (let i = 0; i < 20; i++) {
      await limits2.begin(attempt({ ip: `198.18.${i}.6` }));
      await limits2.refund(attempt({ ip: `198.18.${i}.6` }));
    }
    expect((await spend(limits2, 9, (i) => attempt({ ip: `198.18.${i}.7` }))).filter((o) => o === 'ok')).toHaveLength(8);
  });

  /** An ephemeral store whose per-source counters fail (the store is down for them) until `up()`. */
  const perSourceCounterDown = () => {
    let down = true;
    const failing = new Proxy(new MemoryEphemeralStore(clock), {
      get(target, property) {
        if (property !== 'rateLimiter') return Reflect.get(target, property, target) as unknown;
        return (options: Parameters<MemoryEphemeralStore['rateLimiter']>[0]) => {
          const limiter = target.rateLimiter(options);
          if (!options.keyPrefix.endsWith(':src')) return limiter;
          const consume = limiter.consume.bind(limiter);
          limiter.consume = (key, points) => (down ? Promise.reject(new Error('store down')) : consume(key, points));
          return limiter;
        };
      },
    });
    return { failing, up: () => (down = false) };
  };

  it('passes a store failure on as it is, not as a limit, and charges nothing for it', async () => {
    const { failing, up } = perSourceCounterDown();
    const limits = new AbuseLimits(failing, { accountSourceFailures: 2, sourceFailures: 1000, accountFailures: 1000 });
    const a = attempt({ ip: '203.0.113.70' });
    for (let i = 0; i < 5; i++) expect(await rejection(limits.begin(a))).toEqual({ code: 'not-an-app-error' });
    up();
    expect(await spend(limits, 3, () => a)).toEqual(['ok', 'ok', 'too-many-requests']);
  });

  it('gives back only the points a failed attempt took: a counter whose store call failed is not credited', async () => {
    const { failing, up } = perSourceCounterDown();
    const limits = new AbuseLimits(failing, { sourceFailures: 3, accountSourceFailures: 1000, accountFailures: 1000 });
    const ip = '203.0.113.75';
    for (let i = 0; i < 5; i++) expect(await rejection(limits.begin(attempt({ ip, account: `t|down-${i}` })))).toEqual({ code: 'not-an-app-error' });
    up();
    // The source's counter never counted those five: crediting them would give it five more guesses than its 3.
    expect(await spend(limits, 4, (i) => attempt({ ip, account: `t|up-${i}` }))).toEqual(['ok', 'ok', 'ok', 'too-many-requests']);
  });
});

describe('with the services on SQLite', () => {
  let core: CoreServices;
  let s: Services;
  let tenant: Tenant;
  const clock = new ManualClock(Date.UTC(2026, 10, 30, 9));
  const newUser = (extra: Partial<{ isAdmin: boolean }> = {}): Promise<User> => createUser(s, tenant, extra);

  beforeAll(async () => {
    core = await startCoreServices(clock);
    s = core.services;
    tenant = await s.tenants.create('core');
  });
  afterAll(() => core?.stop());

  describe('Temporary Access Passes', () => {
    it('issues within the policy, formatted, replacing the one before', async () => {
      const user = await newUser();
      const { minMinutes, maxMinutes } = tenant.policy.tap;
      for (const minutes of [minMinutes - 1, maxMinutes + 1, 1.5])
        expect(await rejection(s.passes.issue(tenant, user.id, { minutes }, 'admin')), String(minutes)).toMatchObject({ code: 'invalid-request' });
      const first = await s.passes.issue(tenant, user.id, { minutes: maxMinutes, oneTime: false }, 'x'.repeat(300));
      expect(first.code).toMatch(/^[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}$/);
      expect(first.pass).toMatchObject({
        userId: user.id,
        oneTime: false,
        uses: 0,
        lastUsedAt: null,
        createdBy: 'x'.repeat(200),
        expiresAt: clock.now() + maxMinutes * 60_000,
      });
      const second = await s.passes.issue(tenant, user.id, { oneTime: true }, 'admin');
      expect(second.pass.expiresAt).toBe(clock.now() + tenant.policy.tap.defaultMinutes * 60_000);
      expect((await s.passes.active(tenant.id, user.id))!.id).toBe(second.pass.id);
      expect(await s.passes.use(tenant.id, user.id, first.code, {})).toBeUndefined();
      const noTap = { ...tenant, policy: { ...tenant.policy, allowedMethods: tenant.policy.allowedMethods.filter((m) => m !== 'tap') } };
      expect(await rejection(s.passes.issue(noTap, user.id, {}, 'admin'))).toMatchObject({ code: 'method-not-permitted' });
    });

    it('uses a one-time pass once, a multi-use one until it expires, and none after a revocation', async () => {
      const user = await newUser();
      const once = await s.passes.issue(tenant, user.id, { minutes: 60, oneTime: true }, 'admin');
      expect(await s.passes.check(tenant.id, user.id, once.code.toLowerCase(), {})).toBe(true);
      expect(await s.passes.check(tenant.id, user.id, 'AAAA-AAAA-AAAA-AAAA', {})).toBe(false);
      expect(await s.passes.check(tenant.id, user.id, '', {})).toBe(false);
      expect(await s.passes.use(tenant.id, user.id, 'AAAA-AAAA-AAAA-AAAA', {})).toBeUndefined();
      expect(await s.passes.use(tenant.id, undefined, once.code, {})).toBeUndefined();
      expect(await s.passes.use(tenant.id, user.id, once.code.slice(0, -1), {})).toBeUndefined();
      const used = await s.passes.use(tenant.id, user.id, once.code.replaceAll('-', ' ').toLowerCase(), {});
      expect(used).toMatchObject({ id: once.pass.id, uses: 1, lastUsedAt: clock.now(), oneTime: true });
      expect(await s.passes.use(tenant.id, user.id, once.code, {})).toBeUndefined();
      expect(await s.passes.active(tenant.id, user.id)).toBeUndefined();
      expect(await s.passes.check(tenant.id, user.id, once.code, {})).toBe(false);

      const many = await s.passes.issue(tenant, user.id, { minutes: 60, oneTime: false }, 'admin');
      expect((await s.passes.use(tenant.id, user.id, many.code, {}))!.uses).toBe(1);
      clock.advance(1000);
      expect(await s.passes.use(tenant.id, user.id, many.code, {})).toMatchObject({ uses: 2, lastUsedAt: clock.now() });
      clock.advance(60 * 60_000);
      expect(await s.passes.use(tenant.id, user.id, many.code, {})).toBeUndefined();
      expect(await s.passes.active(tenant.id, user.id)).toBeUndefined();

      const revoked = await s.passes.issue(tenant, user.id, { minutes: 60, oneTime: false }, 'admin');
      expect(await s.passes.revoke(tenant.id, user.id)).toEqual({ createdAt: clock.now(), used: false });
      expect(await s.passes.revoke(tenant.id, user.id)).toBeUndefined();
      expect(await s.passes.use(tenant.id, user.id, revoked.code, {})).toBeUndefined();
      // A pass someone used says so when it is revoked (the administrator's revocation then ends the user's sessions).
      const usedOnce = await s.passes.issue(tenant, user.id, { minutes: 60, oneTime: false }, 'admin');
      clock.advance(1_000);
      expect(await s.passes.use(tenant.id, user.id, usedOnce.code, {})).toMatchObject({ uses: 1 });
      expect(await s.passes.revoke(tenant.id, user.id)).toEqual({ createdAt: clock.now() - 1_000, used: true });
      // Another tenant's id finds nothing.
      const other = await s.passes.issue(tenant, user.id, { minutes: 60, oneTime: false }, 'admin');
      expect(await s.passes.use('another-tenant', user.id, other.code, {})).toBeUndefined();
    });

    /** A second unrevoked pass of the user beside the one `issue` left: two issues racing on PostgreSQL can leave two. */
    const unrevokedBeside = async (userId: string, createdBy: string, createdAt: number, uses: number) => {
      await s.durable.db
        .insertInto('access_passes')
        .values({
          id: `beside-${createdAt}-${uses}-${userId}`,
          tenant_id: tenant.id,
          user_id: userId,
          code_hash: 'x',
          one_time: 0,
          created_at: createdAt,
          expires_at: clock.now() + 3_600_000,
          created_by: createdBy,
          uses,
          last_used_at: null,
          revoked_at: null,
        })
        .execute();
    };

    it('says what a new pass replaced: the earliest of the passes it revoked, and whether any was used', async () => {
      const user = await newUser();
      const first = await s.passes.issue(tenant, user.id, { minutes: 60, oneTime: false }, 'admin');
      expect(first.replaced).toBeUndefined();
      const unused = await s.passes.issue(tenant, user.id, { minutes: 60 }, 'admin');
      expect(unused.replaced).toEqual({ createdAt: first.pass.createdAt, used: false });
      clock.advance(1_000);
      expect(await s.passes.use(tenant.id, user.id, unused.code, {})).toBeDefined();
      await unrevokedBeside(user.id, 'admin', clock.now(), 0);
      const third = await s.passes.issue(tenant, user.id, { minutes: 60 }, 'admin');
      // The earlier one was used, the later one beside it not: the earliest, and used.
      expect(third.replaced).toEqual({ createdAt: unused.pass.createdAt, used: true });
      const other = await newUser();
      await s.passes.issue(tenant, other.id, { minutes: 60 }, 'admin');
      await unrevokedBeside(other.id, 'admin', clock.now() + 1, 1);
      expect((await s.passes.issue(tenant, other.id, { minutes: 60 }, 'admin')).replaced).toEqual({ createdAt: clock.now(), used: true });
    });

    it('revokes only a used pass when asked to, and says the earliest revoked and whether any was used', async () => {
      const user = await newUser();
      const pass = await s.passes.issue(tenant, user.id, { minutes: 60, oneTime: false }, 'admin');
      expect(await s.passes.revoke(tenant.id, user.id, { onlyUsed: true })).toBeUndefined();
      expect((await s.passes.active(tenant.id, user.id))!.id).toBe(pass.pass.id);
      clock.advance(1_000);
      await unrevokedBeside(user.id, 'admin', clock.now(), 1);
      // Only the used one beside it goes; the unused one stays active.
      expect(await s.passes.revoke(tenant.id, user.id, { onlyUsed: true })).toEqual({ createdAt: clock.now(), used: true });
      expect((await s.passes.active(tenant.id, user.id))!.id).toBe(pass.pass.id);
      await unrevokedBeside(user.id, 'admin', clock.now() + 5, 1);
      expect(await s.passes.revoke(tenant.id, user.id)).toEqual({ createdAt: pass.pass.createdAt, used: true });
      expect(await s.passes.active(tenant.id, user.id)).toBeUndefined();
    });

    it("revokes every pass one issuer made that nobody revoked yet, expired ones too, and no one else's", async () => {
      const [a, b, c] = [await newUser(), await newUser(), await newUser()];
      const token = 'admin-token:leaked';
      const usedPass = await s.passes.issue(tenant, a.id, { minutes: 10, oneTime: false }, token);
      expect(await s.passes.use(tenant.id, a.id, usedPass.code, {})).toBeDefined();
      const expiring = await s.passes.issue(tenant, b.id, { minutes: 10 }, token);
      const byPerson = await s.passes.issue(tenant, c.id, { minutes: 60 }, 'user:boss');
      clock.advance(11 * 60_000);
      const live = await s.passes.issue(tenant, c.id, { minutes: 60 }, token);
      // c's pass by the person was replaced by the token's: already revoked, so not the token's to report.
      expect(await s.passes.revokeIssuedBy('another-tenant', token)).toEqual([]);
      const revoked = await s.passes.revokeIssuedBy(tenant.id, token);
      expect(revoked.sort((x, y) => x.createdAt - y.createdAt || x.userId.localeCompare(y.userId))).toEqual(
        [
          { userId: a.id, createdAt: usedPass.pass.createdAt, used: true, expired: true },
          { userId: b.id, createdAt: expiring.pass.createdAt, used: false, expired: true },
          { userId: c.id, createdAt: live.pass.createdAt, used: false, expired: false },
        ].sort((x, y) => x.createdAt - y.createdAt || x.userId.localeCompare(y.userId)),
      );
      expect(await s.passes.revokeIssuedBy(tenant.id, token)).toEqual([]);
      expect(await s.passes.active(tenant.id, c.id)).toBeUndefined();
      expect(byPerson.pass.createdBy).toBe('user:boss');
      const kept = await s.passes.issue(tenant, b.id, { minutes: 60 }, 'user:boss');
      expect(await s.passes.revokeIssuedBy(tenant.id, token)).toEqual([]);
      expect((await s.passes.active(tenant.id, b.id))!.id).toBe(kept.pass.id);
      // A pass expiring this very moment counts as expired.
      const now = await s.passes.issue(tenant, a.id, { minutes: 10 }, 'admin-token:edge');
      clock.advance(10 * 60_000);
      expect(await s.passes.revokeIssuedBy(tenant.id, 'admin-token:edge')).toEqual([
        { userId: a.id, createdAt: now.pass.createdAt, used: false, expired: true },
      ]);
    });

    it('lets a one-time pass in once when two uses race', async () => {
      const user = await newUser();
      const pass = await s.passes.issue(tenant, user.id, { minutes: 60, oneTime: true }, 'admin');
      const meet = new MeetingPoint(2).holdCalls(s.hasher, 'verify');
      try {
        const results = await Promise.all([s.passes.use(tenant.id, user.id, pass.code, {}), s.passes.use(tenant.id, user.id, pass.code, {})]);
        expect(results.filter(Boolean)).toHaveLength(1);
      } finally {
        meet.restore();
      }
    });
    it('takes the shortest and longest lifetimes the policy allows, and one-time as the policy says unless asked', async () => {
      const user = await newUser();
      const { minMinutes, maxMinutes } = tenant.policy.tap;
      expect((await s.passes.issue(tenant, user.id, { minutes: minMinutes }, 'admin')).pass.expiresAt).toBe(clock.now() + minMinutes * 60_000);
      expect((await s.passes.issue(tenant, user.id, { minutes: maxMinutes }, 'admin')).pass.expiresAt).toBe(clock.now() + maxMinutes * 60_000);
      for (const oneTimeDefault of [true, false]) {
        const t = { ...tenant, policy: { ...tenant.policy, tap: { ...tenant.policy.tap, oneTimeDefault } } };
        expect((await s.passes.issue(t, user.id, {}, 'admin')).pass.oneTime, String(oneTimeDefault)).toBe(oneTimeDefault);
        expect((await s.passes.issue(t, user.id, { oneTime: !oneTimeDefault }, 'admin')).pass.oneTime).toBe(!oneTimeDefault);
      }
      // A multi-use pass shows when it was last used.
      const many = await s.passes.issue(tenant, user.id, { oneTime: false }, 'admin');
      await s.passes.use(tenant.id, user.id, many.code, {});
      expect(await s.passes.active(tenant.id, user.id)).toMatchObject({ uses: 1, lastUsedAt: clock.now() });
    });

    it('spends one password hash whether or not there is a pass, so timing does not tell', async () => {
      const user = await newUser();
      const nobody = await newUser();
      const pass = await s.passes.issue(tenant, user.id, { minutes: 60, oneTime: false }, 'admin');
      const hashes = async (work: () => Promise<unknown>) => {
        const before = s.hasher.checksDone;
        await work();
        return s.hasher.checksDone - before;
      };
      for (const typed of ['', 'short', pass.code, 'AAAA-AAAA-AAAA-AAAA']) {
        expect(await hashes(() => s.passes.use(tenant.id, nobody.id, typed, {})), `use, no pass: ${typed}`).toBe(1);
        expect(await hashes(() => s.passes.check(tenant.id, nobody.id, typed, {})), `check, no pass: ${typed}`).toBe(1);
        expect(await hashes(() => s.passes.use(tenant.id, undefined, typed, {})), `use, no user: ${typed}`).toBe(1);
      }
      for (const typed of ['', 'short', `${pass.code}A`]) {
        expect(await hashes(() => s.passes.use(tenant.id, user.id, typed, {})), `use, malformed: ${typed}`).toBe(1);
        expect(await hashes(() => s.passes.check(tenant.id, user.id, typed, {})), `check, malformed: ${typed}`).toBe(1);
      }
      expect(await hashes(() => s.passes.use(tenant.id, user.id, pass.code, {}))).toBe(1);
    });

    it('during the outage fallback, refuses a one-time pass another node is already using, but not a multi-use one', async () => {
      const store = new MemoryEphemeralStore(clock);
      const holds = new SingleUseHolds(() => true, store);
      const passes = new AccessPasses(s.durable.db, clock, s.hasher, holds);
      const user = await newUser();
      const once = await passes.issue(tenant, user.id, { minutes: 60, oneTime: true }, 'admin');
      // Another node took it: its hold is in the shared store, its use not yet in this node's database.
      expect(await new SingleUseHolds(() => true, store).claim(`tap:${once.pass.id}`, 60_000)).toBe(true);
      expect(await passes.use(tenant.id, user.id, once.code, {})).toBeUndefined();
      expect(await passes.active(tenant.id, user.id)).toMatchObject({ uses: 0 });
      const other = await newUser();
      const many = await passes.issue(tenant, other.id, { minutes: 60, oneTime: false }, 'admin');
      await holds.claim(`tap:${many.pass.id}`, 60_000);
      expect(await passes.use(tenant.id, other.id, many.code, {})).toMatchObject({ uses: 1 });
      // Its own one-time use holds the pass for as long as the pass lives.
      const third = await newUser();
      const mine = await passes.issue(tenant, third.id, { minutes: 60, oneTime: true }, 'admin');
      expect(await passes.use(tenant.id, third.id, mine.code, {})).toMatchObject({ uses: 1 });
      clock.advance(59 * 60_000);
      expect(await holds.claim(`tap:${mine.pass.id}`, 1)).toBe(false);
      clock.advance(60_000);
    });
  });

  describe('password changes', () => {
    const PASSWORD = 'the current password 1';
    const NEXT = 'the next password 22';
    const ctx = { ip: '198.51.100.7', userAgent: 'core' };
    /** Runs `meanwhile` inside the next hash the hasher makes (the new password's). */
    const duringNextHash = (meanwhile: () => Promise<unknown>) => {
      const original = s.hasher.hash.bind(s.hasher);
      s.hasher.hash = async (secret: string) => {
        s.hasher.hash = original;
        await meanwhile();
        return original(secret);
      };
    };
    const stored = async (user: User) =>
      s.durable.db.selectFrom('users').select(['password_hash', 'password_changed_at']).where('id', '=', user.id).executeTakeFirstOrThrow();

    it('writes a new password only while the session that asked is live, and dates it', async () => {
      const user = await newUser({ passwordHash: await s.hasher.hash(PASSWORD) } as never);
      const { session } = await s.sessions.create({ tenantId: tenant.id, userId: user.id, scope: 'full', amr: ['pwd', 'otp', 'mfa'] });
      const before = await stored(user);
      duringNextHash(() => s.sessions.revokeAllForUser(tenant.id, user.id));
      expect(await rejection(s.passwords.change(tenant, user, session, PASSWORD, NEXT, ctx))).toMatchObject({ code: 'unauthenticated' });
      expect(await stored(user)).toEqual(before);

      const { session: live } = await s.sessions.create({ tenantId: tenant.id, userId: user.id, scope: 'full', amr: ['pwd', 'otp', 'mfa'] });
      clock.advance(1000);
      await s.passwords.change(tenant, user, live, PASSWORD, NEXT, ctx);
      const after = await stored(user);
      expect(await s.hasher.verify(after.password_hash!, NEXT)).toBe(true);
      expect(Number(after.password_changed_at)).toBe(clock.now());
    });

    it('sets a first password only while the session that asked is live', async () => {
      const user = await newUser();
      const { session } = await s.sessions.create({ tenantId: tenant.id, userId: user.id, scope: 'full', amr: ['tap', 'mfa'] });
      duringNextHash(() => s.sessions.revokeAllForUser(tenant.id, user.id));
      expect(await rejection(s.passwords.setFirst(tenant, user, session, NEXT, ctx))).toMatchObject({ code: 'unauthenticated' });
      expect(await stored(user)).toEqual({ password_hash: null, password_changed_at: null });

      const { session: live } = await s.sessions.create({ tenantId: tenant.id, userId: user.id, scope: 'full', amr: ['tap', 'mfa'] });
      await s.passwords.setFirst(tenant, user, live, NEXT, ctx);
      expect(Number((await stored(user)).password_changed_at)).toBe(clock.now());
    });
  });

  describe('recovery codes', () => {
    const method = () => s.methods.get('recovery-codes')!;

    it('makes ten, each works once, a new set replaces the old, a few sets an hour', async () => {
      const user = await newUser();
      const enrolment = await method().enrol(tenant, user, {} as never);
      const codes = (enrolment.reveal as { codes: string[] }).codes;
      expect(codes).toHaveLength(10);
      for (const code of codes) expect(code).toMatch(/^[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4}$/);
      expect(new Set(codes.map((c) => c.slice(0, 4))).size).toBe(10);
      const credential = (await s.credentials.listForUser(tenant.id, user.id, 'active')).find((c) => c.type === 'recovery-codes')!;
      expect(credential).toMatchObject({ state: 'active', publicData: { count: 10 } });
      expect(await remainingRecoveryCodes(s.durable.db, tenant.id, credential.id)).toBe(10);

      expect(await method().verify([], { code: codes[0]! }, {} as never)).toBeUndefined();
      for (const wrong of ['', 'short', codes[0]!.slice(0, -1) + (codes[0]!.endsWith('0') ? '1' : '0'), `${codes[0]}x`, 'zzzz-zzzz-zzzz']) {
        expect(await method().verify([credential], { code: wrong }, {} as never), wrong).toBeUndefined();
      }
      expect(await method().verify([credential], {}, {} as never)).toBeUndefined();
      const ok = await method().verify([credential], { code: codes[0]!.toUpperCase().replaceAll('-', '') }, {} as never);
      expect(ok).toMatchObject({ credential: { id: credential.id }, amr: ['otp'] });
      expect(await method().verify([credential], { code: codes[0]! }, {} as never)).toBeUndefined();
      expect(await remainingRecoveryCodes(s.durable.db, tenant.id, credential.id)).toBe(9);
      expect((await s.credentials.get(tenant.id, user.id, credential.id))!.lastUsedAt).toBe(clock.now());

      // The same code twice at once: one wins.
      const meet = new MeetingPoint(2).holdCalls(s.hasher, 'verify');
      try {
        const both = await Promise.all([
          method().verify([credential], { code: codes[1]! }, {} as never),
          method().verify([credential], { code: codes[1]! }, {} as never),
        ]);
        expect(both.filter(Boolean)).toHaveLength(1);
      } finally {
        meet.restore();
      }

      for (let i = 0; i < 4; i++) await method().enrol(tenant, user, {} as never);
      expect(await rejection(method().enrol(tenant, user, {} as never))).toMatchObject({ code: 'too-many-requests' });
      const sets = (await s.credentials.listForUser(tenant.id, user.id, 'active')).filter((c) => c.type === 'recovery-codes');
      expect(sets).toHaveLength(1);
      expect(await method().verify(sets, { code: codes[2]! }, {} as never)).toBeUndefined();
      expect(formatRecoveryCode('ABCD1234EFGH')).toBe('abcd-1234-efgh');
    });
    it("limits new sets per user, not one user's sets by another's, and says when to try again", async () => {
      const user = await newUser();
      const other = await newUser();
      for (let i = 0; i < 5; i++) await method().enrol(tenant, user, {} as never);
      const refused = await rejection(method().enrol(tenant, user, {} as never));
      expect(refused).toMatchObject({ code: 'too-many-requests' });
      expect(refused!.retryAfter).toBeGreaterThan(60);
      expect(refused!.retryAfter).toBeLessThanOrEqual(3600);
      expect(((await method().enrol(tenant, other, {} as never)).reveal as { codes: string[] }).codes).toHaveLength(10);
    });

    it('during the outage fallback, refuses a recovery code another node is already using, and holds the one it uses', async () => {
      const store = new MemoryEphemeralStore(clock);
      const holds = new SingleUseHolds(() => true, store);
      const credentials = new Credentials(s.durable.db, clock, holds);
      const outage = createRecoveryCodesMethod({ db: s.durable.db, credentials, hasher: s.hasher, clock, ephemeral: store });
      const user = await newUser();
      const codes = ((await outage.enrol(tenant, user)).reveal as { codes: string[] }).codes;
      const credential = (await credentials.listForUser(tenant.id, user.id, 'active')).find((c) => c.type === 'recovery-codes')!;
      const idOf = async (code: string) =>
        (
          await s.durable.db
            .selectFrom('recovery_codes')
            .select('id')
            .where('credential_id', '=', credential.id)
            .where('lookup', '=', code.slice(0, 4).toUpperCase())
            .executeTakeFirstOrThrow()
        ).id;
      // Another node took the first code: its hold is in the shared store, its use not yet in this node's database.
      expect(await holds.claim(`recovery-code:${await idOf(codes[0]!)}`, 60_000)).toBe(true);
      expect(await outage.verify([credential], { code: codes[0]! })).toBeUndefined();
      expect(await remainingRecoveryCodes(s.durable.db, tenant.id, credential.id)).toBe(10);
      expect(await outage.verify([credential], { code: codes[1]! })).toMatchObject({ credential: { id: credential.id } });
      expect(await holds.claim(`recovery-code:${await idOf(codes[1]!)}`, 60_000)).toBe(false);
    });

    it('spends one password hash for a code that cannot be one, as for one that can', async () => {
      const user = await newUser();
      const codes = ((await method().enrol(tenant, user, {} as never)).reveal as { codes: string[] }).codes;
      const credential = (await s.credentials.listForUser(tenant.id, user.id, 'active')).find((c) => c.type === 'recovery-codes')!;
      for (const typed of ['', 'abc', `${codes[0]}0`, 'zzzz-zzzz-zzz!', '!!!!-aaaa-bbbb', 'aaaa-bbbb-ccc!', codes[0]!]) {
        const before = s.hasher.checksDone;
        await method().verify([credential], { code: typed }, {} as never);
        expect(s.hasher.checksDone - before, typed).toBe(1);
      }
    });
  });

  describe('request authentication', () => {
    const request = (headers: Record<string, string>, cookies: Record<string, string> = {}, method = 'GET') =>
      ({ headers, cookies, method }) as unknown as FastifyRequest;
    const bearer = (token: string, method = 'GET') => request({ authorization: `Bearer ${token}` }, {}, method);
    const session = async (user: User, scope: 'full' | 'register', amr: string[]) =>
      (await s.sessions.create({ tenantId: tenant.id, userId: user.id, scope, amr, ip: '127.0.0.1', userAgent: undefined })).token;

    it('reads a bearer token, else the session cookie', () => {
      expect(bearerToken(request({ authorization: 'Bearer abc' }))).toBe('abc');
      expect(bearerToken(request({ authorization: 'bearer   abc' }))).toBe('abc');
      expect(bearerToken(request({ authorization: 'Basic abc' }))).toBeUndefined();
      expect(bearerToken(request({ authorization: 'Bearer a b' }))).toBeUndefined();
      expect(bearerToken(request({ authorization: 'NotBearer abc' }))).toBeUndefined();
      expect(bearerToken(request({}))).toBeUndefined();
      expect(s.auth.presentedToken(request({}, { sf_session: 'from-cookie' }))).toBe('from-cookie');
      // A malformed Authorization header is not made up for by the cookie.
      expect(s.auth.presentedToken(request({ authorization: 'Basic x' }, { sf_session: 'from-cookie' }))).toBeUndefined();
      expect(s.auth.presentedToken(request({ authorization: 'Bearer t' }, { sf_session: 'from-cookie' }))).toBe('t');
    });

    it('finds the principal only for a live session of an active user of an existing tenant', async () => {
      const user = await newUser();
      const token = await session(user, 'full', ['pwd', 'otp', 'mfa']);
      expect(await s.auth.findPrincipal(request({}))).toBeUndefined();
      expect(await s.auth.findPrincipal(bearer('sfs_nothing'))).toBeUndefined();
      const found = await s.auth.findPrincipal(bearer(token));
      expect(found).toMatchObject({ user: { id: user.id }, tenant: { id: tenant.id }, token, session: { scope: 'full' } });
      expect((await s.auth.requirePrincipal(bearer(token), 'change-password')).user.id).toBe(user.id);
      expect(await rejection(s.auth.requirePrincipal(bearer('sfs_nothing'), 'view-account'))).toMatchObject({ code: 'unauthenticated' });
      const registering = await session(user, 'register', ['pwd']);
      expect(await rejection(s.auth.requirePrincipal(bearer(registering), 'change-password'))).toMatchObject({ code: 'registration-only' });
      expect((await s.auth.requirePrincipal(bearer(registering), 'add-method')).session.scope).toBe('register');
      await s.users.update(tenant.id, user.id, { status: 'disabled' });
      expect(await s.auth.findPrincipal(bearer(token))).toBeUndefined();
      await s.users.update(tenant.id, user.id, { status: 'active' });
      const deps = {
        sessions: s.sessions,
        users: s.users,
        tenants: { findById: async () => undefined },
        adminTokens: s.adminTokens,
        publicUrl: 'http://localhost',
      };
      expect(await new RequestAuth(deps as never).findPrincipal(bearer(token))).toBeUndefined();
    });

    it('lets administer only an administrator with a full session that proved a second factor, recently for a change', async () => {
      const admin = await newUser({ isAdmin: true });
      const plain = await newUser();
      const full = await session(admin, 'full', ['pwd', 'otp', 'mfa']);
      expect(await s.auth.requireAdmin(bearer(full))).toEqual({ tenant: expect.objectContaining({ id: tenant.id }), actor: `user:${admin.id}` });
      expect(await s.auth.requireAdmin(bearer(full, 'POST'))).toMatchObject({ actor: `user:${admin.id}` });
      expect(await rejection(s.auth.requireAdmin(bearer(await session(plain, 'full', ['pwd', 'otp', 'mfa']))))).toMatchObject({ code: 'forbidden' });
      expect(await rejection(s.auth.requireAdmin(bearer(await session(admin, 'register', ['pwd', 'otp', 'mfa']))))).toMatchObject({ code: 'forbidden' });
      expect(await rejection(s.auth.requireAdmin(bearer(await session(admin, 'full', ['pwd']))))).toMatchObject({ code: 'second-factor-required' });
      expect(await rejection(s.auth.requireAdmin(request({})))).toMatchObject({ code: 'unauthenticated' });
      expect(await rejection(s.auth.requireAdmin(bearer('sfs_nothing')))).toMatchObject({ code: 'unauthenticated' });
      clock.advance(11 * 60_000);
      expect(await s.auth.requireAdmin(bearer(full))).toMatchObject({ actor: `user:${admin.id}` });
      expect(await rejection(s.auth.requireAdmin(bearer(full, 'DELETE')))).toMatchObject({ code: 'reauthentication-required' });
    });

    it('takes an admin token for its own tenant, and nothing that merely looks like one', async () => {
      const made = await s.adminTokens.create(tenant.id, 'admin');
      expect(await s.auth.requireAdmin(bearer(made.token, 'POST'))).toEqual({
        tenant: expect.objectContaining({ id: tenant.id }),
        actor: `admin-token:${made.id}`,
      });
      expect(await rejection(s.auth.requireAdmin(bearer('sfa_forged')))).toMatchObject({ code: 'unauthenticated' });
      const deps = {
        sessions: s.sessions,
        users: s.users,
        tenants: { findById: async () => undefined },
        adminTokens: s.adminTokens,
        publicUrl: 'http://localhost',
      };
      expect(await rejection(new RequestAuth(deps as never).requireAdmin(bearer(made.token)))).toMatchObject({ code: 'unauthenticated' });
    });

    it('sets the session cookie http-only and same-site, secure behind https', () => {
      const calls: unknown[][] = [];
      const reply = {
        setCookie: (...args: unknown[]) => calls.push(['set', ...args]),
        clearCookie: (...args: unknown[]) => calls.push(['clear', ...args]),
      } as unknown as FastifyReply;
      const expires = new Date(clock.now() + 1000).toISOString();
      for (const publicUrl of ['http://localhost', 'https://id.example.test']) {
        const auth = new RequestAuth({ sessions: s.sessions, users: s.users, tenants: s.tenants, adminTokens: s.adminTokens, publicUrl });
        auth.setSessionCookie(reply, 'tok', expires);
        auth.clearSessionCookie(reply);
      }
      expect(calls[0]).toEqual(['set', 'sf_session', 'tok', { httpOnly: true, sameSite: 'lax', secure: false, path: '/', expires: new Date(expires) }]);
      expect(calls[1]).toEqual(['clear', 'sf_session', { path: '/', httpOnly: true, sameSite: 'lax', secure: false }]);
      expect(calls[2]).toMatchObject(['set', expect.any(String), 'tok', { secure: true }]);
      expect(calls[3]).toMatchObject(['clear', expect.any(String), { secure: true }]);
    });

    it('keeps a registration session from administering whatever its factors say (the session type is Session)', () => {
      const principal = (scope: Session['scope'], isAdmin: boolean, amr: string[]) => ({
        session: { scope, amr, authTime: clock.now() } as Session,
        user: { isAdmin } as User,
        tenant,
        token: 't',
      });
      expect(codeOf(() => s.auth.requireAdministrator(principal('register', true, ['mfa']), false))).toBe('forbidden');
      expect(codeOf(() => s.auth.requireAdministrator(principal('full', false, ['mfa']), false))).toBe('forbidden');
      expect(codeOf(() => s.auth.requireAdministrator(principal('full', true, ['pwd']), false))).toBe('second-factor-required');
      expect(codeOf(() => s.auth.requireAdministrator(principal('full', true, ['mfa']), true))).toBeUndefined();
    });
  });
});
