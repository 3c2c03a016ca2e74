import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.ts';
import type { Services } from '../../src/server/services.ts';
import type { Tenant } from '../../src/directory/tenants.ts';
import type { User } from '../../src/directory/users.ts';
import type { Session } from '../../src/sessions/sessions.ts';
import { MAX_PENDING_PER_USER } from '../../src/methods/credentials.ts';
import { CONFIRM_ATTEMPTS } from '../../src/methods/method-management.ts';
import { describeMethod } from '../../src/methods/registry.ts';
import { SoftAuthenticator } from '../helpers/soft-authenticator.ts';
import { totpCode } from '../helpers/totp.ts';
import { RECENT_SIGNIN_MS } from '../../src/sessions/sessions.ts';
import { generateKeyPairSync } from 'node:crypto';
import type { PushMethod } from '../../src/methods/push/push-method.ts';
import { createUser, rejection, startCoreServices, withPolicy, type CoreServices } from './core-services.ts';

/**
 * Self-service on one's own methods (methods/method-management.ts) and the
 * credential store under it (methods/credentials.ts), without HTTP: what a
 * method added or removed leaves in the audit log (a thief's own authenticator
 * must show there), a registration session finished by the method it proved,
 * and the cap on set-ups left unfinished. Fast enough for `npm run mutate`.
 */
const ORIGIN = 'https://login.example.com';

