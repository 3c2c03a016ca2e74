import { createECDH, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { sqliteMemory, type Backend } from '../helpers/backends.ts';
import { startTestServer, type TestServer } from '../helpers/test-server.ts';
import { chromiumAvailable, launchChromium } from '../helpers/browser.ts';
import { axeViolations } from '../helpers/axe.ts';
import { ShiftedClock } from '../helpers/shifted-clock.ts';

const SHOTS = process.env.STEADFAST_SCREENSHOTS ? new URL('../../docs/screenshots/', import.meta.url).pathname : undefined;
const PASSWORD = 'ada password 1';

/**
 * Two browsers, as a person has them: a computer signing in, and a phone
 * running the Steadfast Authenticator (a second context: its own storage, its
 * own key). Pairing from the security-info page, then sign-ins approved with
 * the right number, refused on a wrong one, denied, and expired (the server's
 * clock is moved on; the browsers sign with their own).
 */
describe.runIf(chromiumAvailable())('push approval in Chromium: the sign-in page and the authenticator app', () => {
  let backend: Backend;
  let server: TestServer;
  let browser: Browser;
  let computer: BrowserContext;
  let phone: BrowserContext;
  let page: Page;
  let app: Page;
  const clock = new ShiftedClock();

  beforeAll(async () => {
    backend = await sqliteMemory.create();
    server = await startTestServer(backend, { clock });
    const tenant = await server.services.tenants.create('acme', 'Acme');
    // No second factor required yet: Ada signs in with her password and adds the authenticator as her first method.
    await server.services.tenants.setPolicy(tenant, { ...tenant.policy, mfaRequired: false });
    await server.services.users.create(tenant.id, { username: 'ada', passwordHash: await server.services.hasher.hash(PASSWORD) });
    browser = await launchChromium();
    computer = await browser.newContext({ viewport: { width: 1000, height: 800 } });
    phone = await browser.newContext({
      viewport: { width: 390, height: 760 },
      isMobile: true,
      hasTouch: true,
      userAgent: 'Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Mobile Safari/537.36',
    });
    page = await computer.newPage();
    app = await phone.newPage();
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await backend?.cleanup();
  });

  async function signIn(on: Page = page) {
    await on.goto(`${server.url}/t/acme/signin`);
    await on.getByLabel('Username').fill('ada');
    await on.getByLabel('Password').fill(PASSWORD);
    await on.getByRole('button', { name: 'Sign in', exact: true }).click();
  }

  /** The number the waiting sign-in page shows. */
  async function shownNumber(on: Page = page): Promise<string> {
    const number = (await on.locator('.push-number').textContent())!.trim();
    expect(number).toMatch(/^[1-9][0-9]$/);
    return number;
  }

  /** The request as the app shows it, once it arrives on the live stream. */
  async function request() {
    const form = app.locator('form.request');
    await form.waitFor();
    return form;
  }

  it('pairs the app from the security-info page with a QR code and a link', async () => {
    await signIn();
    expect(page.url()).toContain('/t/acme/my/security-info');
    const posts: string[] = [];
    page.on('request', (r) => {
      if (r.method() === 'POST') posts.push(new URL(r.url()).pathname);
    });
    await page.getByLabel('Name for the phone (optional)').fill("Ada's phone");
    await page.getByRole('button', { name: 'Add the Steadfast Authenticator' }).click();
    // Post-redirect-get: the link is shown by a page of its own.
    await page.waitForURL(/\/t\/acme\/my\/security-info\/pair$/);
    await expect(page.getByRole('heading', { level: 1 }).textContent()).resolves.toBe('Add the Steadfast Authenticator');
    await expect(page.locator('.qr svg').count()).resolves.toBe(1);
    const href = (await page.locator('[data-pairing-link]').getAttribute('href'))!;
    // A refresh, and Back then Forward, show the same link and post nothing again.
    await page.reload();
    await expect(page.locator('[data-pairing-link]').getAttribute('href')).resolves.toBe(href);
    await page.goBack();
    await page.waitForURL(/\/t\/acme\/my\/security-info$/);
    await page.goForward();
    await page.waitForURL(/\/t\/acme\/my\/security-info\/pair$/);
    await expect(page.locator('[data-pairing-link]').getAttribute('href')).resolves.toBe(href);
    await expect(page.locator('.qr svg').count()).resolves.toBe(1);
    expect(posts).toEqual(['/t/acme/my/security-info/pair']);
    expect(await axeViolations(page)).toEqual([]);
    // The link is sealed to this session: the same cookie in another session of the same user shows nothing.
    const flash = (await computer.cookies()).find((c) => c.name === 'sf_flash')!;
    expect(flash.httpOnly).toBe(true);
    const other = await browser.newContext();
    try {
      const elsewhere = await other.newPage();
      await signIn(elsewhere);
      await other.addCookies([flash]);
      await elsewhere.goto(`${server.url}/t/acme/my/security-info/pair`);
      expect(elsewhere.url()).toBe(`${server.url}/t/acme/my/security-info`);
      await elsewhere.getByText('That pairing link is no longer shown.', { exact: false }).waitFor();
      expect(await elsewhere.content()).not.toContain(new URL(href).hash);
    } finally {
      await other.close();
    }
    const shown = new URL(href);
    expect(shown.pathname).toBe('/t/acme/authenticator');
    expect(shown.hash).toMatch(/^#pair=[A-Za-z0-9_-]{32}$/);
    // The test server's public URL is not where it listens: the same path and fragment, on the real port.
    const link = `${server.url}${shown.pathname}${shown.hash}`;

    await app.goto(link);
    await app.getByRole('button', { name: 'Pair this device' }).click();
    await app.getByText('Paired as ada at Acme').waitFor();
    // The pairing link leaves the address bar; the key stays in the browser, not extractable.
    expect(app.url()).toBe(`${server.url}/t/acme/authenticator`);
    const stored = await app.evaluate(
      () =>
        new Promise<{ extractable: boolean; type: string; algorithm: string }>((resolve) => {
          const open = indexedDB.open('steadfast-authenticator', 1);
          open.onsuccess = () => {
            const get = open.result.transaction('devices').objectStore('devices').get('acme');
            get.onsuccess = () =>
              resolve({
                extractable: get.result.key.extractable,
                type: get.result.key.type,
                algorithm: (get.result.key.algorithm as EcKeyAlgorithm).namedCurve,
              });
          };
        }),
    );
    expect(stored).toEqual({ extractable: false, type: 'private', algorithm: 'P-256' });

    await page.getByRole('link', { name: 'Done' }).click();
    await expect(page.locator('ul.methods').textContent()).resolves.toContain('Steadfast Authenticator');
    // The link pairs one device once.
    const second = await phone.newPage();
    await second.goto(link);
    await second.getByRole('button', { name: 'Pair this device' }).click();
    await second.getByText(/expired or was used/).waitFor();
    await second.close();
  });

  it('signs in when the app approves with the number the page shows; the page moves on by itself', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await signIn();
    await expect(page.getByRole('heading', { level: 1 }).textContent()).resolves.toBe("Verify it's you");
    const number = await shownNumber();
    if (SHOTS) await page.screenshot({ path: `${SHOTS}push-waiting-desktop.png`, fullPage: true });

    const form = await request();
    await expect(form.locator('[data-field="app"]').textContent()).resolves.toBe('Sign-in page');
    await expect(form.locator('[data-field="ip"]').textContent()).resolves.toBe('127.0.0.1');
    await expect(form.locator('[data-field="browser"]').textContent()).resolves.toMatch(/Chrome on Linux/);
    await form.getByLabel('Enter the number shown on the sign-in screen').fill(number);
    if (SHOTS) await app.screenshot({ path: `${SHOTS}authenticator-request-phone.png`, fullPage: true });
    await form.getByRole('button', { name: 'Approve' }).click();
    await app.getByText('Approved. You can go back to the sign-in.').waitFor();

    await page.waitForURL(/\/t\/acme\/my\/security-info$/);
    await expect(page.locator('header').textContent()).resolves.toContain('Signed in as');
  });

  it('refuses a wrong number: the request is denied, and a new one can be sent', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await signIn();
    const number = await shownNumber();
    const form = await request();
    await form.getByLabel('Enter the number shown on the sign-in screen').fill(number === '99' ? '98' : String(Number(number) + 1));
    await form.getByRole('button', { name: 'Approve' }).click();
    await app.getByText("The number didn't match, so the request was denied.").waitFor();
    // The page notices by itself and says so, with a way to send a new request.
    await page.getByRole('alert').getByText('The request was denied or has expired. 4 attempts left.').waitFor();
    await page.getByRole('button', { name: 'Send a new request to Steadfast Authenticator' }).click();
    const again = await shownNumber();
    const next = await request();
    await next.getByLabel('Enter the number shown on the sign-in screen').fill(again);
    await next.getByRole('button', { name: 'Approve' }).click();
    await page.waitForURL(/\/t\/acme\/my\/security-info$/);
  });

  it('denies, and "this wasn\'t me" reports the sign-in', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await signIn();
    await shownNumber();
    await (await request()).getByRole('button', { name: 'Deny', exact: true }).click();
    await app.getByText('Denied. Nobody signs in with this request.').waitFor();
    await page
      .getByRole('alert')
      .getByText(/The request was denied or has expired/)
      .waitFor();

    await page.getByRole('button', { name: 'Send a new request to Steadfast Authenticator' }).click();
    await shownNumber();
    await (await request()).getByRole('button', { name: "This wasn't me: deny and report it" }).click();
    await app.getByText(/Denied and reported/).waitFor();
    await page
      .getByRole('alert')
      .getByText(/The request was denied or has expired/)
      .waitFor();
    const ada = (await server.services.users.findByUsername((await server.services.tenants.findBySlug('acme'))!.id, 'ada'))!;
    expect(ada.flaggedAt).not.toBeNull();
  });

  it('expires a request after 60 seconds on the server clock', async () => {
    // The earlier tests used up the fatigue limits (three denials pause requests, five an hour): start afresh.
    const acme = (await server.services.tenants.findBySlug('acme'))!;
    const ada = (await server.services.users.findByUsername(acme.id, 'ada'))!;
    for (const counter of ['denials', 'sent']) await server.services.ephemeral.delete(`push:${counter}:${acme.id}:${ada.id}`);
    await page.goto(`${server.url}/t/acme/signin`);
    await signIn();
    await shownNumber();
    await request();
    clock.advance(61_000);
    // The page says so by itself; the app takes the request away (an expired approval is refused: test/integration/push.test.ts).
    await page
      .getByRole('alert')
      .getByText(/The request was denied or has expired/)
      .waitFor();
    await app.getByText('No sign-in requests waiting.').waitFor();
    await expect(app.locator('form.request').count()).resolves.toBe(0);
  });

  it('works without JavaScript on the sign-in page: "I approved it"', async () => {
    const acme = (await server.services.tenants.findBySlug('acme'))!;
    const ada = (await server.services.users.findByUsername(acme.id, 'ada'))!;
    for (const counter of ['denials', 'sent']) await server.services.ephemeral.delete(`push:${counter}:${acme.id}:${ada.id}`);
    const plain = await browser.newContext({ javaScriptEnabled: false });
    const noScript = await plain.newPage();
    try {
      await signIn(noScript);
      const number = await shownNumber(noScript);
      const form = await request();
      await form.getByLabel('Enter the number shown on the sign-in screen').fill(number);
      await form.getByRole('button', { name: 'Approve' }).click();
      await app.getByText('Approved. You can go back to the sign-in.').waitFor();
      await noScript.getByRole('button', { name: 'I approved it' }).click();
      expect(noScript.url()).toMatch(/\/t\/acme\/my\/security-info$/);
    } finally {
      await plain.close();
    }
  });

  it('renews the Web Push subscription from the service worker, signed by the device key; the app sends its own again on open', async () => {
    const acme = (await server.services.tenants.findBySlug('acme'))!;
    const ada = (await server.services.users.findByUsername(acme.id, 'ada'))!;
    const deviceSecret = async () => (await server.services.credentials.listForUser(acme.id, ada.id, 'active')).find((c) => c.type === 'push')!.secret;
    // Headless Chromium grants no notifications: the app paired without a subscription.
    expect(await deviceSecret()).toBeNull();
    const ecdh = createECDH('prime256v1');
    ecdh.generateKeys();
    const renewed = {
      endpoint: `https://fcm.googleapis.com/fcm/send/${randomBytes(12).toString('base64url')}`,
      keys: { p256dh: ecdh.getPublicKey().toString('base64url'), auth: randomBytes(16).toString('base64url') },
    };
    // What the worker's pushsubscriptionchange handler runs, with the push service's new subscription (Chromium never fires the event itself).
    const worker = phone.serviceWorkers().find((w) => w.url().endsWith('/t/acme/authenticator/sw.js')) ?? (await phone.waitForEvent('serviceworker'));
    const renew = (sub: typeof renewed) =>
      worker.evaluate((s) => (self as unknown as { renewSubscription(o: null, n: unknown): Promise<string> }).renewSubscription(null, s), sub);
    await expect(renew(renewed)).resolves.toBe('sent');
    expect(await deviceSecret()).not.toBeNull();
    // The same subscription again is not sent: the device record says the server has it.
    await expect(renew(renewed)).resolves.toBe('unchanged');

    // The app, opened, finds the browser has no subscription (no permission here) and tells the server so, signed.
    await app.reload();
    await app.getByText('Notifications are off: keep this app open to get requests.').waitFor();
    await expect.poll(deviceSecret).toBeNull();
    expect(await axeViolations(app)).toEqual([]);
  });

  it('holds a TOTP account added from the authenticator set-up page, and its code confirms the set-up', async () => {
    const acme = (await server.services.tenants.findBySlug('acme'))!;
    const ada = (await server.services.users.findByUsername(acme.id, 'ada'))!;
    for (const counter of ['denials', 'sent']) await server.services.ephemeral.delete(`push:${counter}:${acme.id}:${ada.id}`);
    // The earlier tests moved the server's clock on; codes are of the browsers' time.
    clock.reset();
    await signIn();
    const number = await shownNumber();
    const form = await request();
    await form.getByLabel('Enter the number shown on the sign-in screen').fill(number);
    await form.getByRole('button', { name: 'Approve' }).click();
    await page.waitForURL(/\/t\/acme\/my\/security-info$/);

    await page.getByRole('button', { name: 'Add authenticator app' }).click();
    await page.waitForURL(/\/t\/acme\/my\/security-info\/totp\/[^/]+$/);
    const href = (await page.getByRole('link', { name: 'Add to Steadfast Authenticator' }).getAttribute('href'))!;
    expect(href).toMatch(/^\/t\/acme\/authenticator#otpauth=otpauth%3A%2F%2Ftotp%2F/);

    await app.goto(`${server.url}${href}`);
    // The app asks before it adds the account; the key has left the address bar.
    await app.getByText('Add this account?').waitFor();
    expect(app.url()).toBe(`${server.url}/t/acme/authenticator`);
    await app.getByRole('button', { name: 'Add account', exact: true }).first().click();
    await app.getByText(/^Account added: /).waitFor();
    const entry = app.locator('[data-code-list] li').filter({ hasText: 'ada' });
    await expect.poll(() => entry.locator('[data-code]').textContent()).toMatch(/^[0-9]{3} [0-9]{3}$/);
    await expect.poll(() => entry.textContent()).toMatch(/Changes in [0-9]+ s/);
    if (SHOTS) await app.screenshot({ path: `${SHOTS}authenticator-codes-phone.png`, fullPage: true });
    expect(await axeViolations(app)).toEqual([]);

    // The key is kept encrypted under a non-extractable AES-GCM key: IndexedDB holds no readable secret.
    const secretOnPage = (await page.locator('#totp-key').getAttribute('data-copy-text'))!;
    const kept = await app.evaluate(
      () =>
        new Promise<{ vault: { extractable: boolean; algorithm: string }; stored: string }>((resolve) => {
          const open = indexedDB.open('steadfast-authenticator', 1);
          open.onsuccess = () => {
            const store = open.result.transaction('devices').objectStore('devices');
            const vault = store.get('acme:totp-vault');
            const accounts = store.get('acme:totp-accounts');
            accounts.onsuccess = () =>
              resolve({
                vault: { extractable: vault.result.extractable, algorithm: vault.result.algorithm.name },
                stored: JSON.stringify(accounts.result, (_k, v) => (v instanceof Uint8Array ? Array.from(v) : v)),
              });
          };
        }),
    );
    expect(kept.vault).toEqual({ extractable: false, algorithm: 'AES-GCM' });
    expect(kept.stored).not.toContain(secretOnPage);

    // The app's code confirms the set-up (read just before it is typed, the server's clock set to now).
    const code = (await entry.locator('[data-code]').textContent())!.replace(/\s/g, '');
    clock.reset();
    await page.getByLabel('Code from the app').fill(code);
    await page.getByRole('button', { name: 'Confirm' }).click();
    await page.getByText('Authenticator app added.').waitFor();

    // Removing the account from the app asks first, then forgets it.
    await entry.getByRole('button', { name: 'Remove Acme: ada' }).click();
    await entry.getByRole('button', { name: 'Remove Acme: ada for good' }).click();
    await app.getByText('Account removed: Acme: ada.').waitFor();
    await expect(app.locator('[data-code-list] li').count()).resolves.toBe(0);
    await app.getByText(/^No accounts yet/).waitFor();
  });
});
