import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.ts';
import type { Services } from '../../src/server/services.ts';
import type { Tenant } from '../../src/directory/tenants.ts';
import type { User } from '../../src/directory/users.ts';
import { AppError } from '../../src/errors/app-error.ts';
import { RECENT_SIGNIN_MS, Sessions } from '../../src/sessions/sessions.ts';
import { GroupCommit } from '../../src/store/durable/group-commit.ts';
import { MemoryEphemeralStore } from '../../src/store/ephemeral/memory-store.ts';
import { RememberedDevices } from '../../src/sessions/remembered-devices.ts';
import { isRegistrationToken } from '../../src/sessions/registration-token.ts';
import { createUser, startCoreServices, type CoreServices, liveSessionToken } from './core-services.ts';

/**
 * Sessions, remembered browsers and the end of OpenID Connect grants at the
 * level of their own promises: every way a session stops working (expired,
 * idle, revoked, another user's or tenant's), exactly at its edge, fast enough
 * for `npm run mutate` to run for each mutant.
 */
const LIFETIME_MINUTES = 120;
const IDLE_MINUTES = 30;
const MINUTE = 60_000;

describe('sessions on SQLite', () => {
  let core: CoreServices;
  let s: Services;
  let tenant: Tenant;
  let otherTenant: Tenant;
  const clock = new ManualClock(Date.UTC(2026, 10, 30, 9));
  const newUser = (t: Tenant = tenant): Promise<User> => createUser(s, t);
  const open = async (user: User, scope: 'full' | 'register' = 'full', amr = ['pwd', 'otp', 'mfa'], t: Tenant = tenant) =>
    s.sessions.create({ tenantId: t.id, userId: user.id, scope, amr, ip: '203.0.113.9', userAgent: 'core-test' });

  beforeAll(async () => {
    core = await startCoreServices(clock, {
      STEADFAST_SESSION_LIFETIME_MINUTES: String(LIFETIME_MINUTES),
      STEADFAST_SESSION_IDLE_MINUTES: String(IDLE_MINUTES),
    });
    s = core.services;
    tenant = await s.tenants.create('sessions');
    otherTenant = await s.tenants.create('sessions-other');
  });
  afterAll(() => core?.stop());

  it('issues an opaque token that finds the session, and nothing else finds it', async () => {
    const user = await newUser();
    const { token, session } = await open(user);
    expect(token).toMatch(/^sfs_[A-Za-z0-9_-]{40,}$/);
    expect(isRegistrationToken(token)).toBe(false);
    expect(session).toEqual({
      id: expect.any(String),
      tenantId: tenant.id,
      userId: user.id,
      scope: 'full',
      amr: ['pwd', 'otp', 'mfa'],
      authTime: clock.now(),
      expiresAt: clock.now() + LIFETIME_MINUTES * MINUTE,
    });
    expect(await s.sessions.authenticate(token)).toEqual(session);
    // The token is stored hashed: the row does not hold it.
    const row = await s.durable.db.selectFrom('sessions').selectAll().where('id', '=', session.id).executeTakeFirstOrThrow();
    expect(JSON.stringify(row)).not.toContain(token.slice(4));
    expect(row).toMatchObject({ ip: '203.0.113.9', user_agent: 'core-test', revoked_at: null });
    for (const wrong of ['', token.slice(0, -1), `${token}x`, token.replace('sfs_', 'sfx_'), `sfs_${'a'.repeat(200)}`, token.slice(4)])
      expect(await s.sessions.authenticate(wrong), wrong).toBeUndefined();
  });

  it('refuses a token over 100 characters even when it is a stored session', async () => {
    const user = await newUser();
    const { session } = await open(user);
    const long = `sfs_${'b'.repeat(97)}`;
    expect(long.length).toBe(101);
    const { hashToken } = await import('../../src/crypto/keyed-hash.ts');
    await s.durable.db
      .updateTable('sessions')
      .set({ token_hash: hashToken(long) })
      .where('id', '=', session.id)
      .execute();
    expect(await s.sessions.authenticate(long)).toBeUndefined();
    const edge = `sfs_${'c'.repeat(96)}`;
    expect(edge.length).toBe(100);
    await s.durable.db
      .updateTable('sessions')
      .set({ token_hash: hashToken(edge) })
      .where('id', '=', session.id)
      .execute();
    expect(await s.sessions.authenticate(edge)).toMatchObject({ id: session.id });
  });

  it('keeps a registration session marked, short-lived and counted as recent', async () => {
    const user = await newUser();
    const { token, session } = await open(user, 'register', ['pwd']);
    expect(isRegistrationToken(token)).toBe(true);
    expect(session.expiresAt).toBe(clock.now() + 30 * MINUTE);
    expect(s.sessions.isRecent(session)).toBe(true);
    clock.advance(29 * MINUTE);
    expect(await s.sessions.authenticate(token)).toMatchObject({ scope: 'register' });
    expect(s.sessions.isRecent({ ...session, authTime: clock.now() - 5 * RECENT_SIGNIN_MS })).toBe(true);
    clock.advance(MINUTE);
    expect(await s.sessions.authenticate(token)).toBeUndefined();
  });

  it('ends a session at its lifetime and after the idle time, and a use within the idle time keeps it going', async () => {
    const user = await newUser();
    const { token } = await open(user);
    clock.advance(IDLE_MINUTES * MINUTE - 1);
    expect(await s.sessions.authenticate(token)).toBeDefined();
    // That use was the last seen; the idle time runs from it.
    clock.advance(IDLE_MINUTES * MINUTE - 1);
    expect(await s.sessions.authenticate(token)).toBeDefined();
    clock.advance(IDLE_MINUTES * MINUTE);
    expect(await s.sessions.authenticate(token)).toBeUndefined();

    // Used every 20 minutes it stays alive, up to its lifetime and not a moment longer.
    const busy = await open(user);
    for (let at = 20; at < LIFETIME_MINUTES; at += 20) {
      clock.advance(20 * MINUTE);
      expect(await s.sessions.authenticate(busy.token), `${at} min`).toBeDefined();
    }
    clock.advance(20 * MINUTE - 1);
    expect(await s.sessions.authenticate(busy.token)).toBeDefined();
    clock.advance(1);
    expect(await s.sessions.authenticate(busy.token)).toBeUndefined();
  });

  it('notes a use at most once a minute, and a use inside that minute does not move the idle time', async () => {
    const user = await newUser();
    const { token, session } = await open(user);
    const lastSeen = async () =>
      Number((await s.durable.db.selectFrom('sessions').select('last_seen_at').where('id', '=', session.id).executeTakeFirstOrThrow()).last_seen_at);
    const start = clock.now();
    clock.advance(MINUTE - 1);
    await s.sessions.authenticate(token);
    expect(await lastSeen()).toBe(start);
    clock.advance(1);
    await s.sessions.authenticate(token);
    expect(await lastSeen()).toBe(clock.now());
  });

  it('under an idle time of a minute notes a use every half minute, so a session used that often stays live', async () => {
    // Noted once a minute, a session used every 40 seconds under a one-minute idle time ended at its second use.
    const sessions = new Sessions(s.durable.db, clock, { lifetimeMs: LIFETIME_MINUTES * MINUTE, idleMs: MINUTE }, new GroupCommit(s.durable.db));
    const user = await newUser();
    const { token } = await sessions.create({ tenantId: tenant.id, userId: user.id, scope: 'full', amr: ['pwd', 'otp', 'mfa'] });
    for (let use = 1; use <= 6; use++) {
      clock.advance(MINUTE / 2);
      expect(await sessions.authenticate(token), `use ${use}`).toBeDefined();
    }
    // A use inside the half minute is not noted: the idle time runs on from the last note.
    clock.advance(MINUTE / 2 - 1);
    expect(await sessions.authenticate(token)).toBeDefined();
    clock.advance(MINUTE / 2 + 1);
    expect(await sessions.authenticate(token)).toBeUndefined();
  });

  it('is refused once revoked, and a session whose factors cannot be read proves nothing', async () => {
    const user = await newUser();
    const { token, session } = await open(user);
    await s.sessions.revoke(session);
    expect(await s.sessions.authenticate(token)).toBeUndefined();
    const second = await open(user);
    await s.durable.db.updateTable('sessions').set({ amr: 'not json' }).where('id', '=', second.session.id).execute();
    expect(await s.sessions.authenticate(second.token)).toBeUndefined();
    // Another tenant's id does not revoke it.
    const third = await open(user);
    await s.sessions.revoke({ id: third.session.id, tenantId: otherTenant.id });
    expect(await s.sessions.authenticate(third.token)).toBeDefined();
  });

  it('upgrades a registration session to a full one with a full lifetime, a fresh sign-in time, in its own tenant only', async () => {
    const user = await newUser();
    const { token, session } = await open(user, 'register', ['pwd']);
    clock.advance(5 * MINUTE);
    await s.sessions.upgrade({ ...session, tenantId: otherTenant.id }, ['pwd', 'otp', 'mfa']);
    expect(await s.sessions.authenticate(token)).toMatchObject({ scope: 'register', amr: ['pwd'] });
    await s.sessions.upgrade(session, ['pwd', 'otp', 'mfa']);
    expect(await s.sessions.authenticate(token)).toEqual({
      ...session,
      scope: 'full',
      amr: ['pwd', 'otp', 'mfa'],
      authTime: clock.now(),
      expiresAt: clock.now() + LIFETIME_MINUTES * MINUTE,
    });
  });

  it('counts a sign-in recent for ten minutes, then asks for it again', async () => {
    const user = await newUser();
    const { session } = await open(user);
    clock.advance(RECENT_SIGNIN_MS);
    expect(s.sessions.isRecent(session)).toBe(true);
    expect(() => s.sessions.requireRecent(session)).not.toThrow();
    clock.advance(1);
    expect(s.sessions.isRecent(session)).toBe(false);
    expect(() => s.sessions.requireRecent(session)).toThrow(AppError);
    try {
      s.sessions.requireRecent(session);
    } catch (err) {
      expect((err as AppError).code).toBe('reauthentication-required');
    }
  });

  it("ends the user's other registration sessions, keeping the one in use and the full ones", async () => {
    const user = await newUser();
    const bystander = await newUser();
    const kept = await open(user, 'register', ['pwd']);
    const other = await open(user, 'register', ['pwd']);
    const full = await open(user);
    const theirs = await open(bystander, 'register', ['pwd']);
    await s.sessions.endRegistrationSessions(tenant.id, user.id, kept.session.id);
    expect(await s.sessions.authenticate(kept.token)).toBeDefined();
    expect(await s.sessions.authenticate(other.token)).toBeUndefined();
    expect(await s.sessions.authenticate(full.token)).toBeDefined();
    expect(await s.sessions.authenticate(theirs.token)).toBeDefined();
  });

  it('lists the live sessions of one user, newest first, without the ended, expired or idle ones', async () => {
    const user = await newUser();
    const oldest = await open(user, 'register', ['pwd']);
    clock.advance(1000);
    const ended = await open(user);
    await s.sessions.revoke(ended.session);
    clock.advance(1000);
    const newest = await open(user);
    await open(await newUser());
    const listed = await s.sessions.listActive(tenant.id, user.id);
    expect(listed).toEqual([
      {
        id: newest.session.id,
        scope: 'full',
        amr: ['pwd', 'otp', 'mfa'],
        createdAt: clock.now(),
        lastSeenAt: clock.now(),
        expiresAt: newest.session.expiresAt,
        ip: '203.0.113.9',
        userAgent: 'core-test',
      },
      expect.objectContaining({ id: oldest.session.id, scope: 'register', amr: ['pwd'] }),
    ]);
    expect(await s.sessions.listActive(otherTenant.id, user.id)).toEqual([]);
    // Past the registration session's 30 minutes, and then past the idle time.
    clock.advance(30 * MINUTE - 2000);
    expect((await s.sessions.listActive(tenant.id, user.id)).map((l) => l.id)).toEqual([newest.session.id]);
    clock.advance(IDLE_MINUTES * MINUTE);
    expect(await s.sessions.listActive(tenant.id, user.id)).toEqual([]);
    // A session whose factors cannot be read is listed (it can be ended) with none.
    const unreadable = await open(user);
    await s.durable.db.updateTable('sessions').set({ amr: '{' }).where('id', '=', unreadable.session.id).execute();
    expect(await s.sessions.listActive(tenant.id, user.id)).toEqual([expect.objectContaining({ id: unreadable.session.id, amr: [] })]);
  });

  it('ends all sessions of a user but the one kept, forgets their browsers, tells the listeners, and touches nobody else', async () => {
    const user = await newUser();
    const bystander = await newUser();
    const devices = new RememberedDevices(s.durable.db, clock);
    const remembering = { ...tenant, policy: { ...tenant.policy, rememberedDeviceDays: 7 } };
    const kept = await open(user);
    const a = await open(user);
    const b = await open(user, 'register', ['pwd']);
    const theirs = await open(bystander);
    const browser = (await devices.remember(remembering, user.id, 'ua', a.token))!;
    const theirBrowser = (await devices.remember(remembering, bystander.id, 'ua', theirs.token))!;
    const told: string[] = [];
    // Told just before the sessions end, once: a sign-in finishing meanwhile checks the mark a listener sets.
    s.sessions.onAllEnded(async (tenantId, userId) => told.push(`${tenantId}/${userId} ${(await s.sessions.authenticate(a.token)) ? 'before' : 'after'}`));
    expect(await s.sessions.revokeAllForUser(tenant.id, user.id, kept.session.id)).toBe(2);
    expect(told).toEqual([`${tenant.id}/${user.id} before`]);
    expect(await s.sessions.authenticate(kept.token)).toBeDefined();
    expect(await s.sessions.authenticate(a.token)).toBeUndefined();
    expect(await s.sessions.authenticate(b.token)).toBeUndefined();
    expect(await s.sessions.authenticate(theirs.token)).toBeDefined();
    expect(await devices.recognises(remembering, user.id, browser.token)).toBe(false);
    expect(await devices.recognises(remembering, bystander.id, theirBrowser.token)).toBe(true);
    // Without one to keep, the last goes too.
    expect(await s.sessions.revokeAllForUser(tenant.id, user.id)).toBe(1);
    expect(await s.sessions.authenticate(kept.token)).toBeUndefined();
  });

  it('tells the listeners that come after once the sessions have ended, and only then', async () => {
    // A Sessions of its own, made in the test: every listener here is this test's.
    const options = { lifetimeMs: LIFETIME_MINUTES * MINUTE, idleMs: IDLE_MINUTES * MINUTE };
    const sessions = new Sessions(s.durable.db, clock, options, new GroupCommit(s.durable.db));
    const user = await newUser();
    const { token } = await sessions.create({ tenantId: tenant.id, userId: user.id, scope: 'full', amr: ['pwd', 'otp', 'mfa'] });
    const told: string[] = [];
    const state = async () => ((await sessions.authenticate(token)) ? 'live' : 'ended');
    sessions.onAllEnded(async (tenantId, userId) => told.push(`on ${tenantId}/${userId} ${await state()}`));
    sessions.afterAllEnded(async (tenantId, userId) => told.push(`after ${tenantId}/${userId} ${await state()}`));
    expect(await sessions.revokeAllForUser(tenant.id, user.id)).toBe(1);
    expect(told).toEqual([`on ${tenant.id}/${user.id} live`, `after ${tenant.id}/${user.id} ended`]);
  });

  it('during an outage shares the sessions it issues and ends with the other nodes through the shared store', async () => {
    const shared = new MemoryEphemeralStore(clock);
    let outage = true;
    const options = { lifetimeMs: LIFETIME_MINUTES * MINUTE, idleMs: IDLE_MINUTES * MINUTE };
    const nodeA = new Sessions(s.durable.db, clock, options, new GroupCommit(s.durable.db), { active: () => outage, store: shared });
    const nodeB = new Sessions(s.durable.db, clock, options, new GroupCommit(s.durable.db), { active: () => outage, store: shared });
    const user = await newUser();
    const { token, session } = await nodeA.create({ tenantId: tenant.id, userId: user.id, scope: 'full', amr: ['pwd', 'otp', 'mfa'], ip: '203.0.113.9' });
    // Node B's copy of the database never saw it (issued on A during the outage): B finds it in the shared store and adopts it.
    await s.durable.db.deleteFrom('sessions').where('id', '=', session.id).execute();
    expect(await nodeB.authenticate(token)).toEqual(session);
    expect(await s.durable.db.selectFrom('sessions').select('id').where('id', '=', session.id).executeTakeFirst()).toEqual({ id: session.id });
    // Adopted again (another request on B): no conflict.
    await s.durable.db.updateTable('sessions').set({ token_hash: 'moved' }).where('id', '=', session.id).execute();
    expect(await nodeB.authenticate(token)).toEqual(session);
    // Ended on A: every node refuses it at once, whatever its own copy says.
    await nodeA.revoke(session);
    await s.durable.db.updateTable('sessions').set({ revoked_at: null }).where('id', '=', session.id).execute();
    expect(await nodeB.authenticate(token)).toBeUndefined();
    // Another session, not ended, still works on B; an unknown token finds nothing in either place.
    const other = await nodeA.create({ tenantId: tenant.id, userId: user.id, scope: 'full', amr: ['pwd'] });
    expect(await nodeB.authenticate(other.token)).toMatchObject({ id: other.session.id });
    expect(await nodeB.authenticate(`${other.token.slice(0, -2)}xx`)).toBeUndefined();
    // Outside an outage nothing is shared.
    outage = false;
    const quiet = await nodeA.create({ tenantId: tenant.id, userId: user.id, scope: 'full', amr: ['pwd'] });
    await s.durable.db.deleteFrom('sessions').where('id', '=', quiet.session.id).execute();
    outage = true;
    expect(await nodeB.authenticate(quiet.token)).toBeUndefined();
  });

  it('finds a live session by id without touching it: not once ended, expired, idle, or asked for in another tenant', async () => {
    const user = await newUser();
    const { session, token } = await open(user);
    expect(await s.sessions.findLive(tenant.id, session.id)).toEqual({ userId: user.id, scope: 'full' });
    expect(await s.sessions.findLive(otherTenant.id, session.id)).toBeUndefined();
    expect(await s.sessions.findLive(tenant.id, 'no-such-session')).toBeUndefined();
    // Looking it up is no use of it: the idle time still runs from its last real use, to the millisecond.
    clock.advance(IDLE_MINUTES * MINUTE - 1);
    expect(await s.sessions.findLive(tenant.id, session.id)).toEqual({ userId: user.id, scope: 'full' });
    clock.advance(1);
    expect(await s.sessions.findLive(tenant.id, session.id)).toBeUndefined();
    expect(await s.sessions.authenticate(token)).toBeUndefined();

    // Kept in use, it is live up to its lifetime and not a moment longer.
    const registering = await open(user, 'register');
    expect(await s.sessions.findLive(tenant.id, registering.session.id)).toEqual({ userId: user.id, scope: 'register' });
    const busy = await open(user);
    const lifetimeLeft = busy.session.expiresAt - clock.now();
    for (let passed = 20 * MINUTE; passed < lifetimeLeft; passed += 20 * MINUTE) {
      clock.advance(20 * MINUTE);
      await s.sessions.authenticate(busy.token);
    }
    clock.advance(busy.session.expiresAt - 1 - clock.now());
    expect(await s.sessions.findLive(tenant.id, busy.session.id)).toBeDefined();
    clock.advance(1);
    expect(await s.sessions.findLive(tenant.id, busy.session.id)).toBeUndefined();

    const revoked = await open(user);
    await s.sessions.revoke(revoked.session);
    expect(await s.sessions.findLive(tenant.id, revoked.session.id)).toBeUndefined();
  });

  it('during an outage does not find a session another node ended through the shared store', async () => {
    const shared = new MemoryEphemeralStore(clock);
    let outage = true;
    const options = { lifetimeMs: LIFETIME_MINUTES * MINUTE, idleMs: IDLE_MINUTES * MINUTE };
    const nodeA = new Sessions(s.durable.db, clock, options, new GroupCommit(s.durable.db), { active: () => outage, store: shared });
    const nodeB = new Sessions(s.durable.db, clock, options, new GroupCommit(s.durable.db), { active: () => outage, store: shared });
    const user = await newUser();
    const ended = await nodeA.create({ tenantId: tenant.id, userId: user.id, scope: 'full', amr: ['pwd', 'otp', 'mfa'] });
    const kept = await nodeA.create({ tenantId: tenant.id, userId: user.id, scope: 'full', amr: ['pwd', 'otp', 'mfa'] });
    await nodeA.revoke(ended.session);
    // B's copy of the database has not heard of the end (as when A wrote it to the shared store only).
    await s.durable.db.updateTable('sessions').set({ revoked_at: null }).where('id', '=', ended.session.id).execute();
    expect(await nodeB.findLive(tenant.id, ended.session.id)).toBeUndefined();
    expect(await nodeB.findLive(tenant.id, kept.session.id)).toEqual({ userId: user.id, scope: 'full' });
    // Outside an outage the shared store is not asked: the database is the record.
    outage = false;
    expect(await nodeB.findLive(tenant.id, ended.session.id)).toEqual({ userId: user.id, scope: 'full' });
  });

  it('keeps at most 64 characters of the address and 512 of the browser', async () => {
    const user = await newUser();
    const { session } = await s.sessions.create({
      tenantId: tenant.id,
      userId: user.id,
      scope: 'full',
      amr: ['pwd'],
      ip: '1'.repeat(80),
      userAgent: 'u'.repeat(600),
    });
    const row = await s.durable.db.selectFrom('sessions').select(['ip', 'user_agent']).where('id', '=', session.id).executeTakeFirstOrThrow();
    expect([row.ip!.length, row.user_agent!.length]).toEqual([64, 512]);
    const bare = await s.sessions.create({ tenantId: tenant.id, userId: user.id, scope: 'full', amr: ['pwd'] });
    expect(await s.durable.db.selectFrom('sessions').select(['ip', 'user_agent']).where('id', '=', bare.session.id).executeTakeFirstOrThrow()).toEqual({
      ip: null,
      user_agent: null,
    });
  });

  describe('remembered browsers', () => {
    const devices = () => new RememberedDevices(s.durable.db, clock);
    const withDays = (days: number, t: Tenant = tenant) => ({ ...t, policy: { ...t.policy, rememberedDeviceDays: days } });

    it('remembers nothing when the policy says no days', async () => {
      const user = await newUser();
      expect(await devices().remember(withDays(0), user.id, 'ua', await liveSessionToken(s, tenant.id, user.id))).toBeUndefined();
      const made = (await devices().remember(withDays(3), user.id, 'ua', await liveSessionToken(s, tenant.id, user.id)))!;
      expect(await devices().recognises(withDays(0), user.id, made.token)).toBe(false);
    });

    it('remembers no browser for a session ended meanwhile (its user reported a sign-in, say), nor for another user’s session', async () => {
      const user = await newUser();
      const other = await newUser();
      const ended = await open(user);
      await s.sessions.revoke(ended.session);
      expect(await devices().remember(withDays(7), user.id, 'ua', ended.token)).toBeUndefined();
      expect(await devices().remember(withDays(7), user.id, 'ua', (await open(other)).token)).toBeUndefined();
      const rows = await s.durable.db.selectFrom('remembered_devices').select('revoked_at').where('user_id', '=', user.id).execute();
      expect(rows).toHaveLength(2);
      expect(rows.every((r) => r.revoked_at !== null)).toBe(true);
      expect(await devices().remember(withDays(7), user.id, 'ua', (await open(user)).token)).toMatchObject({ token: expect.any(String) });
    });

    it('recognises its own token for its own user and tenant, for the policy days, a shortened policy at once', async () => {
      const user = await newUser();
      const other = await newUser();
      const made = (await devices().remember(withDays(7), user.id, 'x'.repeat(600), await liveSessionToken(s, tenant.id, user.id)))!;
      expect(made.token).toMatch(/^sfd_[A-Za-z0-9_-]{40,}$/);
      expect(made.expiresAt).toBe(clock.now() + 7 * 86_400_000);
      const row = await s.durable.db.selectFrom('remembered_devices').selectAll().where('user_id', '=', user.id).executeTakeFirstOrThrow();
      expect(row.user_agent).toHaveLength(512);
      expect(JSON.stringify(row)).not.toContain(made.token.slice(4));
      expect(await devices().recognises(withDays(7), user.id, made.token)).toBe(true);
      expect(await devices().recognises(withDays(7), other.id, made.token)).toBe(false);
      expect(await devices().recognises(withDays(7, otherTenant), user.id, made.token)).toBe(false);
      for (const wrong of [undefined, '', made.token.slice(0, -1), made.token.replace('sfd_', 'sfs_'), `sfd_${'a'.repeat(100)}`])
        expect(await devices().recognises(withDays(7), user.id, wrong), String(wrong)).toBe(false);
      clock.advance(2 * 86_400_000);
      expect(await devices().recognises(withDays(2), user.id, made.token)).toBe(false);
      clock.advance(5 * 86_400_000 - 1);
      expect(await devices().recognises(withDays(7), user.id, made.token)).toBe(true);
      clock.advance(1);
      expect(await devices().recognises(withDays(7), user.id, made.token)).toBe(false);
    });
  });

  describe('ending what the OpenID Connect provider issued', () => {
    const record = (tenantId: string, model: string, id: string, accountId: string, grantId: string | null, payload: object = {}) =>
      s.durable.db
        .insertInto('oidc_records')
        .values({
          tenant_id: tenantId,
          model,
          id,
          payload: JSON.stringify(payload),
          grant_id: grantId,
          uid: null,
          user_code: null,
          expires_at: null,
          consumed_at: null,
          account_id: accountId,
        })
        .execute();
    const ids = async (tenantId: string) =>
      (await s.durable.db.selectFrom('oidc_records').select(['model', 'id']).where('tenant_id', '=', tenantId).orderBy('id').execute()).map(
        (r) => `${r.model}:${r.id}`,
      );

    it("ends everything of one account in one tenant, and nobody else's", async () => {
      await record(tenant.id, 'Session', 'acct-s1', 'alice', null);
      await record(tenant.id, 'RefreshToken', 'acct-r1', 'alice', 'g1');
      await record(tenant.id, 'RefreshToken', 'acct-r2', 'bob', 'g2');
      await record(otherTenant.id, 'RefreshToken', 'acct-r3', 'alice', 'g3');
      expect(await s.oidcRevocation.endForAccount(tenant.id, 'alice')).toBe(2);
      expect((await ids(tenant.id)).filter((i) => i.includes('acct-'))).toEqual(['RefreshToken:acct-r2']);
      expect(await ids(otherTenant.id)).toContain('RefreshToken:acct-r3');
    });

    it("ends what an app saved while the user's sessions were being ended, once they have ended", async () => {
      // Outside attack run, eleventh round: an app's request that found the session live while the listeners ran
      // saved a fresh grant after the provider's records were deleted; its refresh token outlived the sign-out.
      const user = await s.users.create(tenant.id, { username: `raced-grant-${Date.now()}` });
      await s.sessions.create({ tenantId: tenant.id, userId: user.id, scope: 'full', amr: ['tap'] });
      let saved = false;
      // Registered after the provider's own listener, so it runs once that one has deleted what there was.
      s.sessions.onAllEnded(async (_tenantId, userId) => {
        if (userId !== user.id || saved) return;
        saved = true;
        await record(tenant.id, 'RefreshToken', 'raced-r1', user.id, 'raced-g1');
      });
      expect(await s.sessions.revokeAllForUser(tenant.id, user.id)).toBe(1);
      expect(saved).toBe(true);
      expect((await ids(tenant.id)).filter((i) => i.includes('raced-'))).toEqual([]);
    });

    const link = (tenantId: string, providerSessionId: string) =>
      s.durable.db
        .selectFrom('oidc_records')
        .selectAll()
        .where('tenant_id', '=', tenantId)
        .where('model', '=', 'SteadfastSessionLink')
        .where('id', '=', providerSessionId)
        .execute();

    it('links a provider session to the Steadfast session it stands on, and a later sign-in in that browser moves the link', async () => {
      await s.oidcRevocation.linkProviderSession(tenant.id, 'ln-p1', { id: 'ss-1', userId: 'erin', expiresAt: 1_000 });
      expect(await link(tenant.id, 'ln-p1')).toEqual([
        {
          tenant_id: tenant.id,
          model: 'SteadfastSessionLink',
          id: 'ln-p1',
          payload: '{}',
          grant_id: null,
          uid: 'ss-1',
          user_code: null,
          expires_at: 1_000,
          consumed_at: null,
          account_id: 'erin',
        },
      ]);
      await s.oidcRevocation.linkProviderSession(tenant.id, 'ln-p1', { id: 'ss-2', userId: 'frank', expiresAt: 2_000 });
      expect(await link(tenant.id, 'ln-p1')).toEqual([expect.objectContaining({ uid: 'ss-2', account_id: 'frank', expires_at: 2_000 })]);
      // The same provider session id in another tenant is another link.
      await s.oidcRevocation.linkProviderSession(otherTenant.id, 'ln-p1', { id: 'ss-9', userId: 'erin', expiresAt: 3_000 });
      expect(await link(tenant.id, 'ln-p1')).toEqual([expect.objectContaining({ uid: 'ss-2' })]);
      expect(await link(otherTenant.id, 'ln-p1')).toEqual([expect.objectContaining({ uid: 'ss-9', account_id: 'erin' })]);
      // As the provider's check reads it: the Steadfast session of this provider session in this tenant, if any.
      expect(await s.oidcRevocation.linkedSteadfastSession(tenant.id, 'ln-p1')).toBe('ss-2');
      expect(await s.oidcRevocation.linkedSteadfastSession(otherTenant.id, 'ln-p1')).toBe('ss-9');
      expect(await s.oidcRevocation.linkedSteadfastSession(tenant.id, 'ln-none')).toBeUndefined();
      // A record of another kind under that id is no link.
      await record(tenant.id, 'Session', 'ln-p2', 'erin', null);
      expect(await s.oidcRevocation.linkedSteadfastSession(tenant.id, 'ln-p2')).toBeUndefined();
    });

    it('ends what stood on one Steadfast session, by its links, only for its own user and tenant', async () => {
      const on = (tenantId: string, providerSessionId: string, steadfastId: string, userId: string) =>
        s.oidcRevocation.linkProviderSession(tenantId, providerSessionId, { id: steadfastId, userId, expiresAt: clock.now() + MINUTE });
      // Two provider sessions stand on ss-a (one of them gone already: its link is all that is left); one on ss-b.
      await on(tenant.id, 'es-p1', 'ss-a', 'gina');
      await on(tenant.id, 'es-p2', 'ss-a', 'gina');
      await on(tenant.id, 'es-p3', 'ss-b', 'gina');
      await record(tenant.id, 'Session', 'es-p1', 'gina', null, { authorizations: { app: { grantId: 'es-g1' } } });
      await record(tenant.id, 'RefreshToken', 'es-r1', 'gina', 'es-g1');
      await record(tenant.id, 'Session', 'es-p3', 'gina', null, { authorizations: { app: { grantId: 'es-g3' } } });
      await record(tenant.id, 'RefreshToken', 'es-r3', 'gina', 'es-g3');
      // A record of another kind under a gone session's id is not its link.
      await record(tenant.id, 'Interaction', 'es-p2', 'gina', null);
      await on(otherTenant.id, 'es-p1', 'ss-a', 'gina');
      await record(otherTenant.id, 'Session', 'es-p1', 'gina', null, { authorizations: { app: { grantId: 'es-g1' } } });
      await record(otherTenant.id, 'RefreshToken', 'es-r1', 'gina', 'es-g1');
      const mine = async () => (await ids(tenant.id)).filter((i) => i.includes('es-')).sort();
      const before = await mine();
      expect(before).toHaveLength(8);
      // Another user's id, or another tenant, ends nothing here.
      await s.oidcRevocation.endSteadfastSession(tenant.id, 'ss-a', 'hank');
      await s.oidcRevocation.endSteadfastSession(otherTenant.id, 'ss-b', 'gina');
      expect(await mine()).toEqual(before);
      await s.oidcRevocation.endSteadfastSession(tenant.id, 'ss-a', 'gina');
      expect(await mine()).toEqual(['Interaction:es-p2', 'RefreshToken:es-r3', 'Session:es-p3', 'SteadfastSessionLink:es-p3']);
      expect(await ids(otherTenant.id)).toEqual(expect.arrayContaining(['Session:es-p1', 'RefreshToken:es-r1', 'SteadfastSessionLink:es-p1']));
    });

    const grantLinks = (tenantId: string, grantId: string) =>
      s.durable.db
        .selectFrom('oidc_records')
        .selectAll()
        .where('tenant_id', '=', tenantId)
        .where('model', '=', 'SteadfastGrantLink')
        .where('grant_id', '=', grantId)
        .orderBy('id')
        .execute();

    it('links a grant to each Steadfast session a code of it was issued in, for as long as a grant lives', async () => {
      const DAYS_30 = 30 * 24 * 60 * MINUTE;
      await s.oidcRevocation.linkGrant(tenant.id, 'lg-g1', { id: 'ss-1', userId: 'ivy' }, 1_000);
      expect(await grantLinks(tenant.id, 'lg-g1')).toEqual([
        {
          tenant_id: tenant.id,
          model: 'SteadfastGrantLink',
          id: 'lg-g1:ss-1',
          payload: '{}',
          grant_id: 'lg-g1',
          uid: 'ss-1',
          user_code: null,
          expires_at: 1_000 + DAYS_30,
          consumed_at: null,
          account_id: 'ivy',
        },
      ]);
      // Used again in the same session, the link lives on from then; in another session, the grant has two links.
      await s.oidcRevocation.linkGrant(tenant.id, 'lg-g1', { id: 'ss-1', userId: 'ivy' }, 5_000);
      await s.oidcRevocation.linkGrant(tenant.id, 'lg-g1', { id: 'ss-2', userId: 'ivy' }, 6_000);
      expect(await grantLinks(tenant.id, 'lg-g1')).toEqual([
        expect.objectContaining({ id: 'lg-g1:ss-1', uid: 'ss-1', expires_at: 5_000 + DAYS_30 }),
        expect.objectContaining({ id: 'lg-g1:ss-2', uid: 'ss-2', expires_at: 6_000 + DAYS_30 }),
      ]);
      // Another tenant's grant of the same id is linked apart.
      await s.oidcRevocation.linkGrant(otherTenant.id, 'lg-g1', { id: 'ss-1', userId: 'ivy' }, 7_000);
      expect(await grantLinks(tenant.id, 'lg-g1')).toHaveLength(2);
      expect(await grantLinks(otherTenant.id, 'lg-g1')).toEqual([expect.objectContaining({ uid: 'ss-1', expires_at: 7_000 + DAYS_30 })]);
    });

    it('ends the grants a code was issued for in one Steadfast session, the grants themselves and their tokens', async () => {
      // The app's offline grant outlives the provider's session ("No, stay signed in" and the provider's own sign-out
      // keep it): the grant's link to the Steadfast session is what ends it.
      await record(tenant.id, 'Grant', 'eg-g1', 'jay', null);
      await record(tenant.id, 'RefreshToken', 'eg-r1', 'jay', 'eg-g1');
      await record(tenant.id, 'AccessToken', 'eg-a1', 'jay', 'eg-g1');
      await record(tenant.id, 'Grant', 'eg-g2', 'jay', null);
      await record(tenant.id, 'RefreshToken', 'eg-r2', 'jay', 'eg-g2');
      await s.oidcRevocation.linkGrant(tenant.id, 'eg-g1', { id: 'ss-e1', userId: 'jay' }, clock.now());
      await s.oidcRevocation.linkGrant(tenant.id, 'eg-g2', { id: 'ss-e2', userId: 'jay' }, clock.now());
      await record(otherTenant.id, 'Grant', 'eg-g1', 'jay', null);
      await record(otherTenant.id, 'RefreshToken', 'eg-r1', 'jay', 'eg-g1');
      await s.oidcRevocation.linkGrant(otherTenant.id, 'eg-g1', { id: 'ss-e1', userId: 'jay' }, clock.now());
      const mine = async () => (await ids(tenant.id)).filter((i) => i.includes('eg-')).sort();
      const before = await mine();
      expect(before).toHaveLength(7);
      // Another user's id for the session ends nothing.
      await s.oidcRevocation.endSteadfastSession(tenant.id, 'ss-e1', 'kim');
      expect(await mine()).toEqual(before);
      await s.oidcRevocation.endSteadfastSession(tenant.id, 'ss-e1', 'jay');
      expect(await mine()).toEqual(['Grant:eg-g2', 'RefreshToken:eg-r2', 'SteadfastGrantLink:eg-g2:ss-e2']);
      expect((await ids(otherTenant.id)).filter((i) => i.includes('eg-')).sort()).toEqual([
        'Grant:eg-g1',
        'RefreshToken:eg-r1',
        'SteadfastGrantLink:eg-g1:ss-e1',
      ]);
    });

    it("ends one browser's provider session and its grants' tokens, only when it is this user's", async () => {
      // Grant ids that are not strings (a damaged record) are passed over, not bound into the query, where they would fail it.
      const payload = {
        authorizations: { app1: { grantId: 'gb1' }, app2: { grantId: 'gb2' }, app3: { grantId: 42 }, app4: {}, app5: { grantId: { id: 'gb3' } } },
      };
      await record(tenant.id, 'Session', 'br-s1', 'carol', null, payload);
      await record(tenant.id, 'Session', 'br-s2', 'carol', null, { authorizations: { app1: { grantId: 'gb3' } } });
      await record(tenant.id, 'RefreshToken', 'br-r1', 'carol', 'gb1');
      await record(tenant.id, 'AccessToken', 'br-a2', 'carol', 'gb2');
      await record(tenant.id, 'RefreshToken', 'br-r3', 'carol', 'gb3');
      await record(otherTenant.id, 'RefreshToken', 'br-r4', 'carol', 'gb1');
      // Another user's id for the same browser session changes nothing.
      await s.oidcRevocation.endBrowserSession(tenant.id, 'br-s1', 'dave');
      await s.oidcRevocation.endBrowserSession(otherTenant.id, 'br-s1', 'carol');
      expect((await ids(tenant.id)).filter((i) => i.includes('br-'))).toHaveLength(5);
      await s.oidcRevocation.endBrowserSession(tenant.id, 'br-s1', 'carol');
      expect((await ids(tenant.id)).filter((i) => i.includes('br-'))).toEqual(['RefreshToken:br-r3', 'Session:br-s2']);
      expect(await ids(otherTenant.id)).toContain('RefreshToken:br-r4');
      // A session with no grants goes alone.
      await record(tenant.id, 'Session', 'br-s5', 'carol', null);
      await s.oidcRevocation.endBrowserSession(tenant.id, 'br-s5', 'carol');
      expect((await ids(tenant.id)).filter((i) => i.includes('br-'))).toEqual(['RefreshToken:br-r3', 'Session:br-s2']);
    });
  });
});
