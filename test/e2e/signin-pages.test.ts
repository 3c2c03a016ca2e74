import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { sqliteMemory, type Backend } from '../helpers/backends.ts';
import { startTestServer, type TestServer } from '../helpers/test-server.ts';
import { totpCode } from '../helpers/totp.ts';
import { chromiumAvailable, launchChromium } from '../helpers/browser.ts';

/**
 * A person with a browser: first sign-in, set up an authenticator app from the
 * QR page, sign out, sign in with password and code. Fields and buttons are
 * found by their accessible names, as a screen reader would.
 */
describe.runIf(chromiumAvailable())('sign-in and set-up pages in Chromium', () => {
  let backend: Backend;
  let server: TestServer;
  let browser: Browser;
  let page: Page;
  const cspViolations: string[] = [];
  let secret = '';

  beforeAll(async () => {
    backend = await sqliteMemory.create();
    server = await startTestServer(backend);
    const tenant = await server.services.tenants.create('web', 'Web Co');
    await server.services.users.create(tenant.id, { username: 'wendy', passwordHash: await server.services.hasher.hash('wendy password 1') });
    browser = await launchChromium();
    page = await browser.newPage();
    page.on('console', (msg) => {
      if (/Content Security Policy/i.test(msg.text())) cspViolations.push(msg.text());
    });
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await backend?.cleanup();
  });

  async function signInWithPassword(password: string) {
    await page.goto(`${server.url}/t/web/signin`);
    await page.getByLabel('Username').fill('wendy');
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  }

  it('shows a clear error for a wrong password, keeping the username', async () => {
    await signInWithPassword('not the password');
    await expect(page.getByRole('alert').textContent()).resolves.toContain('The username or password is incorrect');
    expect(await page.getByLabel('Username').inputValue()).toBe('wendy');
  });

  it('asks a new user to add an authenticator app and sets it up from the QR page', async () => {
    await signInWithPassword('wendy password 1');
    expect(page.url()).toContain('/t/web/my/security-info');
    await expect(page.getByRole('status').first().textContent()).resolves.toContain('requires a second sign-in method');
    await page.getByLabel('Name for the authenticator app (optional)').fill('My phone');
    await page.getByRole('button', { name: 'Add authenticator app' }).click();
    expect(await page.getByRole('img', { name: 'QR code for your authenticator app' }).locator('svg').count()).toBe(1);
    secret = ((await page.locator('code.secret').textContent()) ?? '').replace(/\s/g, '');
    expect(secret).toMatch(/^[A-Z2-7]{32}$/);

    await page.getByLabel('Code from the app').fill('000000' === totpCode(secret, Date.now()) ? '111111' : '000000');
    await page.getByRole('button', { name: 'Confirm' }).click();
    await expect(page.getByRole('alert').textContent()).resolves.toContain("That code didn't work");

    await page.getByLabel('Code from the app').fill(totpCode(secret, Date.now()));
    await page.getByRole('button', { name: 'Confirm' }).click();
    await expect(page.getByRole('status').first().textContent()).resolves.toContain('Authenticator app added');
    await expect(page.locator('ul.methods').textContent()).resolves.toContain('My phone');
  });

  it('creates recovery codes, shown once', async () => {
    await page.getByRole('button', { name: 'Create recovery codes' }).click();
    expect(await page.locator('ol.codes li').count()).toBe(10);
    await page.getByRole('link', { name: 'I have saved my codes' }).click();
    await expect(page.locator('ul.methods').textContent()).resolves.toContain('10 codes left');
  });

  it('signs out, then signs in with password and the app code', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    expect(page.url()).toContain('/t/web/signin');
    await signInWithPassword('wendy password 1');
    await expect(page.getByRole('heading', { level: 1 }).textContent()).resolves.toBe("Verify it's you");
    expect(await page.getByRole('button', { name: 'Use Recovery codes' }).count()).toBe(1);
    // The code of the next time step: the one used at set-up is spent.
    await page.getByLabel('Authenticator app code').fill(totpCode(secret, Date.now() + 30_000));
    await page.getByRole('button', { name: 'Verify' }).click();
    expect(page.url()).toContain('/t/web/my/security-info');
    await page.getByRole('link', { name: 'See your recent sign-ins' }).click();
    await expect(page.locator('tbody').textContent()).resolves.toContain('Succeeded');
  });

  it('serves strict security headers and breaks no CSP rule', async () => {
    const res = await page.goto(`${server.url}/t/web/signin`);
    const csp = res!.headers()['content-security-policy'] ?? '';
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(res!.headers()['x-content-type-options']).toBe('nosniff');
    expect(cspViolations).toEqual([]);
  });

  it('refuses a form posted without its CSRF token', async () => {
    const res = await page.request.post(`${server.url}/t/web/signin`, { form: { username: 'wendy', password: 'wendy password 1' } });
    expect(res.status()).toBe(403);
    expect((await res.json()).type).toMatch(/\/csrf-failed$/);
  });
});
