import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.ts';
import { buildServices, type Services } from '../../src/server/services.ts';
import { migrateToLatest } from '../../src/store/durable/database.ts';
import { backends, type Backend } from '../helpers/backends.ts';

for (const spec of backends) {
  describe.runIf(await spec.available())(`durable store conformance: ${spec.name}`, () => {
    let backend: Backend;
    let s: Services;
    const clock = new ManualClock(Date.UTC(2026, 5, 1));

    beforeAll(async () => {
      backend = await spec.create();
      s = await buildServices(backend.config, {
        clock,
        ...(backend.pgSchema ? { pgSchema: backend.pgSchema } : {}),
        ...(backend.redisNamespace ? { redisNamespace: backend.redisNamespace } : {}),
      });
    });
    afterAll(async () => {
      await s?.close();
      await backend?.cleanup();
    });

    it('migrates idempotently', async () => {
      const again = await migrateToLatest(s.durable.db, s.durable.engine);
      expect(again.results).toEqual([]);
    });

    it('keeps tenant slugs and usernames unique, case-insensitively for usernames', async () => {
      const t = await s.tenants.create('one');
      await expect(s.tenants.create('one')).rejects.toMatchObject({ code: 'conflict' });
      await expect(s.tenants.create('Bad Slug')).rejects.toMatchObject({ code: 'invalid-request' });
      await s.users.create(t.id, { username: 'Bob' });
      await expect(s.users.create(t.id, { username: 'BOB' })).rejects.toMatchObject({ code: 'conflict' });
      expect((await s.users.findByUsername(t.id, 'bob'))?.username).toBe('bob');
    });

    it('scopes every user and credential query by tenant', async () => {
      const a = await s.tenants.create('tenant-a');
      const b = await s.tenants.create('tenant-b');
      const user = await s.users.create(a.id, { username: 'carol' });
      const cred = await s.credentials.insert({ tenantId: a.id, userId: user.id, type: 'totp', label: 'x', state: 'active' });
      expect(await s.users.findByUsername(b.id, 'carol')).toBeUndefined();
      expect(await s.users.get(b.id, user.id)).toBeUndefined();
      expect(await s.credentials.get(b.id, user.id, cred.id)).toBeUndefined();
      expect(await s.credentials.listForUser(b.id, user.id)).toEqual([]);
    });

    it('consumes a TOTP step once, even when many racers try at the same moment', async () => {
      const t = await s.tenants.create('steps');
      const user = await s.users.create(t.id, { username: 'dave' });
      const cred = await s.credentials.insert({ tenantId: t.id, userId: user.id, type: 'totp', label: 'x', state: 'active' });
      const results = await Promise.all(Array.from({ length: 10 }, () => s.credentials.consumeStep(cred, 1000)));
      expect(results.filter(Boolean)).toHaveLength(1);
      expect(await s.credentials.consumeStep(cred, 999)).toBe(false);
      expect(await s.credentials.consumeStep(cred, 1001)).toBe(true);
    });

    it('keeps exactly one default among active methods, preferring anything over recovery codes', async () => {
      const t = await s.tenants.create('defaults');
      const user = await s.users.create(t.id, { username: 'erin' });
      const rc = await s.credentials.insert({ tenantId: t.id, userId: user.id, type: 'recovery-codes', label: 'rc', state: 'active' });
      expect((await s.credentials.get(t.id, user.id, rc.id))?.isDefault).toBe(true);
      const totp = await s.credentials.insert({ tenantId: t.id, userId: user.id, type: 'totp', label: 't', state: 'pending' });
      expect(await s.credentials.activate(totp)).toBe(true);
      expect(await s.credentials.activate(totp)).toBe(false);
      await s.credentials.update(totp, { isDefault: true });
      const list = await s.credentials.listForUser(t.id, user.id, 'active');
      expect(list.filter((c) => c.isDefault).map((c) => c.id)).toEqual([totp.id]);
      await s.durable.db.deleteFrom('credentials').where('tenant_id', '=', t.id).where('id', '=', totp.id).execute();
      await s.credentials.ensureDefault(t.id, user.id);
      expect((await s.credentials.get(t.id, user.id, rc.id))?.isDefault).toBe(true);
    });

    it('sessions expire, go idle, are revoked, and a register session upgrades', async () => {
      const t = await s.tenants.create('sessions');
      const user = await s.users.create(t.id, { username: 'frank' });
      const { token, session } = await s.sessions.create({ tenantId: t.id, userId: user.id, scope: 'register', amr: ['pwd'] });
      expect((await s.sessions.authenticate(token))?.scope).toBe('register');
      await s.sessions.upgrade(session, ['pwd', 'otp', 'mfa']);
      expect(await s.sessions.authenticate(token)).toMatchObject({ scope: 'full', amr: ['pwd', 'otp', 'mfa'] });
      expect(await s.sessions.authenticate(token.slice(0, -1) + (token.endsWith('A') ? 'B' : 'A'))).toBeUndefined();

      clock.advance(59 * 60_000);
      expect(await s.sessions.authenticate(token)).toBeDefined();
      clock.advance(59 * 60_000);
      expect(await s.sessions.authenticate(token)).toBeDefined();
      clock.advance(61 * 60_000);
      expect(await s.sessions.authenticate(token)).toBeUndefined();

      const second = await s.sessions.create({ tenantId: t.id, userId: user.id, scope: 'full', amr: ['pwd'] });
      const third = await s.sessions.create({ tenantId: t.id, userId: user.id, scope: 'full', amr: ['pwd'] });
      expect(await s.sessions.revokeAllForUser(t.id, user.id, third.session.id)).toBe(2);
      expect(await s.sessions.authenticate(second.token)).toBeUndefined();
      expect(await s.sessions.authenticate(third.token)).toBeDefined();
    });

    it('group-commits concurrent inserts, each caller told only once its row is written', async () => {
      const t = await s.tenants.create('group');
      const user = await s.users.create(t.id, { username: 'hank' });
      const made = await Promise.all(Array.from({ length: 60 }, () => s.sessions.create({ tenantId: t.id, userId: user.id, scope: 'full', amr: ['pwd'] })));
      for (const { token } of made) expect(await s.sessions.authenticate(token)).toBeDefined();
      await Promise.all(
        Array.from({ length: 30 }, (_, i) =>
          s.events.record({
            tenantId: t.id,
            userId: user.id,
            username: 'hank',
            step: 'password',
            outcome: 'failure',
            reason: 'invalid_credentials',
            app: `g${i}`,
          }),
        ),
      );
      expect((await s.events.listForUser(t.id, user.id, 100)).items).toHaveLength(30);
      // A row the store refuses fails its whole batch, loudly: no caller is told it was written.
      const refused = s.events.record({
        tenantId: 'no-such-tenant',
        userId: null,
        username: 'x',
        step: 'password',
        outcome: 'failure',
        reason: 'invalid_credentials',
      });
      await expect(refused).rejects.toThrow();
    });

    it('claims a TOTP step once when the claims share a group commit with each other and with inserts', async () => {
      const t = await s.tenants.create('step-claims');
      const user = await s.users.create(t.id, { username: 'ida' });
      const other = await s.users.create(t.id, { username: 'jo' });
      const credential = await s.credentials.insert({ tenantId: t.id, userId: user.id, type: 'totp', label: 'app', state: 'active', secret: 'x' });
      const second = await s.credentials.insert({ tenantId: t.id, userId: other.id, type: 'totp', label: 'app', state: 'active', secret: 'x' });
      // Asked in one turn of the event loop: one batch, one transaction, with a session insert beside them.
      const [a, b, c, d] = await Promise.all([
        s.credentials.consumeStep(credential, 100),
        s.credentials.consumeStep(credential, 100),
        s.credentials.consumeStep(second, 100),
        s.credentials.consumeStep(credential, 99),
        s.sessions.create({ tenantId: t.id, userId: user.id, scope: 'full', amr: ['pwd'] }),
      ]);
      expect([a, b].filter(Boolean)).toHaveLength(1);
      expect(c).toBe(true);
      // An earlier step asked after the later one was claimed in the same batch is refused: steps only move forward.
      expect(d).toBe(false);
      expect((await s.credentials.get(t.id, user.id, credential.id))!.lastStep).toBe(100);
      expect(await s.credentials.consumeStep(credential, 100)).toBe(false);
      expect(await s.credentials.consumeStep(credential, 101)).toBe(true);
    });

    it('lists sign-in events newest first, in pages, and refuses a forged cursor', async () => {
      const t = await s.tenants.create('events');
      const user = await s.users.create(t.id, { username: 'gina' });
      for (let i = 0; i < 7; i++) {
        await s.events.record({
          tenantId: t.id,
          userId: user.id,
          username: 'gina',
          step: 'password',
          outcome: 'failure',
          reason: 'invalid_credentials',
          app: `r${i}`,
        });
        if (i % 2 === 0) clock.advance(1000);
      }
      const seen: string[] = [];
      let cursor: string | undefined;
      do {
        const page = await s.events.listForUser(t.id, user.id, 3, cursor);
        seen.push(...page.items.map((e) => e.app ?? ''));
        cursor = page.next ?? undefined;
      } while (cursor);
      expect(seen).toEqual(['r6', 'r5', 'r4', 'r3', 'r2', 'r1', 'r0']);
      await expect(s.events.listForUser(t.id, user.id, 3, 'garbage')).rejects.toMatchObject({ code: 'invalid-request' });
    });
  });
}
