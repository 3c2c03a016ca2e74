import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.ts';
import type { Services } from '../../src/server/services.ts';
import type { Tenant } from '../../src/directory/tenants.ts';
import type { User } from '../../src/directory/users.ts';
import { createUser, startCoreServices, type CoreServices } from './core-services.ts';

/**
 * A policy that stops allowing a method type strands the users whose every
 * method is of such a type: they sign in with a pass only. The policy page
 * says how many (twenty-fifth round found them sent to register instead).
 */
describe('users a policy would strand, on SQLite', () => {
  let core: CoreServices;
  let s: Services;
  let tenant: Tenant;
  let otherTenant: Tenant;
  const clock = new ManualClock(Date.UTC(2026, 11, 2, 9));
  const method = (user: User, type: string, state: 'active' | 'pending' = 'active', t: Tenant = tenant) =>
    s.credentials.insert({ tenantId: t.id, userId: user.id, type, label: type, state, secret: 'sealed-elsewhere' });

  beforeAll(async () => {
    core = await startCoreServices(clock);
    s = core.services;
    tenant = await s.tenants.create('strands');
    otherTenant = await s.tenants.create('strands-other');
  });
  afterAll(() => core?.stop());

  it('counts users with methods, none of them of an allowed type, once each, and no one else', async () => {
    const onlySms = await createUser(s, tenant);
    await method(onlySms, 'sms');
    await method(onlySms, 'sms');
    const smsAndTotp = await createUser(s, tenant);
    await method(smsAndTotp, 'sms');
    await method(smsAndTotp, 'totp');
    // A set-up under way is no method; nor is anything of a user without one, or of another tenant.
    const pendingTotp = await createUser(s, tenant);
    await method(pendingTotp, 'sms');
    await method(pendingTotp, 'totp', 'pending');
    await createUser(s, tenant);
    const disabled = await createUser(s, tenant);
    await method(disabled, 'sms');
    await s.users.update(tenant.id, disabled.id, { status: 'disabled' });
    const elsewhere = await createUser(s, otherTenant);
    await method(elsewhere, 'sms', 'active', otherTenant);

    expect(await s.admin.strandedBy(tenant, ['totp', 'webauthn', 'tap'])).toBe(2);
    expect(await s.admin.strandedBy(tenant, ['sms', 'totp'])).toBe(0);
    expect(await s.admin.strandedBy(tenant, ['totp'])).toBe(2);
    expect(await s.admin.strandedBy(tenant, [])).toBe(3);
    // Named, by username, for the administrator to issue passes to; the count is of all of them.
    const named = await s.admin.strandedUsers(tenant, ['totp', 'webauthn', 'tap'], 1);
    const both = [onlySms, pendingTotp].sort((a, b) => (a.username < b.username ? -1 : 1));
    expect(named).toEqual({ count: 2, users: [{ id: both[0]!.id, username: both[0]!.username }] });
    expect((await s.admin.strandedUsers(tenant, ['totp'], 10)).users.map((u) => u.id).sort()).toEqual([onlySms.id, pendingTotp.id].sort());
  });
});
