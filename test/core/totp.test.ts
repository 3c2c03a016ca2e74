import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.ts';
import type { Services } from '../../src/server/services.ts';
import type { Tenant } from '../../src/directory/tenants.ts';
import type { User } from '../../src/directory/users.ts';
import { secretContext, type Credential } from '../../src/methods/credentials.ts';
import type { Method } from '../../src/methods/method.ts';
import { createUser, startCoreServices, type CoreServices } from './core-services.ts';
import { totpCode } from '../helpers/totp.ts';

/**
 * Authenticator apps (methods/totp/totp-method.ts) at the level of the method:
 * the code window, each step used once and only forward, the pending set-up's
 * lifetime, the free answer for the code just used. Fast enough for `npm run mutate`.
 */
const STEP = 30_000;

describe('authenticator apps (TOTP) on SQLite', () => {
  let core: CoreServices;
  let s: Services;
  let tenant: Tenant;
  // In the middle of a step, so a few seconds either way stay in it.
  const clock = new ManualClock(Date.UTC(2026, 10, 30, 9, 0, 15));
  const totp = (): Method => s.methods.get('totp')!;
  const newUser = (): Promise<User> => createUser(s, tenant);
  const enrolled = async (user: User, label?: string) => {
    const { credential, reveal } = await totp().enrol(tenant, user, { ...(label !== undefined ? { label } : {}) } as never);
    return { credential, secret: (reveal as { secret: string }).secret, reveal: reveal as { secret: string; otpauthUri: string; qrCodeSvg: string } };
  };
  const active = async (user: User) => {
    const { credential, secret } = await enrolled(user);
    expect(await totp().confirm!(credential, totpCode(secret, clock.now()), 'any')).toBe(true);
    clock.advance(STEP);
    const fresh = (await s.credentials.get(tenant.id, user.id, credential.id))!;
    expect(fresh.state).toBe('active');
    return { credential: fresh, secret };
  };
  const reload = async (c: Credential) => (await s.credentials.get(c.tenantId, c.userId, c.id))!;

  beforeAll(async () => {
    core = await startCoreServices(clock);
    s = core.services;
    tenant = await s.tenants.create('totp', 'Acme TOTP');
  });
  afterAll(() => core?.stop());

  it('sets up a pending app with a sealed 160-bit secret, shown as text, otpauth URI and QR code', async () => {
    const user = await newUser();
    const { credential, secret, reveal } = await enrolled(user, '  Work phone  ');
    expect(credential).toMatchObject({ type: 'totp', state: 'pending', label: 'Work phone', userId: user.id, tenantId: tenant.id });
    expect(secret).toMatch(/^[A-Z2-7]{32}$/);
    expect(credential.secret).not.toContain(secret);
    // Sealed to this credential as a TOTP secret: it opens under that context only, not another method's or credential's.
    expect(s.keyRing.open(credential.secret!, secretContext('totp', credential.id)).toString('utf8')).toBe(secret);
    expect(() => s.keyRing.open(credential.secret!, secretContext('sms', credential.id))).toThrow();
    expect(reveal.otpauthUri).toBe(`otpauth://totp/Acme%20TOTP:${user.username}?issuer=Acme%20TOTP&secret=${secret}&algorithm=SHA1&digits=6&period=30`);
    expect(reveal.qrCodeSvg).toMatch(/^<svg/);
    expect(await totp().reveal!(tenant, user, credential)).toEqual(reveal);
    expect((await enrolled(user, '   ')).credential.label).toBe('Authenticator app');
    expect((await enrolled(user)).credential.label).toBe('Authenticator app');
  });

  it('confirms a set-up with a current code within the hour, and not with a wrong one', async () => {
    const user = await newUser();
    const { credential, secret } = await enrolled(user);
    expect(await totp().confirm!(credential, '12345', 'any')).toBe(false);
    expect(await totp().confirm!(credential, totpCode(secret, clock.now() + 2 * STEP), 'any')).toBe(false);
    expect((await reload(credential)).state).toBe('pending');
    expect(await totp().confirm!(credential, totpCode(secret, clock.now()), 'any')).toBe(true);
    expect((await reload(credential)).state).toBe('active');

    const late = await enrolled(user);
    clock.advance(60 * 60_000);
    expect(await totp().confirm!(late.credential, totpCode(late.secret, clock.now()), 'any')).toBe(true);
    const later = await enrolled(user);
    clock.advance(60 * 60_000 + 1);
    expect(await totp().confirm!(later.credential, totpCode(later.secret, clock.now()), 'any')).toBe(false);
    expect((await reload(later.credential)).state).toBe('pending');
  });

  it('accepts the code of this step and of one step either side, not two', async () => {
    const user = await newUser();
    const { credential, secret } = await active(user);
    // The confirming code's step (now - 1) is spent: move one more step on.
    clock.advance(STEP);
    expect(await totp().verify([credential], { code: totpCode(secret, clock.now() - 2 * STEP) }, {} as never)).toBeUndefined();
    expect(await totp().verify([credential], { code: totpCode(secret, clock.now() + 2 * STEP) }, {} as never)).toBeUndefined();
    expect(await totp().verify([credential], { code: totpCode(secret, clock.now() - STEP) }, {} as never)).toMatchObject({
      credential: { id: credential.id },
      amr: ['otp'],
    });
    clock.advance(STEP);
    expect(await totp().verify([credential], { code: totpCode(secret, clock.now()) }, {} as never)).toMatchObject({ amr: ['otp'] });
    clock.advance(STEP);
    expect(await totp().verify([credential], { code: totpCode(secret, clock.now() + STEP) }, {} as never)).toMatchObject({ amr: ['otp'] });
    expect(await totp().verify([credential], {}, {} as never)).toBeUndefined();
    for (const bad of ['', '12345', '1234567', 'abcdef', ` ${totpCode(secret, clock.now() + 2 * STEP)}`]) {
      expect(await totp().verify([credential], { code: bad }, {} as never), bad).toBeUndefined();
    }
  });

  it('uses each step once and moves only forward: a later code spends the earlier ones', async () => {
    const user = await newUser();
    const { credential, secret } = await active(user);
    const now = totpCode(secret, clock.now());
    expect(await totp().verify([credential], { code: now }, {} as never)).toBeDefined();
    expect(await totp().verify([credential], { code: now }, {} as never)).toBeUndefined();
    const step = Math.floor(clock.now() / STEP);
    expect((await reload(credential)).lastStep).toBe(step);
    expect((await reload(credential)).lastUsedAt).toBe(clock.now());
    // The next step's code (one step ahead) spends this one and the one before.
    expect(await totp().verify([credential], { code: totpCode(secret, clock.now() + STEP) }, {} as never)).toBeDefined();
    expect((await reload(credential)).lastStep).toBe(step + 1);
    expect(await totp().verify([credential], { code: totpCode(secret, clock.now() - STEP) }, {} as never)).toBeUndefined();
    clock.advance(2 * STEP);
    expect(await totp().verify([credential], { code: totpCode(secret, clock.now()) }, {} as never)).toBeDefined();
  });

  it("tries each of the user's apps", async () => {
    const user = await newUser();
    const first = await active(user);
    const second = await active(user);
    const ok = await totp().verify([first.credential, second.credential], { code: totpCode(second.secret, clock.now()) }, {} as never);
    expect(ok?.credential.id).toBe(second.credential.id);
  });

  it('tells the code last used, while it can still be on screen, and when the next one shows', async () => {
    const user = await newUser();
    const { credential, secret } = await active(user);
    const used = totpCode(secret, clock.now());
    expect(await totp().justUsed!([credential], used)).toBeUndefined();
    await totp().verify([credential], { code: used }, {} as never);
    const fresh = await reload(credential);
    // 15 s into the step: the next code shows in 15 s.
    expect(await totp().justUsed!([fresh], used)).toEqual({ nextInSeconds: 15 });
    expect(await totp().justUsed!([fresh], totpCode(secret, clock.now() + STEP))).toBeUndefined();
    expect(await totp().justUsed!([fresh], `${used}0`)).toBeUndefined();
    expect(await totp().justUsed!([fresh], used.slice(1))).toBeUndefined();
    clock.advance(STEP);
    expect(await totp().justUsed!([fresh], used)).toEqual({ nextInSeconds: 0 });
    clock.advance(STEP);
    expect(await totp().justUsed!([fresh], used)).toBeUndefined();
  });

  it('says so when a stored app has lost its secret, rather than accepting anything', async () => {
    const user = await newUser();
    const { credential } = await active(user);
    await expect(totp().verify([{ ...credential, secret: null }], { code: '123456' }, {} as never)).rejects.toThrow(/has no secret/);
    expect(totp().wellFormed!('123456')).toBe(true);
    expect(totp().wellFormed!('12345a')).toBe(false);
    expect(totp().wellFormed!('1234567')).toBe(false);
    expect(totp().wellFormed!('x123456')).toBe(false);
    expect(await totp().challenge([credential], {} as never)).toEqual({});
  });
});
