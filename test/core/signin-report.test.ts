import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.ts';
import type { Services } from '../../src/server/services.ts';
import type { Tenant } from '../../src/directory/tenants.ts';
import type { User } from '../../src/directory/users.ts';
import type { Session } from '../../src/sessions/sessions.ts';
import { endSessionsAndRemoveMethods } from '../../src/sessions/end-sessions-and-remove-methods.ts';
import { totpCode } from '../helpers/totp.ts';
import { createUser, freshSources, rejection, startCoreServices, type CoreServices } from './core-services.ts';

/**
 * "This wasn't me" at the level of its own promises: what a reported sign-in
 * takes back (the methods added since it, the password when none is left,
 * every other session), exactly at its edges, and what it leaves alone.
 */
describe('"this wasn\'t me" on SQLite', () => {
  let core: CoreServices;
  let s: Services;
  let tenant: Tenant;
  let otherTenant: Tenant;
  const clock = new ManualClock(Date.UTC(2026, 11, 2, 9));

  const newUser = async (t: Tenant = tenant): Promise<User> => createUser(s, t, { passwordHash: await s.hasher.hash('a password of theirs') });
  const open = (user: User, t: Tenant = tenant): Promise<{ token: string; session: Session }> =>
    s.sessions.create({ tenantId: t.id, userId: user.id, scope: 'full', amr: ['pwd', 'otp', 'mfa'], ip: '203.0.113.9', userAgent: 'core-test' });
  const method = (user: User, state: 'active' | 'pending' = 'active', t: Tenant = tenant) =>
    s.credentials.insert({ tenantId: t.id, userId: user.id, type: 'totp', label: 'app', state, secret: 'sealed-elsewhere' });
  /** A sign-in of the user now; its id. */
  const signin = async (user: User, outcome: 'success' | 'failure' = 'success', t: Tenant = tenant): Promise<string> => {
    await s.events.record({
      tenantId: t.id,
      userId: user.id,
      username: user.username,
      step: 'second-factor',
      outcome,
      reason: outcome === 'success' ? 'ok' : 'invalid_code',
      method: 'totp',
    });
    const page = await s.events.listForUser(t.id, user.id, 1);
    return page.items[0]!.id;
  };
  const methodIds = async (user: User, t: Tenant = tenant) => (await s.credentials.listForUser(t.id, user.id)).map((c) => c.id).sort();
  const live = async (token: string) => (await s.sessions.authenticate(token)) !== undefined;
  const hasPassword = async (user: User) => Boolean((await s.users.findByUsername(tenant.id, user.username))?.passwordHash);

  beforeAll(async () => {
    core = await startCoreServices(clock);
    s = core.services;
    tenant = await s.tenants.create('reports');
    otherTenant = await s.tenants.create('reports-other');
  });
  afterAll(() => core?.stop());

  it('takes back every method added since a sign-in that got in, pending or active, and keeps what was there before', async () => {
    const victim = await newUser();
    const own = await method(victim);
    clock.advance(1000);
    const theirs = await signin(victim);
    const added = await method(victim);
    const pending = await method(victim, 'pending');
    const attacker = await open(victim);
    clock.advance(60_000);
    const owner = await open(victim);
    // Someone else's methods and sessions, in this tenant and another, added at the same time.
    const bystander = await newUser();
    const bystanderMethod = await method(bystander);
    const bystanderSession = await open(bystander);
    const elsewhere = await newUser(otherTenant);
    const elsewhereMethod = await method(elsewhere, 'active', otherTenant);

    const outcome = await s.reports.report(tenant, victim, owner.session, theirs);

    // (The set-up under way ends with the other sessions, before the take-back counts.)
    expect(outcome).toEqual({ sessionsEnded: 1, methodsRemoved: 1, methodsLeft: 1, passRevoked: false });
    expect(await methodIds(victim)).toEqual([own.id]);
    expect([added.id, pending.id]).not.toContain(own.id);
    expect(await live(attacker.token)).toBe(false);
    expect(await live(owner.token)).toBe(true);
    expect(await hasPassword(victim)).toBe(true);
    expect(await methodIds(bystander)).toEqual([bystanderMethod.id]);
    expect(await live(bystanderSession.token)).toBe(true);
    expect(await methodIds(elsewhere, otherTenant)).toEqual([elsewhereMethod.id]);
    expect((await s.users.get(tenant.id, victim.id))?.flaggedAt).toBe(clock.now());
    const [entry] = await s.audit.list(tenant.id, { limit: 1, action: 'signin.reported', userId: victim.id });
    expect(entry).toMatchObject({
      actor: `user:${victim.id}`,
      targetUserId: victim.id,
      details: { eventId: theirs, sessionsEnded: 1, methodsRemoved: 1, methodsLeft: 1 },
    });
  });

  it('takes back nothing from a session of the password alone (a remembered browser): removing methods needs a second factor', async () => {
    const victim = await newUser();
    await method(victim);
    clock.advance(1000);
    const theirs = await signin(victim);
    const added = await method(victim);
    const other = await open(victim);
    const passwordOnly = await s.sessions.create({ tenantId: tenant.id, userId: victim.id, scope: 'full', amr: ['pwd'] });
    expect(await s.reports.report(tenant, victim, passwordOnly.session, theirs)).toEqual({
      sessionsEnded: 1,
      methodsRemoved: 0,
      methodsLeft: 2,
      passRevoked: false,
    });
    expect(await methodIds(victim)).toContain(added.id);
    expect(await live(other.token)).toBe(false);
  });

  it('counts a method added in the very millisecond of the sign-in as added since, and one a millisecond before as there before', async () => {
    const victim = await newUser();
    const before = await method(victim);
    clock.advance(1);
    const theirs = await signin(victim);
    const same = await method(victim);
    const owner = await open(victim);
    clock.advance(1);
    expect(await s.reports.report(tenant, victim, owner.session, theirs)).toMatchObject({ methodsRemoved: 1 });
    expect(await methodIds(victim)).toEqual([before.id]);
    expect(same.id).not.toBe(before.id);
  });

  it('takes nothing back for a sign-in that failed: the other sessions end, the methods stay', async () => {
    const victim = await newUser();
    await method(victim);
    const tried = await signin(victim, 'failure');
    clock.advance(1000);
    const addedSince = await method(victim);
    const other = await open(victim);
    const owner = await open(victim);
    expect(await s.reports.report(tenant, victim, owner.session, tried)).toEqual({ sessionsEnded: 1, methodsRemoved: 0, methodsLeft: 2, passRevoked: false });
    expect(await methodIds(victim)).toContain(addedSince.id);
    expect(await live(other.token)).toBe(false);
  });

  it('never touches the password; with no method left, the password registers nothing until it has changed since the report', async () => {
    const PASSWORD = 'a password of theirs';
    const NEXT = 'a new password of theirs';
    const victim = await newUser();
    const owner = await open(victim);
    clock.advance(1000);
    const theirs = await signin(victim);
    // The only method was added since (the victim's own was removed by whoever signed in).
    await method(victim);
    expect(await s.reports.report(tenant, victim, owner.session, theirs)).toEqual({ sessionsEnded: 0, methodsRemoved: 1, methodsLeft: 0, passRevoked: false });
    expect(await methodIds(victim)).toEqual([]);
    expect(await hasPassword(victim)).toBe(true);
    expect(await live(owner.token)).toBe(true);

    const sources = freshSources('198.20', 'after-report');
    expect(await rejection(s.signin.passwordStep(tenant, victim.username, PASSWORD, sources()))).toMatchObject({
      code: 'password-cannot-register',
      detail: expect.stringContaining('reported as not yours'),
    });
    expect((await s.events.listForUser(tenant.id, victim.id, 1)).items[0]).toMatchObject({
      step: 'password',
      method: 'password',
      outcome: 'failure',
      reason: 'password_predates_report',
    });
    // A password set in the very millisecond of the report is not one set since.
    await s.users.setPasswordHash(tenant.id, victim.id, await s.hasher.hash(PASSWORD));
    expect(await rejection(s.signin.passwordStep(tenant, victim.username, PASSWORD, sources()))).toMatchObject({ code: 'password-cannot-register' });
    clock.advance(1);
    await s.users.setPasswordHash(tenant.id, victim.id, await s.hasher.hash(NEXT));
    expect((await s.signin.passwordStep(tenant, victim.username, NEXT, sources())).kind).toBe('register');
  });

  it('lets an account never reported register with its password, its date unknown (a copy from before passwords were dated)', async () => {
    const PASSWORD = 'a password of theirs';
    const undated = await newUser();
    await s.durable.db.updateTable('users').set({ password_changed_at: null }).where('id', '=', undated.id).execute();
    expect((await s.signin.passwordStep(tenant, undated.username, PASSWORD, freshSources('198.21', 'undated')())).kind).toBe('register');
  });

  it('keeps the password of an account that had no method before and reports a sign-in that added none', async () => {
    const passwordless = await createUser(s, tenant);
    const owner = await open(passwordless);
    clock.advance(1000);
    const theirs = await signin(passwordless);
    await method(passwordless);
    expect(await s.reports.report(tenant, passwordless, owner.session, theirs)).toEqual({
      sessionsEnded: 0,
      methodsRemoved: 1,
      methodsLeft: 0,
      passRevoked: false,
    });

    const bare = await newUser();
    const bareOwner = await open(bare);
    clock.advance(1000);
    const bareSignin = await signin(bare);
    expect(await s.reports.report(tenant, bare, bareOwner.session, bareSignin)).toEqual({
      sessionsEnded: 0,
      methodsRemoved: 0,
      methodsLeft: 0,
      passRevoked: false,
    });
    expect(await hasPassword(bare)).toBe(true);
  });

  it("refuses another user's sign-in, another tenant's, and a session that did not sign in lately", async () => {
    const victim = await newUser();
    await method(victim);
    const someoneElse = await newUser();
    const notTheirs = await signin(someoneElse);
    const owner = await open(victim);
    expect(await rejection(s.reports.report(tenant, victim, owner.session, notTheirs))).toMatchObject({ code: 'not-found' });
    expect(await methodIds(someoneElse)).toEqual([]);
    const abroad = await newUser(otherTenant);
    const abroadSignin = await signin(abroad, 'success', otherTenant);
    expect(await rejection(s.reports.report(tenant, victim, owner.session, abroadSignin))).toMatchObject({ code: 'not-found' });

    const theirs = await signin(victim);
    const stale = await open(victim);
    clock.advance(11 * 60_000);
    const added = await method(victim);
    expect(await rejection(s.reports.report(tenant, victim, stale.session, theirs))).toMatchObject({ code: 'reauthentication-required' });
    expect(await methodIds(victim)).toContain(added.id);
  });

  it('leaves no session to a sign-in with the taken-back method that began after the first end and wrote its session after the take-back', async () => {
    const PASSWORD = 'the attacker knows this one';
    const victim = await createUser(s, tenant, { passwordHash: await s.hasher.hash(PASSWORD) });
    await method(victim);
    clock.advance(1000);
    const theirs = await signin(victim);
    const totp = s.methods.get('totp')!;
    const { credential, reveal } = await totp.enrol(tenant, victim, { label: 'theirs' } as never);
    const secret = (reveal as { secret: string }).secret;
    expect(await totp.confirm!(credential, totpCode(secret, clock.now()), 'any')).toBe(true);
    clock.advance(30_000);
    const owner = await open(victim);

    // Once the other sessions have ended (their mark set), the attacker starts a sign-in and sends the code of
    // their authenticator, still there; its session is written only after the report has taken the methods back.
    let reportDone: Promise<unknown> = Promise.resolve();
    let atWrite!: () => void;
    const reachedWrite = new Promise<void>((resolve) => (atWrite = resolve));
    const create = s.sessions.create.bind(s.sessions);
    s.sessions.create = async (input) => {
      if (input.userId === victim.id) {
        atWrite();
        await reportDone;
      }
      return create(input);
    };
    let racing: Promise<unknown> | undefined;
    s.sessions.afterAllEnded(async (_tenantId, userId) => {
      if (userId !== victim.id || racing) return;
      clock.advance(1);
      const sources = freshSources('198.19', 'race');
      const step = await s.signin.passwordStep(tenant, victim.username, PASSWORD, sources());
      expect(step.kind).toBe('factor');
      racing = s.signin
        .verify(tenant, (step as { flow: string }).flow, credential.id, { code: totpCode(secret, clock.now()) }, sources())
        .catch((err: unknown) => err);
      await reachedWrite;
    });
    try {
      const reporting = s.reports.report(tenant, victim, owner.session, theirs);
      reportDone = reporting;
      const outcome = await reporting;
      expect(outcome.methodsRemoved).toBe(1);
      expect(await racing).toMatchObject({ code: 'flow-not-found' });
      expect((await s.sessions.listActive(tenant.id, victim.id)).map((a) => a.id)).toEqual([owner.session.id]);
    } finally {
      s.sessions.create = create;
    }
  });

  it('takes back the method a reported sign-in got in with, added before it by an earlier sign-in, and no other', async () => {
    // Found (twenty-first round): the attacker's first sign-in added an authenticator; the owner reported only a later
    // sign-in made with it, and the authenticator, older than that sign-in, stayed.
    const PASSWORD = 'the attacker knows this one too';
    const victim = await createUser(s, tenant, { passwordHash: await s.hasher.hash(PASSWORD) });
    const own = await method(victim);
    const totp = s.methods.get('totp')!;
    const { credential, reveal } = await totp.enrol(tenant, victim, { label: 'theirs' } as never);
    const secret = (reveal as { secret: string }).secret;
    expect(await totp.confirm!(credential, totpCode(secret, clock.now()), 'any')).toBe(true);
    const bystander = await newUser();
    const bystanderMethod = await method(bystander);
    clock.advance(60_000);
    const sources = freshSources('198.23', 'used-method');
    const step = await s.signin.passwordStep(tenant, victim.username, PASSWORD, sources());
    await s.signin.verify(tenant, (step as { flow: string }).flow, credential.id, { code: totpCode(secret, clock.now()) }, sources());
    const [theirs] = (await s.events.listForUser(tenant.id, victim.id, 1)).items;
    expect(theirs).toMatchObject({ step: 'second-factor', outcome: 'success', method: 'totp' });
    const stored = await s.durable.db.selectFrom('signin_events').select('credential_id').where('id', '=', theirs!.id).executeTakeFirstOrThrow();
    expect(stored.credential_id).toBe(credential.id);
    clock.advance(60_000);
    const owner = await open(victim);

    expect(await s.reports.report(tenant, victim, owner.session, theirs!.id)).toEqual({
      sessionsEnded: 1,
      methodsRemoved: 1,
      methodsLeft: 1,
      passRevoked: false,
    });
    expect(await methodIds(victim)).toEqual([own.id]);
    expect(await methodIds(bystander)).toEqual([bystanderMethod.id]);
    // A sign-in whose method was the other user's (an event naming a credential not the user's) removes nothing of theirs.
    const mine = await signin(victim);
    await s.durable.db.updateTable('signin_events').set({ credential_id: bystanderMethod.id }).where('id', '=', mine).execute();
    clock.advance(1000);
    const again = await open(victim);
    expect(await s.reports.report(tenant, victim, again.session, mine)).toMatchObject({ methodsRemoved: 0 });
    expect(await methodIds(bystander)).toEqual([bystanderMethod.id]);
  });

  it('revokes the Temporary Access Pass a reported sign-in was made with, and not one issued after it', async () => {
    // Found (twenty-third round): a thief signed in with a multi-use pass; after the owner's report and new
    // password the same pass signed them in again.
    const sources = freshSources('198.24', 'reported-pass');
    const victim = await newUser();
    await method(victim);
    const first = await s.admin.issuePass(tenant, 'cli', victim.id, { minutes: 480, oneTime: false });
    clock.advance(1000);
    expect(await s.signin.tapStep(tenant, victim.username, first.code, sources())).toMatchObject({ kind: 'done' });
    const [withPass] = (await s.events.listForUser(tenant.id, victim.id, 1)).items;
    expect(withPass).toMatchObject({ method: 'tap', outcome: 'success' });
    clock.advance(60_000);
    const owner = await open(victim);
    expect(await s.reports.report(tenant, victim, owner.session, withPass!.id)).toEqual({
      sessionsEnded: 1,
      methodsRemoved: 0,
      methodsLeft: 1,
      passRevoked: true,
    });
    expect(await s.passes.active(tenant.id, victim.id)).toBeUndefined();
    clock.advance(1000);
    expect(await rejection(s.signin.tapStep(tenant, victim.username, first.code, sources()))).toMatchObject({ code: 'invalid-credentials' });

    // A pass the administrator issued after the reported sign-in (to let the owner back in) stays.
    const other = await newUser();
    await method(other);
    const used = await s.admin.issuePass(tenant, 'cli', other.id, { minutes: 480, oneTime: false });
    clock.advance(1000);
    await s.signin.tapStep(tenant, other.username, used.code, sources());
    const [otherWithPass] = (await s.events.listForUser(tenant.id, other.id, 1)).items;
    clock.advance(1000);
    await s.admin.issuePass(tenant, 'cli', other.id, { minutes: 60, oneTime: true });
    const otherOwner = await open(other);
    expect(await s.reports.report(tenant, other, otherOwner.session, otherWithPass!.id)).toMatchObject({ passRevoked: false });
    expect(await s.passes.active(tenant.id, other.id)).toBeDefined();
  });

  it('deals with a sign-in once: reported again, it takes back nothing the owner has added since, nor ends their sessions', async () => {
    const victim = await newUser();
    clock.advance(1000);
    const theirs = await signin(victim);
    await method(victim);
    const owner = await open(victim);
    expect(await s.reports.report(tenant, victim, owner.session, theirs)).toMatchObject({ methodsRemoved: 1 });
    const flaggedAt = (await s.users.findByUsername(tenant.id, victim.username))!.flaggedAt;
    clock.advance(1000);
    const ownersNew = await method(victim);
    const elsewhere = await open(victim);
    clock.advance(1000);
    expect(await s.reports.report(tenant, victim, owner.session, theirs)).toEqual({ sessionsEnded: 0, methodsRemoved: 0, methodsLeft: 1, passRevoked: false });
    expect(await methodIds(victim)).toEqual([ownersNew.id]);
    expect(await live(elsewhere.token)).toBe(true);
    // Nor does it flag the account anew (a password changed since the first report stays one set since).
    expect((await s.users.findByUsername(tenant.id, victim.username))!.flaggedAt).toBe(flaggedAt);
  });

  it('reported after a later report, a sign-in takes back only what came before that report, and moves no flag', async () => {
    // Found (twenty-sixth round): the second step of a sign-in reported first, then its password step: the second
    // report removed the authenticator the owner had added since, and flagged the account anew after their new
    // password, which then opened nothing.
    const victim = await newUser();
    const passwordStep = await signin(victim);
    clock.advance(5000);
    const secondStep = await signin(victim);
    const theirs = await method(victim);
    clock.advance(1000);
    const owner = await open(victim);
    expect(await s.reports.report(tenant, victim, owner.session, secondStep)).toMatchObject({ methodsRemoved: 1, methodsLeft: 0 });
    const flaggedAt = (await s.users.findByUsername(tenant.id, victim.username))!.flaggedAt;
    clock.advance(1000);
    await s.users.setPasswordHash(tenant.id, victim.id, await s.hasher.hash('the owner’s new one'));
    const ownersNew = await method(victim);
    clock.advance(1000);
    expect(await s.reports.report(tenant, victim, owner.session, passwordStep)).toMatchObject({ methodsRemoved: 0, methodsLeft: 1 });
    expect(await methodIds(victim)).toEqual([ownersNew.id]);
    expect(theirs.id).not.toBe(ownersNew.id);
    expect((await s.users.findByUsername(tenant.id, victim.username))!.flaggedAt).toBe(flaggedAt);
    // What came between the older sign-in and the report goes, though: one of the intruder's left after a report
    // of their later sign-in only.
    const other = await newUser();
    const earlier = await signin(other);
    clock.advance(1000);
    const between = await method(other);
    clock.advance(1000);
    const later = await signin(other);
    clock.advance(1000);
    const otherOwner = await open(other);
    expect(await s.reports.report(tenant, other, otherOwner.session, later)).toMatchObject({ methodsRemoved: 0 });
    clock.advance(1000);
    const otherNew = await method(other);
    expect(await s.reports.report(tenant, other, otherOwner.session, earlier)).toMatchObject({ methodsRemoved: 1 });
    expect(await methodIds(other)).toEqual([otherNew.id]);
    expect(between.id).not.toBe(otherNew.id);
  });

  it('where MFA is optional, leaves the password of a reported account with no method signing in to nothing until changed', async () => {
    // Found (twenty-third round): the thief signed straight back in with the password alone, added an authenticator
    // of their own and shut the owner out.
    const optional = await s.tenants.create('reports-optional');
    const relaxed = { ...optional, policy: { ...optional.policy, mfaRequired: false } };
    const PASSWORD = 'a password of theirs';
    const victim = await newUser(relaxed);
    const sources = freshSources('198.25', 'optional');
    const theirs = await signin(victim, 'success', relaxed);
    await method(victim, 'active', relaxed);
    clock.advance(1000);
    const owner = await open(victim, relaxed);
    expect(await s.reports.report(relaxed, victim, owner.session, theirs)).toMatchObject({ methodsRemoved: 1, methodsLeft: 0 });
    clock.advance(1000);
    expect(await rejection(s.signin.passwordStep(relaxed, victim.username, PASSWORD, sources()))).toMatchObject({ code: 'password-cannot-register' });
    // Nor once an administrator has issued the owner a pass (twenty-fourth round: the pass made the choices
    // non-empty, and the password alone signed the thief in): the pass is the owner's way in, not the password.
    const pass = await s.admin.issuePass(relaxed, 'cli', victim.id, { minutes: 60, oneTime: true });
    clock.advance(1);
    expect(await rejection(s.signin.passwordStep(relaxed, victim.username, PASSWORD, sources()))).toMatchObject({ code: 'password-cannot-register' });
    expect(await s.signin.tapStep(relaxed, victim.username, pass.code, sources())).toMatchObject({ kind: 'done' });
    clock.advance(1);
    await s.users.setPasswordHash(relaxed.id, victim.id, await s.hasher.hash('changed since the report'));
    expect(await s.signin.passwordStep(relaxed, victim.username, 'changed since the report', sources())).toMatchObject({ kind: 'done' });
  });

  it('ends every session and removes every method when no scope is given (a reset)', async () => {
    const user = await newUser();
    await method(user);
    await method(user);
    const one = await open(user);
    const two = await open(user);
    const bystander = await newUser();
    const kept = await open(bystander);
    const now = clock.now();
    const result = await s.durable.db.transaction().execute(async (trx) => endSessionsAndRemoveMethods(trx, tenant.id, user.id, now));
    expect(result).toEqual({ removed: 2, ended: 2 });
    expect(await methodIds(user)).toEqual([]);
    expect(await live(one.token)).toBe(false);
    expect(await live(two.token)).toBe(false);
    expect(await live(kept.token)).toBe(true);
    // Sessions already ended are not counted again.
    expect(await s.durable.db.transaction().execute(async (trx) => endSessionsAndRemoveMethods(trx, tenant.id, user.id, now))).toEqual({
      removed: 0,
      ended: 0,
    });
  });
});
