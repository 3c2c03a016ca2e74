import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.ts';
import type { Services } from '../../src/server/services.ts';
import type { Tenant } from '../../src/directory/tenants.ts';
import type { User } from '../../src/directory/users.ts';
import { AppError } from '../../src/errors/app-error.ts';
import { RememberedDevices } from '../../src/sessions/remembered-devices.ts';
import { FLOW_LIFETIME_MS, FLOW_MAX_ATTEMPTS, flowKey } from '../../src/signin/flow.ts';
import type { RequestContext } from '../../src/signin/signin-service.ts';
import { createUser, freshSources, rejection, startCoreServices, withPolicy, type CoreServices, liveSessionToken } from './core-services.ts';
import { MeetingPoint } from '../helpers/meeting-point.ts';
import { totpCode } from '../helpers/totp.ts';

/**
 * The sign-in state machine (signin/signin-service.ts) at the level of its own
 * promises: every answer of the password step, the second factor's commit
 * point, the flow's attempts and scoping, the limits it charges, fast enough
 * (no HTTP, cheap Argon2id, SQLite) for `npm run mutate` to run for each mutant.
 * The HTTP suites (test/integration/signin-flow.test.ts, races.test.ts) prove
 * the same from outside.
 */
const PASSWORD = 'correct horse battery staple';
const MINUTE = 60_000;

