import { generateKeyPairSync } from 'node:crypto';
import { adminPersonSession } from '../helpers/admin-person.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.ts';
import { loadConfig } from '../../src/config/config.ts';
import type { Tenant } from '../../src/directory/tenants.ts';
import { backends, type Backend } from '../helpers/backends.ts';
import { api, startTestServer, type TestServer } from '../helpers/test-server.ts';
import { totpCode } from '../helpers/totp.ts';
import { PageClient, flowOf } from '../helpers/page-client.ts';
import { SoftAuthenticator } from '../helpers/soft-authenticator.ts';

const PASSWORD = 'correct horse battery staple';
const ORIGIN_URL = 'http://localhost:7777';
const OPS_TOKEN = 'ops-token-for-the-security-review-tests';

/**
 * One test per finding of the outside security review (issue 11): each
 * attack must fail, and the owner's path must still work. They run on both
 * backends, since most of them are about what is stored where.
 */
for (const spec of backends) {
  describe.runIf(await spec.available())(`security review findings on ${spec.name}`, () => {
    let backend: Backend;
    let server: TestServer;
    let tenant: Tenant;
    let adminToken = '';
    const clock = new ManualClock(Date.UTC(2026, 10, 30, 9, 0, 0));

    /**
     * An administrator's request, after which the clock moves on a millisecond: a sign-in begun in the very
     * millisecond an administrator ended the user's sessions counts as begun before it (SigninService.issueSession).
     */
    const call = async (method: string, path: string, body?: unknown, token = adminToken) => {
      const answer = await api(server.url, method, path, body, token);
      clock.advance(1);
      return answer;
    };
    /** The same, by an administrator signed in with a second factor: the policy and apps are not a token's to change. */
    const asPerson = async (method: string, path: string, body?: unknown) => call(method, path, body, await adminPersonSession(server.services, 'acme'));

    /** A user with a password, and with an authenticator app unless `withTotp` is false; the app's secret. */
    const user = async (username: string, options: { withTotp?: boolean; admin?: boolean; breakGlass?: boolean } = {}) => {
      const input = { username, password: PASSWORD, admin: options.admin, breakGlass: options.breakGlass };
      // An administrator or a break-glass account is made by a person or the command line, never by a token (the
      // fourth and sixth rounds below).
      const created =
        options.admin || options.breakGlass
          ? { status: 201, body: await server.services.admin.createUser(tenant, 'cli', input) }
          : await call('POST', '/api/v1/admin/users', input);
      expect(created.status).toBe(201);
      let secret = '';
      if (options.withTotp !== false) {
        const start = await api(server.url, 'POST', '/api/v1/t/acme/signin', { username, password: PASSWORD });
        expect(start.body.state).toBe('registration_required');
        secret = await addTotp(start.body.session.token);
      }
      return { id: created.body.id as string, secret };
    };

    /** Adds and confirms an authenticator app with this session; its secret. */
    const addTotp = async (token: string) => {
      const added = await api(server.url, 'POST', '/api/v1/me/methods', { type: 'totp' }, token);
      expect(added.status).toBe(201);
      clock.advance(30_000);
      const confirmed = await api(server.url, 'POST', `/api/v1/me/methods/${added.body.id}/confirm`, { code: totpCode(added.body.secret, clock.now()) }, token);
      expect(confirmed.status).toBe(200);
      return added.body.secret as string;
    };

    /** Password then TOTP over the API; the full session's token. */
    const signIn = async (username: string, secret: string) => {
      const start = await api(server.url, 'POST', '/api/v1/t/acme/signin', { username, password: PASSWORD });
      expect(start.body.state).toBe('factor_required');
      clock.advance(30_000);
      const done = await api(server.url, 'POST', `/api/v1/t/acme/signin/${start.body.flow}/verify`, { method: 'totp', code: totpCode(secret, clock.now()) });
      expect(done.status).toBe(200);
      return done.body.session.token as string;
    };

    /** Runs `meanwhile` once, inside the next Argon2id hash the node makes (a pass's, a new password's), as a request racing it would. */
    const duringNextHash = (meanwhile: () => Promise<unknown>) => {
      const hasher = server.services.hasher;
      const original = hasher.hash.bind(hasher);
      hasher.hash = async (secret: string) => {
        hasher.hash = original;
        await meanwhile();
        return original(secret);
      };
    };

    beforeAll(async () => {
      backend = await spec.create({ STEADFAST_PUBLIC_URL: ORIGIN_URL, STEADFAST_OPS_TOKEN: OPS_TOKEN });
      server = await startTestServer(backend, { clock });
      tenant = await server.services.tenants.create('acme', 'Acme');
      adminToken = (await server.services.adminTokens.create(tenant.id, 'admin')).token;
    });
    afterAll(async () => {
      await server?.close();
      await backend?.cleanup();
    });

    describe('1. a methods reset sends the user back to registration once, not for good', () => {
      it('clears the flag when the first method is confirmed: the next password sign-in asks for that method', async () => {
        const victim = await user('rita');
        const reset = await call('POST', `/api/v1/admin/users/${victim.id}/reset-methods`, { pass: { oneTime: true } });
        expect(reset.status).toBe(200);
        expect((await server.services.users.get(tenant.id, victim.id))!.mustRegister).toBe(true);
        clock.advance(1);

        const first = await api(server.url, 'POST', '/api/v1/t/acme/signin', { username: 'rita', tap: reset.body.pass.code });
        expect(first.body.state).toBe('registration_required');
        const secret = await addTotp(first.body.session.token);
        expect((await server.services.users.get(tenant.id, victim.id))!.mustRegister).toBe(false);

        // Knowing the password is no longer enough: the new method is asked for.
        const again = await api(server.url, 'POST', '/api/v1/t/acme/signin', { username: 'rita', password: PASSWORD });
        expect(again.body).toMatchObject({ state: 'factor_required', methods: [{ type: 'totp' }] });
        expect(again.body.session).toBeUndefined();
        expect(await signIn('rita', secret)).toMatch(/^sfs_/);
      });

      it('never hands a registration session to a user who has an active method, even with the flag left set', async () => {
        const victim = await user('stan');
        // A store written by an older release: the flag set and a method active.
        await server.services.users.update(tenant.id, victim.id, { mustRegister: true });
        const start = await api(server.url, 'POST', '/api/v1/t/acme/signin', { username: 'stan', password: PASSWORD });
        expect(start.body).toMatchObject({ state: 'factor_required' });
        expect(start.body.session).toBeUndefined();
        // The attacker's way in, registering their own app with that session, does not exist.
        const tap = await call('POST', `/api/v1/admin/users/${victim.id}/tap`, { minutes: 60, oneTime: true });
        const byPass = await api(server.url, 'POST', '/api/v1/t/acme/signin', { username: 'stan', tap: tap.body.code });
        expect(byPass.body).toMatchObject({ state: 'complete', session: { token: expect.any(String) } });
      });

      it('leaves the password as it stood registering nothing: whoever else knew it would register first', async () => {
        // Found (twenty-second round): after a reset, anyone who knew the password (the reason for many a reset)
        // signed in with it and registered an authenticator of their own before the owner.
        const victim = await user('reset-raced');
        expect((await call('POST', `/api/v1/admin/users/${victim.id}/reset-methods`)).status).toBe(200);
        clock.advance(1);
        const raced = await api(server.url, 'POST', '/api/v1/t/acme/signin', { username: 'reset-raced', password: PASSWORD });
        expect(raced.status).toBe(403);
        expect(raced.body.type).toMatch(/\/password-cannot-register$/);
        expect(raced.body.session).toBeUndefined();
        // Nor through the pages.
        const pages = new PageClient(server.url);
        const posted = await pages.post('/t/acme/signin', { username: 'reset-raced', password: PASSWORD }, { from: '/t/acme/signin' });
        expect(pages.cookies.get('sf_session')).toBeUndefined();
        expect((await pages.get(posted.location!)).text).toContain('methods were reset');
        // A pass from an administrator registers; so does a password they set after the reset.
        const pass = await call('POST', `/api/v1/admin/users/${victim.id}/tap`, { oneTime: true });
        clock.advance(1);
        const owner = await api(server.url, 'POST', '/api/v1/t/acme/signin', { username: 'reset-raced', tap: pass.body.code });
        expect(owner.body.state).toBe('registration_required');
      });

      it('raises the break-glass alert when a break-glass account is sent to registration', async () => {
        const glass = await user('glass', { breakGlass: true });
        await server.services.admin.resetMethods(tenant, 'cli', glass.id);
        clock.advance(1);
        // (A password set after the reset registers: the command line's, say.)
        await server.services.admin.updateUser(tenant, 'cli', glass.id, { password: PASSWORD });
        clock.advance(1);
        const before = (await server.services.audit.list(tenant.id, { limit: 100, action: 'break-glass.signin', userId: glass.id })).length;
        const start = await api(server.url, 'POST', '/api/v1/t/acme/signin', { username: 'glass', password: PASSWORD });
        expect(start.body.state).toBe('registration_required');
        const after = await server.services.audit.list(tenant.id, { limit: 100, action: 'break-glass.signin', userId: glass.id });
        expect(after.length).toBe(before + 1);
        expect(after[0]!.details).toMatchObject({ method: 'password' });
      });
    });

    describe('2. app transactions are not sign-ins', () => {
      it('is unknown to the sign-in endpoints, to other apps, and proves no password', async () => {
        const owner = await user('tom');
        const vpn = (await asPerson('POST', '/api/v1/admin/apps', { name: 'VPN', kind: 'api' })).body.apiKey as string;
        const wiki = (await asPerson('POST', '/api/v1/admin/apps', { name: 'Wiki', kind: 'api' })).body.apiKey as string;
        clock.advance(30_000);
        const wrong = await api(
          server.url,
          'POST',
          '/api/v1/app/auth',
          { username: 'tom', method: 'totp', code: '000000' === totpCode(owner.secret, clock.now()) ? '111111' : '000000' },
          vpn,
        );
        expect(wrong.status).toBe(401);

        // Finish a transaction through the public sign-in endpoint: the txid names no sign-in there.
        const txid = await server.services.signin.startAppTransaction(
          tenant,
          (await server.services.apps.list(tenant.id)).find((a) => a.name === 'VPN')!.id,
          (await server.services.users.get(tenant.id, owner.id))!,
        );
        const hijack = await api(server.url, 'POST', `/api/v1/t/acme/signin/${txid}/verify`, { method: 'totp', code: totpCode(owner.secret, clock.now()) });
        expect(hijack.status).toBe(404);
        expect(hijack.body.type).toMatch(/\/flow-not-found$/);
        // Another app of the tenant can neither read nor finish it.
        expect((await api(server.url, 'GET', `/api/v1/app/auth/${txid}`, undefined, wiki)).body).toEqual({ state: 'expired' });
        const stolen = await api(
          server.url,
          'POST',
          '/api/v1/app/auth',
          { username: 'tom', method: 'totp', code: totpCode(owner.secret, clock.now()), txid },
          wiki,
        );
        expect(stolen.body.type).toMatch(/\/flow-not-found$/);
        // Its own app finishes it, and learns only the factor Steadfast proved: no `pwd`, no session.
        expect((await api(server.url, 'GET', `/api/v1/app/auth/${txid}`, undefined, vpn)).body).toEqual({ state: 'pending' });
        const done = await api(
          server.url,
          'POST',
          '/api/v1/app/auth',
          { username: 'tom', method: 'totp', code: totpCode(owner.secret, clock.now()), txid },
          vpn,
        );
        expect(done.body).toEqual({ result: 'allow', amr: ['otp'] });
        expect(JSON.stringify(done.body)).not.toContain('sfs_');
      });

      it('keeps a browser sign-in out of reach of the app API', async () => {
        const owner = await user('uma');
        const vpn = (await asPerson('POST', '/api/v1/admin/apps', { name: 'VPN2', kind: 'api' })).body.apiKey as string;
        const start = await api(server.url, 'POST', '/api/v1/t/acme/signin', { username: 'uma', password: PASSWORD });
        clock.advance(30_000);
        const viaApp = await api(
          server.url,
          'POST',
          '/api/v1/app/auth',
          { username: 'uma', method: 'totp', code: totpCode(owner.secret, clock.now()), txid: start.body.flow },
          vpn,
        );
        expect(viaApp.body.type).toMatch(/\/flow-not-found$/);
        // The browser's own flow is untouched and finishes.
        const done = await api(server.url, 'POST', `/api/v1/t/acme/signin/${start.body.flow}/verify`, {
          method: 'totp',
          code: totpCode(owner.secret, clock.now()),
        });
        expect(done.status).toBe(200);
      });
    });

    describe('4. administration needs a second factor, whatever the tenant policy', () => {
      it('refuses an administrator signed in with a password alone, on the API and the console', async () => {
        await asPerson('PUT', '/api/v1/admin/policy', { mfaRequired: false });
        try {
          await user('penny', { admin: true, withTotp: false });
          const start = await api(server.url, 'POST', '/api/v1/t/acme/signin', { username: 'penny', password: PASSWORD });
          expect(start.body).toMatchObject({ state: 'complete', session: { token: expect.any(String) } });
          const token = start.body.session.token as string;
          const create = await api(server.url, 'POST', '/api/v1/admin/users', { username: 'mallory', admin: true }, token);
          expect(create.status).toBe(403);
          expect(create.body.type).toMatch(/\/second-factor-required$/);
          expect((await api(server.url, 'GET', '/api/v1/admin/users', undefined, token)).status).toBe(403);

          const browser = new PageClient(server.url);
          browser.cookies.set('sf_session', token);
          const console = await browser.get('/t/acme/admin');
          expect(console.status).toBe(403);
          expect(console.text).toContain('Sign in with a second factor');

          // The way in: sign in for the console, which asks for a second factor and registers one first.
          const pages = new PageClient(server.url);
          const signin = await pages.post('/t/acme/signin', { username: 'penny', password: PASSWORD, next: 'admin' }, { from: '/t/acme/signin' });
          expect(signin.status).toBe(303);
          const registration = (await server.services.sessions.authenticate(pages.cookies.get('sf_session')!))!;
          expect(registration.scope).toBe('register');
          await addTotp(pages.cookies.get('sf_session')!);
          expect((await pages.get('/t/acme/admin')).status).toBe(200);
        } finally {
          await asPerson('PUT', '/api/v1/admin/policy', { mfaRequired: true });
        }
      });
    });

    describe('5. a remembered browser is not a second factor', () => {
      it('gives a session without `mfa`, which an app demanding MFA and the admin console do not accept', async () => {
        await asPerson('PUT', '/api/v1/admin/policy', { rememberedDeviceDays: 7 });
        const ada = await user('ada', { admin: true });
        const browser = new PageClient(server.url);
        const start = await browser.post('/t/acme/signin', { username: 'ada', password: PASSWORD }, { from: '/t/acme/signin/tap' });
        const flow = flowOf(start)!;
        clock.advance(30_000);
        const verified = await browser.post(
          '/t/acme/signin/verify',
          { flow, method: 'totp', code: totpCode(ada.secret, clock.now()), remember: 'on' },
          { from: '/t/acme/signin/tap' },
        );
        expect(verified.status).toBe(303);
        expect(browser.cookies.get('sf_device')).toMatch(/^sfd_/);
        expect((await server.services.sessions.authenticate(browser.cookies.get('sf_session')!))!.amr).toContain('mfa');

        // Next day, same browser: the password alone signs in, and the session says so.
        clock.advance(86_400_000);
        await browser.post('/t/acme/signout', {}, { from: '/t/acme/signin/tap' });
        const again = await browser.post('/t/acme/signin', { username: 'ada', password: PASSWORD }, { from: '/t/acme/signin/tap' });
        expect(again.status).toBe(303);
        const remembered = (await server.services.sessions.authenticate(browser.cookies.get('sf_session')!))!;
        expect(remembered.amr).toEqual(['pwd']);
        expect((await api(server.url, 'GET', '/api/v1/admin/users', undefined, browser.cookies.get('sf_session'))).body.type).toMatch(
          /\/second-factor-required$/,
        );

        // An app that asks for MFA, and the console, get a real second factor in this sign-in.
        await browser.post('/t/acme/signout', {}, { from: '/t/acme/signin/tap' });
        const forAdmin = await browser.post('/t/acme/signin', { username: 'ada', password: PASSWORD, next: 'admin' }, { from: '/t/acme/signin/tap' });
        expect(flowOf(forAdmin)).toBeTruthy();
        await asPerson('PUT', '/api/v1/admin/policy', { rememberedDeviceDays: 0 });
      });
    });

    describe('7. proxy trust', () => {
      it('refuses "trust every hop" and takes the client address from the hops it trusts', async () => {
        expect(() => loadConfig({ STEADFAST_TRUST_PROXY: 'true' })).toThrow(/would trust every hop/);
        expect(() => loadConfig({ STEADFAST_TRUST_PROXY: 'proxy.example' })).toThrow(/not: proxy\.example/);
        expect(loadConfig({ STEADFAST_TRUST_PROXY: '10.0.0.0/8, 192.168.1.10' }).trustProxy).toEqual(['10.0.0.0/8', '192.168.1.10']);
        // This node trusts nobody: a client's X-Forwarded-For is ignored, so it cannot pick a fresh address per guess.
        await call('POST', '/api/v1/admin/users', { username: 'ivan', password: PASSWORD });
        await fetch(`${server.url}/api/v1/t/acme/signin`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-forwarded-for': '203.0.113.9' },
          body: JSON.stringify({ username: 'ivan', password: 'wrong password' }),
        });
        const [event] = (await call('GET', '/api/v1/admin/signins?user=ivan')).body.items;
        expect(event.ip).toBe('127.0.0.1');
      });
    });

    describe('8. cookie-authenticated JSON APIs cannot be driven from another site', () => {
      it('takes JSON only, and refuses a cross-site or same-site call riding on the session cookie', async () => {
        const boss = await user('boss', { admin: true });
        const cookie = `sf_session=${await signIn('boss', boss.secret)}`;
        const post = (headers: Record<string, string>, body: string) =>
          fetch(`${server.url}/api/v1/admin/users`, { method: 'POST', headers: { cookie, ...headers }, body });
        // A form post (what a page elsewhere can send with the user's cookie) is not JSON.
        const form = await post({ 'content-type': 'application/x-www-form-urlencoded' }, 'username=evil&admin=true');
        expect(form.status).toBe(415);
        const plain = await post({ 'content-type': 'text/plain' }, JSON.stringify({ username: 'evil', admin: true }));
        expect(plain.status).toBe(415);
        // A sibling subdomain is same-site, not same-origin.
        const sibling = await post(
          { 'content-type': 'application/json', 'sec-fetch-site': 'same-site', origin: 'https://evil.localhost:7777' },
          JSON.stringify({ username: 'evil', admin: true }),
        );
        expect(sibling.status).toBe(403);
        expect(((await sibling.json()) as { type: string }).type).toMatch(/\/cross-site-request$/);
        const oldBrowser = await post(
          { 'content-type': 'application/json', origin: 'https://evil.example' },
          JSON.stringify({ username: 'evil', admin: true }),
        );
        expect(oldBrowser.status).toBe(403);
        expect(await server.services.users.findByUsername(tenant.id, 'evil')).toBeUndefined();
        // The console's own same-origin calls, and bearer-token clients, go through.
        const own = await post(
          { 'content-type': 'application/json', 'sec-fetch-site': 'same-origin', origin: ORIGIN_URL },
          JSON.stringify({ username: 'fine' }),
        );
        expect(own.status).toBe(201);
        expect((await call('POST', '/api/v1/admin/users', { username: 'fine2' })).status).toBe(201);
        // Page forms too: a same-site form post is refused before its CSRF token is even read.
        const browser = new PageClient(server.url);
        const page = await browser.post(
          '/t/acme/signin',
          { username: 'boss', password: PASSWORD },
          { from: '/t/acme/signin', headers: { 'sec-fetch-site': 'same-site' } },
        );
        expect(page.status).toBe(403);
      });
    });

    describe('9. one rule for what a registration session may do', () => {
      it('may add and confirm a method that proves itself, and nothing else', async () => {
        await call('POST', '/api/v1/admin/users', { username: 'nora', password: PASSWORD });
        const start = await api(server.url, 'POST', '/api/v1/t/acme/signin', { username: 'nora', password: PASSWORD });
        const token = start.body.session.token as string;
        const codes = await api(server.url, 'POST', '/api/v1/me/methods', { type: 'recovery-codes' }, token);
        expect(codes.status).toBe(403);
        expect(codes.body.type).toMatch(/\/registration-only$/);
        const pending = await api(server.url, 'POST', '/api/v1/me/methods', { type: 'totp' }, token);
        expect(pending.status).toBe(201);
        for (const [method, path, body] of [
          ['PATCH', `/api/v1/me/methods/${pending.body.id}`, { label: 'x' }],
          ['DELETE', `/api/v1/me/methods/${pending.body.id}`, undefined],
          ['GET', '/api/v1/me/signins', undefined],
          ['POST', '/api/v1/me/password', { currentPassword: PASSWORD, newPassword: 'another long password' }],
          ['GET', '/api/v1/admin/users', undefined],
        ] as const) {
          const res = await api(server.url, method, path, body, token);
          expect([403], `${method} ${path}`).toContain(res.status);
        }
        // The pages keep the same rule: the rename form, which once skipped it, is refused too.
        const browser = new PageClient(server.url);
        browser.cookies.set('sf_session', token);
        // (Every page post answers with a redirect; the refusal is told on the page it leads to.)
        const rename = await browser.post(
          `/t/acme/my/security-info/methods/${pending.body.id}/rename`,
          { label: 'Renamed' },
          { from: '/t/acme/my/security-info' },
        );
        expect(rename.status).toBe(303);
        expect((await browser.get(rename.location!)).text).toContain('Register a sign-in method first');
        const codesPage = await browser.post('/t/acme/my/security-info/recovery-codes', {}, { from: '/t/acme/my/security-info' });
        expect(codesPage.status).toBe(303);
        expect((await browser.get(codesPage.location!)).text).not.toContain('class="codes"');
        expect(
          (await server.services.credentials.listForUser(tenant.id, (await server.services.users.findByUsername(tenant.id, 'nora'))!.id)).map((c) => c.label),
        ).toEqual(['Authenticator app']);
      });
    });

    describe('11. admin tokens expire, are listed, revoked, and leave a trace', () => {
      it('records creation and use, refuses expired and revoked tokens, and lets no token mint another', async () => {
        const created = await server.services.admin.createToken(tenant, 'cli', { name: 'backup script', days: 2 });
        expect(created.token).toMatch(/^sfa_/);
        clock.advance(5 * 60_000);
        const usedAt = clock.now();
        expect((await call('GET', '/api/v1/admin/users', undefined, created.token)).status).toBe(200);
        const listed = (await call('GET', '/api/v1/admin/tokens')).body as {
          id: string;
          name: string;
          lastUsedAt: string;
          expiresAt: string;
          createdBy: string;
        }[];
        const mine = listed.find((t) => t.id === created.id)!;
        expect(mine).toMatchObject({ name: 'backup script', createdBy: 'cli', lastUsedAt: new Date(usedAt).toISOString(), expiresAt: created.expiresAt });
        expect(JSON.stringify(listed)).not.toContain(created.token);
        const [entry] = await server.services.audit.list(tenant.id, { limit: 1, action: 'token.created' });
        expect(entry!.details).toMatchObject({ tokenId: created.id, name: 'backup script' });

        // A token cannot make tokens; a person signed in with a second factor can.
        const minted = await call('POST', '/api/v1/admin/tokens', { name: 'persistence' }, created.token);
        expect(minted.status).toBe(403);
        const boss = await user('tokenboss', { admin: true });
        const byPerson = await call('POST', '/api/v1/admin/tokens', { name: 'ci', days: 30 }, await signIn('tokenboss', boss.secret));
        expect(byPerson.status).toBe(201);

        // Expiry and revocation end a token.
        clock.advance(2 * 86_400_000);
        expect((await call('GET', '/api/v1/admin/users', undefined, created.token)).status).toBe(401);
        expect((await call('GET', '/api/v1/admin/users', undefined, byPerson.body.token)).status).toBe(200);
        // Another token cannot end it (sixth round: a leaked token ended the administrators' own); a token ends itself.
        expect((await call('DELETE', `/api/v1/admin/tokens/${byPerson.body.id}`)).status).toBe(403);
        await server.services.admin.revokeToken(tenant, 'cli', byPerson.body.id);
        expect((await call('GET', '/api/v1/admin/users', undefined, byPerson.body.token)).status).toBe(401);
        const [revoked] = await server.services.audit.list(tenant.id, { limit: 1, action: 'token.revoked' });
        expect(revoked!.details).toMatchObject({ tokenId: byPerson.body.id });
        adminToken = (await server.services.adminTokens.create(tenant.id, 'admin', { days: 365 })).token;
      });
    });

    describe('12. "this wasn\'t me" needs a recent sign-in', () => {
      it('refuses an older session and accepts a fresh one', async () => {
        const vic = await user('vic');
        const token = await signIn('vic', vic.secret);
        const [event] = (await api(server.url, 'GET', '/api/v1/me/signins', undefined, token)).body.items;
        clock.advance(11 * 60_000);
        const stale = await api(server.url, 'POST', `/api/v1/me/signins/${event.id}/report`, undefined, token);
        expect(stale.status).toBe(403);
        expect(stale.body.type).toMatch(/\/reauthentication-required$/);
        const fresh = await signIn('vic', vic.secret);
        expect((await api(server.url, 'POST', `/api/v1/me/signins/${event.id}/report`, undefined, fresh)).status).toBe(200);
      });
    });

    describe('12. what the public may see of the service', () => {
      it('serves metrics and the detailed status to operators only, and a coarse status to everyone else', async () => {
        const relayed = { 'x-forwarded-for': '203.0.113.50' };
        const publicMetrics = await fetch(`${server.url}/metrics`, { headers: relayed });
        expect(publicMetrics.status).toBe(403);
        expect(await publicMetrics.text()).not.toContain('acme');
        const withToken = await fetch(`${server.url}/metrics`, { headers: { ...relayed, authorization: `Bearer ${OPS_TOKEN}` } });
        expect(withToken.status).toBe(200);
        expect((await fetch(`${server.url}/metrics`, { headers: { ...relayed, authorization: 'Bearer wrong-token-of-the-same-length-xxxxxxx' } })).status).toBe(
          403,
        );
        // This host, straight (not through a proxy), is an operator: local Prometheus and curl.
        expect((await fetch(`${server.url}/metrics`)).status).toBe(200);

        const coarse = (await (await fetch(`${server.url}/api/v1/status`, { headers: relayed })).json()) as Record<string, unknown>;
        expect(coarse).toEqual({ status: expect.any(String), components: { durable: { state: 'up' }, ephemeral: { state: 'up' }, delivery: {} } });
        const detailed = (await (await fetch(`${server.url}/api/v1/status`, { headers: { ...relayed, authorization: `Bearer ${OPS_TOKEN}` } })).json()) as {
          components: Record<string, unknown>;
        };
        expect(detailed.components).toMatchObject({ durable: { engine: expect.any(String) }, admission: { limit: expect.any(Number) } });
        const ready = (await (await fetch(`${server.url}/readyz`, { headers: relayed })).json()) as { components: Record<string, unknown> };
        expect(Object.keys(ready.components)).toEqual(['durable', 'ephemeral']);
        const page = await (await fetch(`${server.url}/status`, { headers: relayed })).text();
        expect(page).not.toMatch(/acme|turned away to keep answers fast;|\d+ of \d+ requests/);
      });
    });

    describe('an outside attack run, second round', () => {
      it('a registration session from a stolen password cannot add a method once the owner has one', async () => {
        await call('POST', '/api/v1/admin/users', { username: 'newbie', password: PASSWORD });
        const stolen = (await api(server.url, 'POST', '/api/v1/t/acme/signin', { username: 'newbie', password: PASSWORD })).body.session.token as string;
        const attackerPending = await api(server.url, 'POST', '/api/v1/me/methods', { type: 'totp' }, stolen);
        expect(attackerPending.status).toBe(201);
        // The owner registers first.
        const own = (await api(server.url, 'POST', '/api/v1/t/acme/signin', { username: 'newbie', password: PASSWORD })).body.session.token as string;
        await addTotp(own);
        // The attacker's session has ended, and had it not, a second method could not be activated by it.
        clock.advance(30_000);
        const confirm = await api(
          server.url,
          'POST',
          `/api/v1/me/methods/${attackerPending.body.id}/confirm`,
          { code: totpCode(attackerPending.body.secret, clock.now()) },
          stolen,
        );
        expect(confirm.status).toBe(401);
        const newbie = (await server.services.users.findByUsername(tenant.id, 'newbie'))!;
        const pending = (await server.services.credentials.listForUser(tenant.id, newbie.id, 'pending'))[0]!;
        // Finishing it directly is refused twice over: its session has ended, and, that check aside, it would be a second method.
        await expect(server.services.credentials.activate(pending, 'first-method')).rejects.toMatchObject({ code: 'unauthenticated' });
        const { setupSession: _session, ...unbound } = pending.publicData;
        expect(_session).toEqual(expect.any(String));
        await expect(server.services.credentials.activate({ ...pending, publicData: unbound }, 'first-method')).rejects.toMatchObject({
          code: 'already-registered',
        });
        expect((await server.services.credentials.listForUser(tenant.id, newbie.id, 'active')).length).toBe(1);
      });

      it('a remembered browser with the password cannot add a method', async () => {
        await asPerson('PUT', '/api/v1/admin/policy', { rememberedDeviceDays: 7 });
        const rita = await user('remy');
        const browser = new PageClient(server.url);
        const start = await browser.post('/t/acme/signin', { username: 'remy', password: PASSWORD }, { from: '/t/acme/signin' });
        clock.advance(30_000);
        await browser.post(
          '/t/acme/signin/verify',
          { flow: flowOf(start)!, method: 'totp', code: totpCode(rita.secret, clock.now()), remember: 'on' },
          { from: '/t/acme/signin/tap' },
        );
        const thief = new PageClient(server.url);
        thief.cookies.set('sf_device', browser.cookies.get('sf_device')!);
        expect((await thief.post('/t/acme/signin', { username: 'remy', password: PASSWORD }, { from: '/t/acme/signin' })).status).toBe(303);
        const token = thief.cookies.get('sf_session')!;
        const added = await api(server.url, 'POST', '/api/v1/me/methods', { type: 'totp' }, token);
        expect(added.status).toBe(403);
        expect(added.body.type).toMatch(/\/second-factor-required$/);
        expect((await thief.get('/t/acme/my/security-info')).text).toContain('name="next" value="security-info-mfa"');
        await asPerson('PUT', '/api/v1/admin/policy', { rememberedDeviceDays: 0 });
      });

      it('a sign-in begun with the old password does not finish after a password change', async () => {
        const paul = await user('paul');
        const attacker = await api(server.url, 'POST', '/api/v1/t/acme/signin', { username: 'paul', password: PASSWORD });
        const owner = await signIn('paul', paul.secret);
        expect(
          (await api(server.url, 'POST', '/api/v1/me/password', { currentPassword: PASSWORD, newPassword: 'a fresh long passphrase' }, owner)).status,
        ).toBe(200);
        clock.advance(30_000);
        const late = await api(server.url, 'POST', `/api/v1/t/acme/signin/${attacker.body.flow}/verify`, {
          method: 'totp',
          code: totpCode(paul.secret, clock.now()),
        });
        expect(late.status).toBe(404);
        expect(late.body.type).toMatch(/\/flow-not-found$/);
      });

      it('a passkey assertion with a low counter but no valid signature changes nothing', async () => {
        const owner = await user('kim');
        const key = new SoftAuthenticator(ORIGIN_URL);
        const token = await signIn('kim', owner.secret);
        const options = await api(server.url, 'POST', '/api/v1/me/methods/webauthn/options', { kind: 'passkey' }, token);
        await api(server.url, 'POST', '/api/v1/me/methods', { type: 'webauthn', attestation: key.register(options.body) }, token);
        const first = await api(server.url, 'POST', '/api/v1/t/acme/signin/passkey');
        expect(
          (
            await api(server.url, 'POST', `/api/v1/t/acme/signin/${first.body.flow}/verify`, {
              method: 'passkey',
              assertion: key.assert(first.body.webauthn.challenge),
            })
          ).status,
        ).toBe(200);
        const stored = await server.services.credentials.findByExternalId(tenant.id, key.id);
        const forger = new SoftAuthenticator(ORIGIN_URL);
        Object.assign(forger, { credentialId: key.credentialId });
        forger.bindUser(String((options.body as { user: { id: string } }).user.id));
        const start = await api(server.url, 'POST', '/api/v1/t/acme/signin/passkey');
        const forged = await api(server.url, 'POST', `/api/v1/t/acme/signin/${start.body.flow}/verify`, {
          method: 'passkey',
          assertion: forger.assert(start.body.webauthn.challenge, { counter: 0 }),
        });
        expect(forged.status).toBe(401);
        expect(await server.services.credentials.findByExternalId(tenant.id, key.id)).toEqual(stored);
        // A real replay of the key with an old counter is still caught as a clone.
        const again = await api(server.url, 'POST', '/api/v1/t/acme/signin/passkey');
        await api(server.url, 'POST', `/api/v1/t/acme/signin/${again.body.flow}/verify`, {
          method: 'passkey',
          assertion: key.assert(again.body.webauthn.challenge, { counter: 0 }),
        });
        expect((await server.services.credentials.findByExternalId(tenant.id, key.id))!.publicData.cloneSuspectedAt).toBeDefined();
      });

      it("serves the provider's endpoints only under their own spelling", async () => {
        for (const path of ['/t/acme/oidc/AUTH', '/t/acme/oidc/auth/', '/t/acme/oidc/Token']) {
          expect((await fetch(`${server.url}${path}?client_id=x`, { redirect: 'manual' })).status, path).toBe(404);
        }
      });

      it('revoking a Temporary Access Pass ends the sessions it opened; tokens end with the administrator who made them', async () => {
        const tess = await user('tess', { withTotp: false });
        const pass = await call('POST', `/api/v1/admin/users/${tess.id}/tap`, { minutes: 60, oneTime: false });
        const bySession = (await api(server.url, 'POST', '/api/v1/t/acme/signin', { username: 'tess', tap: pass.body.code })).body.session.token as string;
        expect((await api(server.url, 'GET', '/api/v1/me', undefined, bySession)).status).toBe(200);
        expect((await call('DELETE', `/api/v1/admin/users/${tess.id}/tap`)).status).toBe(204);
        expect((await api(server.url, 'GET', '/api/v1/me', undefined, bySession)).status).toBe(401);

        // A used pass gave more than its sessions: an admin token made in one of them ends with it (outside attack
        // run, fourth round: it outlived the pass by 90 days), and so does every other session of the user.
        const ida = await user('ida', { admin: true });
        // (A pass for an administrator comes from a person or the command line, never from a token.)
        const idaPass = await server.services.admin.issuePass(tenant, 'cli', ida.id, { minutes: 60, oneTime: false });
        const idaByPass = (await api(server.url, 'POST', '/api/v1/t/acme/signin', { username: 'ida', tap: idaPass.code })).body.session.token as string;
        const idaOwn = await signIn('ida', ida.secret);
        const minted = await call('POST', '/api/v1/admin/tokens', { name: 'made with a pass' }, idaByPass);
        expect(minted.status).toBe(201);
        expect((await call('GET', '/api/v1/admin/users', undefined, minted.body.token)).status).toBe(200);
        // (An administrator's pass is revoked by a person or the command line, never by a token.)
        await server.services.admin.revokePass(tenant, 'cli', ida.id);
        expect((await call('GET', '/api/v1/admin/users', undefined, minted.body.token)).status).toBe(401);
        expect((await api(server.url, 'GET', '/api/v1/me', undefined, idaOwn)).status).toBe(401);
        const revoked = await server.services.audit.list(tenant.id, { limit: 1, userId: ida.id, action: 'tap.revoked' });
        // Three: the pass's, her own sign-in's and the one that set up her app when she was created.
        expect(revoked.map((e) => e.details)).toEqual([{ used: true, sessionsEnded: 3, methodsAddedSince: 0 }]);
        // Fifth round: replacing a used pass, resetting the user's methods or ending their sessions takes it back
        // too (a multi-use pass in someone else's hands signed them in again at once).
        const tapIn = async (code: string) => api(server.url, 'POST', '/api/v1/t/acme/signin', { username: 'tess', tap: code });
        const multi = await call('POST', `/api/v1/admin/users/${tess.id}/tap`, { minutes: 60, oneTime: false });
        const viaMulti = (await tapIn(multi.body.code)).body.session.token as string;
        const replacement = await call('POST', `/api/v1/admin/users/${tess.id}/tap`, { minutes: 60, oneTime: false });
        expect(replacement.status).toBe(201);
        expect((await api(server.url, 'GET', '/api/v1/me', undefined, viaMulti)).status).toBe(401);
        const [replacedEntry] = await server.services.audit.list(tenant.id, { limit: 1, userId: tess.id, action: 'tap.revoked' });
        expect(replacedEntry!.details).toMatchObject({ used: true, sessionsEnded: 1, why: 'replaced' });
        for (const [path, why] of [
          ['reset-methods', 'methods-reset'],
          ['revoke-sessions', 'sessions-ended'],
        ] as const) {
          const pass = await call('POST', `/api/v1/admin/users/${tess.id}/tap`, { minutes: 60, oneTime: false });
          expect((await tapIn(pass.body.code)).status).toBe(200);
          expect((await call('POST', `/api/v1/admin/users/${tess.id}/${path}`)).status).toBe(200);
          expect((await tapIn(pass.body.code)).status).toBe(401);
          const [entry] = await server.services.audit.list(tenant.id, { limit: 1, userId: tess.id, action: 'tap.revoked' });
          expect(entry!.details).toMatchObject({ used: true, why });
        }
        // An unused pass (issued so that the user can register again) outlives a reset.
        const fresh = await call('POST', `/api/v1/admin/users/${tess.id}/tap`, { minutes: 60, oneTime: false });
        expect((await call('POST', `/api/v1/admin/users/${tess.id}/reset-methods`)).status).toBe(200);
        expect((await tapIn(fresh.body.code)).status).toBe(200);

        // A pass nobody used takes nothing back.
        const ivo = await user('ivo');
        const ivoOwn = await signIn('ivo', ivo.secret);
        await call('POST', `/api/v1/admin/users/${ivo.id}/tap`, { minutes: 60 });
        expect((await call('DELETE', `/api/v1/admin/users/${ivo.id}/tap`)).status).toBe(204);
        expect((await api(server.url, 'GET', '/api/v1/me', undefined, ivoOwn)).status).toBe(200);

        const ana = await user('ana', { admin: true });
        const made = await call('POST', '/api/v1/admin/tokens', { name: 'ana script' }, await signIn('ana', ana.secret));
        expect((await call('GET', '/api/v1/admin/users', undefined, made.body.token)).status).toBe(200);
        // (Taking an administrator's rights away is a person's or the command line's to do, never a token's.)
        await server.services.admin.updateUser(tenant, 'cli', ana.id, { admin: false });
        expect((await call('GET', '/api/v1/admin/users', undefined, made.body.token)).status).toBe(401);
      });

      it('refuses the most common passwords, and prototype names in asset paths', async () => {
        const weak = await call('POST', '/api/v1/admin/users', { username: 'weakling', password: 'password1' });
        expect(weak.status).toBe(400);
        expect(weak.body.detail).toMatch(/most common/);
        for (const name of ['__proto__', 'constructor', 'toString']) expect((await fetch(`${server.url}/assets/${name}`)).status).toBe(404);
      });
    });

    describe('an outside attack run, third round', () => {
      it('admin tokens a person made end when their sessions are ended, and the log says so', async () => {
        const boss = await user('tokenmaker', { admin: true });
        const session = await signIn('tokenmaker', boss.secret);
        const made = await call('POST', '/api/v1/admin/tokens', { name: 'persistence', days: 365 }, session);
        expect(made.status).toBe(201);
        expect((await call('GET', '/api/v1/admin/users', undefined, made.body.token)).status).toBe(200);
        // The incident response: another administrator ends the person's sessions.
        const responder = await user('responder', { admin: true });
        expect((await call('POST', `/api/v1/admin/users/${boss.id}/revoke-sessions`, undefined, await signIn('responder', responder.secret))).status).toBe(200);
        expect((await call('GET', '/api/v1/admin/users', undefined, made.body.token)).status).toBe(401);
        const [entry] = await server.services.audit.list(tenant.id, { limit: 1, action: 'token.revoked', userId: boss.id });
        expect(entry).toMatchObject({ actor: 'system', details: { tokensRevoked: 1, reason: 'sessions-ended' } });
        // A token made by someone else, or by the command line, is not touched.
        expect((await call('GET', '/api/v1/admin/users')).status).toBe(200);
      });

      it('a pairing link made before the sessions ended pairs nothing afterwards', async () => {
        const owner = await user('pairee');
        const session = await signIn('pairee', owner.secret);
        const added = await api(server.url, 'POST', '/api/v1/me/methods', { type: 'push' }, session);
        expect(added.status).toBe(201);
        const token = new URL(added.body.pairingUrl as string).hash.replace(/^#pair=/, '');
        expect(token.length).toBeGreaterThan(10);
        expect((await call('POST', `/api/v1/admin/users/${owner.id}/revoke-sessions`)).status).toBe(200);
        const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
        const paired = await api(server.url, 'POST', '/api/v1/t/acme/authenticator/pair', { token, publicKey: publicKey.export({ format: 'jwk' }) });
        expect(paired.status).toBe(401);
        expect(paired.body.type).toMatch(/invalid-code$/);
        const methods = await server.services.credentials.listForUser(tenant.id, owner.id);
        expect(methods.map((c) => c.type)).toEqual(['totp']);
      });

      it('keeps at most five set-ups under way per user, the newest', async () => {
        const busy = await user('busy');
        const session = await signIn('busy', busy.secret);
        const added: { id: string; secret: string }[] = [];
        for (let i = 0; i < 8; i++) {
          clock.advance(1000);
          const one = await api(server.url, 'POST', '/api/v1/me/methods', { type: 'totp' }, session);
          expect(one.status).toBe(201);
          added.push(one.body);
        }
        const pending = await server.services.credentials.listForUser(tenant.id, busy.id, 'pending');
        expect(pending.map((c) => c.id).sort()).toEqual(
          added
            .slice(-5)
            .map((a) => a.id)
            .sort(),
        );
        // The newest still confirms; the oldest is gone.
        clock.advance(30_000);
        const newest = added.at(-1)!;
        expect((await api(server.url, 'POST', `/api/v1/me/methods/${newest.id}/confirm`, { code: totpCode(newest.secret, clock.now()) }, session)).status).toBe(
          200,
        );
        expect(
          (await api(server.url, 'POST', `/api/v1/me/methods/${added[0]!.id}/confirm`, { code: totpCode(added[0]!.secret, clock.now()) }, session)).status,
        ).toBe(404);
      });

      it('records password changes and methods added and removed, and API answers are not cached', async () => {
        const who = await user('recorded');
        const session = await signIn('recorded', who.secret);
        const changed = await api(
          server.url,
          'POST',
          '/api/v1/me/password',
          { currentPassword: PASSWORD, newPassword: 'a new and longer passphrase 9' },
          session,
        );
        expect(changed.status).toBe(200);
        expect(changed.headers.get('cache-control')).toBe('no-store');
        const [passwordEntry] = await server.services.audit.list(tenant.id, { limit: 1, action: 'password.changed', userId: who.id });
        expect(passwordEntry).toMatchObject({ actor: `user:${who.id}` });
        const second = await addTotp(session);
        expect(second).not.toBe('');
        const added = await server.services.audit.list(tenant.id, { limit: 10, action: 'method.added', userId: who.id });
        // The first authenticator app (set up in a registration session) and this one.
        expect(added.map((e) => e.details.type)).toEqual(['totp', 'totp']);
        const [newest] = (await server.services.credentials.listForUser(tenant.id, who.id, 'active')).sort((a, b) => b.createdAt - a.createdAt);
        expect((await api(server.url, 'DELETE', `/api/v1/me/methods/${newest!.id}`, undefined, session)).status).toBe(204);
        const [removed] = await server.services.audit.list(tenant.id, { limit: 1, action: 'method.removed', userId: who.id });
        expect(removed!.details).toMatchObject({ type: 'totp', credentialId: newest!.id });
      });
    });

    describe('an outside attack run, fourth round', () => {
      it('an admin token cannot make an administrator, nor take over the way in of one, so it cannot outlive its revocation', async () => {
        // Found: a token made an admin user, gave it a pass, signed in with it and minted a token of a year.
        const made = await call('POST', '/api/v1/admin/users', { username: 'shadow', admin: true });
        expect(made.status).toBe(403);
        expect(made.body.detail).toBe('creating an administrator or a break-glass account needs an administrator signed in with a second factor, not a token');
        expect(await server.services.users.findByUsername(tenant.id, 'shadow')).toBeUndefined();
        const plain = await user('plainjane', { withTotp: false });
        expect((await call('PATCH', `/api/v1/admin/users/${plain.id}`, { admin: true })).status).toBe(403);
        const boss = await user('realboss', { admin: true });
        expect((await call('POST', `/api/v1/admin/users/${boss.id}/tap`, { minutes: 60 })).status).toBe(403);
        expect((await call('PATCH', `/api/v1/admin/users/${boss.id}`, { password: 'a thief chose this one 9' })).status).toBe(403);
        expect((await call('POST', `/api/v1/admin/users/${boss.id}/reset-methods`)).status).toBe(403);
        // Sixth round: demoted first, an administrator was an ordinary account to take over; disabled, deleted or
        // stripped of the break-glass flag, locked out. An administrator's account is out of a token's reach.
        const glassy = await user('glassy', { breakGlass: true });
        for (const [method, path, body] of [
          ['PATCH', `/api/v1/admin/users/${boss.id}`, { admin: false }],
          ['PATCH', `/api/v1/admin/users/${boss.id}`, { status: 'disabled' }],
          ['PATCH', `/api/v1/admin/users/${boss.id}`, { email: 'thief@example.test' }],
          ['PATCH', `/api/v1/admin/users/${glassy.id}`, { breakGlass: false }],
          ['POST', `/api/v1/admin/users/${boss.id}/revoke-sessions`, undefined],
          ['DELETE', `/api/v1/admin/users/${boss.id}/tap`, undefined],
          ['DELETE', `/api/v1/admin/users/${boss.id}`, undefined],
        ] as const) {
          expect((await call(method, path, body)).status, `${method} ${path} ${JSON.stringify(body)}`).toBe(403);
        }
        expect(await server.services.users.get(tenant.id, boss.id)).toMatchObject({ isAdmin: true, status: 'active', email: null });
        expect(await server.services.users.get(tenant.id, glassy.id)).toMatchObject({ breakGlass: true });
        expect(await server.services.passes.active(tenant.id, boss.id)).toBeUndefined();
        // What a token is for goes on: ordinary users, their passes and passwords.
        expect((await call('POST', `/api/v1/admin/users/${plain.id}/tap`, { minutes: 60 })).status).toBe(201);
        expect((await call('PATCH', `/api/v1/admin/users/${plain.id}`, { password: 'a new first day phrase 3' })).status).toBe(200);
        // Seventh round: an account a token made (and gave a pass and a password) became an administrator when a real one
        // promoted it, and the token's holder with it. Nobody makes such an account an administrator; a person may make
        // an account the command line made one, and issue an administrator a pass.
        const ruler = await user('ruler', { admin: true });
        const session = await signIn('ruler', ruler.secret);
        const refused = await call('PATCH', `/api/v1/admin/users/${plain.id}`, { admin: true }, session);
        expect(refused.status).toBe(403);
        expect(refused.body.detail).toMatch(/created or changed through an API token/);
        await expect(server.services.admin.updateUser(tenant, 'cli', plain.id, { breakGlass: true })).rejects.toMatchObject({ code: 'forbidden' });
        const clean = await server.services.admin.createUser(tenant, 'cli', { username: 'cleanslate', password: PASSWORD });
        expect((await call('PATCH', `/api/v1/admin/users/${clean.id}`, { admin: true }, session)).status).toBe(200);
        expect((await call('POST', `/api/v1/admin/users/${clean.id}/tap`, { minutes: 60 }, session)).status).toBe(201);
        // Eighth round: a token's reset counts as a touch (whoever knows the password registers their own method next),
        // and a token's change refused for its password writes nothing (it had written the email, unrecorded).
        const reset = await server.services.admin.createUser(tenant, 'cli', { username: 'resetme', password: PASSWORD });
        expect((await call('POST', `/api/v1/admin/users/${reset.id}/reset-methods`)).status).toBe(200);
        expect((await call('PATCH', `/api/v1/admin/users/${reset.id}`, { admin: true }, session)).status).toBe(403);
        const quiet = await server.services.admin.createUser(tenant, 'cli', { username: 'quietone', password: PASSWORD });
        const sneaky = await call('PATCH', `/api/v1/admin/users/${quiet.id}`, { email: 'attacker@evil.example', password: 'short' });
        expect(sneaky.status).toBe(400);
        expect(await server.services.users.get(tenant.id, quiet.id)).toMatchObject({ email: null });
        expect((await call('PATCH', `/api/v1/admin/users/${quiet.id}`, { admin: true }, session)).status).toBe(200);
      });

      it('a promotion to administrator or break-glass ends the sessions opened before it: the powers go to the next sign-in', async () => {
        // Left from an earlier stop: a session opened before the promotion (stolen, or left signed in somewhere)
        // became an administrator's session with it.
        const ruler = await user('promoter', { admin: true });
        const session = await signIn('promoter', ruler.secret);
        for (const [name, change] of [
          ['to-admin', { admin: true }],
          ['to-glass', { breakGlass: true }],
        ] as const) {
          const made = await server.services.admin.createUser(tenant, 'cli', { username: name, password: PASSWORD });
          const start = await api(server.url, 'POST', '/api/v1/t/acme/signin', { username: name, password: PASSWORD });
          const secret = await addTotp(start.body.session.token);
          const before = await signIn(name, secret);
          expect((await api(server.url, 'GET', '/api/v1/me', undefined, before)).status).toBe(200);
          const promoted = await call('PATCH', `/api/v1/admin/users/${made.id}`, change, session);
          expect(promoted.status).toBe(200);
          expect((await api(server.url, 'GET', '/api/v1/me', undefined, before)).status).toBe(401);
          const [entry] = await server.services.audit.list(tenant.id, { limit: 1, action: 'user.updated', userId: made.id });
          expect(entry!.details).toMatchObject({ sessionsEnded: 2 });
          // Signed in again (with the second factor), the account has its new powers.
          const after = await signIn(name, secret);
          expect((await api(server.url, 'GET', '/api/v1/admin/users?limit=1', undefined, after)).status).toBe(change.admin ? 200 : 403);
        }
        // A change that is no promotion ends nothing.
        const plain = await user('unpromoted');
        const kept = await signIn('unpromoted', plain.secret);
        expect((await call('PATCH', `/api/v1/admin/users/${plain.id}`, { email: 'kept@example.test' }, session)).status).toBe(200);
        expect((await api(server.url, 'GET', '/api/v1/me', undefined, kept)).status).toBe(200);
      });

      it('an admin token cannot change the policy at all, nor roll it back or end its canary (every setting could lock administrators out)', async () => {
        // Seventh round: `allowedMethods: ["sms"]` from a token left every administrator with only TOTP unable to sign in.
        // Ninth round: `lockout: {accountFailures: 5, blockMinutes: 1440}` let three strangers' guesses lock an
        // administrator out for a day; a rollback without a version undid a person's change, or ended their canary.
        const before = (await call('GET', '/api/v1/admin/policy')).body as { allowedMethods: string[]; lockout: unknown };
        for (const body of [
          { allowedMethods: ['sms'] },
          { webauthnAaguids: ['00000000-0000-0000-0000-000000000001'] },
          { lockout: { accountFailures: 5, blockMinutes: 1440 } },
          { mfaRequired: false },
          { failMode: 'open' },
          { tap: { maxMinutes: 43_200 } },
          { retention: { signinEventDays: 1, auditDays: 30 } },
          { rememberedDeviceDays: 90 },
          {},
        ]) {
          const answer = await call('PUT', '/api/v1/admin/policy', body);
          expect(answer.status, JSON.stringify(body)).toBe(403);
          expect(answer.body.detail).toBe('changing the policy needs an administrator signed in with a second factor, not a token');
          const versions = await call('POST', '/api/v1/admin/policy/versions', { policy: body, canaryPercent: 10, bakeSeconds: 60 });
          expect(versions.status, JSON.stringify(body)).toBe(403);
        }
        expect((await call('GET', '/api/v1/admin/policy')).body).toEqual(before);
        expect((await call('POST', '/api/v1/admin/policy/rollback', { version: 1 })).status).toBe(403);
        // A person's change stays: a token's rollback without a version does not undo it.
        await server.services.admin.setPolicy(tenant, 'cli', { lockout: { accountFailures: 60, blockMinutes: 30 } });
        expect((await call('POST', '/api/v1/admin/policy/rollback', {})).status).toBe(403);
        expect((await call('GET', '/api/v1/admin/policy')).body.lockout).toEqual({ accountFailures: 60, blockMinutes: 30 });
        // Nor does it end a person's canary.
        const canary = await asPerson('POST', '/api/v1/admin/policy/versions', { policy: { rememberedDeviceDays: 3 }, canaryPercent: 10, bakeSeconds: 3600 });
        expect(canary.status).toBe(201);
        expect((await call('POST', '/api/v1/admin/policy/rollback', {})).status).toBe(403);
        expect((await call('GET', '/api/v1/admin/policy/versions')).body.history[0]).toMatchObject({ version: canary.body.version, state: 'canary' });
        expect((await asPerson('POST', '/api/v1/admin/policy/rollback', {})).body).toMatchObject({ version: canary.body.version, state: 'rolled-back' });
        await server.services.admin.setPolicy(tenant, 'cli', { lockout: before.lockout });
      });

      it('an admin token cannot make or delete an app, and the passes it issued end when it is revoked', async () => {
        // Ninth round: a token made a first-party app (no consent asked, tokens sent where it says) and an API key
        // that checks anyone's codes without a password, both outliving the token; and a long multi-use pass.
        for (const body of [
          { name: 'Payroll', kind: 'oidc', redirectUris: ['https://attacker.example/cb'], firstParty: true },
          { name: 'Key', kind: 'api' },
        ]) {
          const made = await call('POST', '/api/v1/admin/apps', body);
          expect(made.status, JSON.stringify(body)).toBe(403);
        }
        expect((await call('GET', '/api/v1/admin/apps')).body.map((a: { name: string }) => a.name)).not.toContain('Payroll');
        const kept = await asPerson('POST', '/api/v1/admin/apps', { name: 'Kept', kind: 'api' });
        expect((await call('DELETE', `/api/v1/admin/apps/${kept.body.id}`)).status).toBe(403);
        expect((await asPerson('DELETE', `/api/v1/admin/apps/${kept.body.id}`)).status).toBe(204);

        const leaked = await server.services.adminTokens.create(tenant.id, 'admin');
        const used = await user('passed-used', { withTotp: false });
        const unused = await user('passed-unused', { withTotp: false });
        const byPerson = await user('passed-by-person', { withTotp: false });
        const pass = await call('POST', `/api/v1/admin/users/${used.id}/tap`, { minutes: 480, oneTime: false }, leaked.token);
        expect(pass.status).toBe(201);
        expect((await call('POST', `/api/v1/admin/users/${unused.id}/tap`, { minutes: 480, oneTime: false }, leaked.token)).status).toBe(201);
        const personPass = await asPerson('POST', `/api/v1/admin/users/${byPerson.id}/tap`, { minutes: 480, oneTime: false });
        const signedIn = await api(server.url, 'POST', '/api/v1/t/acme/signin', { username: 'passed-used', tap: pass.body.code });
        expect(signedIn.status).toBe(200);
        const holderSession = signedIn.body.session.token as string;
        expect((await api(server.url, 'GET', '/api/v1/me', undefined, holderSession)).status).toBe(200);

        expect((await asPerson('DELETE', `/api/v1/admin/tokens/${leaked.id}`)).status).toBe(204);
        // The passes it issued are gone, and what the used one gave with them; a person's pass stays.
        expect(await server.services.passes.active(tenant.id, used.id)).toBeUndefined();
        expect(await server.services.passes.active(tenant.id, unused.id)).toBeUndefined();
        expect(await server.services.passes.active(tenant.id, byPerson.id)).toBeDefined();
        expect((await api(server.url, 'POST', '/api/v1/t/acme/signin', { username: 'passed-used', tap: pass.body.code })).status).toBe(401);
        expect((await api(server.url, 'GET', '/api/v1/me', undefined, holderSession)).status).toBe(401);
        expect((await api(server.url, 'POST', '/api/v1/t/acme/signin', { username: 'passed-by-person', tap: personPass.body.code })).status).toBe(200);
        const [revokedEntry] = await server.services.audit.list(tenant.id, { limit: 1, action: 'token.revoked' });
        expect(revokedEntry!.details).toMatchObject({ tokenId: leaked.id, passesRevoked: 2 });
        const taken = await server.services.audit.list(tenant.id, { limit: 1, action: 'tap.revoked', userId: used.id });
        expect(taken[0]!.details).toMatchObject({ used: true, why: 'token-revoked' });
      });
    });

    describe('an outside attack run, tenth round', () => {
      it('a pass used while it is being replaced is taken back, not only revoked', async () => {
        // Found: the used pass was checked, then the new one hashed, then every active pass revoked: a sign-in with
        // the old pass in between kept its session, unseen.
        const target = await user('replaced-while-used', { withTotp: false });
        const first = await call('POST', `/api/v1/admin/users/${target.id}/tap`, { minutes: 60, oneTime: false });
        let holder = '';
        duringNextHash(async () => {
          const signedIn = await api(server.url, 'POST', '/api/v1/t/acme/signin', { username: 'replaced-while-used', tap: first.body.code });
          holder = signedIn.body.session.token as string;
        });
        expect((await call('POST', `/api/v1/admin/users/${target.id}/tap`, { minutes: 60 })).status).toBe(201);
        expect(holder).not.toBe('');
        expect((await api(server.url, 'GET', '/api/v1/me', undefined, holder)).status).toBe(401);
        const [taken] = await server.services.audit.list(tenant.id, { limit: 1, action: 'tap.revoked', userId: target.id });
        expect(taken!.details).toMatchObject({ used: true, why: 'replaced' });
      });

      it("the passes of the tokens an administrator made go with those tokens when the administrator's authority ends", async () => {
        // Left from round 10: a token revoked because its maker was disabled (or demoted, deleted, or lost every
        // session) left the passes it had issued.
        const maker = await user('token-maker', { admin: true });
        const session = await signIn('token-maker', maker.secret);
        const made = await call('POST', '/api/v1/admin/tokens', { name: 'automation' }, session);
        expect(made.status).toBe(201);
        const target = await user('given-a-pass', { withTotp: false });
        const pass = await call('POST', `/api/v1/admin/users/${target.id}/tap`, { minutes: 60, oneTime: false }, made.body.token);
        expect(pass.status).toBe(201);
        const holder = (await api(server.url, 'POST', '/api/v1/t/acme/signin', { username: 'given-a-pass', tap: pass.body.code })).body.session.token as string;
        await server.services.admin.updateUser(tenant, 'cli', maker.id, { status: 'disabled' });
        expect((await call('GET', '/api/v1/admin/users?limit=1', undefined, made.body.token)).status).toBe(401);
        expect(await server.services.passes.active(tenant.id, target.id)).toBeUndefined();
        expect((await api(server.url, 'GET', '/api/v1/me', undefined, holder)).status).toBe(401);
      });

      it('a token cannot delete an account made an administrator while its request ran', async () => {
        // Eleventh round: the delete checked the account it had read before; a promotion landing in between let
        // the token delete a new administrator (1 try in 8).
        const target = await server.services.admin.createUser(tenant, 'cli', { username: 'promoted-mid-delete', password: PASSWORD });
        const users = server.services.users;
        const original = users.markTokenTouched.bind(users);
        // The promotion lands after the delete looked at the account, before it marks it.
        users.markTokenTouched = async (...args: Parameters<typeof original>) => {
          users.markTokenTouched = original;
          await server.services.admin.updateUser(tenant, 'cli', target.id, { admin: true });
          return original(...args);
        };
        const deleted = await call('DELETE', `/api/v1/admin/users/${target.id}`);
        expect(deleted.status).toBe(403);
        expect(await server.services.users.get(tenant.id, target.id)).toMatchObject({ isAdmin: true });
        const [entry] = await server.services.audit.list(tenant.id, { limit: 1, userId: target.id });
        expect(entry!.action).toBe('user.updated');
      });

      it('a pass issued while its token is being revoked does not outlive the token', async () => {
        // Found: the token was checked as the request began; its pass was written after the revocation had
        // taken the token's passes, and stayed active.
        const leaked = await server.services.adminTokens.create(tenant.id, 'admin');
        const target = await user('issued-while-revoked', { withTotp: false });
        duringNextHash(() => server.services.admin.revokeToken(tenant, 'cli', leaked.id));
        const late = await call('POST', `/api/v1/admin/users/${target.id}/tap`, { minutes: 60, oneTime: false }, leaked.token);
        expect(late.status).toBe(401);
        expect(late.body.code).toBeUndefined();
        expect(await server.services.passes.active(tenant.id, target.id)).toBeUndefined();
      });
    });

    describe('an outside attack run, sixteenth round', () => {
      const NEW_PASSWORD = 'attacker chosen password 123';

      it('revoking a leaked token takes back the accounts it touched: sessions, a password it set, methods set up since; what was there before stays', async () => {
        // Found: a token set an account's password and reset its methods; its holder signed in, registered an
        // authenticator of their own and kept it all (session, password, method) after the token was revoked.
        const victim = await server.services.admin.createUser(tenant, 'cli', { username: 'taken-over', password: PASSWORD });
        const start = await api(server.url, 'POST', '/api/v1/t/acme/signin', { username: 'taken-over', password: PASSWORD });
        await addTotp(start.body.session.token);
        const kept = await server.services.admin.createUser(tenant, 'cli', { username: 'only-readdressed', password: PASSWORD });
        const keptStart = await api(server.url, 'POST', '/api/v1/t/acme/signin', { username: 'only-readdressed', password: PASSWORD });
        const keptSecret = await addTotp(keptStart.body.session.token);
        const keptSession = await signIn('only-readdressed', keptSecret);
        clock.advance(60_000);

        const leaked = await server.services.adminTokens.create(tenant.id, 'admin');
        // (Reset first: a password set before the reset would register nothing.)
        expect((await call('POST', `/api/v1/admin/users/${victim.id}/reset-methods`, undefined, leaked.token)).status).toBe(200);
        clock.advance(1);
        expect((await call('PATCH', `/api/v1/admin/users/${victim.id}`, { password: NEW_PASSWORD }, leaked.token)).status).toBe(200);
        expect((await call('PATCH', `/api/v1/admin/users/${kept.id}`, { email: 'somewhere@example.test' }, leaked.token)).status).toBe(200);
        const made = await call('POST', '/api/v1/admin/users', { username: 'made-by-token', password: NEW_PASSWORD }, leaked.token);
        expect(made.status).toBe(201);

        // The holder signs in with the password the token set and registers an authenticator of their own.
        const holderSecret: Record<string, string> = {};
        for (const username of ['taken-over', 'made-by-token']) {
          const registration = await api(server.url, 'POST', '/api/v1/t/acme/signin', { username, password: NEW_PASSWORD });
          expect(registration.body.state).toBe('registration_required');
          holderSecret[username] = await addTotp(registration.body.session.token);
        }
        const start2 = await api(server.url, 'POST', '/api/v1/t/acme/signin', { username: 'taken-over', password: NEW_PASSWORD });
        clock.advance(30_000);
        const holder = await api(server.url, 'POST', `/api/v1/t/acme/signin/${start2.body.flow}/verify`, {
          method: 'totp',
          code: totpCode(holderSecret['taken-over']!, clock.now()),
        });
        expect(holder.status).toBe(200);
        const holderSession = holder.body.session.token as string;

        expect((await asPerson('DELETE', `/api/v1/admin/tokens/${leaked.id}`)).status).toBe(204);
        expect((await api(server.url, 'GET', '/api/v1/me', undefined, holderSession)).status).toBe(401);
        for (const username of ['taken-over', 'made-by-token']) {
          // The password the token set no longer signs in, and the method registered with it is gone.
          expect((await api(server.url, 'POST', '/api/v1/t/acme/signin', { username, password: NEW_PASSWORD })).status).toBe(401);
          const id = username === 'taken-over' ? victim.id : (made.body.id as string);
          expect((await server.services.credentials.listForUser(tenant.id, id)).filter((c) => c.state === 'active')).toEqual([]);
          const [entry] = await server.services.audit.list(tenant.id, { limit: 1, action: 'access.taken-back', userId: id });
          expect(entry!.details).toMatchObject({ tokenId: leaked.id, methodsRemoved: 1, passwordCleared: true });
        }
        // An account the token only readdressed: its sessions end, its own password and authenticator (set up
        // before the token touched it) still sign in.
        expect((await api(server.url, 'GET', '/api/v1/me', undefined, keptSession)).status).toBe(401);
        await signIn('only-readdressed', keptSecret);
        const [keptEntry] = await server.services.audit.list(tenant.id, { limit: 1, action: 'access.taken-back', userId: kept.id });
        expect(keptEntry!.details).toMatchObject({ methodsRemoved: 0, passwordCleared: false, contactCleared: ['email'] });
        // (The address it set goes too: notices would keep going to its holder. Twenty-fifth round.)
        expect((await server.services.users.get(tenant.id, kept.id))!.email).toBeNull();
        const [revoked] = await server.services.audit.list(tenant.id, { limit: 1, action: 'token.revoked' });
        expect(revoked!.details).toMatchObject({ tokenId: leaked.id, accountsTakenBack: 3 });
      });

      it("a token ended with its maker's authority takes back its passes but not the accounts it provisioned", async () => {
        // An administrator's departure must not undo every account their provisioning token made; revoking the
        // token itself does (above).
        const maker = await user('provisioner', { admin: true });
        const session = await signIn('provisioner', maker.secret);
        const made = await call('POST', '/api/v1/admin/tokens', { name: 'provisioning' }, session);
        const hire = await call('POST', '/api/v1/admin/users', { username: 'provisioned', password: PASSWORD }, made.body.token);
        expect(hire.status).toBe(201);
        const registration = await api(server.url, 'POST', '/api/v1/t/acme/signin', { username: 'provisioned', password: PASSWORD });
        const secret = await addTotp(registration.body.session.token);
        await server.services.admin.updateUser(tenant, 'cli', maker.id, { status: 'disabled' });
        expect((await call('GET', '/api/v1/admin/users?limit=1', undefined, made.body.token)).status).toBe(401);
        await signIn('provisioned', secret);
      });
    });

    /**
     * An administrator's API token that took over an ordinary account: it set the password and reset the methods,
     * and its holder signed in with that password and registered an authenticator of their own.
     */
    const HOLDER_PASSWORD = 'the holder set this one 42';
    const tokenTookOver = async (prefix: string) => {
      const maker = await user(`${prefix}-maker`, { admin: true });
      const session = await signIn(`${prefix}-maker`, maker.secret);
      const made = await call('POST', '/api/v1/admin/tokens', { name: prefix }, session);
      const username = `${prefix}-victim`;
      const victim = await server.services.admin.createUser(tenant, 'cli', { username, password: PASSWORD });
      clock.advance(1);
      // (Reset first: a password set before the reset would register nothing.)
      expect((await call('POST', `/api/v1/admin/users/${victim.id}/reset-methods`, undefined, made.body.token)).status).toBe(200);
      clock.advance(1);
      expect((await call('PATCH', `/api/v1/admin/users/${victim.id}`, { password: HOLDER_PASSWORD }, made.body.token)).status).toBe(200);
      const registration = await api(server.url, 'POST', '/api/v1/t/acme/signin', { username, password: HOLDER_PASSWORD });
      await addTotp(registration.body.session.token);
      return { maker, session, token: made.body as { id: string; token: string }, victim, username };
    };

    describe('an outside attack run, eighteenth round', () => {
      it("a token ended with its maker's sessions can still be revoked as leaked, and then takes back the accounts it touched", async () => {
        // Found: the maker changing their own password (the first thing one does on suspecting a leak) ended the
        // token with their sessions and forgot the accounts it had touched; revoking it as leaked then answered
        // "no such live token", and its holder kept the account it had taken over.
        const { session, token, victim, username } = await tokenTookOver('suspecting');
        const changed = await api(server.url, 'POST', '/api/v1/me/password', { currentPassword: PASSWORD, newPassword: 'the maker moves on 42' }, session);
        expect(changed.status).toBe(200);
        expect((await call('GET', '/api/v1/admin/users?limit=1', undefined, token.token)).status).toBe(401);
        // Ended with the maker's authority, it took back nothing of the account; revoked as leaked, it does.
        expect((await api(server.url, 'POST', '/api/v1/t/acme/signin', { username, password: HOLDER_PASSWORD })).status).toBe(200);
        expect((await asPerson('DELETE', `/api/v1/admin/tokens/${token.id}`)).status).toBe(204);
        expect((await api(server.url, 'POST', '/api/v1/t/acme/signin', { username, password: HOLDER_PASSWORD })).status).toBe(401);
        const [entry] = await server.services.audit.list(tenant.id, { limit: 1, action: 'access.taken-back', userId: victim.id });
        expect(entry!.details).toMatchObject({ tokenId: token.id, methodsRemoved: 1, passwordCleared: true });
        const [revoked] = await server.services.audit.list(tenant.id, { limit: 1, action: 'token.revoked' });
        expect(revoked!.details).toMatchObject({ tokenId: token.id, revokedBefore: true, accountsTakenBack: 1 });
        // Once taken back, it is gone: a second revocation finds nothing.
        expect((await asPerson('DELETE', `/api/v1/admin/tokens/${token.id}`)).status).toBe(404);
      });
    });

    describe('an outside attack run, nineteenth round', () => {
      it("a token's change in flight as it is ended with its maker leaves its first touch, so revoking it as leaked still takes everything back", async () => {
        // Found: the change in flight took the account back from its own start and forgot the token's first touch;
        // the holder's passkey, registered between, survived, and revoking the token as leaked answered 404.
        const { maker, token, victim } = await tokenTookOver('busy');
        clock.advance(60_000);
        // The maker's sessions end (and the token with them) while the token's next change hashes its password.
        duringNextHash(() => server.services.sessions.revokeAllForUser(tenant.id, maker.id));
        expect((await call('PATCH', `/api/v1/admin/users/${victim.id}`, { password: 'and another one 42' }, token.token)).status).toBe(401);
        expect(await server.services.users.touchedBy(tenant.id, token.id)).toHaveLength(1);

        expect((await asPerson('DELETE', `/api/v1/admin/tokens/${token.id}`)).status).toBe(204);
        expect((await server.services.credentials.listForUser(tenant.id, victim.id)).filter((c) => c.state === 'active')).toEqual([]);
      });

      it('a token cannot enable a disabled account: revoking it could not shut the account again', async () => {
        // Found: a token enabled an account an administrator had disabled; revoking the token left it enabled, and
        // whoever held its old password and authenticator signed in.
        const departed = await user('departed');
        await asPerson('PATCH', `/api/v1/admin/users/${departed.id}`, { status: 'disabled' });
        const enabled = await call('PATCH', `/api/v1/admin/users/${departed.id}`, { status: 'active' });
        expect(enabled.status).toBe(403);
        expect(await server.services.users.get(tenant.id, departed.id)).toMatchObject({ status: 'disabled' });
        // Disabling stays a token's to do.
        const other = await user('still-a-tokens-to-disable', { withTotp: false });
        expect((await call('PATCH', `/api/v1/admin/users/${other.id}`, { status: 'disabled' })).status).toBe(200);
      });
    });

    describe('an outside attack run, twentieth round', () => {
      /** The sign-ins of this session's user, newest first. */
      const signinsOf = async (token: string) => (await api(server.url, 'GET', '/api/v1/me/signins?limit=50', undefined, token)).body.items as { id: string }[];
      /** Password then TOTP over the API with this password; the full session's token. */
      const signIn2 = async (username: string, password: string, secret: string) => {
        const start = await api(server.url, 'POST', '/api/v1/t/acme/signin', { username, password });
        expect(start.body.state).toBe('factor_required');
        clock.advance(30_000);
        const done = await api(server.url, 'POST', `/api/v1/t/acme/signin/${start.body.flow}/verify`, { method: 'totp', code: totpCode(secret, clock.now()) });
        expect(done.status).toBe(200);
        return done.body.session.token as string;
      };

      it('"this wasn\'t me" takes back the authenticator the reported sign-in added: it no longer signs in', async () => {
        // Found: with the password and one stolen code, the attacker added an authenticator of their own; the owner's
        // report ended the sessions and flagged the account, and the attacker signed in again with their authenticator.
        const victim = await user('reporter');
        clock.advance(60_000);
        const attacker = await signIn('reporter', victim.secret);
        const [theirs] = await signinsOf(attacker);
        const attackerSecret = await addTotp(attacker);

        const owner = await signIn('reporter', victim.secret);
        const report = await api(server.url, 'POST', `/api/v1/me/signins/${theirs!.id}/report`, undefined, owner);
        expect(report.status).toBe(200);
        // (The registration session the owner first set up their authenticator with ends too.) The authenticator the
        // reported sign-in got in with goes as well, though it was there before: its secret, or a code of it, was in
        // the attacker's hands (here the owner's own: they add a new one from the session they reported from).
        expect(report.body).toEqual({ reported: true, sessionsEnded: 2, methodsRemoved: 2, methodsLeft: 0, passRevoked: false });
        expect((await api(server.url, 'GET', '/api/v1/me', undefined, attacker)).status).toBe(401);
        const ownersNew = await addTotp(owner);

        clock.advance(1000);
        const again = await api(server.url, 'POST', '/api/v1/t/acme/signin', { username: 'reporter', password: PASSWORD });
        expect(again.body.methods).toHaveLength(1);
        for (const secret of [attackerSecret, victim.secret]) {
          clock.advance(30_000);
          const withOld = await api(server.url, 'POST', `/api/v1/t/acme/signin/${again.body.flow}/verify`, {
            method: 'totp',
            code: totpCode(secret, clock.now()),
          });
          expect(withOld.status).toBe(401);
        }
        clock.advance(30_000);
        expect(await signIn('reporter', ownersNew)).toEqual(expect.any(String));
      });

      it('"this wasn\'t me" takes back the authenticator a reported sign-in got in with, though an earlier sign-in added it', async () => {
        // Found (twenty-first round): the attacker's first sign-in added a method, the owner reported only a later
        // sign-in made with it, and the method, older than that sign-in, stayed.
        const victim = await user('reported-later');
        const attacker = await signIn('reported-later', victim.secret);
        const attackerSecret = await addTotp(attacker);
        clock.advance(60_000);
        const later = await signIn('reported-later', attackerSecret);
        const [theirs] = await signinsOf(later);
        clock.advance(60_000);
        const owner = await signIn('reported-later', victim.secret);
        const report = await api(server.url, 'POST', `/api/v1/me/signins/${theirs!.id}/report`, undefined, owner);
        expect(report.body).toMatchObject({ reported: true, methodsRemoved: 1, methodsLeft: 1 });
        clock.advance(1000);
        const again = await api(server.url, 'POST', '/api/v1/t/acme/signin', { username: 'reported-later', password: PASSWORD });
        clock.advance(30_000);
        const withTheirs = await api(server.url, 'POST', `/api/v1/t/acme/signin/${again.body.flow}/verify`, {
          method: 'totp',
          code: totpCode(attackerSecret, clock.now()),
        });
        expect(withTheirs.status).toBe(401);
        clock.advance(30_000);
        expect(await signIn('reported-later', victim.secret)).toEqual(expect.any(String));
      });

      it('with no method left, the password registers nothing until the owner changes it', async () => {
        const victim = await user('emptied');
        const owner = await signIn('emptied', victim.secret);
        clock.advance(60_000);
        const attacker = await signIn('emptied', victim.secret);
        const [theirs] = await signinsOf(attacker);
        await addTotp(attacker);
        // The attacker removes the owner's authenticator, leaving only theirs.
        const methods = (await api(server.url, 'GET', '/api/v1/me/methods', undefined, attacker)).body as { id: string; type: string }[];
        const ownersApp = methods.find((m) => m.type === 'totp')!;
        expect((await api(server.url, 'DELETE', `/api/v1/me/methods/${ownersApp.id}`, undefined, attacker)).status).toBe(204);

        // Reported from the pages this time: they say what went, and what to do first.
        const browser = new PageClient(server.url);
        browser.cookies.set('sf_session', owner);
        const reportPage = `/t/acme/my/signins/${theirs!.id}/report`;
        const reported = await browser.post(reportPage, {}, { from: reportPage });
        expect(reported.location).toBe('/t/acme/my/signins/reported');
        const secure = (await browser.get(reported.location!)).text;
        expect(secure).toContain('We removed 1 sign-in method: the one that sign-in used and any added since.');
        expect(secure).toContain('No sign-in method is left: change your password first');
        expect(secure).toContain('Change your password');
        const [entry] = await server.services.audit.list(tenant.id, { limit: 1, action: 'signin.reported', userId: victim.id });
        expect(entry!.details).toMatchObject({ eventId: theirs!.id, methodsRemoved: 1, methodsLeft: 0 });
        // The password alone would get the attacker a registration session to register a method of theirs.
        clock.advance(1000);
        const registration = await api(server.url, 'POST', '/api/v1/t/acme/signin', { username: 'emptied', password: PASSWORD });
        expect(registration.status).toBe(403);
        expect(registration.body.type).toMatch(/\/password-cannot-register$/);
        expect(registration.body.session).toBeUndefined();

        // The owner, still signed in here, changes it; then it registers their new authenticator.
        const NEW_PASSWORD = 'only the owner knows this 42';
        const changed = await api(server.url, 'POST', '/api/v1/me/password', { currentPassword: PASSWORD, newPassword: NEW_PASSWORD }, owner);
        expect(changed.status).toBe(200);
        clock.advance(1000);
        const again = await api(server.url, 'POST', '/api/v1/t/acme/signin', { username: 'emptied', password: NEW_PASSWORD });
        expect(again.body.state).toBe('registration_required');
        const ownersNewApp = await addTotp(again.body.session.token);
        expect(await signIn2('emptied', NEW_PASSWORD, ownersNewApp)).toEqual(expect.any(String));
      });

      it("a thief with the owner's fresh session cannot make the report give them the password", async () => {
        // Found (twenty-first round, against the first take-back): reporting the owner's own first sign-in removed
        // their methods and cleared the password, and the thief set a first password of their own.
        const victim = await user('robbed');
        const stolen = await signIn('robbed', victim.secret);
        const first = (await signinsOf(stolen)).at(-1)!;
        const report = await api(server.url, 'POST', `/api/v1/me/signins/${first.id}/report`, undefined, stolen);
        expect(report.body).toMatchObject({ reported: true, methodsRemoved: 1, methodsLeft: 0 });
        const setFirst = await api(server.url, 'POST', '/api/v1/me/password', { newPassword: 'the thief would like this 42' }, stolen);
        expect(setFirst.status).toBe(409);
        const guess = await api(
          server.url,
          'POST',
          '/api/v1/me/password',
          { currentPassword: 'not it at all', newPassword: 'the thief would like this 42' },
          stolen,
        );
        expect(guess.status).toBe(401);
        // The password is still the owner's alone (an administrator's pass brings them back to a method).
        clock.advance(1000);
        const owners = await api(server.url, 'POST', '/api/v1/t/acme/signin', { username: 'robbed', password: PASSWORD });
        expect(owners.body.type).toMatch(/\/password-cannot-register$/);
        expect((await api(server.url, 'POST', '/api/v1/t/acme/signin', { username: 'robbed', password: 'the thief would like this 42' })).status).toBe(401);
      });
    });

    describe('an outside attack run, twenty-second round', () => {
      it('an administrator cannot issue a Temporary Access Pass for their own account; another administrator can', async () => {
        // Found: with an administrator's session taken over once, the attacker issued a long multi-use pass to that
        // administrator's own account, and it signed them in after the owner's report, new password and sign-out.
        const person = await adminPersonSession(server.services, 'acme');
        const me = (await api(server.url, 'GET', '/api/v1/me', undefined, person)).body as { id: string };
        const own = await call('POST', `/api/v1/admin/users/${me.id}/tap`, { minutes: 480 }, person);
        expect(own.status).toBe(403);
        expect(own.body.code).toBeUndefined();
        expect((await server.services.passes.active(tenant.id, me.id)) ?? null).toBeNull();
        const colleague = await adminPersonSession(server.services, 'acme');
        const issued = await call('POST', `/api/v1/admin/users/${me.id}/tap`, { minutes: 60 }, colleague);
        expect(issued.status).toBe(201);
      });
    });

    describe('an outside attack run, seventeenth round', () => {
      const HOLDER_PASSWORD = 'the holder knows this one 42';
      const NEXT_PASSWORD = 'and would change it to this 42';

      it("a password change in flight as the token is revoked is refused: the holder's own password does not survive", async () => {
        // Found: the holder's change, checked against a live session before its two hashes, was written after the
        // take-back had cleared the token's password; the holder kept the account with a password of their own.
        const victim = await server.services.admin.createUser(tenant, 'cli', { username: 'changed-in-flight', password: PASSWORD });
        const leaked = await server.services.adminTokens.create(tenant.id, 'admin');
        clock.advance(1);
        expect((await call('PATCH', `/api/v1/admin/users/${victim.id}`, { password: HOLDER_PASSWORD }, leaked.token)).status).toBe(200);
        const registration = await api(server.url, 'POST', '/api/v1/t/acme/signin', { username: 'changed-in-flight', password: HOLDER_PASSWORD });
        expect(registration.body.state).toBe('registration_required');
        const secret = await addTotp(registration.body.session.token);
        const start = await api(server.url, 'POST', '/api/v1/t/acme/signin', { username: 'changed-in-flight', password: HOLDER_PASSWORD });
        clock.advance(30_000);
        const signedIn = await api(server.url, 'POST', `/api/v1/t/acme/signin/${start.body.flow}/verify`, {
          method: 'totp',
          code: totpCode(secret, clock.now()),
        });
        const holder = signedIn.body.session.token as string;

        duringNextHash(() => server.services.admin.revokeToken(tenant, 'cli', leaked.id));
        const change = await api(server.url, 'POST', '/api/v1/me/password', { currentPassword: HOLDER_PASSWORD, newPassword: NEXT_PASSWORD }, holder);
        expect(change.status).toBe(401);
        for (const password of [HOLDER_PASSWORD, NEXT_PASSWORD])
          expect((await api(server.url, 'POST', '/api/v1/t/acme/signin', { username: 'changed-in-flight', password })).status).toBe(401);
      });

      it('a password a token sets as it is revoked is taken back, and the request refused', async () => {
        const victim = await server.services.admin.createUser(tenant, 'cli', { username: 'set-in-flight', password: PASSWORD });
        const leaked = await server.services.adminTokens.create(tenant.id, 'admin');
        duringNextHash(() => server.services.admin.revokeToken(tenant, 'cli', leaked.id));
        const late = await call('PATCH', `/api/v1/admin/users/${victim.id}`, { password: HOLDER_PASSWORD }, leaked.token);
        expect(late.status).toBe(401);
        expect((await api(server.url, 'POST', '/api/v1/t/acme/signin', { username: 'set-in-flight', password: HOLDER_PASSWORD })).status).toBe(401);
        const [entry] = await server.services.audit.list(tenant.id, { limit: 1, action: 'access.taken-back', userId: victim.id });
        expect(entry!.details).toMatchObject({ tokenId: leaked.id, passwordCleared: true });
      });
    });

    describe('13. suspected findings, checked', () => {
      it("a passkey assertion naming someone's credential charges only its source, never the owner's account", async () => {
        const owner = await user('pat');
        const key = new SoftAuthenticator(ORIGIN_URL);
        const token = await signIn('pat', owner.secret);
        const options = await api(server.url, 'POST', '/api/v1/me/methods/webauthn/options', { kind: 'passkey' }, token);
        expect((await api(server.url, 'POST', '/api/v1/me/methods', { type: 'webauthn', attestation: key.register(options.body) }, token)).status).toBe(201);

        // A forger knows the credential id (it is no secret) but not the key.
        const forger = new SoftAuthenticator(ORIGIN_URL);
        Object.assign(forger, { credentialId: key.credentialId });
        forger.bindUser(String((options.body as { user: { id: string } }).user.id));
        for (let i = 0; i < 12; i++) {
          const start = await api(server.url, 'POST', '/api/v1/t/acme/signin/passkey');
          const forged = await api(server.url, 'POST', `/api/v1/t/acme/signin/${start.body.flow}/verify`, {
            method: 'passkey',
            assertion: forger.assert(start.body.webauthn.challenge),
          });
          expect(forged.status).not.toBe(200);
        }
        const limits = server.services.ephemeral.rateLimiter({ keyPrefix: 'rl:mfa:acct', points: 100, durationSeconds: 86_400, blockSeconds: 3600 });
        expect((await limits.get(`${tenant.id}|${owner.id}`))?.consumedPoints ?? 0).toBe(0);
        // The owner still signs in with the password and app, and with the passkey.
        expect(await signIn('pat', owner.secret)).toMatch(/^sfs_/);
        const start = await api(server.url, 'POST', '/api/v1/t/acme/signin/passkey');
        expect(
          (
            await api(server.url, 'POST', `/api/v1/t/acme/signin/${start.body.flow}/verify`, {
              method: 'passkey',
              assertion: key.assert(start.body.webauthn.challenge),
            })
          ).status,
        ).toBe(200);
      });

      it('a one-time TAP is not used up by a disabled account', async () => {
        const dora = await user('dora', { withTotp: false });
        const pass = await call('POST', `/api/v1/admin/users/${dora.id}/tap`, { minutes: 60, oneTime: true });
        await call('PATCH', `/api/v1/admin/users/${dora.id}`, { status: 'disabled' });
        const refused = await api(server.url, 'POST', '/api/v1/t/acme/signin', { username: 'dora', tap: pass.body.code });
        expect(refused.body.type).toMatch(/\/account-disabled$/);
        await asPerson('PATCH', `/api/v1/admin/users/${dora.id}`, { status: 'active' });
        const used = await api(server.url, 'POST', '/api/v1/t/acme/signin', { username: 'dora', tap: pass.body.code });
        expect(used.body.state).toBe('registration_required');
      });

      it('a new set of recovery codes (ten slow hashes) can be made a few times an hour, not in a loop', async () => {
        const rex = await user('rex');
        const token = await signIn('rex', rex.secret);
        const statuses = [];
        for (let i = 0; i < 6; i++) statuses.push((await api(server.url, 'POST', '/api/v1/me/methods', { type: 'recovery-codes' }, token)).status);
        expect(statuses).toEqual([201, 201, 201, 201, 201, 429]);
      });

      // Last in the file: it spends this source's budget for the minute.
      it('unauthenticated starts that leave state behind (passkey sign-ins, app authorization requests) are limited per source', async () => {
        const statuses = [];
        for (let i = 0; i < 62; i++) statuses.push((await api(server.url, 'POST', '/api/v1/t/acme/signin/passkey')).status);
        expect(statuses.filter((s) => s === 200).length).toBeLessThanOrEqual(60);
        expect(statuses.at(-1)).toBe(429);
        const auth = await fetch(`${server.url}/t/acme/oidc/auth?client_id=x&response_type=code&scope=openid`, { redirect: 'manual' });
        expect(auth.status).toBe(429);
      });
    });

    describe('an outside attack run, twenty-fifth round', () => {
      it('counts the users a policy would strand (only methods of types it no longer allows), on this store', async () => {
        await user('only-an-app');
        const withoutApps = tenant.policy.allowedMethods.filter((m) => m !== 'totp');
        expect(await server.services.admin.strandedBy(tenant, withoutApps)).toBeGreaterThanOrEqual(1);
        expect(await server.services.admin.strandedBy(tenant, [...tenant.policy.allowedMethods, 'totp'])).toBe(0);
      });
    });

    describe('an outside attack run, twenty-third round', () => {
      const signinsOf = async (token: string) => (await api(server.url, 'GET', '/api/v1/me/signins?limit=50', undefined, token)).body.items as { id: string }[];

      it('a report of a sign-in made with a Temporary Access Pass revokes the pass: it does not sign the thief in again', async () => {
        const victim = await user('pass-thief');
        const pass = await call('POST', `/api/v1/admin/users/${victim.id}/tap`, { minutes: 480, oneTime: false });
        const thief = await api(server.url, 'POST', '/api/v1/t/acme/signin', { username: 'pass-thief', tap: pass.body.code });
        expect(thief.body.state).toBe('complete');
        const [theirs] = await signinsOf(thief.body.session.token);
        clock.advance(60_000);
        const owner = await signIn('pass-thief', victim.secret);
        const report = await api(server.url, 'POST', `/api/v1/me/signins/${theirs!.id}/report`, undefined, owner);
        expect(report.body).toMatchObject({ reported: true, passRevoked: true });
        clock.advance(1000);
        const again = await api(server.url, 'POST', '/api/v1/t/acme/signin', { username: 'pass-thief', tap: pass.body.code });
        expect(again.status).toBe(401);
        expect(again.body.session).toBeUndefined();
      });

      it('where MFA is optional, a reported account with no method left does not sign in with the old password', async () => {
        const optional = await server.services.tenants.create('acme-optional');
        await server.services.tenants.setPolicy(optional, { ...optional.policy, mfaRequired: false });
        await server.services.admin.createUser(optional, 'cli', { username: 'relaxed', password: PASSWORD });
        const owner = await api(server.url, 'POST', '/api/v1/t/acme-optional/signin', { username: 'relaxed', password: PASSWORD });
        expect(owner.body.state).toBe('complete');
        clock.advance(60_000);
        const thief = await api(server.url, 'POST', '/api/v1/t/acme-optional/signin', { username: 'relaxed', password: PASSWORD });
        const [theirs] = await signinsOf(thief.body.session.token);
        const ownerWithMethod = await api(server.url, 'POST', '/api/v1/t/acme-optional/signin', { username: 'relaxed', password: PASSWORD });
        // (The owner proves a second factor in the session they report from: they added an authenticator first.)
        const secret = await addTotp(ownerWithMethod.body.session.token);
        clock.advance(30_000);
        const start = await api(server.url, 'POST', '/api/v1/t/acme-optional/signin', { username: 'relaxed', password: PASSWORD });
        const withMfa = await api(server.url, 'POST', `/api/v1/t/acme-optional/signin/${start.body.flow}/verify`, {
          method: 'totp',
          code: totpCode(secret, clock.now()),
        });
        const reported = await api(server.url, 'POST', `/api/v1/me/signins/${theirs!.id}/report`, undefined, withMfa.body.session.token);
        expect(reported.body).toMatchObject({ methodsRemoved: 1, methodsLeft: 0 });
        clock.advance(1000);
        const back = await api(server.url, 'POST', '/api/v1/t/acme-optional/signin', { username: 'relaxed', password: PASSWORD });
        expect(back.status).toBe(403);
        expect(back.body.type).toMatch(/\/password-cannot-register$/);
      });

      it('a password "changed" to itself is refused, and an old stolen session cannot change it at all', async () => {
        const victim = await user('same-again');
        const owner = await signIn('same-again', victim.secret);
        const same = await api(server.url, 'POST', '/api/v1/me/password', { currentPassword: PASSWORD, newPassword: PASSWORD }, owner);
        expect(same.status).toBe(400);
        clock.advance(11 * 60_000);
        const stale = await api(server.url, 'POST', '/api/v1/me/password', { currentPassword: PASSWORD, newPassword: 'the thief would like this 42' }, owner);
        expect(stale.status).toBe(403);
        expect(stale.body.type).toMatch(/\/reauthentication-required$/);
        // The page says so, and offers to sign in again.
        const pages = new PageClient(server.url);
        pages.cookies.set('sf_session', owner);
        const posted = await pages.post(
          '/t/acme/my/password',
          { currentPassword: PASSWORD, newPassword: 'the thief would like this 42' },
          { from: '/t/acme/my/password' },
        );
        const shown = (await pages.get(posted.location!)).text;
        expect(shown).toContain('Changing your password needs a sign-in within the last 10 minutes.');
        expect(shown).toContain('Sign in again');
        // A session of the password alone (a remembered browser) is offered the sign-in with the second step.
        const remembered = await server.services.sessions.create({ tenantId: tenant.id, userId: victim.id, scope: 'full', amr: ['pwd'] });
        const browser = new PageClient(server.url);
        browser.cookies.set('sf_session', remembered.token);
        const refused = await browser.post(
          '/t/acme/my/password',
          { currentPassword: PASSWORD, newPassword: 'the thief would like this 42' },
          { from: '/t/acme/my/password' },
        );
        const offered = (await browser.get(refused.location!)).text;
        expect(offered).toContain('Changing your password needs a sign-in with your second step');
        expect(offered).toContain('value="security-info-mfa"');
        expect(await signIn('same-again', victim.secret)).toEqual(expect.any(String));
      });
    });
  });
}
