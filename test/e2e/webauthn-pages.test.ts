import { mkdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, BrowserContext, CDPSession, Page } from 'playwright-core';
import { sqliteMemory, type Backend } from '../helpers/backends.ts';
import { startTestServer, type TestServer } from '../helpers/test-server.ts';
import { chromiumAvailable, launchChromium } from '../helpers/browser.ts';
import { freePort } from '../helpers/free-port.ts';

/**
 * Passkeys and security keys in real Chromium, with DevTools' virtual
 * authenticators standing in for a phone's passkey store and a USB key.
 * Fields and buttons are found by their accessible names.
 */
const SHOTS = process.env.STEADFAST_SCREENSHOTS ? new URL('../../docs/screenshots/', import.meta.url).pathname : undefined;

describe.runIf(chromiumAvailable())('passkeys, security keys and the self-service pages in Chromium', () => {
  let backend: Backend;
  let server: TestServer;
  let browser: Browser;
  let base = '';
  const password = 'pat password 123';

  beforeAll(async () => {
    const port = await freePort();
    // WebAuthn needs a real host name: localhost is a secure context, an IP address is no valid RP ID.
    backend = await sqliteMemory.create({ PORT: String(port), STEADFAST_PUBLIC_URL: `http://localhost:${port}` });
    server = await startTestServer(backend);
    base = `http://localhost:${port}`;
    const tenant = await server.services.tenants.create('keys', 'Keys Inc');
    await server.services.users.create(tenant.id, { username: 'pat', passwordHash: await server.services.hasher.hash(password) });
    browser = await launchChromium();
    if (SHOTS) mkdirSync(SHOTS, { recursive: true });
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await backend?.cleanup();
  });

  async function withPasskeyStore(context: BrowserContext, page: Page): Promise<{ cdp: CDPSession; authenticatorId: string }> {
    const cdp = await context.newCDPSession(page);
    await cdp.send('WebAuthn.enable');
    const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
      options: {
        protocol: 'ctap2',
        transport: 'internal',
        hasResidentKey: true,
        hasUserVerification: true,
        isUserVerified: true,
        automaticPresenceSimulation: true,
      },
    });
    return { cdp, authenticatorId };
  }

  async function signInWithPassword(page: Page) {
    await page.goto(`${base}/t/keys/signin`);
    await page.getByLabel('Username').fill('pat');
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  }

  async function shoot(page: Page, name: string) {
    if (!SHOTS) return;
    await page.setViewportSize({ width: 1100, height: 800 });
    await page.screenshot({ path: `${SHOTS}${name}-desktop.png`, fullPage: true });
    await page.setViewportSize({ width: 360, height: 740 });
    await page.screenshot({ path: `${SHOTS}${name}-phone.png`, fullPage: true });
    await page.setViewportSize({ width: 1100, height: 800 });
  }

  let phone: { context: BrowserContext; page: Page; cdp: CDPSession; authenticatorId: string };
  let laptop: { context: BrowserContext; page: Page };

  it('registers a passkey from the security-info page', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    phone = { context, page, ...(await withPasskeyStore(context, page)) };
    await page.goto(`${base}/t/keys/signin`);
    await shoot(page, 'signin');
    await signInWithPassword(page);
    expect(page.url()).toContain('/t/keys/my/security-info');
    await page.getByLabel('Name for the passkey (optional)').fill('Phone passkey');
    await page.getByRole('button', { name: 'Add a passkey' }).click();
    // The page posts and is redirected back to the same address, so wait for the outcome, not the URL.
    await page.getByRole('status').filter({ hasText: 'Passkey added' }).waitFor();
    await expect(page.locator('ul.methods').textContent()).resolves.toContain('Phone passkey');
    const me = await server.services.users.findByUsername((await server.services.tenants.findBySlug('keys'))!.id, 'pat');
    const methods = await server.services.credentials.listForUser(me!.tenantId, me!.id, 'active');
    expect(methods).toEqual([
      expect.objectContaining({
        type: 'webauthn',
        label: 'Phone passkey',
        isDefault: true,
        publicData: expect.objectContaining({ kind: 'passkey', counter: expect.any(Number) }),
      }),
    ]);
    await shoot(page, 'security-info');
  });

  it("signs out, then signs in with the passkey alone from the username field's autofill", async () => {
    const { page } = phone;
    await page.getByRole('button', { name: 'Sign out' }).click();
    // The sign-in page asks for passkeys in autofill mode; the virtual authenticator answers at once.
    await page.waitForURL(`${base}/t/keys/my/security-info`);
    await expect(page.locator('header').textContent()).resolves.toContain('Signed in as pat');
  });

  it('signs in with the "Sign in with a passkey" button where the browser has no passkey autofill', async () => {
    const { credentials } = await phone.cdp.send('WebAuthn.getCredentials', { authenticatorId: phone.authenticatorId });
    const context = await browser.newContext();
    // A browser without conditional mediation: only the button can start a passkey sign-in.
    await context.addInitScript(() => {
      if (window.PublicKeyCredential) window.PublicKeyCredential.isConditionalMediationAvailable = async () => false;
    });
    const page = await context.newPage();
    const { cdp, authenticatorId } = await withPasskeyStore(context, page);
    await cdp.send('WebAuthn.addCredential', { authenticatorId, credential: credentials[0]! });
    await page.goto(`${base}/t/keys/signin`);
    await page.getByRole('button', { name: 'Sign in with a passkey' }).click();
    await page.waitForURL(`${base}/t/keys/my/security-info`);
    await expect(page.locator('header').textContent()).resolves.toContain('Signed in as pat');
    await context.close();
  });

  it('adds a security key, then uses it as the second factor after a password on another device', async () => {
    const { page } = phone;
    // A USB security key plugged into the same browser for registration.
    const cdp = await phone.context.newCDPSession(page);
    await cdp.send('WebAuthn.enable');
    const key = await cdp.send('WebAuthn.addVirtualAuthenticator', {
      options: { protocol: 'ctap2', transport: 'usb', hasResidentKey: false, hasUserVerification: false, automaticPresenceSimulation: true },
    });
    await page.getByLabel('Name for the security key (optional)').fill('Blue key');
    await page.getByRole('button', { name: 'Add a security key' }).click();
    await page.getByRole('status').filter({ hasText: 'Security key added' }).waitFor();
    await expect(page.locator('ul.methods').textContent()).resolves.toContain('Blue key');
    const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId: key.authenticatorId });
    expect(credentials).toHaveLength(1);

    // The laptop has no passkey; the same key is moved over to it.
    const context = await browser.newContext();
    const laptopPage = await context.newPage();
    laptop = { context, page: laptopPage };
    const laptopCdp = await context.newCDPSession(laptopPage);
    await laptopCdp.send('WebAuthn.enable');
    const moved = await laptopCdp.send('WebAuthn.addVirtualAuthenticator', {
      options: { protocol: 'ctap2', transport: 'usb', hasResidentKey: false, hasUserVerification: false, automaticPresenceSimulation: true },
    });
    await laptopCdp.send('WebAuthn.addCredential', { authenticatorId: moved.authenticatorId, credential: credentials[0]! });
    await signInWithPassword(laptopPage);
    await expect(laptopPage.getByRole('heading', { level: 1 }).textContent()).resolves.toBe("Verify it's you");
    await shoot(laptopPage, 'second-factor');
    await laptopPage.getByRole('button', { name: 'Use passkey or security key' }).click();
    await laptopPage.waitForURL(`${base}/t/keys/my/security-info`);
  });

  it('shows those sign-ins on my sign-ins, and "This wasn\'t me" ends the other session', async () => {
    const { page } = laptop;
    await page.getByRole('link', { name: 'See your recent sign-ins' }).click();
    const body = (await page.locator('tbody').textContent()) ?? '';
    expect(body).toContain('passkey');
    expect(body).toContain('security key');
    expect(body).toMatch(/Chrom\w+ \d+ on Linux/);
    await shoot(page, 'my-signins');

    // The phone's session is alive before the report...
    await phone.page.goto(`${base}/t/keys/my/security-info`);
    expect(phone.page.url()).toContain('/my/security-info');
    // The laptop's own sign-in is marked as this browser and has no report button.
    await expect(page.locator('tr.current').first().textContent()).resolves.toContain('This is you');
    await page.getByRole('link', { name: "This wasn't me" }).first().click();
    await expect(page.getByRole('heading', { level: 1 }).textContent()).resolves.toBe('Report this sign-in as not you?');
    await page.getByRole('button', { name: 'Report it and sign out everywhere else' }).click();
    await expect(page.getByRole('status').first().textContent()).resolves.toMatch(/signed you out everywhere else \(\d+ other session/);
    expect(await page.getByLabel('New password').count()).toBe(1);
    // ...and gone after it.
    await phone.page.goto(`${base}/t/keys/my/security-info`);
    expect(phone.page.url()).toContain('/t/keys/signin');
    const user = await server.services.users.findByUsername((await server.services.tenants.findBySlug('keys'))!.id, 'pat');
    expect(user!.flaggedAt).not.toBeNull();
  });

  it('changes the password from the "secure your account" page', async () => {
    const { page } = laptop;
    await page.getByLabel('Current password').fill(password);
    await page.getByLabel('New password').fill('a brand new passphrase');
    await page.getByRole('button', { name: 'Change password' }).click();
    await expect(page.getByRole('status').first().textContent()).resolves.toContain('Your password was changed');
  });
});
