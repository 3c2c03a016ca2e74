import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.ts';
import type { Tenant } from '../../src/directory/tenants.ts';
import { backends, type Backend } from '../helpers/backends.ts';
import { api, startTestServer, type TestServer } from '../helpers/test-server.ts';
import { totpCode } from '../helpers/totp.ts';

/**
 * A new hire's way back in over the API (issue 18): a first password set with
 * only `newPassword`, allowed for an account with none and a recent full
 * session with a second factor, and nothing else; and the code that just
 * confirmed an app, typed again at sign-in, costs no attempt.
 */
for (const spec of backends) {
  describe.runIf(await spec.available())(`first password and the code just used, on ${spec.name}`, () => {
    let backend: Backend;
    let server: TestServer;
    let tenant: Tenant;
    // Five seconds into a 30-second step, so "the next code" is a known number of seconds away.
    const clock = new ManualClock(Date.UTC(2026, 10, 30, 9, 0, 5));
    const ctx = { ip: '203.0.113.9', userAgent: 'test' };

    /** A user created without a password, signed in with a one-time pass: the session's token and scope. */
    const newHire = async (username: string) => {
      const user = await server.services.users.create(tenant.id, { username });
      const { code } = await server.services.passes.issue(tenant, user.id, { minutes: 60, oneTime: true }, 'cli');
      const step = await server.services.signin.tapStep(tenant, username, code, ctx);
      return { user, token: step.session.token, kind: step.kind };
    };

    beforeAll(async () => {
      backend = await spec.create();
      server = await startTestServer(backend, { clock });
      tenant = await server.services.tenants.create('acme', 'Acme');
    });
    afterAll(async () => {
      await server?.close();
      await backend?.cleanup();
    });

    it('lets a new hire set a first password once a method is added, and audits it', async () => {
      const { user, token, kind } = await newHire('nina');
      expect(kind).toBe('register');
      // A registration session only registers a method.
      const early = await api(server.url, 'POST', '/api/v1/me/password', { newPassword: 'a first day passphrase' }, token);
      expect(early.status).toBe(403);
      expect(early.body.type).toMatch(/\/registration-only$/);

      const added = await api(server.url, 'POST', '/api/v1/me/methods', { type: 'totp' }, token);
      const confirmed = await api(server.url, 'POST', `/api/v1/me/methods/${added.body.id}/confirm`, { code: totpCode(added.body.secret, clock.now()) }, token);
      expect(confirmed.status).toBe(200);

      const set = await api(server.url, 'POST', '/api/v1/me/password', { newPassword: 'a first day passphrase' }, token);
      expect(set.status).toBe(200);
      expect(set.body).toEqual({ changed: true, sessionsEnded: 0 });
      const entries = await server.services.audit.list(tenant.id, { limit: 10, action: 'password.set-first' });
      expect(entries.map((e) => e.targetUserId)).toEqual([user.id]);

      // Only once: now the account has a password, changing it needs the current one.
      const again = await api(server.url, 'POST', '/api/v1/me/password', { newPassword: 'someone elses passphrase' }, token);
      expect(again.status).toBe(409);
      // A moment later (setting the password ended the sign-ins in progress up to its instant).
      clock.advance(1_000);
      const signin = await api(server.url, 'POST', '/api/v1/t/acme/signin', { username: 'nina', password: 'a first day passphrase' });
      expect(signin.body.state).toBe('factor_required');

      // The code that just confirmed the app, typed again: no attempt charged, and when the next code shows.
      const reused = await api(server.url, 'POST', `/api/v1/t/acme/signin/${signin.body.flow}/verify`, {
        method: 'totp',
        code: totpCode(added.body.secret, clock.now()),
      });
      expect(reused.status).toBe(401);
      expect(reused.body).toMatchObject({ type: expect.stringMatching(/\/code-already-used$/), nextInSeconds: 24, attemptsLeft: 5 });
      const malformed = await api(server.url, 'POST', `/api/v1/t/acme/signin/${signin.body.flow}/verify`, { method: 'totp', code: '12a45' });
      expect(malformed.status).toBe(400);
      expect(malformed.body).toMatchObject({ type: expect.stringMatching(/\/malformed-code$/), attemptsLeft: 5 });
      // Any other wrong code is charged as before.
      const code = totpCode(added.body.secret, clock.now());
      const wrong = await api(server.url, 'POST', `/api/v1/t/acme/signin/${signin.body.flow}/verify`, {
        method: 'totp',
        code: code === '000000' ? '111111' : '000000',
      });
      expect(wrong.body).toMatchObject({ type: expect.stringMatching(/\/invalid-code$/), attemptsLeft: 4 });
      clock.advance(30_000);
      const done = await api(server.url, 'POST', `/api/v1/t/acme/signin/${signin.body.flow}/verify`, {
        method: 'totp',
        code: totpCode(added.body.secret, clock.now()),
      });
      expect(done.status).toBe(200);
    });

    it('refuses a session older than the recent window (a stolen one), and never overwrites a password', async () => {
      const { user, token } = await newHire('omar');
      const added = await api(server.url, 'POST', '/api/v1/me/methods', { type: 'totp' }, token);
      await api(server.url, 'POST', `/api/v1/me/methods/${added.body.id}/confirm`, { code: totpCode(added.body.secret, clock.now()) }, token);
      clock.advance(11 * 60_000);
      const late = await api(server.url, 'POST', '/api/v1/me/password', { newPassword: 'a thief chose this one' }, token);
      expect(late.status).toBe(403);
      expect(late.body.type).toMatch(/\/reauthentication-required$/);
      expect((await server.services.users.findByUsername(tenant.id, 'omar'))!.passwordHash).toBeNull();

      // An account with a password: newPassword alone changes nothing, whatever the session.
      await server.services.users.setPasswordHash(tenant.id, user.id, await server.services.hasher.hash('omar has one now'));
      const signin = await api(server.url, 'POST', '/api/v1/t/acme/signin', { username: 'omar', password: 'omar has one now' });
      clock.advance(30_000);
      const full = await api(server.url, 'POST', `/api/v1/t/acme/signin/${signin.body.flow}/verify`, {
        method: 'totp',
        code: totpCode(added.body.secret, clock.now()),
      });
      expect(full.status).toBe(200);
      const overwrite = await api(server.url, 'POST', '/api/v1/me/password', { newPassword: 'a thief chose this one' }, full.body.session.token);
      expect(overwrite.status).toBe(409);
      expect(await server.services.hasher.verify((await server.services.users.findByUsername(tenant.id, 'omar'))!.passwordHash!, 'omar has one now', {})).toBe(
        true,
      );
    });

    it('keeps the new password rules for a first password', async () => {
      const { token } = await newHire('pia');
      const added = await api(server.url, 'POST', '/api/v1/me/methods', { type: 'totp' }, token);
      await api(server.url, 'POST', `/api/v1/me/methods/${added.body.id}/confirm`, { code: totpCode(added.body.secret, clock.now()) }, token);
      const short = await api(server.url, 'POST', '/api/v1/me/password', { newPassword: 'short' }, token);
      expect(short.status).toBe(400);
      expect((await server.services.users.findByUsername(tenant.id, 'pia'))!.passwordHash).toBeNull();
    });
  });
}
