import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.ts';
import type { Services } from '../../src/server/services.ts';
import type { Tenant } from '../../src/directory/tenants.ts';
import type { User } from '../../src/directory/users.ts';
import { whyPasswordCannotRegister } from '../../src/signin/password-registers.ts';
import { createUser, freshSources, rejection, startCoreServices, type CoreServices } from './core-services.ts';

/**
 * An administrator's reset of a user's methods, at the level of its promise:
 * the user registers again, but not with the password as it stood (whoever
 * else knew it would register first). A pass, or a password set since, does.
 */
describe('a methods reset on SQLite', () => {
  let core: CoreServices;
  let s: Services;
  let tenant: Tenant;
  let otherTenant: Tenant;
  const clock = new ManualClock(Date.UTC(2026, 11, 2, 9));
  const PASSWORD = 'a password of theirs';
  const sources = freshSources('198.22', 'methods-reset');

  const newUser = async (t: Tenant = tenant): Promise<User> => createUser(s, t, { passwordHash: await s.hasher.hash(PASSWORD) });
  const method = (user: User, t: Tenant = tenant) =>
    s.credentials.insert({ tenantId: t.id, userId: user.id, type: 'totp', label: 'app', state: 'active', secret: 'sealed-elsewhere' });
  const signin = (user: User, password = PASSWORD, t: Tenant = tenant) => s.signin.passwordStep(t, user.username, password, sources());
  const lastEvent = async (user: User) => (await s.events.listForUser(tenant.id, user.id, 1)).items[0];

  beforeAll(async () => {
    core = await startCoreServices(clock);
    s = core.services;
    tenant = await s.tenants.create('resets');
    otherTenant = await s.tenants.create('resets-other');
  });
  afterAll(() => core?.stop());

  it('leaves the password as it stood registering nothing, and says why only to whoever knows it', async () => {
    const user = await newUser();
    await method(user);
    clock.advance(1000);
    expect(await s.admin.resetMethods(tenant, 'cli', user.id)).toEqual({ removed: 1, sessionsEnded: 0 });
    clock.advance(1000);

    expect(await rejection(signin(user))).toMatchObject({ code: 'password-cannot-register', detail: expect.stringContaining('methods were reset') });
    expect(await lastEvent(user)).toMatchObject({ step: 'password', method: 'password', outcome: 'failure', reason: 'password_predates_reset' });
    // A wrong password hears what any wrong password hears.
    expect(await rejection(signin(user, 'not their password'))).toMatchObject({ code: 'invalid-credentials' });
    expect(await s.sessions.listActive(tenant.id, user.id)).toEqual([]);
  });

  it('registers with a password set after the reset (not in its very millisecond), or an undated one never reset', async () => {
    const user = await newUser();
    await s.admin.resetMethods(tenant, 'cli', user.id);
    await s.users.setPasswordHash(tenant.id, user.id, await s.hasher.hash(PASSWORD));
    expect(await rejection(signin(user))).toMatchObject({ code: 'password-cannot-register' });
    clock.advance(1);
    await s.users.setPasswordHash(tenant.id, user.id, await s.hasher.hash('set after the reset'));
    expect(await signin(user, 'set after the reset')).toMatchObject({ kind: 'register' });

    // A password of unknown date counts as set before a reset...
    const undated = await newUser();
    await s.durable.db.updateTable('users').set({ password_changed_at: null }).where('id', '=', undated.id).execute();
    clock.advance(1);
    await s.admin.resetMethods(tenant, 'cli', undated.id);
    expect(await rejection(signin(undated))).toMatchObject({ code: 'password-cannot-register' });
    // ...but an account that must register for another reason than a reset (a revoked token took back its only
    // method) still registers with it.
    const takenBack = await newUser();
    await s.users.update(tenant.id, takenBack.id, { mustRegister: true });
    expect(await signin(takenBack)).toMatchObject({ kind: 'register' });
  });

  it('issues a pass with the reset, on request, and the pass registers', async () => {
    const user = await newUser();
    await method(user);
    clock.advance(1000);
    const reset = await s.admin.resetMethods(tenant, 'user:an-administrator', user.id, { pass: { oneTime: true } });
    // (A sign-in begun in the very millisecond the reset ended the sessions counts as one it ended.)
    clock.advance(1);
    expect(reset).toEqual({ removed: 1, sessionsEnded: 0, pass: { code: expect.any(String), expiresAt: expect.any(String), oneTime: true } });
    // The password alone now only leads to asking for the pass.
    expect(await signin(user)).toMatchObject({ kind: 'factor', methods: [{ type: 'tap' }] });
    const step = await s.signin.tapStep(tenant, user.username, reset.pass!.code, sources());
    expect(step).toMatchObject({ kind: 'register' });
    const entries = (await s.audit.list(tenant.id, { limit: 10, userId: user.id })).map((e) => e.action);
    expect(entries).toEqual(expect.arrayContaining(['methods.reset', 'tap.issued']));
  });

  it('refuses a pass it cannot give before anything is removed: for one’s own account, or a disabled one', async () => {
    const own = await newUser();
    const ownMethod = await method(own);
    expect(await rejection(s.admin.resetMethods(tenant, `user:${own.id}`, own.id, { pass: {} }))).toMatchObject({ code: 'forbidden' });
    const disabled = await newUser();
    const disabledMethod = await method(disabled);
    await s.users.update(tenant.id, disabled.id, { status: 'disabled' });
    expect(await rejection(s.admin.resetMethods(tenant, 'cli', disabled.id, { pass: {} }))).toMatchObject({ code: 'invalid-state' });
    // Nor a pass the policy does not allow (twenty-fourth round: the reset had run when the pass was refused).
    const kept = await newUser();
    const keptMethod = await method(kept);
    const { minMinutes, maxMinutes } = tenant.policy.tap;
    for (const minutes of [minMinutes - 1, maxMinutes + 1, 1.5]) {
      expect(await rejection(s.admin.resetMethods(tenant, 'cli', kept.id, { pass: { minutes } }))).toMatchObject({
        code: 'invalid-request',
        detail: `a Temporary Access Pass lasts from ${minMinutes} to ${maxMinutes} minutes in this organisation`,
      });
    }
    const noPasses = { ...tenant, policy: { ...tenant.policy, allowedMethods: tenant.policy.allowedMethods.filter((m) => m !== 'tap') } };
    expect(await rejection(s.admin.resetMethods(noPasses, 'cli', kept.id, { pass: {} }))).toMatchObject({
      code: 'method-not-permitted',
      detail: 'this organisation does not allow Temporary Access Passes',
    });
    expect((await s.credentials.listForUser(tenant.id, kept.id)).map((c) => c.id)).toEqual([keptMethod.id]);
    expect((await s.users.get(tenant.id, kept.id))!.mustRegister).toBe(false);
    expect((await s.credentials.listForUser(tenant.id, own.id)).map((c) => c.id)).toEqual([ownMethod.id]);
    expect((await s.credentials.listForUser(tenant.id, disabled.id)).map((c) => c.id)).toEqual([disabledMethod.id]);
    // Without a pass, one's own reset goes ahead (another administrator gives the pass).
    expect(await s.admin.resetMethods(tenant, `user:${own.id}`, own.id)).toMatchObject({ removed: 1 });
  });

  it('leaves other users and other tenants registering as before', async () => {
    const user = await newUser();
    const bystander = await newUser();
    const elsewhere = await newUser(otherTenant);
    await s.users.update(tenant.id, bystander.id, { mustRegister: true });
    await s.users.update(otherTenant.id, elsewhere.id, { mustRegister: true });
    clock.advance(1);
    await s.admin.resetMethods(tenant, 'cli', user.id);
    expect(await signin(bystander)).toMatchObject({ kind: 'register' });
    expect(await signin(elsewhere, PASSWORD, otherTenant)).toMatchObject({ kind: 'register' });
  });

  it('names the later of a report and a reset the password predates, each at its very millisecond', () => {
    const at = 1_000;
    expect(whyPasswordCannotRegister({ flaggedAt: null, methodsResetAt: null, passwordChangedAt: null })).toBeUndefined();
    expect(whyPasswordCannotRegister({ flaggedAt: null, methodsResetAt: at, passwordChangedAt: at })).toBe('password_predates_reset');
    expect(whyPasswordCannotRegister({ flaggedAt: null, methodsResetAt: at, passwordChangedAt: at + 1 })).toBeUndefined();
    expect(whyPasswordCannotRegister({ flaggedAt: at, methodsResetAt: null, passwordChangedAt: at })).toBe('password_predates_report');
    expect(whyPasswordCannotRegister({ flaggedAt: at, methodsResetAt: at + 5, passwordChangedAt: at + 1 })).toBe('password_predates_reset');
    expect(whyPasswordCannotRegister({ flaggedAt: at + 5, methodsResetAt: at, passwordChangedAt: at + 1 })).toBe('password_predates_report');
    expect(whyPasswordCannotRegister({ flaggedAt: at, methodsResetAt: at, passwordChangedAt: null })).toBe('password_predates_report');
  });
});
