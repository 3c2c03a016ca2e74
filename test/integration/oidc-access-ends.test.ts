import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ManualClock } from '../../src/clock.ts';
import { backends, type Backend } from '../helpers/backends.ts';
import { api, startTestServer, type TestServer } from '../helpers/test-server.ts';
import { totpCode } from '../helpers/totp.ts';
import { PageClient, flowOf, hiddenField } from '../helpers/page-client.ts';
import { adminPersonSession } from '../helpers/admin-person.ts';
import { OidcApp } from '../helpers/oidc-app.ts';
import { signedInBrowser } from '../helpers/signed-in-browser.ts';

const PASSWORD = 'correct horse battery staple';
const CALLBACK = 'https://wiki.example.test/callback';

/**
 * What the OpenID Connect provider issued ends whenever Steadfast ends the
 * user's access (issue 11, item 3; issue 20, item 4): signing out on the
 * pages, an administrator ending the sessions, a reset, a disabled account, a
 * password change and "this wasn't me". Refresh tokens exist only for
 * consented offline access, and a replayed one ends the newer one too.
 */
for (const spec of backends) {
  describe.runIf(await spec.available())(`OpenID Connect access ends with Steadfast's on ${spec.name}`, () => {
    let backend: Backend;
    let server: TestServer;
    let adminToken = '';
    let wiki: OidcApp;
    const clock = new ManualClock(Date.now());

    /** A user with password and authenticator app, signed in over the API in a fresh browser. */
    const signedIn = (username: string) => signedInBrowser({ base: server.url, tenant: 'acme', adminToken, clock }, username, PASSWORD);

    /** Tokens for a signed-in browser, with a refresh token (offline access, consented). */
    const tokensFor = async (browser: PageClient, params: Record<string, string> = {}) => {
      const res = await wiki.redeem(await wiki.code(browser, params));
      expect(res.status).toBe(200);
      return res.body;
    };

    beforeAll(async () => {
      backend = await spec.create({ STEADFAST_PUBLIC_URL: 'http://id.example.test' });
      server = await startTestServer(backend, { clock });
      const tenant = await server.services.tenants.create('acme', 'Acme');
      adminToken = (await server.services.adminTokens.create(tenant.id, 'admin')).token;
      wiki = await OidcApp.register({
        base: server.url,
        tenant: 'acme',
        adminSession: await adminPersonSession(server.services, 'acme'),
        name: 'Wiki',
        callback: CALLBACK,
      });
    });
    afterAll(async () => {
      await server?.close();
      await backend?.cleanup();
    });

    it('issues a refresh token only for offline access that was consented to', async () => {
      const { browser } = await signedIn('olga');
      expect((await tokensFor(browser, { scope: 'openid' })).refresh_token).toBeUndefined();
      // Asked for without prompt=consent: the scope is dropped, and with it the refresh token.
      const flow = await wiki.authorize(browser, { prompt: '' });
      const code = (flow as { url: URL }).url.searchParams.get('code')!;
      expect((await wiki.redeem({ code, verifier: flow.verifier })).body.refresh_token).toBeUndefined();
      expect((await tokensFor(browser)).refresh_token).toBeTruthy();
    });

    it('requires PKCE of a confidential client too', async () => {
      const { browser } = await signedIn('pete');
      const flow = await wiki.authorize(browser, { code_challenge: '', code_challenge_method: '' });
      expect(flow.ended).toBe('callback');
      expect((flow as { url: URL }).url.searchParams.get('error')).toBe('invalid_request');
    });

    it("ends the browser's app sign-in and its refresh tokens when the user signs out on the pages", async () => {
      const { browser } = await signedIn('sara');
      const tokens = await tokensFor(browser);
      expect((await wiki.authorize(browser)).ended).toBe('callback');
      const out = await browser.post('/t/acme/signout', {}, { from: '/t/acme/my/security-info' });
      expect(out.status).toBe(303);
      // The next person at this browser is asked to sign in, even though the provider's cookie is still here.
      expect(browser.cookies.get('_session')).toBeTruthy();
      expect((await wiki.authorize(browser)).ended).toBe('signin');
      expect((await wiki.refresh(tokens.refresh_token!)).body.error).toBe('invalid_grant');
    });

    it('asks a remembered browser for a real second factor when an app signs in, where the tenant requires MFA', async () => {
      // Outside attack run, fourth round: the password alone on a remembered browser gave an app an ID token with amr
      // ["pwd"]; an app that does not check acr took it as a full sign-in.
      expect(
        (await api(server.url, 'PUT', '/api/v1/admin/policy', { rememberedDeviceDays: 7 }, await adminPersonSession(server.services, 'acme'))).status,
      ).toBe(200);
      try {
        const { secret } = await signedIn('vera');
        const browser = new PageClient(server.url);
        const start = await browser.post('/t/acme/signin', { username: 'vera', password: PASSWORD }, { from: '/t/acme/signin/tap' });
        clock.advance(30_000);
        const verify = { flow: flowOf(start)!, method: 'totp', code: totpCode(secret, clock.now()), remember: 'on' };
        expect((await browser.post('/t/acme/signin/verify', verify, { from: '/t/acme/signin/tap' })).status).toBe(303);
        expect(browser.cookies.get('sf_device')).toBeTruthy();
        await browser.post('/t/acme/signout', {}, { from: '/t/acme/signin/tap' });
        // The password alone on the remembered browser: the user's own pages, yes; an app, not without the second factor.
        clock.advance(60_000);
        expect((await browser.post('/t/acme/signin', { username: 'vera', password: PASSWORD }, { from: '/t/acme/signin/tap' })).location).toBe(
          '/t/acme/my/security-info',
        );
        const flow = await wiki.authorize(browser, { scope: 'openid' });
        expect(flow.ended).toBe('signin');
        expect((flow as { url: URL }).url.searchParams.get('next')).toMatch(/^oidc-mfa:/);

        // Fifth round: the app signed in with the second factor, then the Steadfast session idled out while the
        // provider's lived on; the password alone on the remembered browser must not pass for that old sign-in.
        await browser.post('/t/acme/signout', {}, { from: '/t/acme/signin/tap' });
        // (Asked for on the remembered browser, a second factor is proved in the sign-in.)
        const again = await browser.post('/t/acme/signin', { username: 'vera', password: PASSWORD, next: 'security-info-mfa' }, { from: '/t/acme/signin/tap' });
        clock.advance(30_000);
        const full = { flow: flowOf(again)!, method: 'totp', code: totpCode(secret, clock.now()) };
        expect((await browser.post('/t/acme/signin/verify', full, { from: '/t/acme/signin/tap' })).status).toBe(303);
        const withMfa = await wiki.authorize(browser, { scope: 'openid' });
        expect(withMfa.ended).toBe('callback');
        clock.advance((server.services.config.sessions.idleMinutes + 1) * 60_000);
        expect((await browser.post('/t/acme/signin', { username: 'vera', password: PASSWORD }, { from: '/t/acme/signin/tap' })).location).toBe(
          '/t/acme/my/security-info',
        );
        const afterIdle = await wiki.authorize(browser, { scope: 'openid' });
        expect(afterIdle.ended).toBe('signin');
        expect((afterIdle as { url: URL }).url.searchParams.get('next')).toMatch(/^oidc-mfa:/);
      } finally {
        await api(server.url, 'PUT', '/api/v1/admin/policy', { rememberedDeviceDays: 0 }, await adminPersonSession(server.services, 'acme'));
      }
    });

    it('asks for a second factor before an app signs in again, once the tenant has come to require MFA', async () => {
      // Outside attack run, fourteenth round: a password-only session linked to the provider's before the tenant
      // required MFA went on signing apps in, silently and not, with amr ["pwd"]: the requirement was checked only
      // on the sign-in page, which a linked provider session never reaches.
      const person = await adminPersonSession(server.services, 'acme');
      expect((await api(server.url, 'PUT', '/api/v1/admin/policy', { mfaRequired: false }, person)).status).toBe(200);
      try {
        await api(server.url, 'POST', '/api/v1/admin/users', { username: 'quinn', password: PASSWORD }, adminToken);
        const signin = await api(server.url, 'POST', '/api/v1/t/acme/signin', { username: 'quinn', password: PASSWORD });
        expect(signin.body.state).toBe('complete');
        const browser = new PageClient(server.url);
        browser.cookies.set('sf_session', signin.body.session.token as string);
        expect((await wiki.authorize(browser, { scope: 'openid' })).ended).toBe('callback');

        expect((await api(server.url, 'PUT', '/api/v1/admin/policy', { mfaRequired: true }, person)).status).toBe(200);
        const silent = await wiki.authorize(browser, { scope: 'openid', prompt: 'none' });
        expect(silent.ended).toBe('callback');
        expect((silent as { url: URL }).url.searchParams.get('code')).toBeNull();
        expect((silent as { url: URL }).url.searchParams.get('error')).toBe('login_required');
        const asked = await wiki.authorize(browser, { scope: 'openid' });
        expect(asked.ended).toBe('signin');
        expect((asked as { url: URL }).url.searchParams.get('next')).toMatch(/^oidc-mfa:/);
      } finally {
        await api(server.url, 'PUT', '/api/v1/admin/policy', { mfaRequired: true }, person);
      }
    });

    it("refuses an app's refresh token from a password-only sign-in once the tenant requires MFA, and keeps one from a sign-in with a second factor", async () => {
      // Outside attack run, sixteenth round: the requirement was read on authorization requests only; an app with
      // a refresh token from before went on getting access and password-only ID tokens for as long as its grant lived.
      const person = await adminPersonSession(server.services, 'acme');
      const withFactor = await signedIn('pat');
      const factorTokens = await tokensFor(withFactor.browser);
      expect((await api(server.url, 'PUT', '/api/v1/admin/policy', { mfaRequired: false }, person)).status).toBe(200);
      try {
        const created = await api(server.url, 'POST', '/api/v1/admin/users', { username: 'robin', password: PASSWORD }, adminToken);
        const signin = await api(server.url, 'POST', '/api/v1/t/acme/signin', { username: 'robin', password: PASSWORD });
        expect(signin.body.state).toBe('complete');
        const browser = new PageClient(server.url);
        browser.cookies.set('sf_session', signin.body.session.token as string);
        const tokens = await tokensFor(browser);
        const refreshed = await wiki.refresh(tokens.refresh_token!);
        expect(refreshed.status).toBe(200);
        const grants = () =>
          server.services.durable.db
            .selectFrom('oidc_records')
            .select('model')
            .where('account_id', '=', created.body.id)
            .where('model', '=', 'Grant')
            .execute();
        expect(await grants()).toHaveLength(1);
        // Seventeenth round: a code issued just before the change was still redeemed, within its minute.
        const code = await wiki.code(browser, { scope: 'openid' });

        expect((await api(server.url, 'PUT', '/api/v1/admin/policy', { mfaRequired: true }, person)).status).toBe(200);
        expect((await wiki.redeem(code)).body.error).toBe('invalid_grant');
        expect((await wiki.refresh(refreshed.body.refresh_token!)).body.error).toBe('invalid_grant');
        expect(await grants()).toEqual([]);
        // A sign-in that proved a second factor is what the policy asks for: its app keeps its access.
        expect((await wiki.refresh(factorTokens.refresh_token!)).status).toBe(200);
      } finally {
        await api(server.url, 'PUT', '/api/v1/admin/policy', { mfaRequired: true }, person);
      }
    });

    it('tells an app what the live Steadfast session proved, not what an earlier one in the same browser did', async () => {
      // Sixth round: the provider's sign-in (password and app code) outlived its Steadfast session; with a pass-only
      // session in the browser, apps still got amr ["pwd","otp","mfa"] and the old auth_time.
      const claims = (idToken: string) => JSON.parse(Buffer.from(idToken.split('.')[1]!, 'base64url').toString()) as { amr: string[]; auth_time: number };
      const { browser, userId } = await signedIn('wren');
      const firstIdToken = (await tokensFor(browser, { scope: 'openid' })).id_token!;
      expect(claims(firstIdToken).amr).toEqual(['pwd', 'otp', 'mfa']);
      clock.advance(60_000);
      const pass = await api(server.url, 'POST', `/api/v1/admin/users/${userId}/tap`, { minutes: 60 }, adminToken);
      clock.advance(1);
      const byPass = await api(server.url, 'POST', '/api/v1/t/acme/signin', { username: 'wren', tap: pass.body.code });
      browser.cookies.set('sf_session', byPass.body.session.token);
      // Silently, the app is told to sign the user in: nothing is claimed from the old sign-in.
      const silent = await wiki.authorize(browser, { scope: 'openid', prompt: 'none' });
      expect(silent.ended).toBe('callback');
      expect((silent as { url: URL }).url.searchParams.get('error')).toBe('login_required');
      // Seventh round: "No, stay signed in" from the new session linked the provider's renamed session to it, and the
      // old sign-in passed for it after all.
      const page = await browser.get(`/t/acme/oidc/session/end?id_token_hint=${firstIdToken}`);
      expect((await browser.post('/t/acme/oidc/session/end/confirm', { xsrf: hiddenField(page.text, 'xsrf')! })).status).toBe(303);
      // (The provider tells of the answer as it redirects; the link, if any, is written a moment later.)
      await new Promise((resolve) => setTimeout(resolve, 50));
      const afterNo = await wiki.authorize(browser, { scope: 'openid', prompt: 'none' });
      expect((afterNo as { url: URL }).url.searchParams.get('error')).toBe('login_required');
      // Asked normally, the sign-in is made again from the live session at once, and says what that one proved.
      const again = claims((await tokensFor(browser, { scope: 'openid' })).id_token!);
      expect(again.amr).toEqual(['tap', 'mfa']);
      const live = (await server.services.sessions.authenticate(byPass.body.session.token))!;
      expect(again.auth_time).toBe(Math.floor(live.authTime / 1000));
    });

    it("still ends the other apps' sign-ins with the Steadfast session after the user signed out of one app only", async () => {
      // Fifth round: "No, stay signed in" after one app's sign-out gave the provider's session a new id, which
      // stood on nothing: signing out through the API then left the other apps' refresh tokens working.
      const { browser, token } = await signedIn('xena');
      const notes = await OidcApp.register({
        base: server.url,
        tenant: 'acme',
        adminSession: await adminPersonSession(server.services, 'acme'),
        name: 'Notes',
        callback: 'https://notes.example.test/cb',
      });
      const wikiTokens = await tokensFor(browser);
      const notesFirst = await notes.redeem(await notes.code(browser, { scope: 'openid offline_access', prompt: 'consent' }));
      expect(notesFirst.body.refresh_token).toBeTruthy();
      const before = browser.cookies.get('_session');
      const page = await browser.get(`/t/acme/oidc/session/end?id_token_hint=${wikiTokens.id_token}`);
      expect(page.status).toBe(200);
      expect((await browser.post('/t/acme/oidc/session/end/confirm', { xsrf: hiddenField(page.text, 'xsrf')! })).status).toBe(303);
      const renamed = browser.cookies.get('_session');
      expect(renamed).toBeTruthy();
      expect(renamed).not.toBe(before);
      await vi.waitFor(async () =>
        expect(
          await server.services.durable.db
            .selectFrom('oidc_records')
            .select('uid')
            .where('model', '=', 'SteadfastSessionLink')
            .where('id', '=', renamed!)
            .executeTakeFirst(),
        ).toBeDefined(),
      );
      // Signed out of the wiki only: the notes app goes on, until the Steadfast session ends.
      const notesAgain = await notes.refresh(notesFirst.body.refresh_token!);
      expect(notesAgain.status).toBe(200);
      expect((await api(server.url, 'DELETE', '/api/v1/me/session', undefined, token)).status).toBe(204);
      expect((await notes.refresh(notesAgain.body.refresh_token!)).body.error).toBe('invalid_grant');
    });

    it("signs out of Steadfast only when the user says yes on the provider's sign-out page, and only for that tenant", async () => {
      const { browser, token } = await signedIn('ursula');
      await tokensFor(browser);
      const signedInStill = async () => (await api(server.url, 'GET', '/api/v1/me', undefined, token)).status === 200;
      const answer = async (tenant: string, fields: Record<string, string>) => {
        const page = await browser.get(`/t/${tenant}/oidc/session/end`);
        expect(page.status).toBe(200);
        const done = await browser.post(`/t/${tenant}/oidc/session/end/confirm`, { xsrf: hiddenField(page.text, 'xsrf')!, ...fields });
        expect(done.status).toBe(303);
        return new URL(done.location!).pathname; // the public URL names another host
      };
      // "No, stay signed in" (outside attack run, fourth round: it signed the browser out all the same).
      const afterNo = await browser.get(await answer('acme', {}));
      expect(await signedInStill()).toBe(true);
      // The page after it said "signed out of ... and of Acme" though the browser stayed signed in.
      expect(afterNo.text).toContain('still signed in to');
      expect(afterNo.text).not.toContain('You are signed out</h1>');
      // "Yes" at another tenant's provider: this browser's session there is not this one.
      if (!(await server.services.tenants.findBySlug('beta'))) await server.services.tenants.create('beta', 'Beta');
      await answer('beta', { logout: 'yes' });
      expect(await signedInStill()).toBe(true);
      // The provider tells of a sign-out as it answers: the Steadfast session ends a moment later.
      const afterYes = await answer('acme', { logout: 'yes' });
      await vi.waitFor(async () => expect(await signedInStill()).toBe(false));
      expect((await browser.get(afterYes)).text).toContain('You are signed out</h1>');
    });

    it('asks a browser with no session to sign in once, not twice, for prompt=login or max_age=0', async () => {
      // Left from an earlier stop: the first sign-in was made before the request's "sign in afresh" mark was set,
      // so it did not count, and the user was sent to sign in again.
      const { secret } = await signedIn('otto');
      for (const params of [{ prompt: 'login' }, { max_age: '0' }] as Record<string, string>[]) {
        const browser = new PageClient(server.url);
        const flow = await wiki.authorize(browser, { scope: 'openid', ...params });
        expect(flow.ended, JSON.stringify(params)).toBe('signin');
        const page = (flow as { url: URL }).url;
        const from = page.pathname + page.search;
        const next = page.searchParams.get('next')!;
        const start = await browser.post('/t/acme/signin', { username: 'otto', password: PASSWORD, next }, { from });
        clock.advance(30_000);
        const done = await browser.post('/t/acme/signin/verify', { flow: flowOf(start)!, method: 'totp', code: totpCode(secret, clock.now()), next }, { from });
        expect(done.status).toBe(303);
        // A person takes a moment: the session is no longer 0 s old when the app's request resumes.
        clock.advance(2_000);
        let location = done.location!;
        let ended = '';
        for (let hop = 0; hop < 8 && !ended; hop++) {
          const res = await browser.get(location);
          // The page that carries the browser on to the app's request (signingInView), as the browser does.
          if (location.startsWith('/t/acme/signin/continue')) {
            location = `/t/acme/oidc/interaction/${next.slice(next.indexOf(':') + 1)}`;
            continue;
          }
          const to = new URL(res.location ?? '/', server.url);
          if (res.location?.startsWith(CALLBACK)) ended = 'callback';
          else if (to.pathname.endsWith('/signin')) ended = 'signin again';
          else if (res.status !== 303 && res.status !== 302) ended = `page ${res.status} at ${location}`;
          else location = to.pathname + to.search;
        }
        expect(ended, JSON.stringify(params)).toBe('callback');
      }
    });

    it('asks for a sign-in again when the Steadfast session behind the app sign-in has ended elsewhere', async () => {
      const { browser, token: sessionToken } = await signedIn('tina');
      expect((await wiki.authorize(browser)).ended).toBe('callback');
      // Signed out through the API (another tab, or the session simply ended): no provider cookie was seen.
      await api(server.url, 'DELETE', '/api/v1/me/session', undefined, sessionToken);
      const again = await wiki.authorize(browser, { prompt: 'none', scope: 'openid' });
      expect(again.ended).toBe('callback');
      expect((again as { url: URL }).url.searchParams.get('error')).toBe('login_required');
    });

    it("ends the app sign-in and its refresh tokens issued on a session when that session signs out through the API, and no other's", async () => {
      const { browser, token: sessionToken, secret } = await signedIn('uma');
      const tokens = await tokensFor(browser);
      // The same user on another device, with an app sign-in of its own.
      const start = await api(server.url, 'POST', '/api/v1/t/acme/signin', { username: 'uma', password: PASSWORD });
      clock.advance(30_000);
      const done = await api(server.url, 'POST', `/api/v1/t/acme/signin/${start.body.flow}/verify`, { method: 'totp', code: totpCode(secret, clock.now()) });
      const elsewhere = new PageClient(server.url);
      elsewhere.cookies.set('sf_session', done.body.session.token);
      const otherTokens = await tokensFor(elsewhere);

      // The bearer token is all the API sees: no provider cookie comes with it.
      expect((await api(server.url, 'DELETE', '/api/v1/me/session', undefined, sessionToken)).status).toBe(204);
      expect((await wiki.refresh(tokens.refresh_token!)).body.error).toBe('invalid_grant');
      expect(await wiki.userinfo(tokens.access_token!)).toBe(401);
      const sessionRecord = await server.services.durable.db
        .selectFrom('oidc_records')
        .select('id')
        .where('model', '=', 'Session')
        .where('id', '=', browser.cookies.get('_session')!)
        .executeTakeFirst();
      expect(sessionRecord).toBeUndefined();
      // The other device's app sign-in stands on a session that is still live.
      expect((await wiki.refresh(otherTokens.refresh_token!)).status).toBe(200);
    });

    for (const [what, end] of [
      [
        'an administrator ends the sessions',
        async (u: { userId: string }) => api(server.url, 'POST', `/api/v1/admin/users/${u.userId}/revoke-sessions`, undefined, adminToken),
      ],
      [
        'an administrator resets the methods',
        async (u: { userId: string }) => api(server.url, 'POST', `/api/v1/admin/users/${u.userId}/reset-methods`, undefined, adminToken),
      ],
      [
        'an administrator disables the account',
        async (u: { userId: string }) => api(server.url, 'PATCH', `/api/v1/admin/users/${u.userId}`, { status: 'disabled' }, adminToken),
      ],
      [
        'the user changes the password',
        async (u: { token: string }) =>
          api(server.url, 'POST', '/api/v1/me/password', { currentPassword: PASSWORD, newPassword: 'a brand new passphrase' }, u.token),
      ],
      [
        'the user reports a sign-in as not theirs',
        async (u: { token: string }) => {
          const [event] = (await api(server.url, 'GET', '/api/v1/me/signins', undefined, u.token)).body.items;
          return api(server.url, 'POST', `/api/v1/me/signins/${event.id}/report`, undefined, u.token);
        },
      ],
    ] as const) {
      it(`refuses the apps' refresh tokens once ${what}`, async () => {
        const user = await signedIn(`u${Math.random().toString(36).slice(2, 8)}`);
        const tokens = await tokensFor(user.browser);
        const records = () => server.services.durable.db.selectFrom('oidc_records').select('model').where('account_id', '=', user.userId).execute();
        expect((await records()).map((r) => r.model)).toEqual(expect.arrayContaining(['Session', 'Grant', 'RefreshToken']));
        const ended = await end(user as never);
        expect(ended.status).toBeLessThan(300);
        expect((await wiki.refresh(tokens.refresh_token!)).body.error).toBe('invalid_grant');
        expect(await records()).toEqual([]);
      });
    }

    it('refuses a code issued just before its session signed out through the API', async () => {
      const { browser, token } = await signedIn('wendy');
      const code = await wiki.code(browser);
      expect((await api(server.url, 'DELETE', '/api/v1/me/session', undefined, token)).status).toBe(204);
      expect((await wiki.redeem(code)).body.error).toBe('invalid_grant');
    });

    // An authorization request that found the Steadfast session live a moment before it ended writes the provider's
    // session, the grant and the link after the sign-out swept them. Its code is refused, and the grant goes too.
    for (const [what, end] of [
      ['the session signs out through the API', async (u: { token: string }) => api(server.url, 'DELETE', '/api/v1/me/session', undefined, u.token)],
      [
        'an administrator ends the sessions',
        async (u: { userId: string }) => api(server.url, 'POST', `/api/v1/admin/users/${u.userId}/revoke-sessions`, undefined, adminToken),
      ],
    ] as const) {
      it(`refuses a code whose grant was saved after ${what}`, async () => {
        const user = await signedIn(`w${Math.random().toString(36).slice(2, 8)}`);
        const db = server.services.durable.db;
        const records = () => db.selectFrom('oidc_records').selectAll().where('account_id', '=', user.userId).execute();
        const code = await wiki.code(user.browser);
        const written = await records();
        expect(written.map((r) => r.model)).toEqual(expect.arrayContaining(['Session', 'Grant', 'SteadfastSessionLink']));
        expect((await end(user as never)).status).toBeLessThan(300);
        expect(await records()).toEqual([]);
        // The late writes.
        await db.insertInto('oidc_records').values(written).execute();
        expect((await wiki.redeem(code)).body.error).toBe('invalid_grant');
        expect((await records()).filter((r) => r.model === 'Grant')).toEqual([]);
      });
    }

    // Outside attack run, round 13.
    const grantsOf = (userId: string) =>
      server.services.durable.db.selectFrom('oidc_records').select('id').where('model', '=', 'Grant').where('account_id', '=', userId).execute();
    const idTokenClaims = (idToken: string) => JSON.parse(Buffer.from(idToken.split('.')[1]!, 'base64url').toString()) as { amr: string[] };

    it("ends an app's offline grant when the user says yes on the provider's sign-out page", async () => {
      // The provider keeps a grant with offline_access through its own sign-out; the refresh token went on working.
      const { browser, userId } = await signedIn('yara');
      const tokens = await tokensFor(browser);
      const page = await browser.get(`/t/acme/oidc/session/end?id_token_hint=${tokens.id_token}`);
      expect((await browser.post('/t/acme/oidc/session/end/confirm', { xsrf: hiddenField(page.text, 'xsrf')!, logout: 'yes' })).status).toBe(303);
      // The provider tells of the sign-out as it answers: what it gave ends a moment later.
      await vi.waitFor(async () => expect(await grantsOf(userId)).toEqual([]));
      expect((await wiki.refresh(tokens.refresh_token!)).body.error).toBe('invalid_grant');
      expect(await wiki.userinfo(tokens.access_token!)).toBe(401);
    });

    for (const how of ['the API', 'the pages'] as const) {
      it(`ends an app's offline grant kept after "No, stay signed in" when the session signs out through ${how}`, async () => {
        // The provider forgets the app it signed out of but keeps its offline grant: no sign-out found it afterwards.
        const { browser, token } = await signedIn(`z${Math.random().toString(36).slice(2, 8)}`);
        const tokens = await tokensFor(browser);
        const page = await browser.get(`/t/acme/oidc/session/end?id_token_hint=${tokens.id_token}`);
        expect((await browser.post('/t/acme/oidc/session/end/confirm', { xsrf: hiddenField(page.text, 'xsrf')! })).status).toBe(303);
        const kept = await wiki.refresh(tokens.refresh_token!);
        expect(kept.status).toBe(200);
        if (how === 'the API') expect((await api(server.url, 'DELETE', '/api/v1/me/session', undefined, token)).status).toBe(204);
        else expect((await browser.post('/t/acme/signout', {}, { from: '/t/acme/my/security-info' })).status).toBe(303);
        expect((await wiki.refresh(kept.body.refresh_token!)).body.error).toBe('invalid_grant');
        expect(await wiki.userinfo(kept.body.access_token!)).toBe(401);
      });
    }

    it('finishes an app sign-in only in the browser that holds the session it was made from', async () => {
      // The interaction was finished with one session's proof (password and app code); the browser then held a
      // password-only session of the same user as the request resumed, and the app was told of a second factor.
      const { browser, token, userId } = await signedIn('abby');
      const passwordOnly = await server.services.sessions.create({
        tenantId: (await server.services.tenants.findBySlug('acme'))!.id,
        userId,
        scope: 'full',
        amr: ['pwd'],
      });
      const flow = await wiki.authorize(browser, { scope: 'openid' }, async (location) => {
        if (!/\/oidc\/auth\/[^/?]+$/.test(location.split('?')[0]!)) return;
        // Resuming: the proof's session has ended, and the browser holds the other one.
        await api(server.url, 'DELETE', '/api/v1/me/session', undefined, token);
        browser.cookies.set('sf_session', passwordOnly.token);
      });
      if (flow.ended === 'callback') {
        const res = await wiki.redeem({ code: flow.url.searchParams.get('code')!, verifier: flow.verifier });
        expect(idTokenClaims(res.body.id_token!).amr).toEqual(['pwd']);
      } else expect(flow.ended).toBe('signin');
    });

    it('refuses a code once the session it was issued in has ended, though the browser signed in again since', async () => {
      // The code was checked against the session the provider's session was linked to when redeemed, which a
      // later sign-in in the same browser had moved on.
      const { browser, token, userId } = await signedIn('bella');
      const code = await wiki.code(browser);
      const pass = await api(server.url, 'POST', `/api/v1/admin/users/${userId}/tap`, { minutes: 60 }, adminToken);
      const byPass = await api(server.url, 'POST', '/api/v1/t/acme/signin', { username: 'bella', tap: pass.body.code });
      browser.cookies.set('sf_session', byPass.body.session.token);
      expect((await wiki.authorize(browser, { scope: 'openid' })).ended).toBe('callback');
      expect((await api(server.url, 'DELETE', '/api/v1/me/session', undefined, token)).status).toBe(204);
      expect((await wiki.redeem(code)).body.error).toBe('invalid_grant');
    });

    it('ends the newer refresh token too when an older one is replayed', async () => {
      const { browser } = await signedIn('rhea');
      const first = await tokensFor(browser);
      const second = await wiki.refresh(first.refresh_token!);
      expect(second.status).toBe(200);
      expect((await wiki.refresh(first.refresh_token!)).body.error).toBe('invalid_grant');
      expect((await wiki.refresh(second.body.refresh_token!)).body.error).toBe('invalid_grant');
    });

    it("keeps the provider's session no longer than a Steadfast session", async () => {
      const { browser, userId } = await signedIn('lena');
      await tokensFor(browser);
      const row = await server.services.durable.db
        .selectFrom('oidc_records')
        .select(['expires_at'])
        .where('account_id', '=', userId)
        .where('model', '=', 'Session')
        .executeTakeFirstOrThrow();
      expect(Number(row.expires_at) - clock.now()).toBeLessThanOrEqual(server.services.config.sessions.lifetimeMinutes * 60_000);
    });

    it('builds discovery from the public URL, whatever Host or X-Forwarded-Host say, and sends the page headers', async () => {
      const res = await fetch(`${server.url}/t/acme/.well-known/openid-configuration`, {
        headers: { 'x-forwarded-host': 'evil.example', 'x-forwarded-proto': 'https', host: 'evil.example' },
      });
      const doc = (await res.json()) as Record<string, string>;
      expect(doc.issuer).toBe('http://id.example.test/t/acme');
      expect(doc.authorization_endpoint).toBe('http://id.example.test/t/acme/oidc/auth');
      expect(JSON.stringify(doc)).not.toContain('evil.example');
      const page = await fetch(`${server.url}/t/acme/oidc/session/end`);
      expect(page.headers.get('x-frame-options')).toBe('DENY');
      expect(page.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    });
  });
}