describe('managing one’s own methods on SQLite', () => {
  let core: CoreServices;
  let s: Services;
  let tenant: Tenant;
  let otherTenant: Tenant;
  const clock = new ManualClock(Date.UTC(2026, 10, 30, 9, 0, 15));

  /** A session as a request would hold it, and its token, to read it again after a change. */
  const sessionOf = async (user: User, scope: 'full' | 'register', amr: string[], t: Tenant = tenant): Promise<Session & { token: string }> => {
    const { token } = await s.sessions.create({ tenantId: t.id, userId: user.id, scope, amr });
    const session = await s.sessions.authenticate(token);
    expect(session).toMatchObject({ userId: user.id, scope, amr });
    return { ...session!, token };
  };
  const auditOf = async (user: User, t: Tenant = tenant) =>
    (await s.audit.list(t.id, { limit: 50, userId: user.id })).map((e) => ({ actor: e.actor, action: e.action, details: e.details }));
  const pendingIds = async (user: User, t: Tenant = tenant) => (await s.credentials.listForUser(t.id, user.id, 'pending')).map((c) => c.id);
  const registerKey = async (user: User, session: Session) => {
    const authenticator = new SoftAuthenticator(ORIGIN, Buffer.alloc(16), true);
    const options = await s.management.webauthnOptions(tenant, user, session, 'passkey');
    return s.management.enrol(tenant, user, session, 'webauthn', { attestation: authenticator.register(options), label: 'Laptop' } as never);
  };

  beforeAll(async () => {
    core = await startCoreServices(clock, { STEADFAST_PUBLIC_URL: ORIGIN });
    s = core.services;
    tenant = await s.tenants.create('methods');
    otherTenant = await s.tenants.create('methods-other');
  });
  afterAll(() => core?.stop());

  it('records a method that is active at once (recovery codes) as added, by the user, with what it is and from which session', async () => {
    const user = await createUser(s, tenant);
    const session = await sessionOf(user, 'full', ['pwd', 'otp', 'mfa']);
    const added = await s.management.enrol(tenant, user, session, 'recovery-codes', {});
    expect(added.state).toBe('active');
    const credential = (await s.credentials.get(tenant.id, user.id, added.id))!;
    expect(await auditOf(user)).toEqual([
      {
        actor: `user:${user.id}`,
        action: 'method.added',
        details: { type: 'recovery-codes', label: credential.label, credentialId: added.id, sessionScope: 'full' },
      },
    ]);
    // Recovery codes prove nothing at set-up: the session is as it was.
    expect(await s.sessions.authenticate(session.token)).toMatchObject({ id: session.id, scope: 'full', amr: ['pwd', 'otp', 'mfa'] });
  });

  it('records nothing for a set-up still pending, and the method as added once it is confirmed', async () => {
    const user = await createUser(s, tenant);
    const session = await sessionOf(user, 'full', ['pwd']);
    const enrolled = await s.management.enrol(tenant, user, session, 'totp', {});
    expect(enrolled.state).toBe('pending');
    expect(await auditOf(user)).toEqual([]);
    await s.management.confirm(tenant, user, session, enrolled.id, totpCode(String(enrolled.secret), clock.now()));
    // A full session stays what it was: only a registration session is made full by a confirmation.
    expect(await s.sessions.authenticate(session.token)).toMatchObject({ scope: 'full', amr: ['pwd'] });
    expect(await auditOf(user)).toEqual([
      {
        actor: `user:${user.id}`,
        action: 'method.added',
        details: { type: 'totp', label: 'Authenticator app', credentialId: enrolled.id, sessionScope: 'full' },
      },
    ]);
  });

  it('makes a registration session full once the security key it registered proves itself, and ends the user’s other registration sessions', async () => {
    const user = await createUser(s, tenant);
    const session = await sessionOf(user, 'register', ['pwd']);
    const other = await s.sessions.create({ tenantId: tenant.id, userId: user.id, scope: 'register', amr: ['pwd'] });
    const added = await registerKey(user, session);
    expect(added.state).toBe('active');
    // The same session, read again: full now, with the key's factor and MFA proved.
    const upgraded = await s.sessions.authenticate(session.token);
    expect(upgraded).toMatchObject({ id: session.id, scope: 'full' });
    expect([...upgraded!.amr].sort()).toEqual(['hwk', 'mfa', 'pwd']);
    // Whoever else got a registration session from the password alone cannot finish with a method of theirs.
    expect(await s.sessions.authenticate(other.token)).toBeUndefined();
    expect(await auditOf(user)).toEqual([
      { actor: `user:${user.id}`, action: 'method.added', details: { type: 'webauthn', label: 'Laptop', credentialId: added.id, sessionScope: 'register' } },
    ]);
  });

  it('records a removed active method, and nothing for a removed set-up that never was one', async () => {
    const user = await createUser(s, tenant);
    const session = await sessionOf(user, 'full', ['pwd', 'otp', 'mfa']);
    // Two active methods (the tenant requires MFA, so the last one stays), and a set-up left pending.
    const app = await s.management.enrol(tenant, user, session, 'totp', {});
    await s.management.confirm(tenant, user, session, app.id, totpCode(String(app.secret), clock.now()));
    const codes = await s.management.enrol(tenant, user, session, 'recovery-codes', {});
    const pending = await s.management.enrol(tenant, user, session, 'totp', {});
    const before = (await auditOf(user)).length;
    await s.management.remove(tenant, user, session, pending.id);
    expect((await auditOf(user)).length).toBe(before);
    await s.management.remove(tenant, user, session, codes.id);
    const [removed] = await auditOf(user);
    expect(removed).toEqual({
      actor: `user:${user.id}`,
      action: 'method.removed',
      details: { type: 'recovery-codes', label: expect.any(String), credentialId: codes.id, sessionScope: 'full' },
    });
    expect((await s.credentials.listForUser(tenant.id, user.id)).map((c) => c.id)).toEqual([app.id]);
  });

  it(`keeps the newest ${MAX_PENDING_PER_USER} unfinished set-ups of a user, and nobody else's`, async () => {
    const user = await createUser(s, tenant);
    const neighbour = await createUser(s, tenant);
    const elsewhere = await createUser(s, otherTenant);
    const session = await sessionOf(user, 'full', ['pwd']);
    // The user's own active method and the others' set-ups must survive every trim.
    const active = await s.management.enrol(tenant, user, session, 'recovery-codes', {});
    const theirs = [
      (await s.credentials.insert({ tenantId: tenant.id, userId: neighbour.id, type: 'totp', label: 'n', state: 'pending' })).id,
      (await s.credentials.insert({ tenantId: otherTenant.id, userId: elsewhere.id, type: 'totp', label: 'e', state: 'pending' })).id,
    ];
    const mine: string[] = [];
    for (let i = 0; i < MAX_PENDING_PER_USER + 2; i++) {
      clock.advance(1000);
      mine.push((await s.credentials.insert({ tenantId: tenant.id, userId: user.id, type: 'totp', label: `t${i}`, state: 'pending' })).id);
      expect((await pendingIds(user)).length).toBe(Math.min(i + 1, MAX_PENDING_PER_USER));
    }
    // The two oldest went; the newest five stay.
    expect((await pendingIds(user)).sort()).toEqual(mine.slice(2).sort());
    expect(await pendingIds(neighbour)).toEqual([theirs[0]]);
    expect(await pendingIds(elsewhere, otherTenant)).toEqual([theirs[1]]);
    expect((await s.credentials.get(tenant.id, user.id, active.id))?.state).toBe('active');
  });

  it('forgets every unfinished set-up of a user when told (all their sessions ended), and only theirs', async () => {
    const user = await createUser(s, tenant);
    const neighbour = await createUser(s, tenant);
    const elsewhere = await createUser(s, otherTenant);
    const session = await sessionOf(user, 'full', ['pwd']);
    const active = await s.management.enrol(tenant, user, session, 'recovery-codes', {});
    const pending = async (u: User, t: Tenant) => (await s.credentials.insert({ tenantId: t.id, userId: u.id, type: 'totp', label: 'p', state: 'pending' })).id;
    await pending(user, tenant);
    await pending(user, tenant);
    const kept = [await pending(neighbour, tenant), await pending(elsewhere, otherTenant)];
    expect(await s.credentials.deletePendingForUser(tenant.id, user.id)).toBe(2);
    expect(await pendingIds(user)).toEqual([]);
    expect((await s.credentials.get(tenant.id, user.id, active.id))?.state).toBe('active');
    expect(await pendingIds(neighbour)).toEqual([kept[0]]);
    expect(await pendingIds(elsewhere, otherTenant)).toEqual([kept[1]]);
    expect(await s.credentials.deletePendingForUser(tenant.id, user.id)).toBe(0);
  });
  describe('who may change methods', () => {
    /** A user with an authenticator app already active, and the session that set it up. */
    const withApp = async () => {
      const user = await createUser(s, tenant);
      const setup = await sessionOf(user, 'full', ['pwd', 'otp', 'mfa']);
      const app = await s.management.enrol(tenant, user, setup, 'totp', {});
      await s.management.confirm(tenant, user, setup, app.id, totpCode(String(app.secret), clock.now()));
      return { user, app };
    };

    it('asks a session without a second factor for one once the user has a method: a password and a remembered browser add nothing', async () => {
      const { user, app } = await withApp();
      const passwordOnly = await sessionOf(user, 'full', ['pwd']);
      const refused = { code: 'second-factor-required', detail: 'sign in with one of your methods to change them' };
      expect(await rejection(s.management.enrol(tenant, user, passwordOnly, 'recovery-codes', {}))).toMatchObject(refused);
      expect(await rejection(s.management.update(tenant, user, passwordOnly, app.id, { label: 'Mine now' }))).toMatchObject(refused);
      expect(await rejection(s.management.remove(tenant, user, passwordOnly, app.id))).toMatchObject(refused);
      expect((await s.credentials.listForUser(tenant.id, user.id)).map((c) => [c.id, c.label])).toEqual([[app.id, 'Authenticator app']]);
      // With a second factor proved in this sign-in, the same changes go through.
      const proved = await sessionOf(user, 'full', ['pwd', 'otp', 'mfa']);
      expect((await s.management.update(tenant, user, proved, app.id, { label: 'Phone' })).label).toBe('Phone');
      // A user with no method yet needs none to add the first.
      const newcomer = await createUser(s, tenant);
      expect((await s.management.enrol(tenant, newcomer, await sessionOf(newcomer, 'full', ['pwd']), 'totp', {})).state).toBe('pending');
    });

    it('asks for a recent sign-in: a session older than ten minutes changes nothing', async () => {
      const { user, app } = await withApp();
      const session = await sessionOf(user, 'full', ['pwd', 'otp', 'mfa']);
      clock.advance(RECENT_SIGNIN_MS + 1000);
      expect(await rejection(s.management.enrol(tenant, user, session, 'recovery-codes', {}))).toMatchObject({ code: 'reauthentication-required' });
      expect(await rejection(s.management.remove(tenant, user, session, app.id))).toMatchObject({ code: 'reauthentication-required' });
      expect(await rejection(s.management.webauthnOptions(tenant, user, session, 'passkey'))).toMatchObject({ code: 'reauthentication-required' });
    });

    it('lets a registration session add and confirm a first method that proves itself, and nothing else', async () => {
      const user = await createUser(s, tenant);
      const session = await sessionOf(user, 'register', ['pwd']);
      // Recovery codes prove nothing: not a first method for a registration session.
      expect((await rejection(s.management.enrol(tenant, user, session, 'recovery-codes', {})))?.code).toBe('registration-only');
      expect(await s.credentials.listForUser(tenant.id, user.id)).toEqual([]);
      const app = await s.management.enrol(tenant, user, session, 'totp', {});
      // A set-up still pending is no way in: a second try (a new QR code) is let in too.
      const retry = await s.management.enrol(tenant, user, session, 'totp', {});
      expect(retry.state).toBe('pending');
      expect(await rejection(s.management.update(tenant, user, session, app.id, { label: 'x' }))).toMatchObject({ code: 'registration-only' });
      expect(await rejection(s.management.remove(tenant, user, session, app.id))).toMatchObject({ code: 'registration-only' });
      expect(await s.management.confirm(tenant, user, session, app.id, totpCode(String(app.secret), clock.now()))).toEqual({ id: app.id, state: 'active' });
      // The confirmation made the registration session a full one, with the app's factor and MFA proved.
      const upgraded = await s.sessions.authenticate(session.token);
      expect(upgraded).toMatchObject({ id: session.id, scope: 'full' });
      expect([...upgraded!.amr].sort()).toEqual(['mfa', 'otp', 'pwd']);
    });

    it('lets two registration sessions racing to confirm a first method finish one, never both', async () => {
      const user = await createUser(s, tenant);
      const [first, second] = [await sessionOf(user, 'register', ['pwd']), await sessionOf(user, 'register', ['pwd'])];
      const apps = [await s.management.enrol(tenant, user, first, 'totp', {}), await s.management.enrol(tenant, user, second, 'totp', {})];
      const outcomes = await Promise.all(
        [first, second].map((session, i) =>
          rejection(s.management.confirm(tenant, user, session, apps[i]!.id, totpCode(String(apps[i]!.secret), clock.now()))),
        ),
      );
      // One confirmed (no rejection); the other found the user registered meanwhile.
      expect(outcomes.filter((o) => o === undefined)).toHaveLength(1);
      expect(outcomes.find((o) => o !== undefined)).toMatchObject({ code: 'already-registered' });
      expect((await s.credentials.listForUser(tenant.id, user.id, 'active')).length).toBe(1);
      // A full session confirms a second method of its own whatever the user has.
      const full = await sessionOf(user, 'full', ['pwd', 'otp', 'mfa']);
      const another = await s.management.enrol(tenant, user, full, 'totp', {});
      expect(await s.management.confirm(tenant, user, full, another.id, totpCode(String(another.secret), clock.now()))).toEqual({
        id: another.id,
        state: 'active',
      });
    });

    it('lets a registration session add nothing once the user has a way in, though recovery codes alone are none', async () => {
      const { user } = await withApp();
      const late = await sessionOf(user, 'register', ['pwd']);
      expect(await rejection(s.management.enrol(tenant, user, late, 'totp', {}))).toMatchObject({ code: 'already-registered' });
      const withCodesOnly = await createUser(s, tenant);
      await s.credentials.insert({ tenantId: tenant.id, userId: withCodesOnly.id, type: 'recovery-codes', label: 'Recovery codes', state: 'active' });
      const session = await sessionOf(withCodesOnly, 'register', ['pwd']);
      expect((await s.management.enrol(tenant, withCodesOnly, session, 'totp', {})).state).toBe('pending');
    });

    it('refuses a method the server does not know or the tenant does not allow, and confirms only what waits for a code', async () => {
      const user = await createUser(s, tenant);
      const session = await sessionOf(user, 'full', ['pwd']);
      expect(await rejection(s.management.enrol(tenant, user, session, 'carrier-pigeon', {}))).toMatchObject({
        code: 'invalid-request',
        detail: '"carrier-pigeon" is not a method type this server can register',
      });
      expect(await rejection(s.management.enrol(withPolicy(tenant, { allowedMethods: ['webauthn'] }), user, session, 'totp', {}))).toMatchObject({
        code: 'method-not-permitted',
      });
      const codes = await s.management.enrol(tenant, user, session, 'recovery-codes', {});
      // Now the user has a method: changes need a second factor proved in this sign-in.
      const proved = await sessionOf(user, 'full', ['pwd', 'mfa']);
      expect(await rejection(s.management.confirm(tenant, user, proved, codes.id, '123456'))).toMatchObject({
        code: 'invalid-state',
        detail: 'this method is already active',
      });
      // A pending row of a type with no confirmation step (or none this server knows) is refused, not confirmed.
      const odd = await s.credentials.insert({
        tenantId: tenant.id,
        userId: user.id,
        type: 'recovery-codes',
        label: 'odd',
        state: 'pending',
        bySession: proved.id,
      });
      const unknown = await s.credentials.insert({
        tenantId: tenant.id,
        userId: user.id,
        type: 'carrier-pigeon',
        label: 'coo',
        state: 'pending',
        bySession: proved.id,
      });
      for (const id of [odd.id, unknown.id]) {
        expect(await rejection(s.management.confirm(tenant, user, proved, id, '123456'))).toMatchObject({
          code: 'invalid-state',
          detail: 'this method needs no confirmation',
        });
      }
    });

    it('ends nobody’s registration session when a method that proves nothing is added (recovery codes from a full session)', async () => {
      const { user } = await withApp();
      const registration = await s.sessions.create({ tenantId: tenant.id, userId: user.id, scope: 'register', amr: ['pwd'] });
      const full = await sessionOf(user, 'full', ['pwd', 'otp', 'mfa']);
      await s.management.enrol(tenant, user, full, 'recovery-codes', {});
      expect(await s.sessions.authenticate(registration.token)).toMatchObject({ scope: 'register' });
    });
  });
  describe('what a user sees and changes', () => {
    it('offers the methods a session may add, strongest first: allowed, addable by people, deliverable, and proving themselves in a registration session', () => {
      const deliverable = (type: string) => !describeMethod(type)!.outOfBand || s.methods.outOfBand(type)?.configured() === true;
      const full = s.management.addable(tenant, { scope: 'full' });
      expect(full).toEqual(
        ['webauthn', 'push', 'totp', 'sms', 'voice', 'email', 'recovery-codes']
          .filter(deliverable)
          .sort((a, b) => describeMethod(b)!.strength - describeMethod(a)!.strength),
      );
      expect(full).not.toContain('tap');
      // A registration session: only what proves itself at set-up (no push pairing, no recovery codes).
      expect(s.management.addable(tenant, { scope: 'register' })).toEqual(full.filter((t) => describeMethod(t)!.provesPossessionAtSetup));
      expect(s.management.addable(withPolicy(tenant, { allowedMethods: ['totp', 'recovery-codes'] }), { scope: 'full' })).toEqual(['totp', 'recovery-codes']);
      expect(s.management.addable(withPolicy(tenant, { allowedMethods: ['totp', 'recovery-codes'] }), { scope: 'register' })).toEqual(['totp']);
    });

    it('lists a user’s methods with what each is: codes left, a passkey that signs in alone, dates', async () => {
      const user = await createUser(s, tenant);
      const keyAt = clock.now();
      const key = await registerKey(user, await sessionOf(user, 'full', ['pwd']));
      clock.advance(1000);
      const proved = await sessionOf(user, 'full', ['pwd', 'hwk', 'mfa']);
      const codes = await s.management.enrol(tenant, user, proved, 'recovery-codes', {});
      const views = await s.management.list(tenant, user);
      expect(views).toEqual([
        {
          id: key.id,
          type: 'webauthn',
          label: 'Laptop',
          state: 'active',
          default: true,
          createdAt: new Date(keyAt).toISOString(),
          lastUsedAt: null,
          signsInAlone: true,
        },
        {
          id: codes.id,
          type: 'recovery-codes',
          label: expect.any(String),
          state: 'active',
          default: false,
          createdAt: expect.any(String),
          lastUsedAt: null,
          remaining: 10,
        },
      ]);
    });

    it('renames within 1 to 100 characters, makes only an active method the default, and never unsets one', async () => {
      const user = await createUser(s, tenant);
      const session = await sessionOf(user, 'full', ['pwd']);
      const first = await registerKey(user, session);
      clock.advance(1000);
      const proved = await sessionOf(user, 'full', ['pwd', 'hwk', 'mfa']);
      const app = await s.management.enrol(tenant, user, proved, 'totp', {});
      expect((await s.management.update(tenant, user, proved, first.id, { label: '  Work key  ' })).label).toBe('Work key');
      for (const label of ['   ', 'x'.repeat(101)]) {
        expect(await rejection(s.management.update(tenant, user, proved, first.id, { label }))).toMatchObject({
          code: 'invalid-request',
          detail: 'a label is 1 to 100 characters',
        });
      }
      expect((await s.management.update(tenant, user, proved, first.id, { label: 'y'.repeat(100) })).label).toBe('y'.repeat(100));
      expect(await rejection(s.management.update(tenant, user, proved, app.id, { default: true }))).toMatchObject({
        code: 'invalid-state',
        detail: 'only an active method can be the default',
      });
      expect(await rejection(s.management.update(tenant, user, proved, first.id, { default: false }))).toMatchObject({ code: 'invalid-request' });
      await s.management.confirm(tenant, user, proved, app.id, totpCode(String(app.secret), clock.now()));
      const made = await s.management.update(tenant, user, proved, app.id, { default: true });
      expect(made).toMatchObject({ id: app.id, default: true, label: 'Authenticator app' });
      expect((await s.management.list(tenant, user)).map((v) => [v.id, v.default])).toEqual([
        [first.id, false],
        [app.id, true],
      ]);
    });

    it('keeps the last active method while the tenant requires MFA, and hands the default on when the default goes', async () => {
      const user = await createUser(s, tenant);
      const key = await registerKey(user, await sessionOf(user, 'full', ['pwd']));
      const proved = await sessionOf(user, 'full', ['pwd', 'hwk', 'mfa']);
      expect(await rejection(s.management.remove(tenant, user, proved, key.id))).toMatchObject({ code: 'last-method' });
      expect((await s.management.list(tenant, user)).map((v) => v.id)).toEqual([key.id]);
      expect((await auditOf(user)).map((e) => e.action)).toEqual(['method.added']);
      const app = await s.management.enrol(tenant, user, proved, 'totp', {});
      await s.management.confirm(tenant, user, proved, app.id, totpCode(String(app.secret), clock.now()));
      await s.management.remove(tenant, user, proved, key.id);
      expect((await s.management.list(tenant, user)).map((v) => [v.id, v.default])).toEqual([[app.id, true]]);
      // A set-up that never became a method is no "last method": it goes whatever else the user has.
      const neverFinished = await createUser(s, tenant);
      const pending = await s.management.enrol(tenant, neverFinished, await sessionOf(neverFinished, 'full', ['pwd']), 'totp', {});
      await s.management.remove(tenant, neverFinished, await sessionOf(neverFinished, 'full', ['pwd']), pending.id);
      expect(await s.management.list(tenant, neverFinished)).toEqual([]);
      // Where the tenant does not require MFA, the last one may go too.
      await s.management.remove(withPolicy(tenant, { mfaRequired: false }), user, proved, app.id);
      expect(await s.management.list(tenant, user)).toEqual([]);
    });

    it('never leaves recovery codes as the only method while the tenant requires MFA, nor as the default beside another', async () => {
      const user = await createUser(s, tenant);
      const key = await registerKey(user, await sessionOf(user, 'full', ['pwd']));
      const proved = await sessionOf(user, 'full', ['pwd', 'hwk', 'mfa']);
      const codes = await s.management.enrol(tenant, user, proved, 'recovery-codes', {});
      // The passkey is the last real method: the codes beside it do not let it go.
      expect(await rejection(s.management.remove(tenant, user, proved, key.id))).toMatchObject({ code: 'last-method' });
      expect(await rejection(s.management.update(tenant, user, proved, codes.id, { default: true }))).toMatchObject({
        code: 'invalid-request',
        detail: 'recovery codes are a last resort and cannot be the default; choose another method',
      });
      // (Added in the same frozen millisecond, methods are listed in either order.)
      expect((await s.management.list(tenant, user)).map((v) => [v.type, v.default]).sort()).toEqual([
        ['recovery-codes', false],
        ['webauthn', true],
      ]);
      // The codes themselves may go while the passkey stays; with a second real method, the passkey may go too.
      await s.management.remove(tenant, user, proved, codes.id);
      await s.management.enrol(tenant, user, proved, 'recovery-codes', {});
      const app = await s.management.enrol(tenant, user, proved, 'totp', {});
      await s.management.confirm(tenant, user, proved, app.id, totpCode(String(app.secret), clock.now()));
      await s.management.remove(tenant, user, proved, key.id);
      expect((await s.management.list(tenant, user)).map((v) => [v.type, v.default]).sort()).toEqual([
        ['recovery-codes', false],
        ['totp', true],
      ]);
      // Codes that were the default while alone (no MFA required) hand it to the first real method added.
      const relaxed = withPolicy(tenant, { mfaRequired: false });
      const alone = await createUser(s, tenant);
      const aloneSession = await sessionOf(alone, 'full', ['pwd']);
      const onlyCodes = await s.management.enrol(relaxed, alone, aloneSession, 'recovery-codes', {});
      expect((await s.management.list(tenant, alone)).map((v) => [v.id, v.default])).toEqual([[onlyCodes.id, true]]);
      const signedInWithCode = await sessionOf(alone, 'full', ['pwd', 'otp', 'mfa']);
      const later = await s.management.enrol(relaxed, alone, signedInWithCode, 'totp', {});
      await s.management.confirm(relaxed, alone, signedInWithCode, later.id, totpCode(String(later.secret), clock.now()));
      expect(Object.fromEntries((await s.management.list(tenant, alone)).map((v) => [v.id, v.default]))).toEqual({
        [onlyCodes.id]: false,
        [later.id]: true,
      });
    });

    it('shows a pending set-up again, never an active one, nor another user’s; sends codes only for phones and email', async () => {
      const user = await createUser(s, tenant);
      const other = await createUser(s, tenant);
      const session = await sessionOf(user, 'full', ['pwd']);
      const app = await s.management.enrol(tenant, user, session, 'totp', {});
      expect(await s.management.setupDetails(tenant, user, session, app.id)).toMatchObject({ secret: app.secret, otpauthUri: app.otpauthUri });
      const theirs = await sessionOf(other, 'full', ['pwd']);
      expect(await rejection(s.management.setupDetails(tenant, other, theirs, app.id))).toMatchObject({ code: 'not-found', detail: 'no such method' });
      expect(await rejection(s.management.resendConfirmation(tenant, user, session, app.id))).toMatchObject({
        code: 'invalid-state',
        detail: 'only phone numbers and email addresses get codes',
      });
      await s.management.confirm(tenant, user, session, app.id, totpCode(String(app.secret), clock.now()));
      const proved = await sessionOf(user, 'full', ['pwd', 'otp', 'mfa']);
      expect(await rejection(s.management.setupDetails(tenant, user, proved, app.id))).toMatchObject({ code: 'invalid-state' });
      // Another user's method is no method of this one's, for any change.
      expect(await rejection(s.management.update(tenant, other, theirs, app.id, { label: 'mine' }))).toMatchObject({ code: 'not-found' });
      expect(await rejection(s.management.remove(tenant, other, theirs, app.id))).toMatchObject({ code: 'not-found' });
    });

    it('asks for WebAuthn options only where the tenant allows WebAuthn', async () => {
      const user = await createUser(s, tenant);
      const session = await sessionOf(user, 'full', ['pwd']);
      expect(await rejection(s.management.webauthnOptions(withPolicy(tenant, { allowedMethods: ['totp'] }), user, session, 'passkey'))).toMatchObject({
        code: 'method-not-permitted',
      });
      expect(await s.management.webauthnOptions(tenant, user, session, 'security-key')).toMatchObject({ challenge: expect.any(String) });
    });
  });
  describe('a set-up belongs to the session that began it', () => {
    it('shows its secret, and confirms it, to that session alone: not to the password alone, an old session or the user’s other sessions', async () => {
      // The owner, registering: a registration session from the password, setting up an app.
      const user = await createUser(s, tenant);
      const owner = await sessionOf(user, 'register', ['pwd']);
      const app = await s.management.enrol(tenant, user, owner, 'totp', {});
      const code = () => totpCode(String(app.secret), clock.now());
      // Whoever else holds the password gets a registration session too; it sees no set-up of the owner's.
      const thief = await sessionOf(user, 'register', ['pwd']);
      const hidden = { code: 'not-found', detail: 'no such method' };
      expect(await rejection(s.management.setupDetails(tenant, user, thief, app.id))).toMatchObject(hidden);
      expect(await rejection(s.management.confirm(tenant, user, thief, app.id, code()))).toMatchObject(hidden);
      expect(await rejection(s.management.resendConfirmation(tenant, user, thief, app.id))).toMatchObject(hidden);
      expect((await s.credentials.get(tenant.id, user.id, app.id))?.state).toBe('pending');
      expect(await s.sessions.authenticate(thief.token)).toMatchObject({ scope: 'register' });
      // The owner finishes it.
      expect(await s.management.setupDetails(tenant, user, owner, app.id)).toMatchObject({ secret: app.secret });
      expect(await s.management.confirm(tenant, user, owner, app.id, code())).toEqual({ id: app.id, state: 'active' });

      // Later, a second app set up from a full session: a stolen older session (even with MFA) sees nothing of it.
      const stolen = await sessionOf(user, 'full', ['pwd', 'otp', 'mfa']);
      clock.advance(RECENT_SIGNIN_MS + 1000);
      const fresh = await sessionOf(user, 'full', ['pwd', 'otp', 'mfa']);
      const second = await s.management.enrol(tenant, user, fresh, 'totp', {});
      expect(await rejection(s.management.setupDetails(tenant, user, stolen, second.id))).toMatchObject({ code: 'reauthentication-required' });
      // The owner's other, recent session neither.
      const elsewhere = await sessionOf(user, 'full', ['pwd', 'otp', 'mfa']);
      expect(await rejection(s.management.setupDetails(tenant, user, elsewhere, second.id))).toMatchObject(hidden);
      expect(await s.management.setupDetails(tenant, user, fresh, second.id)).toMatchObject({ secret: second.secret });
    });

    it('pairs no device from a link whose session has ended since (the link itself needs none), and keeps no trace of the session once a set-up is done', async () => {
      const push = s.methods.get('push') as PushMethod;
      const phone = () => ({ publicKey: generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' }) as Record<string, unknown> });
      const token = (added: Record<string, unknown>) => String(added.pairingUrl).split('#pair=')[1]!;
      const user = await createUser(s, tenant);
      const session = await sessionOf(user, 'full', ['pwd']);
      const ended = await s.management.enrol(tenant, user, session, 'push', {});
      await s.sessions.revoke(session);
      expect(await rejection(push.pair(tenant, token(ended), phone()))).toMatchObject({ code: 'unauthenticated' });
      expect((await s.credentials.get(tenant.id, user.id, ended.id))?.state).toBe('pending');
      // From a live session the same pairs, and the method, active now, no longer names the session that set it up.
      const live = await sessionOf(user, 'full', ['pwd']);
      const added = await s.management.enrol(tenant, user, live, 'push', {});
      expect((await s.credentials.get(tenant.id, user.id, added.id))?.publicData.setupSession).toBe(live.id);
      await push.pair(tenant, token(added), phone());
      const paired = (await s.credentials.get(tenant.id, user.id, added.id))!;
      expect(paired.state).toBe('active');
      expect(paired.publicData).not.toHaveProperty('setupSession');
      const app = await s.management.enrol(tenant, user, await sessionOf(user, 'full', ['pwd', 'mfa']), 'totp', {});
      const owner = (await s.credentials.get(tenant.id, user.id, app.id))!.publicData.setupSession as string;
      await s.management.confirm(tenant, user, { ...live, id: owner, amr: ['pwd', 'mfa'] }, app.id, totpCode(String(app.secret), clock.now()));
      expect((await s.credentials.get(tenant.id, user.id, app.id))!.publicData).toEqual({});
    });

    it('writes no method for a session that has ended meanwhile (an administrator’s reset racing a new passkey)', async () => {
      const user = await createUser(s, tenant);
      const session = await sessionOf(user, 'full', ['pwd', 'hwk', 'mfa']);
      const authenticator = new SoftAuthenticator(ORIGIN, Buffer.alloc(16), true);
      const options = await s.management.webauthnOptions(tenant, user, session, 'passkey');
      // The session passed its checks at the start of the request; the reset comes before the key is written.
      const reset = await s.admin.resetMethods(tenant, 'admin:test', user.id);
      expect(reset.sessionsEnded).toBeGreaterThanOrEqual(1);
      const ended = { code: 'unauthenticated', detail: 'this session has ended; sign in again' };
      expect(await rejection(s.management.enrol(tenant, user, session, 'webauthn', { attestation: authenticator.register(options) } as never))).toMatchObject(
        ended,
      );
      expect(await rejection(s.management.enrol(tenant, user, session, 'recovery-codes', {}))).toMatchObject(ended);
      expect(await rejection(s.management.enrol(tenant, user, session, 'totp', {}))).toMatchObject(ended);
      expect(await s.credentials.listForUser(tenant.id, user.id)).toEqual([]);
      expect(await s.sessions.authenticate(session.token)).toBeUndefined();
    });
  });
  it(`throws a set-up away after ${CONFIRM_ATTEMPTS} wrong codes, so its secret cannot be guessed in the hour it waits`, async () => {
    const user = await createUser(s, tenant);
    const session = await sessionOf(user, 'full', ['pwd']);
    const app = await s.management.enrol(tenant, user, session, 'totp', {});
    const right = totpCode(String(app.secret), clock.now());
    const wrong = right === '000000' ? '000001' : '000000';
    for (let left = CONFIRM_ATTEMPTS - 1; left > 0; left--) {
      expect(await rejection(s.management.confirm(tenant, user, session, app.id, wrong))).toMatchObject({
        code: 'invalid-code',
        extra: { attemptsLeft: left },
      });
    }
    expect(await rejection(s.management.confirm(tenant, user, session, app.id, wrong))).toMatchObject({
      code: 'invalid-code',
      detail: 'too many wrong codes: this set-up is gone; add the method again',
      extra: { attemptsLeft: 0 },
    });
    expect(await s.credentials.get(tenant.id, user.id, app.id)).toBeUndefined();
    // Gone: the right code no longer confirms it. Another set-up of the user's counts afresh.
    expect(await rejection(s.management.confirm(tenant, user, session, app.id, right))).toMatchObject({ code: 'not-found' });
    const again = await s.management.enrol(tenant, user, session, 'totp', {});
    expect(await rejection(s.management.confirm(tenant, user, session, again.id, wrong))).toMatchObject({ extra: { attemptsLeft: CONFIRM_ATTEMPTS - 1 } });
    expect(await s.management.confirm(tenant, user, session, again.id, totpCode(String(again.secret), clock.now()))).toEqual({ id: again.id, state: 'active' });
  });
  describe('a sign-in finishing while an administrator resets the account', () => {
    const PASSWORD = 'correct horse battery staple';
    const ctx = { ip: '198.18.7.1', userAgent: 'reset-race' };

    it('keeps no session written after the reset ended the others, and lets a sign-in begun after it through', async () => {
      const user = await createUser(s, tenant, { passwordHash: await s.hasher.hash(PASSWORD) });
      const setup = await sessionOf(user, 'full', ['pwd']);
      const app = await s.management.enrol(tenant, user, setup, 'totp', {});
      await s.management.confirm(tenant, user, setup, app.id, totpCode(String(app.secret), clock.now()));
      clock.advance(30_000);
      const started = await s.signin.passwordStep(tenant, user.username, PASSWORD, ctx);
      expect(started.kind).toBe('factor');
      const flow = (started as { flow: string }).flow;
      // The worst moment: the verification has passed every check and is about to write its session when the reset runs.
      const create = s.sessions.create.bind(s.sessions);
      let resets = 0;
      s.sessions.create = async (input) => {
        if (resets++ === 0) await s.admin.resetMethods(tenant, 'admin:test', user.id);
        return create(input);
      };
      try {
        expect(await rejection(s.signin.verify(tenant, flow, 'totp', { code: totpCode(String(app.secret), clock.now()) }, ctx))).toMatchObject({
          code: 'flow-not-found',
        });
      } finally {
        s.sessions.create = create;
      }
      expect(resets).toBe(1);
      expect(await s.sessions.listActive(tenant.id, user.id)).toEqual([]);
      // The log says the sign-in was ended as it finished (its success was written with the session), and the flow is
      // gone for good: it is not put back for a retry as after a failed write.
      const log = (await s.events.list(tenant.id, { userId: user.id }, 10)).items.filter((e) => e.step === 'second-factor');
      expect(log.map((e) => [e.outcome, e.reason, e.method])).toEqual([
        ['failure', 'sessions_ended', 'totp'],
        ['success', 'ok', 'totp'],
      ]);
      expect(await s.ephemeral.get(`flow:${flow}`)).toBeUndefined();
      // A sign-in begun after the reset goes on as the reset meant: to registration, once the password is one set
      // since (the password as it was registers nothing after a reset).
      clock.advance(1);
      expect(await rejection(s.signin.passwordStep(tenant, user.username, PASSWORD, ctx))).toMatchObject({ code: 'password-cannot-register' });
      await s.users.setPasswordHash(tenant.id, user.id, await s.hasher.hash(PASSWORD));
      expect(await s.signin.passwordStep(tenant, user.username, PASSWORD, ctx)).toMatchObject({ kind: 'register' });
    });
  });
});
