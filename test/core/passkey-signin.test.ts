import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.ts';
import type { Services } from '../../src/server/services.ts';
import type { Tenant } from '../../src/directory/tenants.ts';
import type { User } from '../../src/directory/users.ts';
import type { WebAuthnMethod } from '../../src/methods/webauthn/webauthn-method.ts';
import { FLOW_LIFETIME_MS, FLOW_MAX_ATTEMPTS, flowKey } from '../../src/signin/flow.ts';
import type { RequestContext } from '../../src/signin/signin-service.ts';
import { freshSources, rejection, startCoreServices, withPolicy, type CoreServices } from './core-services.ts';
import { SoftAuthenticator } from '../helpers/soft-authenticator.ts';

/**
 * A passkey sign-in through `SigninService` at the level of its own promises
 * (no HTTP, cheap Argon2id, SQLite), fast enough for the mutation runs: the
 * flow a start leaves, the user learned from the credential, user verification
 * required, what a failure charges and records, a disabled owner, a
 * break-glass owner. test/integration/webauthn-api.test.ts proves the same
 * over HTTP.
 */
const ORIGIN = 'https://login.example.com';
const PASSWORD = 'correct horse battery staple';

describe('a passkey sign-in on SQLite', () => {
  let core: CoreServices;
  let s: Services;
  let tenant: Tenant;
  let otherTenant: Tenant;
  const clock = new ManualClock(Date.UTC(2026, 10, 30, 9));
  let n = 0;
  const ctx = freshSources('198.19', 'passkey-test');
  const webauthn = () => s.methods.get('webauthn') as WebAuthnMethod;

  const newUser = async (extra: Partial<{ breakGlass: boolean }> = {}, t: Tenant = tenant): Promise<User> =>
    s.users.create(t.id, { username: `pk-user-${++n}`, passwordHash: await s.hasher.hash(PASSWORD), ...extra });
  /** Registers an authenticator for the user; a passkey verifies its user, a plain security key does not. */
  const register = async (user: User, kind: 'passkey' | 'security-key', t: Tenant = tenant) => {
    const authenticator = new SoftAuthenticator(ORIGIN, Buffer.alloc(16), kind === 'passkey');
    const options = await webauthn().registrationOptions(t, user, kind);
    const { credential } = await webauthn().enrol(t, user, { attestation: authenticator.register(options) } as never);
    expect(credential).toMatchObject({ userId: user.id, type: 'webauthn', state: 'active', externalId: authenticator.id });
    return { authenticator, credential };
  };
  const start = async (t: Tenant = tenant, c: RequestContext = ctx()) => {
    const started = await s.signin.startPasskey(t, c);
    return { flow: started.flow, challenge: (started.webauthn as { challenge: string }).challenge, webauthn: started.webauthn };
  };
  const eventsOf = async (user: User, t: Tenant = tenant) =>
    (await s.events.list(t.id, { userId: user.id }, 50)).items.map((e) => ({
      step: e.step,
      outcome: e.outcome,
      reason: e.reason,
      method: e.method,
      username: e.username,
    }));

  beforeAll(async () => {
    core = await startCoreServices(clock, { STEADFAST_PUBLIC_URL: ORIGIN });
    s = core.services;
    tenant = await s.tenants.create('passkey');
    otherTenant = await s.tenants.create('passkey-other');
  });
  afterAll(async () => {
    await core?.stop();
  });

  it('starts with a flow that knows no user yet and a challenge for any passkey, user verification required', async () => {
    const started = await start();
    expect(started.webauthn).toMatchObject({ userVerification: 'required', allowCredentials: [], rpId: 'login.example.com' });
    const flow = await s.ephemeral.get(flowKey({ id: started.flow }));
    expect(flow).toMatchObject({ kind: 'passkey', tenantId: tenant.id, userId: '', username: '', amr: [] });
    expect((flow as { expiresAt: number }).expiresAt).toBe(clock.now() + FLOW_LIFETIME_MS);
    // A tenant that does not allow WebAuthn starts none.
    const without = withPolicy(tenant, { allowedMethods: tenant.policy.allowedMethods.filter((m) => m !== 'webauthn') });
    expect(await rejection(s.signin.startPasskey(without, ctx()))).toMatchObject({ code: 'method-not-permitted' });
  });

  it('limits the starts from one source: each leaves state in the store', async () => {
    const c = ctx();
    let refused: Awaited<ReturnType<typeof rejection>>;
    let started = 0;
    for (;;) {
      refused = await rejection(s.signin.startPasskey(tenant, c));
      if (refused) break;
      started++;
      expect(started).toBeLessThan(1_000);
    }
    expect(refused).toMatchObject({ code: 'too-many-requests' });
    expect(started).toBeGreaterThan(0);
    // Another source still starts.
    expect((await start()).flow).toEqual(expect.any(String));
  });

  it('signs the passkey owner in with a full session, proving two factors, recorded as a passkey sign-in', async () => {
    const user = await newUser();
    const { authenticator } = await register(user, 'passkey');
    const { flow, challenge } = await start();
    const done = await s.signin.verify(tenant, flow, 'passkey', { assertion: authenticator.assert(challenge) }, ctx());
    expect(done).toMatchObject({ kind: 'done', session: { userId: user.id } });
    expect(done.remembered).toBeUndefined();
    const session = await s.sessions.authenticate(done.session.token);
    expect(session).toMatchObject({ scope: 'full', userId: user.id, tenantId: tenant.id });
    expect([...session!.amr].sort()).toEqual(['hwk', 'mfa', 'user']);
    expect(await eventsOf(user)).toEqual([{ step: 'passkey', outcome: 'success', reason: 'ok', method: 'passkey', username: user.username }]);
    // The flow is spent: the same answer again finds none.
    expect(await rejection(s.signin.verify(tenant, flow, 'passkey', { assertion: authenticator.assert(challenge) }, ctx()))).toMatchObject({
      code: 'flow-not-found',
    });
    // "webauthn" names the same method.
    const next = await start();
    expect((await s.signin.verify(tenant, next.flow, 'webauthn', { assertion: authenticator.assert(next.challenge) }, ctx())).session.userId).toBe(user.id);
  });

  it('remembers the browser when asked, where the tenant remembers browsers', async () => {
    const user = await newUser();
    const { authenticator } = await register(user, 'passkey');
    const remembering = withPolicy(tenant, { rememberedDeviceDays: 30 });
    const { flow, challenge } = await start(remembering);
    const done = await s.signin.verify(remembering, flow, 'passkey', { assertion: authenticator.assert(challenge) }, ctx({ rememberDevice: true }));
    expect(done.remembered?.token).toEqual(expect.any(String));
  });

  it('refuses a key that verifies no user, and records the failure against its owner', async () => {
    const user = await newUser();
    const { authenticator } = await register(user, 'security-key');
    const { flow, challenge } = await start();
    expect(await rejection(s.signin.verify(tenant, flow, 'passkey', { assertion: authenticator.assert(challenge) }, ctx()))).toMatchObject({
      code: 'invalid-code',
      extra: { attemptsLeft: FLOW_MAX_ATTEMPTS - 1 },
    });
    expect(await eventsOf(user)).toEqual([{ step: 'passkey', outcome: 'failure', reason: 'invalid_code', method: 'passkey', username: user.username }]);
    expect(await s.sessions.listActive(tenant.id, user.id)).toEqual([]);
  });

  it('lets the same key in as a second factor after a password, where no user verification is asked', async () => {
    const user = await newUser();
    const { authenticator, credential } = await register(user, 'security-key');
    const step = await s.signin.passwordStep(tenant, user.username, PASSWORD, ctx());
    expect(step.kind).toBe('factor');
    const flow = (step as { flow: string }).flow;
    const options = (await s.signin.challenge(tenant, { id: flow }, credential.id, ctx())).webauthn as { challenge: string };
    const done = await s.signin.verify(tenant, flow, credential.id, { assertion: authenticator.assert(options.challenge) }, ctx());
    expect(done.session.userId).toBe(user.id);
    expect((await eventsOf(user))[0]).toEqual({ step: 'second-factor', outcome: 'success', reason: 'ok', method: 'webauthn', username: user.username });
  });

  it('refuses an unknown credential, a revoked one, one of another tenant and one the tenant no longer allows, recording nothing against anyone', async () => {
    const user = await newUser();
    const { authenticator, credential } = await register(user, 'passkey');
    const stranger = new SoftAuthenticator(ORIGIN);
    const other = await newUser({}, otherTenant);
    const { authenticator: elsewhere } = await register(other, 'passkey', otherTenant);
    const without = withPolicy(tenant, { allowedMethods: tenant.policy.allowedMethods.filter((m) => m !== 'webauthn') });
    const allEvents = async () => (await s.events.list(tenant.id, {}, 1_000)).items.length;
    const before = await allEvents();

    for (const [t, who] of [
      [tenant, stranger],
      [tenant, elsewhere],
      [without, authenticator],
    ] as const) {
      const { flow, challenge } = await start();
      expect(await rejection(s.signin.verify(t, flow, 'passkey', { assertion: who.assert(challenge) }, ctx()))).toMatchObject({ code: 'invalid-code' });
    }
    // A credential not (or no longer) active: a set-up left pending.
    await s.durable.db.updateTable('credentials').set({ state: 'pending' }).where('id', '=', credential.id).execute();
    const { flow, challenge } = await start();
    expect(await rejection(s.signin.verify(tenant, flow, 'passkey', { assertion: authenticator.assert(challenge) }, ctx()))).toMatchObject({
      code: 'invalid-code',
    });
    expect(await eventsOf(user)).toEqual([]);
    expect(await allEvents()).toBe(before);
    expect(await s.sessions.listActive(tenant.id, user.id)).toEqual([]);
  });

  it('asks for an assertion with a credential id, by the passkey method only', async () => {
    const user = await newUser();
    const { authenticator } = await register(user, 'passkey');
    const { flow, challenge } = await start();
    const assertion = authenticator.assert(challenge);
    for (const [methodRef, input] of [
      ['totp', { assertion }],
      ['tap', { assertion, code: 'a-pass' }],
      ['passkey', {}],
      ['passkey', { assertion: { ...assertion, id: '' } }],
      ['passkey', { assertion: { ...assertion, id: 7 } }],
      ['passkey', { assertion: { ...assertion, id: 'x'.repeat(1025) } }],
    ] as const) {
      expect(
        await rejection(s.signin.verify(tenant, flow, methodRef, input as never, ctx())),
        `${methodRef} ${JSON.stringify(input).slice(0, 80)}`,
      ).toMatchObject({
        code: 'invalid-request',
        // The answer says what is wrong.
        detail: methodRef === 'passkey' ? 'assertion.id is missing' : expect.stringContaining('method "passkey"'),
      });
    }
    // A pass is no way into a passkey sign-in; the answer says which method is.
    expect(await rejection(s.signin.verify(tenant, flow, 'tap', { code: 'a-pass' }, ctx()))).toMatchObject({
      code: 'invalid-request',
      detail: expect.stringContaining('method "passkey"'),
    });
    // An id of the longest length allowed is looked up (and names no credential): a wrong answer, not a malformed one.
    expect(await rejection(s.signin.verify(tenant, flow, 'passkey', { assertion: { ...assertion, id: 'x'.repeat(1024) } }, ctx()))).toMatchObject({
      code: 'invalid-code',
      extra: { attemptsLeft: FLOW_MAX_ATTEMPTS - 1 },
    });
    // None of the others was an attempt, and an unknown credential spends no challenge: the flow and its challenge still stand.
    expect((await s.signin.verify(tenant, flow, 'passkey', { assertion }, ctx())).session.userId).toBe(user.id);
  });

  it('charges a failed assertion to the flow and its source, never to the account: nobody can hold the owner back with its public credential id', async () => {
    const user = await newUser();
    const { authenticator } = await register(user, 'passkey');
    const strict = withPolicy(tenant, { lockout: { accountFailures: 5, blockMinutes: 60 } });
    // Many more failures than the account's budget, each from a new source, over several flows (fewer in each
    // than a flow allows: a flow is charged as an account of its own).
    for (let i = 0; i < 4; i++) {
      const { flow, challenge } = await start(strict);
      for (let j = 0; j < 3; j++) {
        expect(
          await rejection(
            s.signin.verify(strict, flow, 'passkey', { assertion: authenticator.assert(challenge, { origin: 'https://login.example.com.evil.net' }) }, ctx()),
          ),
        ).toMatchObject({ code: 'invalid-code' });
      }
    }
    const { flow, challenge } = await start(strict);
    expect((await s.signin.verify(strict, flow, 'passkey', { assertion: authenticator.assert(challenge) }, ctx())).session.userId).toBe(user.id);
    // Nor is the password's account budget touched.
    expect((await s.signin.passwordStep(strict, user.username, PASSWORD, ctx())).kind).toBe('factor');
  });

  it('refuses a disabled owner even with the right passkey, and issues no session', async () => {
    const user = await newUser();
    const { authenticator } = await register(user, 'passkey');
    expect(await s.users.update(tenant.id, user.id, { status: 'disabled' })).toBe(true);
    const { flow, challenge } = await start();
    expect(await rejection(s.signin.verify(tenant, flow, 'passkey', { assertion: authenticator.assert(challenge) }, ctx()))).toMatchObject({
      code: 'account-disabled',
    });
    expect(await s.sessions.listActive(tenant.id, user.id)).toEqual([]);
  });

  it('audits and announces a break-glass account signing in with a passkey, and no other', async () => {
    const seen: string[] = [];
    const deps = (s.signin as unknown as { deps: { onBreakGlass?: (t: Tenant, u: User) => void } }).deps;
    const before = deps.onBreakGlass;
    deps.onBreakGlass = (_t, u) => seen.push(u.id);
    try {
      const user = await newUser({ breakGlass: true });
      const plain = await newUser();
      const { authenticator } = await register(user, 'passkey');
      const { authenticator: plainKey } = await register(plain, 'passkey');
      for (const who of [authenticator, plainKey]) {
        const { flow, challenge } = await start();
        await s.signin.verify(tenant, flow, 'passkey', { assertion: who.assert(challenge) }, ctx());
      }
      expect((await s.audit.list(tenant.id, { limit: 50, userId: user.id, action: 'break-glass.signin' })).map((e) => e.details)).toEqual([
        { username: user.username, method: 'passkey' },
      ]);
      expect(await s.audit.list(tenant.id, { limit: 50, userId: plain.id, action: 'break-glass.signin' })).toEqual([]);
      expect(seen).toEqual([user.id]);
    } finally {
      deps.onBreakGlass = before;
    }
  });
});
