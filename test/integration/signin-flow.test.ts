import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.ts';
import { backends, type Backend } from '../helpers/backends.ts';
import { api, startTestServer, type TestServer } from '../helpers/test-server.ts';
import { totpCode } from '../helpers/totp.ts';

const PASSWORD = 'correct horse battery staple';

for (const spec of backends) {
  describe.runIf(await spec.available())(`sign-in flow on ${spec.name}`, () => {
    let backend: Backend;
    let server: TestServer;
    const clock = new ManualClock(Date.UTC(2026, 10, 22, 12, 0, 0));
    let totpSecret = '';
    let recoveryCodes: string[] = [];

    beforeAll(async () => {
      backend = await spec.create();
      server = await startTestServer(backend, { clock });
      const tenant = await server.services.tenants.create('acme', 'Acme');
      await server.services.users.create(tenant.id, { username: 'Alice', passwordHash: await server.services.hasher.hash(PASSWORD) });
    });
    afterAll(async () => {
      await server?.close();
      await backend?.cleanup();
    });

    it('asks a user without methods to register, with a session that can only register', async () => {
      const res = await api(server.url, 'POST', '/api/v1/t/acme/signin', { username: 'alice', password: PASSWORD });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ state: 'registration_required', flow: null, methods: [] });
      const token = res.body.session.token as string;

      const me = await api(server.url, 'GET', '/api/v1/me', undefined, token);
      expect(me.body).toMatchObject({ username: 'alice', session: { scope: 'register' } });
      const signins = await api(server.url, 'GET', '/api/v1/me/signins', undefined, token);
      expect(signins.status).toBe(403);
      expect(signins.body.type).toMatch(/\/registration-only$/);

      const enrol = await api(server.url, 'POST', '/api/v1/me/methods', { type: 'totp', label: 'Phone' }, token);
      expect(enrol.status).toBe(201);
      expect(enrol.body).toMatchObject({ state: 'pending' });
      expect(enrol.body.otpauthUri).toMatch(/^otpauth:\/\/totp\/Acme:alice\?/);
      expect(enrol.body.qrCodeSvg).toMatch(/^<svg/);
      totpSecret = enrol.body.secret;

      const wrong = await api(
        server.url,
        'POST',
        `/api/v1/me/methods/${enrol.body.id}/confirm`,
        { code: '000000' === totpCode(totpSecret, clock.now()) ? '111111' : '000000' },
        token,
      );
      expect(wrong.status).toBe(401);
      const confirm = await api(server.url, 'POST', `/api/v1/me/methods/${enrol.body.id}/confirm`, { code: totpCode(totpSecret, clock.now()) }, token);
      expect(confirm.body).toEqual({ id: enrol.body.id, state: 'active' });

      // Proving the new method turns the registration session into a full one.
      const after = await api(server.url, 'GET', '/api/v1/me', undefined, token);
      expect(after.body.session).toMatchObject({ scope: 'full', amr: expect.arrayContaining(['pwd', 'otp', 'mfa']) });
    });

    it('signs in with password then TOTP, and never accepts the same code twice', async () => {
      clock.advance(30_000);
      const start = await api(server.url, 'POST', '/api/v1/t/acme/signin', { username: 'ALICE', password: PASSWORD });
      expect(start.body.state).toBe('factor_required');
      expect(start.body.methods).toEqual([expect.objectContaining({ type: 'totp', label: 'Phone', available: true, default: true })]);
      const code = totpCode(totpSecret, clock.now());
      const challenge = await api(server.url, 'POST', `/api/v1/t/acme/signin/${start.body.flow}/challenge`, { method: start.body.methods[0].id });
      expect(challenge.status).toBe(200);
      const verify = await api(server.url, 'POST', `/api/v1/t/acme/signin/${start.body.flow}/verify`, { method: 'totp', code });
      expect(verify.status).toBe(200);
      expect(verify.body.state).toBe('complete');
      expect(verify.body.session.token).toMatch(/^sfs_/);

      const again = await api(server.url, 'POST', '/api/v1/t/acme/signin', { username: 'alice', password: PASSWORD });
      const replay = await api(server.url, 'POST', `/api/v1/t/acme/signin/${again.body.flow}/verify`, { method: 'totp', code });
      // Refused; it is the code this app just used (still on its screen), so no attempt is charged for it.
      expect(replay.status).toBe(401);
      expect(replay.body).toMatchObject({ type: expect.stringMatching(/\/code-already-used$/), attemptsLeft: 5 });
      expect(replay.contentType).toMatch(/^application\/problem\+json/);

      // The previous step's code is older than the one used: refused too, even inside the ±1 window.
      const previous = await api(server.url, 'POST', `/api/v1/t/acme/signin/${again.body.flow}/verify`, {
        method: 'totp',
        code: totpCode(totpSecret, clock.now() - 30_000),
      });
      expect(previous.status).toBe(401);
      clock.advance(30_000);
      const next = await api(server.url, 'POST', `/api/v1/t/acme/signin/${again.body.flow}/verify`, {
        method: 'totp',
        code: totpCode(totpSecret, clock.now()),
      });
      expect(next.status).toBe(200);
    });

    it('a flow is single-use and dies after five wrong codes', async () => {
      clock.advance(30_000);
      const start = await api(server.url, 'POST', '/api/v1/t/acme/signin', { username: 'alice', password: PASSWORD });
      const flow = start.body.flow;
      const lefts: number[] = [];
      for (let i = 0; i < 5; i++) {
        // Six digits that are not the code (letters would be no guess at all, and cost nothing).
        const right = totpCode(totpSecret, clock.now());
        const res = await api(server.url, 'POST', `/api/v1/t/acme/signin/${flow}/verify`, { method: 'totp', code: right === '000000' ? '111111' : '000000' });
        lefts.push(res.body.attemptsLeft);
      }
      expect(lefts).toEqual([4, 3, 2, 1, 0]);
      const gone = await api(server.url, 'POST', `/api/v1/t/acme/signin/${flow}/verify`, { method: 'totp', code: totpCode(totpSecret, clock.now()) });
      expect(gone.status).toBe(404);
      expect(gone.body.type).toMatch(/\/flow-not-found$/);
    });

    it('recovery codes: ten, each works once, a new set replaces the old', async () => {
      clock.advance(30_000);
      const full = await signInFully();
      const created = await api(server.url, 'POST', '/api/v1/me/methods', { type: 'recovery-codes' }, full);
      expect(created.status).toBe(201);
      expect(created.body.codes).toHaveLength(10);
      expect(new Set(created.body.codes).size).toBe(10);
      recoveryCodes = created.body.codes;

      const start = await api(server.url, 'POST', '/api/v1/t/acme/signin', { username: 'alice', password: PASSWORD });
      expect(start.body.methods.map((m: { type: string }) => m.type)).toEqual(['totp', 'recovery-codes']);
      const ok = await api(server.url, 'POST', `/api/v1/t/acme/signin/${start.body.flow}/verify`, {
        method: 'recovery-codes',
        code: recoveryCodes[0]!.toUpperCase(),
      });
      expect(ok.status).toBe(200);

      const second = await api(server.url, 'POST', '/api/v1/t/acme/signin', { username: 'alice', password: PASSWORD });
      const reused = await api(server.url, 'POST', `/api/v1/t/acme/signin/${second.body.flow}/verify`, { method: 'recovery-codes', code: recoveryCodes[0] });
      expect(reused.status).toBe(401);

      const list = await api(server.url, 'GET', '/api/v1/me/methods', undefined, full);
      expect(list.body.find((m: { type: string }) => m.type === 'recovery-codes')).toMatchObject({ remaining: 9 });

      const replaced = await api(server.url, 'POST', '/api/v1/me/methods', { type: 'recovery-codes' }, full);
      const old = await api(server.url, 'POST', `/api/v1/t/acme/signin/${second.body.flow}/verify`, { method: 'recovery-codes', code: recoveryCodes[1] });
      expect(old.status).toBe(401);
      const fresh = await api(server.url, 'POST', `/api/v1/t/acme/signin/${second.body.flow}/verify`, {
        method: 'recovery-codes',
        code: replaced.body.codes[5],
      });
      expect(fresh.status).toBe(200);
    });

    it('answers an unknown user exactly like a wrong password', async () => {
      const wrong = await api(server.url, 'POST', '/api/v1/t/acme/signin', { username: 'alice', password: 'not it' });
      const unknown = await api(server.url, 'POST', '/api/v1/t/acme/signin', { username: 'mallory', password: 'not it' });
      expect(wrong.status).toBe(401);
      expect(unknown.status).toBe(401);
      expect(unknown.body).toEqual(wrong.body);
      expect(wrong.body.type).toBe('https://steadfast.dev/problems/invalid-credentials');
      expect([...unknown.headers.keys()].sort()).toEqual([...wrong.headers.keys()].sort());
    });

    it('lets a user rename, set default and remove methods, but never the last one (recovery codes are no method to be left with)', async () => {
      clock.advance(30_000);
      const token = await signInFully();
      const list = (await api(server.url, 'GET', '/api/v1/me/methods', undefined, token)).body as { id: string; type: string; default: boolean }[];
      const totp = list.find((m) => m.type === 'totp')!;
      const recovery = list.find((m) => m.type === 'recovery-codes')!;
      const renamed = await api(server.url, 'PATCH', `/api/v1/me/methods/${totp.id}`, { label: 'Work phone' }, token);
      expect(renamed.body).toMatchObject({ label: 'Work phone', default: true });
      const defaulted = await api(server.url, 'PATCH', `/api/v1/me/methods/${recovery.id}`, { default: true }, token);
      expect(defaulted.status).toBe(400);
      expect(defaulted.body.type).toMatch(/\/invalid-request$/);
      const onlyCodesLeft = await api(server.url, 'DELETE', `/api/v1/me/methods/${totp.id}`, undefined, token);
      expect(onlyCodesLeft.status).toBe(409);
      expect(onlyCodesLeft.body.type).toMatch(/\/last-method$/);
      expect((await api(server.url, 'DELETE', `/api/v1/me/methods/${recovery.id}`, undefined, token)).status).toBe(204);
      const last = await api(server.url, 'DELETE', `/api/v1/me/methods/${totp.id}`, undefined, token);
      expect(last.status).toBe(409);
      expect(last.body.type).toMatch(/\/last-method$/);
      const after = (await api(server.url, 'GET', '/api/v1/me/methods', undefined, token)).body;
      expect(after).toEqual([expect.objectContaining({ id: totp.id, default: true })]);
    });

    it('records sign-ins for the user, pages them, and "this wasn\'t me" ends the other sessions', async () => {
      clock.advance(30_000);
      const other = await signInFully();
      clock.advance(30_000);
      const mine = await signInFully();
      const page1 = await api(server.url, 'GET', '/api/v1/me/signins?limit=3', undefined, mine);
      expect(page1.status).toBe(200);
      expect(page1.body.items).toHaveLength(3);
      expect(page1.body.items[0]).toMatchObject({ outcome: 'success', step: 'second-factor', method: 'totp', ip: '127.0.0.1' });
      const page2 = await api(server.url, 'GET', `/api/v1/me/signins?limit=3&cursor=${page1.body.next}`, undefined, mine);
      expect(page2.body.items[0].at <= page1.body.items[2].at).toBe(true);
      expect(page2.body.items.map((i: { id: string }) => i.id)).not.toContain(page1.body.items[0].id);
      const reasons = new Set<string>();
      let cursor: string | null = null;
      do {
        const page: { body: { items: { reason: string }[]; next: string | null } } = await api(
          server.url,
          'GET',
          `/api/v1/me/signins?limit=50${cursor ? `&cursor=${cursor}` : ''}`,
          undefined,
          mine,
        );
        page.body.items.forEach((i) => reasons.add(i.reason));
        cursor = page.body.next;
      } while (cursor);
      expect(reasons).toEqual(new Set(['ok', 'factor_required', 'registration_required', 'invalid_code', 'invalid_credentials']));

      // (A password step: reporting a second step would take back the authenticator it used, which the tests below use.)
      const passwordStep = page1.body.items.find((i: { step: string; outcome: string }) => i.step === 'password' && i.outcome === 'success');
      const report = await api(server.url, 'POST', `/api/v1/me/signins/${passwordStep.id}/report`, {}, mine);
      expect(report.status).toBe(200);
      expect(report.body.sessionsEnded).toBeGreaterThanOrEqual(1);
      expect((await api(server.url, 'GET', '/api/v1/me', undefined, other)).status).toBe(401);
      expect((await api(server.url, 'GET', '/api/v1/me', undefined, mine)).status).toBe(200);
    });

    it('signs out, and keeps the used TOTP step across a restart', async () => {
      clock.advance(30_000);
      const token = await signInFully();
      expect((await api(server.url, 'DELETE', '/api/v1/me/session', undefined, token)).status).toBe(204);
      expect((await api(server.url, 'GET', '/api/v1/me', undefined, token)).status).toBe(401);

      const usedCode = totpCode(totpSecret, clock.now());
      await server.close();
      server = await startTestServer(backend, { clock });
      const start = await api(server.url, 'POST', '/api/v1/t/acme/signin', { username: 'alice', password: PASSWORD });
      const replay = await api(server.url, 'POST', `/api/v1/t/acme/signin/${start.body.flow}/verify`, { method: 'totp', code: usedCode });
      expect(replay.status).toBe(401);
    });

    it('a flow of another shape (another release, or damage) reads as unknown: 404, never a 500 or a trusted cast', async () => {
      clock.advance(30_000);
      const start = await api(server.url, 'POST', '/api/v1/t/acme/signin', { username: 'alice', password: PASSWORD });
      expect(start.body.state).toBe('factor_required');
      const key = `flow:${start.body.flow}`;
      const stored = await server.services.ephemeral.get(key);
      expect(stored).toMatchObject({ v: 1, id: start.body.flow, kind: 'second-factor' });
      // The same record as a future release might write it: amr as a string, a kind this release does not know.
      await server.services.ephemeral.set(key, { ...(stored as object), amr: 'pwd', kind: 'step-up' }, 60_000);
      const verify = await api(server.url, 'POST', `/api/v1/t/acme/signin/${start.body.flow}/verify`, {
        method: 'totp',
        code: totpCode(totpSecret, clock.now()),
      });
      expect(verify.status).toBe(404);
      expect(verify.body.type).toMatch(/\/flow-not-found$/);

      // The same shape under a version this release does not know: also unknown.
      const next = await api(server.url, 'POST', '/api/v1/t/acme/signin', { username: 'alice', password: PASSWORD });
      const nextKey = `flow:${next.body.flow}`;
      await server.services.ephemeral.set(nextKey, { ...((await server.services.ephemeral.get(nextKey)) as object), v: 2 }, 60_000);
      const later = await api(server.url, 'POST', `/api/v1/t/acme/signin/${next.body.flow}/verify`, {
        method: 'totp',
        code: totpCode(totpSecret, clock.now()),
      });
      expect(later.status).toBe(404);
    });

    async function signInFully(): Promise<string> {
      const start = await api(server.url, 'POST', '/api/v1/t/acme/signin', { username: 'alice', password: PASSWORD });
      expect(start.body.state).toBe('factor_required');
      const verify = await api(server.url, 'POST', `/api/v1/t/acme/signin/${start.body.flow}/verify`, {
        method: 'totp',
        code: totpCode(totpSecret, clock.now()),
      });
      expect(verify.status).toBe(200);
      return verify.body.session.token;
    }
  });
}