describe('the sign-in state machine on SQLite', () => {
  let core: CoreServices;
  let s: Services;
  let tenant: Tenant;
  let otherTenant: Tenant;
  const clock = new ManualClock(Date.UTC(2026, 10, 30, 9));
  const ctx = freshSources('198.18', 'core-test');

  const newUser = async (extra: Partial<{ isAdmin: boolean; breakGlass: boolean; withPassword: boolean }> = {}, t: Tenant = tenant): Promise<User> => {
    const { withPassword = true, ...rest } = extra;
    return createUser(s, t, { ...(withPassword ? { passwordHash: await s.hasher.hash(PASSWORD) } : {}), ...rest });
  };
  /** An authenticator app, set up and confirmed; returns its secret. */
  const addTotp = async (user: User, t: Tenant = tenant): Promise<{ id: string; secret: string }> => {
    const totp = s.methods.get('totp')!;
    const { credential, reveal } = await totp.enrol(t, user, { label: 'Phone' } as never);
    const secret = (reveal as { secret: string }).secret;
    expect(await totp.confirm!(credential, totpCode(secret, clock.now()), 'any')).toBe(true);
    // The confirming code's step is spent: the next sign-in uses a later one.
    clock.advance(30_000);
    return { id: credential.id, secret };
  };
  const wrongCode = (secret: string) => {
    const right = totpCode(secret, clock.now());
    // Not the current code nor its neighbours (all three are accepted).
    for (const c of ['000000', '111111', '222222', '333333']) {
      if (![right, totpCode(secret, clock.now() - 30_000), totpCode(secret, clock.now() + 30_000)].includes(c)) return c;
    }
    throw new Error('unreachable');
  };
  const factorFlow = async (user: User, t: Tenant = tenant, c: RequestContext = ctx()) => {
    const step = await s.signin.passwordStep(t, user.username, PASSWORD, c);
    expect(step.kind).toBe('factor');
    return (step as { flow: string }).flow;
  };
  const eventsOf = async (user: User, t: Tenant = tenant) =>
    (await s.events.listForUser(t.id, user.id, 50)).items.map((e) => ({ step: e.step, outcome: e.outcome, reason: e.reason, method: e.method }));
  const auditOf = async (user: User, action: string, t: Tenant = tenant) => s.audit.list(t.id, { limit: 50, userId: user.id, action });

  beforeAll(async () => {
    core = await startCoreServices(clock);
    s = core.services;
    tenant = await s.tenants.create('signin');
    otherTenant = await s.tenants.create('signin-other');
  });
  afterAll(() => core?.stop());

  describe('the password step', () => {
    it('answers a wrong password, an unknown user and a user without a password alike, and records the failure', async () => {
      const user = await newUser();
      const noPassword = await newUser({ withPassword: false });
      for (const [name, password] of [
        [user.username, 'wrong'],
        ['nobody-here', PASSWORD],
        [noPassword.username, PASSWORD],
        [user.username, ''],
      ] as const) {
        expect(await rejection(s.signin.passwordStep(tenant, name, password, ctx())), name).toMatchObject({ code: 'invalid-credentials' });
      }
      expect(await eventsOf(user)).toEqual([
        { step: 'password', outcome: 'failure', reason: 'invalid_credentials', method: null },
        { step: 'password', outcome: 'failure', reason: 'invalid_credentials', method: null },
      ]);
      // The user's password in another tenant is no password here.
      expect(await rejection(s.signin.passwordStep(otherTenant, user.username, PASSWORD, ctx()))).toMatchObject({ code: 'invalid-credentials' });
    });

    it('refuses a disabled account only after its password proved right', async () => {
      const user = await newUser();
      expect(await s.users.update(tenant.id, user.id, { status: 'disabled' })).toBe(true);
      expect(await rejection(s.signin.passwordStep(tenant, user.username, 'wrong', ctx()))).toMatchObject({ code: 'invalid-credentials' });
      expect(await rejection(s.signin.passwordStep(tenant, user.username, PASSWORD, ctx()))).toMatchObject({ code: 'account-disabled' });
      expect((await eventsOf(user))[0]).toEqual({ step: 'password', outcome: 'failure', reason: 'account_disabled', method: null });
    });

    it('finds the account whatever the case and width of the name typed', async () => {
      const user = await newUser();
      const step = await s.signin.passwordStep(withPolicy(tenant, { mfaRequired: false }), ` ${user.username.toUpperCase()} `, PASSWORD, ctx());
      expect(step).toMatchObject({ kind: 'done', session: { userId: user.id } });
    });

    it('gives a user with no method a registration session where a second factor is required, a full one where not', async () => {
      const user = await newUser();
      const required = await s.signin.passwordStep(tenant, user.username, PASSWORD, ctx());
      expect(required).toMatchObject({ kind: 'register', methods: [], session: { userId: user.id } });
      const registration = await s.sessions.authenticate((required as { session: { token: string } }).session.token);
      expect(registration).toMatchObject({ scope: 'register', amr: ['pwd'], userId: user.id, tenantId: tenant.id });

      // The app asking for a second factor counts as the tenant requiring one.
      const asked = await s.signin.passwordStep(withPolicy(tenant, { mfaRequired: false }), user.username, PASSWORD, ctx({ requireMfa: true }));
      expect(asked.kind).toBe('register');

      const optional = await s.signin.passwordStep(withPolicy(tenant, { mfaRequired: false }), user.username, PASSWORD, ctx());
      expect(optional).toMatchObject({ kind: 'done', methods: [], session: { userId: user.id } });
      const full = await s.sessions.authenticate((optional as { session: { token: string } }).session.token);
      expect(full).toMatchObject({ scope: 'full', amr: ['pwd'] });
      expect(await eventsOf(user)).toEqual([
        { step: 'password', outcome: 'success', reason: 'ok', method: 'password' },
        { step: 'password', outcome: 'success', reason: 'registration_required', method: 'password' },
        { step: 'password', outcome: 'success', reason: 'registration_required', method: 'password' },
      ]);

      // An account that must register does so even where the tenant does not require a second factor.
      await s.users.update(tenant.id, user.id, { mustRegister: true });
      const must = await s.signin.passwordStep(withPolicy(tenant, { mfaRequired: false }), user.username, PASSWORD, ctx());
      expect(must.kind).toBe('register');
    });

    it('asks a user with a method for it, in a flow that carries the password, and never lets the password alone in', async () => {
      const user = await newUser();
      const { id } = await addTotp(user);
      for (const t of [tenant, withPolicy(tenant, { mfaRequired: false })]) {
        const step = await s.signin.passwordStep(t, user.username, PASSWORD, ctx());
        expect(step).toMatchObject({
          kind: 'factor',
          flow: expect.any(String),
          methods: [{ id, type: 'totp', available: true, default: expect.any(Boolean) }],
        });
        const flow = await s.ephemeral.get(flowKey({ id: (step as { flow: string }).flow }));
        expect(flow).toMatchObject({ kind: 'second-factor', tenantId: t.id, userId: user.id, username: user.username, amr: ['pwd'] });
        expect((flow as { expiresAt: number }).expiresAt).toBe(clock.now() + FLOW_LIFETIME_MS);
      }
      expect((await eventsOf(user))[0]).toEqual({ step: 'password', outcome: 'success', reason: 'factor_required', method: 'password' });
    });

    it('lets a remembered browser stand in for the second factor, unless the app asks for one', async () => {
      const user = await newUser();
      await addTotp(user);
      const remembering = withPolicy(tenant, { rememberedDeviceDays: 30 });
      const devices = new RememberedDevices(s.durable.db, clock);
      const remembered = await devices.remember(remembering, user.id, 'core-test', await liveSessionToken(s, tenant.id, user.id));
      expect(remembered?.token).toEqual(expect.any(String));

      const step = await s.signin.passwordStep(remembering, user.username, PASSWORD, ctx({ rememberedDevice: remembered!.token }));
      expect(step).toMatchObject({ kind: 'done', session: { userId: user.id } });
      expect(await s.sessions.authenticate((step as { session: { token: string } }).session.token)).toMatchObject({ scope: 'full', amr: ['pwd'] });
      expect((await eventsOf(user))[0]).toMatchObject({ outcome: 'success', reason: 'remembered_device' });

      expect((await s.signin.passwordStep(remembering, user.username, PASSWORD, ctx({ rememberedDevice: remembered!.token, requireMfa: true }))).kind).toBe(
        'factor',
      );
      expect((await s.signin.passwordStep(remembering, user.username, PASSWORD, ctx({ rememberedDevice: 'sfr_not-a-token' }))).kind).toBe('factor');
      // Another user's remembered browser is not this one's.
      const other = await newUser();
      await addTotp(other);
      expect((await s.signin.passwordStep(remembering, other.username, PASSWORD, ctx({ rememberedDevice: remembered!.token }))).kind).toBe('factor');
    });

    it('gives a user whose only method the tenant no longer allows no way in on the password alone: a pass, as the fail mode says', async () => {
      // Found (twenty-fifth round): such a user was sent to register (where MFA is optional, signed in) on the
      // password alone; their method is still theirs, only unusable.
      const user = await newUser();
      const app = await addTotp(user);
      const noTotp = withPolicy(tenant, { allowedMethods: tenant.policy.allowedMethods.filter((m) => m !== 'totp') });
      const unusable = [expect.objectContaining({ type: 'totp', available: false })];
      expect(await s.signin.passwordStep(noTotp, user.username, PASSWORD, ctx())).toEqual({ kind: 'no-way-in', methods: unusable, retryAfter: 60 });
      const optional = withPolicy(noTotp, { mfaRequired: false });
      expect(await s.signin.passwordStep(optional, user.username, PASSWORD, ctx())).toMatchObject({ kind: 'no-way-in' });
      const tapOnly = await s.signin.passwordStep(withPolicy(optional, { failMode: 'tap-only' }), user.username, PASSWORD, ctx());
      expect(tapOnly).toMatchObject({ kind: 'factor', methods: [...unusable, expect.objectContaining({ type: 'tap' })] });
      // And the method is never verified while the policy leaves it out.
      const flow = (tapOnly as { flow: string }).flow;
      const code = totpCode(app.secret, clock.now());
      expect(await rejection(s.signin.verify(withPolicy(optional, { failMode: 'tap-only' }), flow, app.id, { code }, ctx()))).toMatchObject({
        code: 'invalid-request',
      });
    });
  });

  describe('the password step, more', () => {
    /** A phone the server cannot text now (no SMS provider in these tests): a method that exists but cannot be used. */
    const addUnusableSms = async (user: User) => {
      const credential = await s.credentials.insert({ tenantId: tenant.id, userId: user.id, type: 'sms', label: 'Phone', state: 'active', activation: 'any' });
      expect(s.methods.available('sms')).toBe(false);
      return credential;
    };

    it('answers no-way-in when none of the methods can be used now, and offers a pass where the tenant fails to TAP', async () => {
      const user = await newUser();
      const sms = await addUnusableSms(user);
      const step = await s.signin.passwordStep(tenant, user.username, PASSWORD, ctx());
      expect(step).toEqual({ kind: 'no-way-in', methods: [expect.objectContaining({ id: sms.id, available: false })], retryAfter: 60 });
      expect((await eventsOf(user))[0]).toEqual({ step: 'password', outcome: 'failure', reason: 'no_usable_method', method: 'password' });
      const tapOnly = await s.signin.passwordStep(withPolicy(tenant, { failMode: 'tap-only' }), user.username, PASSWORD, ctx());
      expect(tapOnly).toMatchObject({
        kind: 'factor',
        methods: [
          { id: sms.id, available: false },
          { id: 'tap', type: 'tap', available: true, default: false },
        ],
      });
    });

    it('asks a user whose only way in is a pass for it as the second factor, and lets them in where none is required', async () => {
      const user = await newUser();
      const { code } = await s.passes.issue(tenant, user.id, { oneTime: true }, 'admin');
      const step = await s.signin.passwordStep(tenant, user.username, PASSWORD, ctx());
      expect(step).toMatchObject({ kind: 'factor', methods: [{ id: 'tap', type: 'tap', label: expect.any(String), available: true, default: false }] });
      const done = await s.signin.verify(tenant, (step as { flow: string }).flow, 'tap', { code }, ctx());
      expect(await s.sessions.authenticate(done.session.token)).toMatchObject({ scope: 'full', amr: ['pwd', 'tap', 'mfa'] });

      const relaxed = await newUser();
      await s.passes.issue(tenant, relaxed.id, { oneTime: true }, 'admin');
      expect(await s.signin.passwordStep(withPolicy(tenant, { mfaRequired: false }), relaxed.username, PASSWORD, ctx())).toMatchObject({
        kind: 'done',
        methods: [{ type: 'tap' }],
      });
      await s.users.update(tenant.id, relaxed.id, { mustRegister: true });
      expect((await s.signin.passwordStep(withPolicy(tenant, { mfaRequired: false }), relaxed.username, PASSWORD, ctx())).kind).toBe('factor');
    });

    it('counts guesses at one account from one source by the name as normalised, and restarts the count on success', async () => {
      const user = await newUser();
      const one = ctx();
      const spellings = [user.username, user.username.toUpperCase(), ` ${user.username}`, `${user.username} `];
      const outcomes: string[] = [];
      for (let i = 0; i < 9; i++) outcomes.push((await rejection(s.signin.passwordStep(tenant, spellings[i % 4]!, 'wrong', one)))!.code);
      expect(outcomes).toEqual(Array(9).fill('invalid-credentials'));
      expect((await s.signin.passwordStep(tenant, user.username, PASSWORD, one)).kind).toBe('register');
      // The success restarted the count: ten more guesses before the source is held.
      for (let i = 0; i < 10; i++) outcomes.push((await rejection(s.signin.passwordStep(tenant, spellings[i % 4]!, 'wrong', one)))!.code);
      expect(outcomes).toEqual(Array(19).fill('invalid-credentials'));
      expect(await rejection(s.signin.passwordStep(tenant, user.username.toUpperCase(), PASSWORD, one))).toMatchObject({ code: 'too-many-requests' });
    });

    it('audits a break-glass account on every way in: registration, a remembered browser, a pass', async () => {
      const user = await newUser({ breakGlass: true });
      expect((await s.signin.passwordStep(tenant, user.username, PASSWORD, ctx())).kind).toBe('register');
      expect((await auditOf(user, 'break-glass.signin')).map((e) => e.details)).toEqual([{ username: user.username, method: 'password' }]);
      const { code } = await s.passes.issue(tenant, user.id, { oneTime: true }, 'admin');
      expect((await s.signin.tapStep(tenant, user.username, code, ctx())).kind).toBe('register');
      expect((await auditOf(user, 'break-glass.signin'))[0]!.details).toEqual({ username: user.username, method: 'tap' });
      await addTotp(user);
      const remembering = withPolicy(tenant, { rememberedDeviceDays: 30 });
      const remembered = await new RememberedDevices(s.durable.db, clock).remember(
        remembering,
        user.id,
        'core-test',
        await liveSessionToken(s, tenant.id, user.id),
      );
      expect((await s.signin.passwordStep(remembering, user.username, PASSWORD, ctx({ rememberedDevice: remembered!.token }))).kind).toBe('done');
      expect(await auditOf(user, 'break-glass.signin')).toHaveLength(3);
    });
  });

  describe('the second factor', () => {
    it('signs in with the right code, once: the flow is taken, the session full with every factor proved', async () => {
      const user = await newUser();
      const { id, secret } = await addTotp(user);
      const flow = await factorFlow(user);
      expect(await s.signin.flowMethods(tenant, { id: flow })).toEqual([expect.objectContaining({ id, type: 'totp' })]);
      const code = totpCode(secret, clock.now());
      const done = await s.signin.verify(tenant, flow, 'totp', { code: `${code.slice(0, 3)} ${code.slice(3)}` }, ctx());
      expect(done).toMatchObject({ kind: 'done', methods: [], session: { userId: user.id } });
      expect(done.remembered).toBeUndefined();
      expect(await s.sessions.authenticate(done.session.token)).toMatchObject({ scope: 'full', amr: ['pwd', 'otp', 'mfa'], userId: user.id });
      expect(await s.ephemeral.get(flowKey({ id: flow }))).toBeUndefined();
      expect(await rejection(s.signin.verify(tenant, flow, 'totp', { code: totpCode(secret, clock.now() + 30_000) }, ctx()))).toMatchObject({
        code: 'flow-not-found',
      });
      expect((await eventsOf(user))[0]).toEqual({ step: 'second-factor', outcome: 'success', reason: 'ok', method: 'totp' });
    });

    it('charges an answer without a code as a wrong one, not as a malformed one (and does not break on it)', async () => {
      const user = await newUser();
      await addTotp(user);
      const flow = await factorFlow(user);
      expect(await rejection(s.signin.verify(tenant, flow, 'totp', {}, ctx()))).toMatchObject({
        code: 'invalid-code',
        extra: { attemptsLeft: FLOW_MAX_ATTEMPTS - 1 },
      });
    });

    it('puts the flow back when the session cannot be written (the database went away at that moment): the retry finishes the sign-in', async () => {
      const user = await newUser();
      const { secret } = await addTotp(user);
      const flow = await factorFlow(user);
      const create = s.sessions.create.bind(s.sessions);
      s.sessions.create = async () => {
        throw new AppError('unavailable', 'the database went away');
      };
      try {
        expect(await rejection(s.signin.verify(tenant, flow, 'totp', { code: totpCode(secret, clock.now()) }, ctx()))).toMatchObject({ code: 'unavailable' });
      } finally {
        s.sessions.create = create;
      }
      // The code just used is spent; the next one finishes the same flow.
      clock.advance(30_000);
      const done = await s.signin.verify(tenant, flow, 'totp', { code: totpCode(secret, clock.now()) }, ctx());
      expect(done).toMatchObject({ kind: 'done', session: { userId: user.id } });
      expect(await s.ephemeral.get(flowKey({ id: flow }))).toBeUndefined();
    });

    it('names the method by credential id as well as by type, and nothing else', async () => {
      const user = await newUser();
      const { id, secret } = await addTotp(user);
      const flow = await factorFlow(user);
      for (const ref of ['sms', 'no-such-method', 'tap']) {
        expect(await rejection(s.signin.verify(tenant, flow, ref, { code: '123456' }, ctx())), ref).toMatchObject({
          code: 'invalid-request',
          detail: "that method is not one of this sign-in's methods",
          extra: { methods: [expect.objectContaining({ id })] },
        });
      }
      const done = await s.signin.verify(tenant, flow, id, { code: totpCode(secret, clock.now()) }, ctx());
      expect(done.session.userId).toBe(user.id);
      // A method the tenant no longer allows cannot be used in a flow opened before.
      const later = await factorFlow(user);
      clock.advance(30_000);
      const noTotp = withPolicy(tenant, { allowedMethods: tenant.policy.allowedMethods.filter((m) => m !== 'totp') });
      expect(await rejection(s.signin.verify(noTotp, later, id, { code: totpCode(secret, clock.now()) }, ctx()))).toMatchObject({ code: 'invalid-request' });
    });

    it('never verifies with a method whose set-up was never finished', async () => {
      const user = await newUser();
      await addTotp(user);
      const totp = s.methods.get('totp')!;
      const { credential, reveal } = await totp.enrol(tenant, user, { label: 'Unfinished' } as never);
      expect(credential.state).toBe('pending');
      const flow = await factorFlow(user);
      expect(
        await rejection(s.signin.verify(tenant, flow, credential.id, { code: totpCode((reveal as { secret: string }).secret, clock.now()) }, ctx())),
      ).toMatchObject({ code: 'invalid-request' });
    });

    it('counts wrong codes per flow: attempts left go down, and the last one ends the flow', async () => {
      const user = await newUser();
      const { secret } = await addTotp(user);
      const flow = await factorFlow(user);
      for (let left = FLOW_MAX_ATTEMPTS - 1; left >= 0; left--) {
        const wrong = await rejection(s.signin.verify(tenant, flow, 'totp', { code: wrongCode(secret) }, ctx()));
        expect(wrong, String(left)).toMatchObject({ code: 'invalid-code', extra: { attemptsLeft: left } });
        if (left === 0) expect(wrong!.detail).toMatch(/start the sign-in again/);
        else expect(wrong!.detail).toBeUndefined();
      }
      expect(await rejection(s.signin.verify(tenant, flow, 'totp', { code: totpCode(secret, clock.now()) }, ctx()))).toMatchObject({ code: 'flow-not-found' });
      expect((await eventsOf(user)).filter((e) => e.reason === 'invalid_code')).toHaveLength(FLOW_MAX_ATTEMPTS);
      expect((await eventsOf(user))[0]).toEqual({ step: 'second-factor', outcome: 'failure', reason: 'invalid_code', method: 'totp' });
    });

    it('refuses a malformed code before the limits, at no cost, and tells the attempts left', async () => {
      const user = await newUser();
      const { secret } = await addTotp(user);
      const flow = await factorFlow(user);
      await rejection(s.signin.verify(tenant, flow, 'totp', { code: wrongCode(secret) }, ctx()));
      for (const code of ['12345', 'abcdef', '1234567']) {
        expect(await rejection(s.signin.verify(tenant, flow, 'totp', { code }, ctx())), code).toMatchObject({
          code: 'malformed-code',
          extra: { method: 'totp', attemptsLeft: FLOW_MAX_ATTEMPTS - 1 },
        });
      }
      expect(await rejection(s.signin.verify(tenant, flow, 'totp', { code: wrongCode(secret) }, ctx()))).toMatchObject({
        extra: { attemptsLeft: FLOW_MAX_ATTEMPTS - 2 },
      });
      expect((await s.signin.verify(tenant, flow, 'totp', { code: totpCode(secret, clock.now()) }, ctx())).session.userId).toBe(user.id);
    });

    it('answers the code just used with code-already-used, charging nothing', async () => {
      const user = await newUser();
      const { secret } = await addTotp(user);
      const used = totpCode(secret, clock.now());
      await s.signin.verify(tenant, await factorFlow(user), 'totp', { code: used }, ctx());
      const flow = await factorFlow(user);
      const again = await rejection(s.signin.verify(tenant, flow, 'totp', { code: used }, ctx()));
      expect(again).toMatchObject({ code: 'code-already-used', extra: { attemptsLeft: FLOW_MAX_ATTEMPTS } });
      expect((again!.extra as { nextInSeconds: number }).nextInSeconds).toBeGreaterThan(0);
      expect((again!.extra as { nextInSeconds: number }).nextInSeconds).toBeLessThanOrEqual(30);
    });

    it('gives back the limits a code just used took: ten of them from one source do not hold it', async () => {
      const user = await newUser();
      const { secret } = await addTotp(user);
      const one = ctx();
      const used = totpCode(secret, clock.now());
      await s.signin.verify(tenant, await factorFlow(user), 'totp', { code: used }, one);
      for (let i = 0; i < 12; i++) {
        expect(await rejection(s.signin.verify(tenant, await factorFlow(user), 'totp', { code: used }, one)), String(i)).toMatchObject({
          code: 'code-already-used',
        });
      }
      clock.advance(30_000);
      expect((await s.signin.verify(tenant, await factorFlow(user), 'totp', { code: totpCode(secret, clock.now()) }, one)).session.userId).toBe(user.id);
    });

    it("counts an app's wrong codes against the app as their source, wherever its requests come from", async () => {
      const user = await newUser();
      const { secret } = await addTotp(user);
      const outcomes: string[] = [];
      for (let i = 0; i < 3; i++) {
        const tx = await s.signin.startAppTransaction(tenant, 'app-busy', user);
        for (let j = 0; j < 4; j++) {
          outcomes.push((await rejection(s.signin.verifyForApp(tenant, { id: tx, appId: 'app-busy' }, 'totp', { code: wrongCode(secret) }, ctx())))!.code);
        }
      }
      // Ten per account and source: the app is one source, though every request came from a new address.
      expect(outcomes).toEqual([...Array(10).fill('invalid-code'), 'too-many-requests', 'too-many-requests']);
      // Another app is another source.
      const other = await s.signin.startAppTransaction(tenant, 'app-other', user);
      expect(await rejection(s.signin.verifyForApp(tenant, { id: other, appId: 'app-other' }, 'totp', { code: wrongCode(secret) }, ctx()))).toMatchObject({
        code: 'invalid-code',
      });
      // The user's own browser is another source.
      const flow = await factorFlow(user);
      expect((await s.signin.verify(tenant, flow, 'totp', { code: totpCode(secret, clock.now()) }, ctx())).session.userId).toBe(user.id);
    });

    it('gives a session to only one of two right answers at once', async () => {
      const user = await newUser();
      const { secret } = await addTotp(user);
      const flow = await factorFlow(user);
      const code = totpCode(secret, clock.now());
      const next = totpCode(secret, clock.now() + 30_000);
      // Both pass the method's check (two different valid codes), then race for the flow.
      const meet = new MeetingPoint(2).holdCalls(s.ephemeral, 'take');
      // One that fails before it reaches the take lets the other go on, so a break fails here rather than hangs.
      const racer = (c: string) => rejection(s.signin.verify(tenant, flow, 'totp', { code: c }, ctx())).finally(() => meet.met === 0 && void meet.arrive());
      try {
        const both = await Promise.all([racer(code), racer(next)]);
        expect(both.filter((r) => r === undefined)).toHaveLength(1);
        expect(both.filter((r) => r !== undefined)).toEqual([expect.objectContaining({ code: 'flow-not-found' })]);
      } finally {
        meet.restore();
      }
    });

    it('knows no flow of another tenant, an expired one, or one begun before all sessions were ended', async () => {
      const user = await newUser();
      const { secret } = await addTotp(user);
      const flow = await factorFlow(user);
      expect(await rejection(s.signin.verify(otherTenant, flow, 'totp', { code: totpCode(secret, clock.now()) }, ctx()))).toMatchObject({
        code: 'flow-not-found',
      });
      expect(await rejection(s.signin.flowMethods(otherTenant, { id: flow }))).toMatchObject({ code: 'flow-not-found' });
      // An app cannot name a browser's flow.
      expect(await rejection(s.signin.appTransactionUser(tenant, { id: flow, appId: 'app-1' }))).toMatchObject({ code: 'flow-not-found' });

      const expiring = await factorFlow(user);
      clock.advance(FLOW_LIFETIME_MS - 1);
      expect(await s.signin.flowMethods(tenant, { id: expiring })).toHaveLength(1);
      // The store keeps the record a moment longer than the flow lives: the flow's own expiry decides.
      await s.ephemeral.set(flowKey({ id: expiring }), await s.ephemeral.get(flowKey({ id: expiring })), 60_000);
      clock.advance(1);
      expect(await rejection(s.signin.flowMethods(tenant, { id: expiring }))).toMatchObject({ code: 'flow-not-found' });

      // Ended in the same millisecond as the flow began: the flow is gone too.
      const before = await factorFlow(user);
      await s.sessions.revokeAllForUser(tenant.id, user.id);
      expect(await rejection(s.signin.verify(tenant, before, 'totp', { code: totpCode(secret, clock.now()) }, ctx()))).toMatchObject({
        code: 'flow-not-found',
      });
      // Whatever else is wrong with the answer, and however slow the store that knows the flow is over: that is
      // what it is told, and it learns none of the user's methods (the credentials are read meanwhile).
      const get = s.ephemeral.get.bind(s.ephemeral);
      s.ephemeral.get = async (key) => {
        if (key.startsWith('flows-ended:')) await new Promise((r) => setTimeout(r, 20));
        return get(key);
      };
      try {
        const refused = await rejection(s.signin.verify(tenant, before, 'sms', { code: '123456' }, ctx()));
        expect(refused).toMatchObject({ code: 'flow-not-found' });
        expect(JSON.stringify(refused)).not.toContain('totp');
      } finally {
        s.ephemeral.get = get;
      }
      clock.advance(1);
      const after = await factorFlow(user);
      expect((await s.signin.verify(tenant, after, 'totp', { code: totpCode(secret, clock.now()) }, ctx())).session.userId).toBe(user.id);
    });

    it('ends the flow when the methods are removed while it is open', async () => {
      const user = await newUser();
      const { id } = await addTotp(user);
      const flow = await factorFlow(user);
      const { session } = await s.sessions.create({ tenantId: tenant.id, userId: user.id, scope: 'full', amr: ['pwd', 'otp', 'mfa'], ip: '203.0.113.9' });
      // The last method can go only where no second factor is required.
      await s.management.remove(withPolicy(tenant, { mfaRequired: false }), user, session, id);
      expect(await s.credentials.listForUser(tenant.id, user.id, 'active')).toEqual([]);
      expect(await rejection(s.signin.flowMethods(tenant, { id: flow }))).toMatchObject({ code: 'flow-not-found' });
    });

    it('remembers the browser when asked, where the policy allows', async () => {
      const user = await newUser();
      const { secret } = await addTotp(user);
      const remembering = withPolicy(tenant, { rememberedDeviceDays: 30 });
      const done = await s.signin.verify(
        remembering,
        await factorFlow(user, remembering),
        'totp',
        { code: totpCode(secret, clock.now()) },
        ctx({ rememberDevice: true }),
      );
      expect(done.remembered?.token).toEqual(expect.any(String));
      expect(await new RememberedDevices(s.durable.db, clock).recognises(remembering, user.id, done.remembered!.token)).toBe(true);
      clock.advance(30_000);
      const plain = await s.signin.verify(remembering, await factorFlow(user, remembering), 'totp', { code: totpCode(secret, clock.now()) }, ctx());
      expect(plain.remembered).toBeUndefined();
    });
  });

  describe('limits', () => {
    it('holds the account after its second-factor failures across many new flows, whatever the source', async () => {
      const user = await newUser();
      const { secret } = await addTotp(user);
      const strict = withPolicy(tenant, { lockout: { accountFailures: 10, blockMinutes: 5 } });
      const outcomes: string[] = [];
      for (let i = 0; i < 6 && !outcomes.includes('too-many-requests'); i++) {
        const flow = await factorFlow(user, strict);
        for (let j = 0; j < 3; j++) outcomes.push((await rejection(s.signin.verify(strict, flow, 'totp', { code: wrongCode(secret) }, ctx())))!.code);
      }
      expect(outcomes).toContain('too-many-requests');
      const charged = outcomes.filter((o) => o === 'invalid-code').length;
      expect(charged).toBeLessThanOrEqual(10);
      expect(charged).toBeGreaterThanOrEqual(5);
      // The right code does not get through the hold either, from a new source.
      const flow = await factorFlow(user, strict);
      expect(await rejection(s.signin.verify(strict, flow, 'totp', { code: totpCode(secret, clock.now()) }, ctx()))).toMatchObject({
        code: 'too-many-requests',
      });
      // The password count is apart: the password still opens a flow.
      expect((await s.signin.passwordStep(strict, user.username, PASSWORD, ctx())).kind).toBe('factor');
    });

    it("holds an account after its password failures with the tenant's lockout, and no other account", async () => {
      const user = await newUser();
      const strict = withPolicy(tenant, { mfaRequired: false, lockout: { accountFailures: 10, blockMinutes: 5 } });
      const outcomes: string[] = [];
      for (let i = 0; i < 12; i++) outcomes.push((await rejection(s.signin.passwordStep(strict, user.username, 'wrong', ctx())))!.code);
      expect(outcomes.slice(0, 5).every((o) => o === 'invalid-credentials')).toBe(true);
      expect(outcomes.at(-1)).toBe('too-many-requests');
      const held = await rejection(s.signin.passwordStep(strict, user.username, PASSWORD, ctx()));
      expect(held).toMatchObject({ code: 'too-many-requests' });
      // Strangers' part of the budget holds for a day, whatever the tenant's block for familiar parts.
      expect(held!.retryAfter).toBeGreaterThan(23 * 3600);
      // Another account is not held.
      const other = await newUser();
      expect((await s.signin.passwordStep(strict, other.username, PASSWORD, ctx())).kind).toBe('done');
    });

    it('lets a browser that holds the account mark in while strangers have spent the account budget', async () => {
      const user = await newUser();
      const strict = withPolicy(tenant, { mfaRequired: false, lockout: { accountFailures: 10, blockMinutes: 5 } });
      for (let i = 0; i < 12; i++) await rejection(s.signin.passwordStep(strict, user.username, 'wrong', ctx()));
      expect(await rejection(s.signin.passwordStep(strict, user.username, PASSWORD, ctx()))).toMatchObject({ code: 'too-many-requests' });
      const mark = s.knownBrowsers.issue(tenant.id, user.id).token;
      expect((await s.signin.passwordStep(strict, user.username, PASSWORD, ctx({ knownBrowser: mark }))).kind).toBe('done');
      // Another account's mark is no mark for this one.
      const other = await newUser();
      const otherMark = s.knownBrowsers.issue(tenant.id, other.id).token;
      expect(await rejection(s.signin.passwordStep(strict, user.username, PASSWORD, ctx({ knownBrowser: otherMark })))).toMatchObject({
        code: 'too-many-requests',
      });
    });

    it("lets a browser that holds the account mark finish its second factor while strangers have spent the second factor's budget", async () => {
      const user = await newUser();
      const { secret } = await addTotp(user);
      const strict = withPolicy(tenant, { lockout: { accountFailures: 10, blockMinutes: 5 } });
      for (let i = 0; i < 4; i++) {
        const flow = await factorFlow(user, strict);
        for (let j = 0; j < 3; j++) await rejection(s.signin.verify(strict, flow, 'totp', { code: wrongCode(secret) }, ctx()));
      }
      const mark = s.knownBrowsers.issue(tenant.id, user.id).token;
      const held = await factorFlow(user, strict, ctx({ knownBrowser: mark }));
      expect(await rejection(s.signin.verify(strict, held, 'totp', { code: totpCode(secret, clock.now()) }, ctx()))).toMatchObject({
        code: 'too-many-requests',
      });
      const flow = await factorFlow(user, strict, ctx({ knownBrowser: mark }));
      expect((await s.signin.verify(strict, flow, 'totp', { code: totpCode(secret, clock.now()) }, ctx({ knownBrowser: mark }))).session.userId).toBe(user.id);
    });

    it("charges a browser's wrong codes to its own source, not to one place shared by every browser", async () => {
      const user = await newUser();
      const { secret } = await addTotp(user);
      const outcomes: string[] = [];
      // Eleven wrong codes from eleven places: more than one source may try on one account, fewer than the account budget.
      for (let i = 0; i < 3; i++) {
        const flow = await factorFlow(user);
        for (let j = 0; j < 4 && outcomes.length < 11; j++)
          outcomes.push((await rejection(s.signin.verify(tenant, flow, 'totp', { code: wrongCode(secret) }, ctx())))!.code);
      }
      expect(outcomes).toEqual(Array(11).fill('invalid-code'));
    });

    it('charges one source on one account apart from the account budget', async () => {
      const user = await newUser();
      const one = ctx();
      const outcomes: string[] = [];
      for (let i = 0; i < 11; i++) outcomes.push((await rejection(s.signin.passwordStep(tenant, user.username, 'wrong', one)))!.code);
      expect(outcomes).toEqual([...Array(10).fill('invalid-credentials'), 'too-many-requests']);
      expect((await s.signin.passwordStep(tenant, user.username, PASSWORD, ctx())).kind).toBe('register');
    });
  });

  describe('Temporary Access Passes', () => {
    it('lets a pass in place of the password: registration for a user with no method, the pass used and audited', async () => {
      const user = await newUser({ withPassword: false });
      const { code, pass } = await s.passes.issue(tenant, user.id, { oneTime: true }, 'admin');
      const step = await s.signin.tapStep(tenant, user.username, code, ctx());
      expect(step).toMatchObject({ kind: 'register', session: { userId: user.id } });
      expect(await s.sessions.authenticate(step.session.token)).toMatchObject({ scope: 'register', amr: ['tap'] });
      expect(await auditOf(user, 'tap.used')).toEqual([
        expect.objectContaining({ actor: `user:${user.id}`, details: { as: 'password', passId: pass.id, uses: 1 } }),
      ]);
      expect((await eventsOf(user))[0]).toEqual({ step: 'password', outcome: 'success', reason: 'registration_required', method: 'tap' });
      // One-time: spent.
      expect(await rejection(s.signin.tapStep(tenant, user.username, code, ctx()))).toMatchObject({ code: 'invalid-credentials' });
      expect((await eventsOf(user))[0]).toEqual({ step: 'password', outcome: 'failure', reason: 'invalid_credentials', method: 'tap' });
    });

    it('gives a full session with the pass as two factors to a user with a method, or where no second factor is required', async () => {
      const user = await newUser();
      await addTotp(user);
      const { code } = await s.passes.issue(tenant, user.id, { oneTime: false }, 'admin');
      const step = await s.signin.tapStep(tenant, user.username, code, ctx());
      expect(step.kind).toBe('done');
      expect(await s.sessions.authenticate(step.session.token)).toMatchObject({ scope: 'full', amr: ['tap', 'mfa'] });
      const bare = await newUser({ withPassword: false });
      const bareCode = (await s.passes.issue(tenant, bare.id, {}, 'admin')).code;
      expect((await s.signin.tapStep(withPolicy(tenant, { mfaRequired: false }), bare.username, bareCode, ctx())).kind).toBe('done');
    });

    it('refuses a pass where the tenant no longer allows them, and a disabled account without spending its pass', async () => {
      const user = await newUser({ withPassword: false });
      const { code } = await s.passes.issue(tenant, user.id, { oneTime: true }, 'admin');
      const noTap = withPolicy(tenant, { allowedMethods: tenant.policy.allowedMethods.filter((m) => m !== 'tap') });
      expect(await rejection(s.signin.tapStep(noTap, user.username, code, ctx()))).toMatchObject({ code: 'invalid-credentials' });
      await s.users.update(tenant.id, user.id, { status: 'disabled' });
      expect(await rejection(s.signin.tapStep(tenant, user.username, code, ctx()))).toMatchObject({ code: 'account-disabled' });
      expect(await rejection(s.signin.tapStep(tenant, user.username, 'AAAA-AAAA-AAAA-AAAA', ctx()))).toMatchObject({ code: 'invalid-credentials' });
      await s.users.update(tenant.id, user.id, { status: 'active' });
      expect((await s.signin.tapStep(tenant, user.username, code, ctx())).kind).toBe('register');
    });

    it('offers a held pass as a second factor, uses it once, and never remembers the browser for it', async () => {
      const user = await newUser();
      const { id } = await addTotp(user);
      const { code, pass } = await s.passes.issue(tenant, user.id, { oneTime: true }, 'admin');
      const remembering = withPolicy(tenant, { rememberedDeviceDays: 30 });
      const flow = await factorFlow(user, remembering);
      expect((await s.signin.flowMethods(remembering, { id: flow })).map((m) => m.id)).toEqual([id, 'tap']);
      expect(await s.signin.challenge(remembering, { id: flow }, 'tap', ctx())).toEqual({ method: 'tap', type: 'tap' });
      expect(await rejection(s.signin.verify(remembering, flow, 'tap', { code: 'AAAA-AAAA-AAAA-AAAA' }, ctx()))).toMatchObject({
        code: 'invalid-code',
        extra: { attemptsLeft: FLOW_MAX_ATTEMPTS - 1 },
      });
      const done = await s.signin.verify(remembering, flow, 'tap', { code }, ctx({ rememberDevice: true }));
      expect(done.remembered).toBeUndefined();
      expect(await s.sessions.authenticate(done.session.token)).toMatchObject({ scope: 'full', amr: ['pwd', 'tap', 'mfa'] });
      expect(await auditOf(user, 'tap.used')).toEqual([
        expect.objectContaining({ actor: `user:${user.id}`, details: { as: 'second-factor', passId: pass.id, uses: 1 } }),
      ]);
      expect((await eventsOf(user))[0]).toEqual({ step: 'second-factor', outcome: 'success', reason: 'ok', method: 'tap' });

      // No pass held: tap is no choice.
      const next = await factorFlow(user);
      expect((await s.signin.flowMethods(tenant, { id: next })).map((m) => m.type)).toEqual(['totp']);
      expect(await rejection(s.signin.challenge(tenant, { id: next }, 'tap', ctx()))).toMatchObject({ code: 'invalid-request' });
      expect(await rejection(s.signin.verify(tenant, next, 'tap', { code }, ctx()))).toMatchObject({ code: 'invalid-request' });
    });
  });

  describe('break-glass accounts', () => {
    it('audits and announces every sign-in of a break-glass account, and no other', async () => {
      const user = await newUser({ breakGlass: true });
      const told: string[] = [];
      const listener = (_t: Tenant, u: User) => told.push(u.id);
      const deps = (s.signin as unknown as { deps: { onBreakGlass?: (t: Tenant, u: User) => void } }).deps;
      const before = deps.onBreakGlass;
      deps.onBreakGlass = listener;
      try {
        expect((await s.signin.passwordStep(withPolicy(tenant, { mfaRequired: false }), user.username, PASSWORD, ctx())).kind).toBe('done');
        expect(await auditOf(user, 'break-glass.signin')).toEqual([
          expect.objectContaining({ details: { username: user.username, method: 'password' }, actor: `user:${user.id}` }),
        ]);
        const { secret } = await addTotp(user);
        await s.signin.verify(tenant, await factorFlow(user), 'totp', { code: totpCode(secret, clock.now()) }, ctx());
        expect((await auditOf(user, 'break-glass.signin'))[0]).toMatchObject({ details: { method: 'totp' } });
        expect(told).toEqual([user.id, user.id]);

        const plain = await newUser();
        const plainTotp = await addTotp(plain);
        await s.signin.verify(tenant, await factorFlow(plain), 'totp', { code: totpCode(plainTotp.secret, clock.now()) }, ctx());
        expect(await auditOf(plain, 'break-glass.signin')).toEqual([]);
        expect(told).toHaveLength(2);
      } finally {
        deps.onBreakGlass = before;
      }
    });
  });

  describe('app transactions', () => {
    it('proves a second factor to the app that opened it alone, without a session', async () => {
      const user = await newUser();
      const { secret } = await addTotp(user);
      const tx = await s.signin.startAppTransaction(tenant, 'app-1', user);
      expect(await s.signin.appTransactionUser(tenant, { id: tx, appId: 'app-1' })).toBe(user.id);
      for (const ref of [{ id: tx, appId: 'app-2' }, { id: tx }]) {
        expect(await rejection(s.signin.flowMethods(tenant, ref)), JSON.stringify(ref)).toMatchObject({ code: 'flow-not-found' });
      }
      expect(await rejection(s.signin.verify(tenant, tx, 'totp', { code: totpCode(secret, clock.now()) }, ctx()))).toMatchObject({ code: 'flow-not-found' });
      const proved = await s.signin.verifyForApp(tenant, { id: tx, appId: 'app-1' }, 'totp', { code: totpCode(secret, clock.now()) }, ctx());
      expect(proved).toEqual({ userId: user.id, amr: ['otp'] });
      // No session was made for it, not even one nobody receives.
      expect(await s.sessions.listActive(tenant.id, user.id)).toEqual([]);
      expect(await rejection(s.signin.appTransactionUser(tenant, { id: tx, appId: 'app-1' }))).toMatchObject({ code: 'flow-not-found' });
    });
  });

  describe('password change', () => {
    const NEW = 'a quite different passphrase 42';
    const open = async (user: User, scope: 'full' | 'register' = 'full', amr = ['pwd', 'otp', 'mfa']) =>
      (await s.sessions.create({ tenantId: tenant.id, userId: user.id, scope, amr, ip: '203.0.113.9' })).session;
    /**
     * Whether a sign-in with this password gets in, a moment after what came before: a sign-in begun in the very
     * millisecond the user's sessions were ended (a password change ends the others) counts as begun before it.
     */
    const canSignIn = async (user: User, password: string) => {
      clock.advance(1);
      return (await rejection(s.signin.passwordStep(withPolicy(tenant, { mfaRequired: false }), user.username, password, ctx()))) === undefined;
    };

    it('changes the password with the current one, and ends every other session', async () => {
      const user = await newUser();
      const session = await open(user);
      const other = await s.sessions.create({ tenantId: tenant.id, userId: user.id, scope: 'full', amr: ['pwd'], ip: '203.0.113.9' });
      expect(await rejection(s.passwords.change(tenant, user, session, 'wrong', NEW, ctx()))).toMatchObject({
        code: 'invalid-credentials',
        detail: 'the current password is not correct',
      });
      expect(await s.sessions.authenticate(other.token)).toBeDefined();
      expect(await rejection(s.passwords.change(tenant, user, await open(user, 'register', ['pwd']), PASSWORD, NEW, ctx()))).toMatchObject({
        code: 'registration-only',
      });
      expect(await rejection(s.passwords.change(tenant, user, session, PASSWORD, 'short', ctx()))).toMatchObject({ code: 'invalid-request' });
      // The same password again is no change (after a report it would count as one set since).
      expect(await rejection(s.passwords.change(tenant, user, session, PASSWORD, PASSWORD, ctx()))).toMatchObject({
        code: 'invalid-request',
        detail: 'choose a new password, not the one you have now',
      });
      // A session that signed in long ago, with the password (a stolen one), cannot change it and shut the owner out.
      const old = await open(user);
      clock.advance(11 * MINUTE);
      expect(await rejection(s.passwords.change(tenant, user, old, PASSWORD, NEW, ctx()))).toMatchObject({
        code: 'reauthentication-required',
        detail: expect.stringContaining('change your password'),
      });
      expect(await canSignIn(user, PASSWORD)).toBe(true);
      // Nor a session of the password alone (a remembered browser) of an account with a second factor.
      await addTotp(user);
      expect(await rejection(s.passwords.change(tenant, user, await open(user, 'full', ['pwd']), PASSWORD, NEW, ctx()))).toMatchObject({
        code: 'second-factor-required',
        detail: 'sign in with your second step to change your password',
      });
      const session2 = await open(user);
      const ended = await s.passwords.change(tenant, user, session2, PASSWORD, NEW, ctx());
      expect(ended).toBeGreaterThanOrEqual(1);
      expect(await auditOf(user, 'password.changed')).toEqual([
        expect.objectContaining({ actor: `user:${user.id}`, details: { sessionsEnded: ended, sessionAmr: ['pwd', 'otp', 'mfa'] } }),
      ]);
      expect(await s.sessions.authenticate(other.token)).toBeUndefined();
      expect(await canSignIn(user, PASSWORD)).toBe(false);
      expect(await canSignIn(user, NEW)).toBe(true);
      // An account with no second factor (MFA optional) changes it from a session of the password alone.
      // (A set-up under way is no second factor yet.)
      const plain = await newUser();
      await s.credentials.insert({ tenantId: tenant.id, userId: plain.id, type: 'totp', label: 'Not yet', state: 'pending', secret: 'sealed-elsewhere' });
      expect(await s.passwords.change(tenant, plain, await open(plain, 'full', ['pwd']), PASSWORD, NEW, ctx())).toBe(0);
      // An account without a password has no current one to give.
      const bare = await newUser({ withPassword: false });
      expect(await rejection(s.passwords.change(tenant, bare, await open(bare), '', NEW, ctx()))).toMatchObject({ code: 'invalid-credentials' });
      // Nor has an account deleted while one of its sessions was still being answered: a wrong password, not a crash.
      const gone = await newUser();
      const goneSession = await open(gone);
      expect(await s.users.delete(tenant.id, gone.id)).toBe(true);
      expect(await rejection(s.passwords.change(tenant, gone, goneSession, PASSWORD, NEW, ctx()))).toMatchObject({ code: 'invalid-credentials' });
      expect(await s.passwords.hasPassword(tenant, gone)).toBe(false);
    });

    it('limits guesses of the current password per session and source, not against the account', async () => {
      const user = await newUser();
      const session = await open(user);
      const one = ctx();
      const outcomes: string[] = [];
      for (let i = 0; i < 11; i++) outcomes.push((await rejection(s.passwords.change(tenant, user, session, 'wrong', NEW, one)))!.code);
      expect(outcomes).toEqual([...Array(10).fill('invalid-credentials'), 'too-many-requests']);
      // The account's own sign-in is not held by it.
      expect(await canSignIn(user, PASSWORD)).toBe(true);
    });

    it("caps one session's guesses at the current password for the day, and neither the owner's other session nor another account's", async () => {
      const user = await newUser();
      const session = await open(user);
      const outcomes: string[] = [];
      // From ever more sources, a few each: the session's own cap (20 a day) holds.
      for (let i = 0; i < 21; i++) outcomes.push((await rejection(s.passwords.change(tenant, user, session, 'wrong', NEW, ctx())))!.code);
      expect(outcomes).toEqual([...Array(20).fill('invalid-credentials'), 'too-many-requests']);
      expect(await rejection(s.passwords.change(tenant, user, session, PASSWORD, NEW, ctx()))).toMatchObject({ code: 'too-many-requests' });
      // A thief's session spent its day: the owner, signed in afresh, still changes the password (and ends the thief's).
      const owners = await open(user);
      expect(await s.passwords.change(tenant, user, owners, PASSWORD, NEW, ctx())).toBeGreaterThanOrEqual(1);
      const other = await newUser();
      expect(await s.passwords.change(tenant, other, await open(other), PASSWORD, NEW, ctx())).toBe(0);
    });

    it("caps all of a user's sessions together for the day, whatever a session does", async () => {
      // Fifth round: a thief who can open sessions at will (a passkey they added) had 20 guesses in each.
      const user = await newUser();
      const wrong = async (n: number) => {
        const session = await open(user);
        const outcomes: string[] = [];
        for (let i = 0; i < n; i++) outcomes.push((await rejection(s.passwords.change(tenant, user, session, 'wrong', NEW, ctx())))!.code);
        return outcomes;
      };
      expect([...(await wrong(20)), ...(await wrong(20))].every((o) => o === 'invalid-credentials')).toBe(true);
      expect(await wrong(11)).toEqual([...Array(10).fill('invalid-credentials'), 'too-many-requests']);
      expect(await rejection(s.passwords.change(tenant, user, await open(user), PASSWORD, NEW, ctx()))).toMatchObject({ code: 'too-many-requests' });
      // Sixth round: "this wasn't me" from the thief's own session ended every session and cleared the count. Nothing
      // a session can do clears it now (the day's end does).
      await s.sessions.revokeAllForUser(tenant.id, user.id);
      expect(await rejection(s.passwords.change(tenant, user, await open(user), 'wrong', NEW, ctx()))).toMatchObject({ code: 'too-many-requests' });
      // Another user is not held back.
      const other = await newUser();
      expect(await s.passwords.change(tenant, other, await open(other), PASSWORD, NEW, ctx())).toBe(0);
    });

    it('sets a first password only from a recent full session with a second factor, once, audited', async () => {
      const user = await newUser({ withPassword: false });
      expect(await s.passwords.hasPassword(tenant, user)).toBe(false);
      expect(await rejection(s.passwords.setFirst(tenant, user, await open(user, 'register', ['tap']), NEW, ctx()))).toMatchObject({
        code: 'registration-only',
      });
      expect(await rejection(s.passwords.setFirst(tenant, user, await open(user, 'full', ['pwd']), NEW, ctx()))).toMatchObject({
        code: 'second-factor-required',
        detail: 'sign in with your pass or a passkey to set a first password',
      });
      const old = await open(user, 'full', ['tap', 'mfa']);
      clock.advance(60 * MINUTE);
      expect(await rejection(s.passwords.setFirst(tenant, user, old, NEW, ctx()))).toMatchObject({ code: 'reauthentication-required' });
      const session = await open(user, 'full', ['tap', 'mfa']);
      expect(await rejection(s.passwords.setFirst(tenant, user, session, user.username, ctx()))).toMatchObject({ code: 'invalid-request' });
      expect(await s.passwords.setFirst(tenant, user, session, NEW, ctx())).toBeGreaterThanOrEqual(1);
      expect(
        await s.sessions.authenticate(
          (await s.sessions.create({ tenantId: tenant.id, userId: user.id, scope: 'full', amr: ['pwd'], ip: '203.0.113.9' })).token,
        ),
      ).toBeDefined();
      expect(await s.passwords.hasPassword(tenant, user)).toBe(true);
      expect(await canSignIn(user, NEW)).toBe(true);
      expect(await auditOf(user, 'password.set-first')).toEqual([
        expect.objectContaining({ actor: `user:${user.id}`, details: { sessionAmr: ['tap', 'mfa'] } }),
      ]);
      expect(await rejection(s.passwords.setFirst(tenant, user, await open(user, 'full', ['tap', 'mfa']), 'another fine passphrase 7', ctx()))).toMatchObject({
        code: 'conflict',
        detail: 'this account has a password; give the current one to change it',
      });
      expect(await canSignIn(user, NEW)).toBe(true);
    });

    it('ends the other sessions when a first password is set', async () => {
      const user = await newUser({ withPassword: false });
      const other = await s.sessions.create({ tenantId: tenant.id, userId: user.id, scope: 'full', amr: ['tap', 'mfa'], ip: '203.0.113.9' });
      const session = await open(user, 'full', ['tap', 'mfa']);
      expect(await s.passwords.setFirst(tenant, user, session, NEW, ctx())).toBe(1);
      expect(await s.sessions.authenticate(other.token)).toBeUndefined();
      expect(
        await s.sessions.authenticate((await s.sessions.create({ tenantId: tenant.id, userId: user.id, scope: 'full', amr: ['pwd'], ip: '1.2.3.4' })).token),
      ).toBeDefined();
    });
  });

  it('keeps the flow lifetime and attempts as documented', () => {
    expect([FLOW_LIFETIME_MS, FLOW_MAX_ATTEMPTS]).toEqual([10 * MINUTE, 5]);
  });
});
