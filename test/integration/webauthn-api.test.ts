import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.ts';
import { backends, type Backend } from '../helpers/backends.ts';
import { api, startTestServer, type TestServer } from '../helpers/test-server.ts';
import { SoftAuthenticator } from '../helpers/soft-authenticator.ts';

const ORIGIN = 'https://login.example.com';
const PASSWORD = 'wanda password 1';

for (const spec of backends) {
  describe.runIf(await spec.available())(`WebAuthn over the API on ${spec.name}`, () => {
    let backend: Backend;
    let server: TestServer;
    const clock = new ManualClock(Date.now());
    const passkey = new SoftAuthenticator(ORIGIN);
    const securityKey = new SoftAuthenticator(ORIGIN, Buffer.alloc(16, 7), false);
    let token = '';

    beforeAll(async () => {
      backend = await spec.create({ STEADFAST_PUBLIC_URL: ORIGIN });
      server = await startTestServer(backend, { clock });
      const tenant = await server.services.tenants.create('wa');
      await server.services.users.create(tenant.id, { username: 'wanda', passwordHash: await server.services.hasher.hash(PASSWORD) });
      token = (await api(server.url, 'POST', '/api/v1/t/wa/signin', { username: 'wanda', password: PASSWORD })).body.session.token;
    });
    afterAll(async () => {
      await server?.close();
      await backend?.cleanup();
    });

    async function register(authenticator: SoftAuthenticator, kind: 'passkey' | 'security-key', label: string) {
      const options = await api(server.url, 'POST', '/api/v1/me/methods/webauthn/options', { kind }, token);
      expect(options.status).toBe(200);
      expect(options.body.rp.id).toBe('login.example.com');
      return api(server.url, 'POST', '/api/v1/me/methods', { type: 'webauthn', label, attestation: authenticator.register(options.body) }, token);
    }

    it('registers a passkey and a security key; the registration session becomes a full one', async () => {
      const first = await register(passkey, 'passkey', 'Laptop passkey');
      expect(first.status).toBe(201);
      expect((await api(server.url, 'GET', '/api/v1/me', undefined, token)).body.session).toMatchObject({ scope: 'full', amr: ['pwd', 'hwk', 'mfa'] });
      const second = await register(securityKey, 'security-key', 'Blue key');
      expect(second.status).toBe(201);
      const again = await register(securityKey, 'security-key', 'Blue key again');
      expect(again.status).toBe(409);
      const list = (await api(server.url, 'GET', '/api/v1/me/methods', undefined, token)).body;
      expect(list.map((m: { label: string }) => m.label).sort()).toEqual(['Blue key', 'Laptop passkey']);
    });

    it('refuses an attestation for another origin, or a replayed registration', async () => {
      const options = await api(server.url, 'POST', '/api/v1/me/methods/webauthn/options', { kind: 'security-key' }, token);
      const evil = new SoftAuthenticator('https://evil.example.net');
      const bad = await api(server.url, 'POST', '/api/v1/me/methods', { type: 'webauthn', attestation: evil.register(options.body) }, token);
      expect(bad.status).toBe(400);
      const replay = await api(server.url, 'POST', '/api/v1/me/methods', { type: 'webauthn', attestation: evil.register(options.body) }, token);
      expect(replay.status).toBe(409);
      expect(replay.body.type).toMatch(/\/invalid-state$/);
    });

    it('uses a security key as the second factor after a password', async () => {
      const start = await api(server.url, 'POST', '/api/v1/t/wa/signin', { username: 'wanda', password: PASSWORD });
      expect(start.body.state).toBe('factor_required');
      const challenge = await api(server.url, 'POST', `/api/v1/t/wa/signin/${start.body.flow}/challenge`, { method: 'webauthn' });
      expect(challenge.body.webauthn.allowCredentials.map((c: { id: string }) => c.id).sort()).toEqual([passkey.id, securityKey.id].sort());
      const verify = await api(server.url, 'POST', `/api/v1/t/wa/signin/${start.body.flow}/verify`, {
        method: 'webauthn',
        assertion: securityKey.assert(challenge.body.webauthn.challenge),
      });
      expect(verify.status).toBe(200);
      const me = await api(server.url, 'GET', '/api/v1/me', undefined, verify.body.session.token);
      expect(me.body.session.amr).toEqual(expect.arrayContaining(['pwd', 'hwk', 'mfa']));
    });

    it('signs in with a passkey alone, user verification required', async () => {
      const start = await api(server.url, 'POST', '/api/v1/t/wa/signin/passkey');
      expect(start.status).toBe(200);
      expect(start.body.webauthn).toMatchObject({ userVerification: 'required', allowCredentials: [] });
      // The security key verifies no user: not enough to sign in without a password.
      const weak = await api(server.url, 'POST', `/api/v1/t/wa/signin/${start.body.flow}/verify`, {
        method: 'passkey',
        assertion: securityKey.assert(start.body.webauthn.challenge),
      });
      expect(weak.status).toBe(401);

      const next = await api(server.url, 'POST', '/api/v1/t/wa/signin/passkey');
      const ok = await api(server.url, 'POST', `/api/v1/t/wa/signin/${next.body.flow}/verify`, {
        method: 'passkey',
        assertion: passkey.assert(next.body.webauthn.challenge),
      });
      expect(ok.status).toBe(200);
      const me = await api(server.url, 'GET', '/api/v1/me', undefined, ok.body.session.token);
      expect(me.body).toMatchObject({ username: 'wanda', session: { scope: 'full', amr: expect.arrayContaining(['hwk', 'user', 'mfa']) } });

      // A challenge answers once.
      const replay = await api(server.url, 'POST', `/api/v1/t/wa/signin/${next.body.flow}/verify`, {
        method: 'passkey',
        assertion: passkey.assert(next.body.webauthn.challenge),
      });
      expect(replay.status).toBe(404);
    });

    it('refuses an assertion from another origin and an unknown credential', async () => {
      const start = await api(server.url, 'POST', '/api/v1/t/wa/signin/passkey');
      const phished = await api(server.url, 'POST', `/api/v1/t/wa/signin/${start.body.flow}/verify`, {
        method: 'passkey',
        assertion: passkey.assert(start.body.webauthn.challenge, { origin: 'https://login.example.com.evil.net' }),
      });
      expect(phished.status).toBe(401);
      const stranger = new SoftAuthenticator(ORIGIN);
      const start2 = await api(server.url, 'POST', '/api/v1/t/wa/signin/passkey');
      const unknown = await api(server.url, 'POST', `/api/v1/t/wa/signin/${start2.body.flow}/verify`, {
        method: 'passkey',
        assertion: stranger.assert(start2.body.webauthn.challenge),
      });
      expect(unknown.status).toBe(401);
    });

    it('detects a cloned authenticator by its signature counter', async () => {
      const tenant0 = (await server.services.tenants.findBySlug('wa'))!;
      const stored = Number((await server.services.credentials.findByExternalId(tenant0.id, passkey.id))!.publicData.counter);
      expect(stored).toBeGreaterThan(0);
      const start = await api(server.url, 'POST', '/api/v1/t/wa/signin/passkey');
      const cloned = await api(server.url, 'POST', `/api/v1/t/wa/signin/${start.body.flow}/verify`, {
        method: 'passkey',
        assertion: passkey.assert(start.body.webauthn.challenge, { counter: stored }),
      });
      expect(cloned.status).toBe(401);
      const tenant = (await server.services.tenants.findBySlug('wa'))!;
      const credential = await server.services.credentials.findByExternalId(tenant.id, passkey.id);
      expect(credential!.publicData.cloneSuspectedAt).toEqual(expect.any(Number));
    });

    it('accepts one of two assertions racing with the same counter (a clone signing in at the same moment)', async () => {
      const [a, b] = await Promise.all([api(server.url, 'POST', '/api/v1/t/wa/signin/passkey'), api(server.url, 'POST', '/api/v1/t/wa/signin/passkey')]);
      const counter = passkey.counter + 1;
      const answers = await Promise.all(
        [a, b].map((start) =>
          api(server.url, 'POST', `/api/v1/t/wa/signin/${start.body.flow}/verify`, {
            method: 'passkey',
            assertion: passkey.assert(start.body.webauthn.challenge, { counter }),
          }),
        ),
      );
      expect(answers.map((r) => r.status).sort()).toEqual([200, 401]);
      const tenant = (await server.services.tenants.findBySlug('wa'))!;
      expect((await server.services.credentials.findByExternalId(tenant.id, passkey.id))!.signCount).toBe(counter);
    });

    it('needs a recent sign-in to change methods', async () => {
      const start = await api(server.url, 'POST', '/api/v1/t/wa/signin/passkey');
      const ok = await api(server.url, 'POST', `/api/v1/t/wa/signin/${start.body.flow}/verify`, {
        method: 'passkey',
        assertion: passkey.assert(start.body.webauthn.challenge),
      });
      const fresh = ok.body.session.token;
      const list = (await api(server.url, 'GET', '/api/v1/me/methods', undefined, fresh)).body;
      expect((await api(server.url, 'PATCH', `/api/v1/me/methods/${list[1].id}`, { label: 'Renamed key' }, fresh)).status).toBe(200);
      clock.advance(11 * 60_000);
      const stale = await api(server.url, 'PATCH', `/api/v1/me/methods/${list[1].id}`, { label: 'Attacker key' }, fresh);
      expect(stale.status).toBe(403);
      expect(stale.body.type).toMatch(/\/reauthentication-required$/);
      expect((await api(server.url, 'POST', '/api/v1/me/methods/webauthn/options', {}, fresh)).status).toBe(403);
      expect((await api(server.url, 'DELETE', `/api/v1/me/methods/${list[1].id}`, undefined, fresh)).status).toBe(403);
      // Reading is still fine.
      expect((await api(server.url, 'GET', '/api/v1/me/methods', undefined, fresh)).status).toBe(200);
    });

    it('enforces the AAGUID allow-list of the tenant policy', async () => {
      const tenant = (await server.services.tenants.findBySlug('wa'))!;
      await server.services.durable.db
        .updateTable('tenants')
        .set({ policy: JSON.stringify({ ...tenant.policy, webauthnAaguids: ['07070707-0707-0707-0707-070707070707'] }) })
        .where('id', '=', tenant.id)
        .execute();
      clock.advance(10_000);
      const start = await api(server.url, 'POST', '/api/v1/t/wa/signin/passkey');
      const ok = await api(server.url, 'POST', `/api/v1/t/wa/signin/${start.body.flow}/verify`, {
        method: 'passkey',
        assertion: passkey.assert(start.body.webauthn.challenge),
      });
      token = ok.body.session.token;
      const options = await api(server.url, 'POST', '/api/v1/me/methods/webauthn/options', { kind: 'security-key' }, token);
      const unlisted = await api(
        server.url,
        'POST',
        '/api/v1/me/methods',
        { type: 'webauthn', attestation: new SoftAuthenticator(ORIGIN).register(options.body) },
        token,
      );
      expect(unlisted.status).toBe(409);
      expect(unlisted.body.type).toMatch(/\/method-not-permitted$/);
      const options2 = await api(server.url, 'POST', '/api/v1/me/methods/webauthn/options', { kind: 'security-key' }, token);
      const listed = await api(
        server.url,
        'POST',
        '/api/v1/me/methods',
        { type: 'webauthn', attestation: new SoftAuthenticator(ORIGIN, Buffer.alloc(16, 7), false).register(options2.body) },
        token,
      );
      expect(listed.status).toBe(201);
    });
  });
}
