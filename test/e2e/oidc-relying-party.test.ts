import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import * as oidc from 'openid-client';
import { Secret } from 'otpauth';
import { sqliteMemory, type Backend } from '../helpers/backends.ts';
import { api, startTestServer, type TestServer } from '../helpers/test-server.ts';
import { totpCode } from '../helpers/totp.ts';
import { freePort } from '../helpers/free-port.ts';
import { chromiumAvailable, launchChromium } from '../helpers/browser.ts';
import { adminPersonSession } from '../helpers/admin-person.ts';
import { secretContext } from '../../src/methods/credentials.ts';
import { ManualClock } from '../../src/clock.ts';

/**
 * A relying party built with openid-client runs authorization code + PKCE
 * against the tenant's issuer while Chromium fills Steadfast's own pages
 * (password, then a TOTP code). The ID token is validated by openid-client
 * and its amr and acr checked; refresh tokens rotate; userinfo answers;
 * RP-initiated logout ends the Steadfast session; prompt=login asks again; a
 * public client without PKCE is refused; a third-party app asks for consent.
 */
describe.runIf(chromiumAvailable())('OpenID Connect with a relying party and Chromium', () => {
  let backend: Backend;
  let server: TestServer;
  let browser: Browser;
  let page: Page;
  let rp: Server;
  let callbackBase = '';
  const callbacks: URL[] = [];
  let issuer = '';
  const totp = new Secret({ size: 20 }).base32;
  // Each sign-in needs a TOTP step of its own: Steadfast's clock moves on by one step per sign-in.
  const clock = new ManualClock(Date.now());
  const nextCode = () => {
    clock.advance(30_000);
    return totpCode(totp, clock.now());
  };

  /** Waits for the browser to come back to the relying party's callback, and gives that URL. */
  const callbackAfter = async (count: number): Promise<URL> => {
    for (let i = 0; i < 200 && callbacks.length <= count; i++) await new Promise((r) => setTimeout(r, 25));
    expect(callbacks.length, `the browser is at ${page.url()}: ${(await page.locator('body').textContent())?.slice(0, 300)}`).toBeGreaterThan(count);
    return callbacks[count]!;
  };

  const signInOnPages = async () => {
    await page.getByLabel('Username').fill('uma');
    await page.getByLabel('Password').fill('uma password 123');
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.getByLabel('Authenticator app code').fill(nextCode());
    await page.getByRole('button', { name: 'Verify' }).click();
  };

  const registerApp = async (body: Record<string, unknown>) => {
    // Apps are a person's to make: an administrator's session, not an admin token.
    const admin = await adminPersonSession(server.services, 'acme');
    const res = await api(server.url, 'POST', '/api/v1/admin/apps', { kind: 'oidc', redirectUris: [`${callbackBase}/callback`], ...body }, admin);
    expect(res.status).toBe(201);
    return res.body as { clientId: string; clientSecret?: string };
  };

  beforeAll(async () => {
    const port = await freePort();
    issuer = `http://127.0.0.1:${port}/t/acme`;
    backend = await sqliteMemory.create({ PORT: String(port), STEADFAST_PUBLIC_URL: `http://127.0.0.1:${port}` });
    server = await startTestServer(backend, { clock });
    const { services } = server;
    const tenant = await services.tenants.create('acme', 'Acme');
    const uma = await services.users.create(tenant.id, {
      username: 'uma',
      email: 'uma@acme.example',
      passwordHash: await services.hasher.hash('uma password 123'),
    });
    await services.credentials.insert({
      id: 'uma-totp',
      tenantId: tenant.id,
      userId: uma.id,
      type: 'totp',
      label: 'Phone',
      state: 'active',
      secret: services.keyRing.seal(totp, secretContext('totp', 'uma-totp')),
    });

    rp = createServer((req, res) => {
      callbacks.push(new URL(req.url!, callbackBase));
      res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>RP</title><h1>Back at the app</h1>');
    });
    await new Promise<void>((resolve) => rp.listen(0, '127.0.0.1', resolve));
    const address = rp.address();
    callbackBase = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
    browser = await launchChromium();
    page = await browser.newPage();
    page.setDefaultTimeout(10_000);
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await backend?.cleanup();
    await new Promise((resolve) => rp?.close(resolve));
  });

  let config: oidc.Configuration;
  let tokens: Awaited<ReturnType<typeof oidc.authorizationCodeGrant>>;

  it('signs in through the hosted pages with password and TOTP, and issues an ID token with amr and acr', async () => {
    const app = await registerApp({ name: 'Wiki', firstParty: true });
    config = await oidc.discovery(new URL(issuer), app.clientId, undefined, oidc.ClientSecretBasic(app.clientSecret), {
      execute: [oidc.allowInsecureRequests],
    });
    expect(config.serverMetadata()).toMatchObject({
      issuer,
      code_challenge_methods_supported: ['S256'],
      acr_values_supported: expect.arrayContaining(['urn:steadfast:acr:mfa']),
    });

    const verifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: `${callbackBase}/callback`,
      scope: 'openid profile email offline_access',
      // Refresh tokens only for offline_access that was consented to (a first-party app's consent is the administrator's).
      prompt: 'consent',
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
    });
    const before = callbacks.length;
    await page.goto(url.href);
    expect(page.url()).toContain('/t/acme/signin?next=oidc');
    await signInOnPages();
    const callback = await callbackAfter(before);
    await expect(page.getByRole('heading', { level: 1 }).textContent()).resolves.toBe('Back at the app');

    tokens = await oidc.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: state });
    const claims = tokens.claims()!;
    expect(claims).toMatchObject({ iss: issuer, aud: app.clientId, preferred_username: 'uma', email: 'uma@acme.example', acr: 'urn:steadfast:acr:mfa' });
    expect(claims.amr).toEqual(expect.arrayContaining(['pwd', 'otp', 'mfa']));
    expect(tokens.refresh_token).toBeTruthy();
    const userinfo = await oidc.fetchUserInfo(config, tokens.access_token, claims.sub);
    expect(userinfo).toMatchObject({ sub: claims.sub, preferred_username: 'uma' });
  });

  it('rotates refresh tokens, and refuses a used one', async () => {
    const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
    expect(refreshed.refresh_token).toBeTruthy();
    expect(refreshed.refresh_token).not.toBe(tokens.refresh_token);
    expect(refreshed.claims()!.sub).toBe(tokens.claims()!.sub);
    await expect(oidc.refreshTokenGrant(config, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
  });

  it('asks again for prompt=login even with a session', async () => {
    const verifier = oidc.randomPKCECodeVerifier();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: `${callbackBase}/callback`,
      scope: 'openid',
      prompt: 'login',
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
    });
    const before = callbacks.length;
    await page.goto(url.href);
    expect(page.url(), (await page.locator('body').textContent()) ?? '').toContain('fresh=1');
    expect(await page.getByLabel('Username').inputValue()).toBe('uma');
    await signInOnPages();
    const callback = await callbackAfter(before);
    const fresh = await oidc.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier });
    expect(fresh.claims()!.auth_time).toBeGreaterThan(tokens.claims()!.auth_time!);
  });

  it('ends the app session and the Steadfast session with RP-initiated logout', async () => {
    const logout = oidc.buildEndSessionUrl(config, { id_token_hint: tokens.id_token!, post_logout_redirect_uri: `${callbackBase}/` });
    const before = callbacks.length;
    await page.goto(logout.href);
    await page.getByRole('button', { name: 'Yes, sign me out' }).click();
    const back = await callbackAfter(before);
    expect(back.pathname).toBe('/');
    const mine = await page.goto(`${server.url}/t/acme/my/security-info`);
    expect(mine!.url()).toContain('/t/acme/signin');
  });

  it('takes a new user through registering a first method and back to the app', async () => {
    await server.services.admin.createUser((await server.services.tenants.findBySlug('acme'))!, 'cli', { username: 'neo', password: 'neo password 123' });
    const verifier = oidc.randomPKCECodeVerifier();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: `${callbackBase}/callback`,
      scope: 'openid profile',
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
    });
    const before = callbacks.length;
    await page.goto(url.href);
    await page.getByLabel('Username').fill('neo');
    await page.getByLabel('Password').fill('neo password 123');
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    expect(page.url()).toContain('/t/acme/my/security-info');
    await page.getByRole('button', { name: 'Add authenticator app' }).click();
    const secret = ((await page.locator('code.secret').textContent()) ?? '').replace(/\s/g, '');
    await page.getByLabel('Code from the app').fill(totpCode(secret, clock.now()));
    await page.getByRole('button', { name: 'Confirm' }).click();
    await page.getByRole('link', { name: 'Continue to the app' }).click();
    const callback = await callbackAfter(before);
    const claims = (await oidc.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier })).claims()!;
    expect(claims).toMatchObject({ preferred_username: 'neo', acr: 'urn:steadfast:acr:mfa' });
    expect(claims.amr).toEqual(expect.arrayContaining(['pwd', 'otp', 'mfa']));
    // Uma signs in again in the tests that follow.
    await page.context().clearCookies();
  });

  it('refuses a public client that sends no PKCE challenge', async () => {
    const app = await registerApp({ name: 'SPA', public: true, firstParty: true });
    expect(app.clientSecret).toBeUndefined();
    const spa = await oidc.discovery(new URL(issuer), app.clientId, undefined, oidc.None(), { execute: [oidc.allowInsecureRequests] });
    const before = callbacks.length;
    await page.goto(oidc.buildAuthorizationUrl(spa, { redirect_uri: `${callbackBase}/callback`, scope: 'openid' }).href);
    const refused = await callbackAfter(before);
    expect(refused.searchParams.get('error')).toBe('invalid_request');
    expect(refused.searchParams.get('error_description')).toMatch(/PKCE/);
  });

  it('shows a third-party app a consent page, and demands a second factor for acr_values', async () => {
    const app = await registerApp({ name: 'Partner Portal' });
    const partner = await oidc.discovery(new URL(issuer), app.clientId, undefined, oidc.ClientSecretBasic(app.clientSecret), {
      execute: [oidc.allowInsecureRequests],
    });
    const verifier = oidc.randomPKCECodeVerifier();
    const url = oidc.buildAuthorizationUrl(partner, {
      redirect_uri: `${callbackBase}/callback`,
      scope: 'openid email',
      acr_values: 'urn:steadfast:acr:mfa',
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
    });
    const before = callbacks.length;
    await page.goto(url.href);
    await signInOnPages();
    // The sign-in's last page ("Signing you in…") moves on by itself: wait for the consent page, not for any heading.
    await page.getByRole('heading', { level: 1, name: 'Allow Partner Portal to use your Acme account?' }).waitFor();
    await expect(page.locator('main').textContent()).resolves.toContain('See your email address');
    await page.getByRole('button', { name: 'Allow', exact: true }).click();
    const callback = await callbackAfter(before);
    const granted = await oidc.authorizationCodeGrant(partner, callback, { pkceCodeVerifier: verifier });
    expect(granted.claims()).toMatchObject({ acr: 'urn:steadfast:acr:mfa', email: 'uma@acme.example' });
  });
});
