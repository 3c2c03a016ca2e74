import { mkdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { sqliteMemory, type Backend } from '../helpers/backends.ts';
import { startTestServer, type TestServer } from '../helpers/test-server.ts';
import { totpCode } from '../helpers/totp.ts';
import { chromiumAvailable, launchChromium } from '../helpers/browser.ts';
import { axeViolations, WIDTHS } from '../helpers/axe.ts';
import { ManualClock } from '../../src/clock.ts';

const SHOTS = process.env.STEADFAST_SCREENSHOTS ? new URL('../../docs/screenshots/', import.meta.url).pathname : undefined;

/**
 * A new hire's first day in Chromium, as the issue tells it: created without a
 * password, handed a Temporary Access Pass, they sign in with it, add an
 * authenticator app, set a first password, make recovery codes, sign out and
 * sign in again with the password and the app. On the way: Back and refresh on
 * the QR and recovery-code pages, the code that just confirmed the app typed
 * again at sign-in, and a confirmation step. axe checks every page state the
 * test reaches, at a desktop and a phone width, and fails on any violation.
 * The server's clock is a manual one: TOTP steps move only when the test says.
 */
// axe runs twice for every page state (two widths): minutes, not seconds, on a busy machine.
describe.runIf(chromiumAvailable())('the first day of a new hire in Chromium', { timeout: 240_000 }, () => {
  let backend: Backend;
  let server: TestServer;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let pass = '';
  let secret = '';
  const password = 'a first day passphrase';
  // Two seconds into a 30-second TOTP step.
  const clock = new ManualClock(Math.floor(Date.now() / 30_000) * 30_000 + 2_000);
  const violations: string[] = [];
  const dialogs: string[] = [];

  /** axe on the page as it is (both widths), and the screenshots of the onboarding. */
  async function check(state: string, shot?: string) {
    for (const v of await axeViolations(page)) violations.push(`${state}: ${v}`);
    if (SHOTS && shot) {
      for (const [name, size] of Object.entries(WIDTHS)) {
        await page.setViewportSize(size);
        await page.screenshot({ path: `${SHOTS}${shot}-${name}.png`, fullPage: true });
      }
      await page.setViewportSize(WIDTHS.desktop);
    }
  }

  beforeAll(async () => {
    backend = await sqliteMemory.create();
    server = await startTestServer(backend, { clock });
    const tenant = await server.services.tenants.create('first', 'First Day Ltd');
    const user = await server.services.users.create(tenant.id, { username: 'nina' });
    pass = (await server.services.passes.issue(tenant, user.id, { minutes: 60, oneTime: true }, 'cli')).code;
    browser = await launchChromium();
    context = await browser.newContext({ viewport: WIDTHS.desktop });
    page = await context.newPage();
    page.setDefaultTimeout(10_000);
    // A "Confirm Form Resubmission" would come as a dialog or an error page; neither may happen.
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    if (SHOTS) mkdirSync(SHOTS, { recursive: true });
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await backend?.cleanup();
  });

  it('signs in with the pass and is asked for a method of their own', async () => {
    await page.goto(`${server.url}/t/first/signin`);
    await check('sign-in page');
    await page.getByRole('link', { name: 'Sign in with a Temporary Access Pass' }).click();
    await page.getByLabel('Username').fill('nina');
    await page.getByLabel('Temporary Access Pass').fill(pass);
    await check('pass page, filled in', 'onboarding-1-pass');
    await page.getByRole('button', { name: 'Sign in' }).click();
    expect(page.url()).toMatch(/\/t\/first\/my\/security-info$/);
    await expect(page.getByRole('heading', { name: /Step 2 of 3/ }).count()).resolves.toBe(1);
    await check('security info, registering', 'onboarding-2-add-method');
  });

  it('sets up an authenticator app: the QR page survives refresh and Back', async () => {
    await page.getByRole('button', { name: 'Add authenticator app' }).click();
    expect(page.url()).toMatch(/\/my\/security-info\/totp\/[^/]+$/);
    secret = (await page.locator('code.secret').getAttribute('data-copy-text')) ?? '';
    expect(secret).toMatch(/^[A-Z2-7]{32}$/);
    // On a phone: a link that opens the authenticator app, and the key in groups that never break inside.
    expect(await page.getByRole('link', { name: 'Open in your authenticator app' }).getAttribute('href')).toMatch(/^otpauth:\/\/totp\//);
    expect(await page.locator('code.secret .group').count()).toBe(8);
    await check('QR page', 'onboarding-3-qr');

    // A refresh shows the same key: no new one is made behind the user's back.
    await page.reload();
    expect(await page.locator('code.secret').getAttribute('data-copy-text')).toBe(secret);

    // Five digits: the error sits at the field, which keeps what was typed and takes the focus.
    await page.getByLabel('Code from the app').fill('12345');
    await page.getByRole('button', { name: 'Confirm' }).click();
    const field = page.getByLabel('Code from the app');
    expect(await field.getAttribute('aria-invalid')).toBe('true');
    expect(await field.inputValue()).toBe('12345');
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('code');
    await expect(page.locator(`#${(await field.getAttribute('aria-describedby'))!.split(' ').pop()}`).textContent()).resolves.toContain('6 digits');
    expect(await page.locator('code.secret').getAttribute('data-copy-text')).toBe(secret);
    await check('QR page with an error');

    await field.fill(totpCode(secret, clock.now()));
    await page.getByRole('button', { name: 'Confirm' }).click();
    expect(page.url()).toMatch(/\/my\/security-info$/);
    await expect(page.getByRole('status').first().textContent()).resolves.toContain('Authenticator app added');
    await expect(page.getByRole('heading', { name: /Step 3 of 3: a way back in/ }).count()).resolves.toBe(1);
    await check('security info, a way back in still to choose', 'onboarding-4-way-back-in');

    // Back returns to pages, never to a form post: no resubmission, and the finished set-up says so.
    await page.goBack();
    await expect(page.getByRole('heading', { level: 1 }).textContent()).resolves.toBe('Security info');
    await expect(page.getByRole('alert').first().textContent()).resolves.toContain('That set-up has finished');
    expect(dialogs).toEqual([]);
  });

  it('sets a first password, with only a new password to type', async () => {
    await page.getByRole('link', { name: 'set a password' }).first().click();
    await expect(page.getByRole('heading', { level: 1 }).textContent()).resolves.toBe('Set a password');
    expect(await page.getByLabel('Current password').count()).toBe(0);
    await page.getByLabel('Password').fill('short');
    await page.getByRole('button', { name: 'Set password' }).click();
    expect(await page.getByLabel('Password').getAttribute('aria-invalid')).toBe('true');
    await check('set a password, with an error');
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Set password' }).click();
    await expect(page.getByRole('status').first().textContent()).resolves.toContain('Password set');
    await expect(page.getByRole('link', { name: 'Change your password' }).count()).resolves.toBe(1);
    await check('security info, all set', 'onboarding-5-done');
    // Not an administrator: no way to the console on her pages.
    expect(await page.getByRole('link', { name: 'Admin console' }).count()).toBe(0);
  });

  it('makes recovery codes that a refresh never replaces, and asks before replacing them', async () => {
    await page.getByRole('button', { name: 'Create recovery codes' }).click();
    expect(page.url()).toMatch(/\/my\/security-info\/recovery-codes$/);
    const codes = await page.locator('ol.codes').textContent();
    expect(await page.locator('ol.codes li').count()).toBe(10);
    await check('new recovery codes');
    await page.reload();
    expect(await page.locator('ol.codes').textContent()).toBe(codes);
    await page.goBack();
    await page.goForward();
    expect(await page.locator('ol.codes').textContent()).toBe(codes);
    expect(dialogs).toEqual([]);
    await page.getByRole('link', { name: 'I have saved my codes' }).click();

    // Replacing: a page says what happens to the old codes, and "keep" changes nothing.
    await page.getByRole('link', { name: 'Replace recovery codes' }).click();
    await expect(page.getByRole('heading', { level: 1 }).textContent()).resolves.toBe('Replace your recovery codes?');
    await expect(page.locator('main').textContent()).resolves.toContain('10 unused codes stop working');
    await check('confirm replacing recovery codes');
    await page.getByRole('link', { name: 'Keep my current codes' }).click();
    await expect(page.locator('ul.methods').textContent()).resolves.toContain('10 codes left');
  });

  it('asks before removing a method, and marks this sign-in as this browser', async () => {
    await page.getByRole('link', { name: /^Remove Recovery codes/ }).click();
    await expect(page.getByRole('heading', { level: 1 }).textContent()).resolves.toMatch(/^Remove Recovery codes/);
    await expect(page.locator('main').textContent()).resolves.toContain('You will still have: Authenticator app');
    await check('confirm removing a method');
    await page.getByRole('link', { name: 'Keep it' }).click();
    await page.getByRole('link', { name: 'My sign-ins' }).first().click();
    await expect(page.locator('tr.current').first().textContent()).resolves.toContain('This is you');
    expect(
      await page
        .locator('tr.current')
        .getByRole('link', { name: /This wasn't me/ })
        .count(),
    ).toBe(0);
    await check('my sign-ins');
  });

  it('signs in again with the password and the app: the code just used costs no attempt', async () => {
    // A moment passes (setting the password ended the sign-ins in progress up to its instant).
    clock.advance(1_000);
    await page.getByRole('button', { name: 'Sign out' }).click();
    // A wrong password: the error and the username come back on a page (post-redirect-get), the password does not.
    await page.getByLabel('Username').fill('nina');
    await page.getByLabel('Password').fill('not the password');
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    expect(page.url()).toMatch(/\/t\/first\/signin\?attempt=[A-Za-z0-9_-]{20,}$/);
    await expect(page.getByRole('alert').first().textContent()).resolves.toContain('username or password');
    expect(await page.getByLabel('Username').inputValue()).toBe('nina');
    expect(await page.getByLabel('Password').inputValue()).toBe('');
    await check('sign-in page, wrong password');
    // A refresh posts nothing: the page comes back without the one-time error.
    await page.reload();
    await expect(page.getByRole('heading', { level: 1 }).textContent()).resolves.toBe('Sign in');
    expect(dialogs).toEqual([]);

    await page.getByLabel('Username').fill('nina');
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await expect(page.getByRole('heading', { level: 1 }).textContent()).resolves.toBe("Verify it's you");
    expect(page.url()).toMatch(/\/t\/first\/signin\/verify\?flow=[A-Za-z0-9_-]{32}&method=/);

    // The code that confirmed the app, still on its screen.
    await page.getByLabel('Authenticator app code').fill(totpCode(secret, clock.now()));
    await page.getByRole('button', { name: 'Verify' }).click();
    await expect(page.getByRole('alert').first().textContent()).resolves.toMatch(
      /That code was already used\. The next code shows in 27 seconds.*did not count/,
    );
    await check('second step, code already used', 'onboarding-6-code-used');

    // Letters are no guess either; a wrong code is, and the count shows none was spent before it.
    await page.getByLabel('Authenticator app code').fill('12a456');
    await page.getByRole('button', { name: 'Verify' }).click();
    await expect(page.getByRole('alert').first().textContent()).resolves.toContain('Enter the 6 digits');
    const wrong = totpCode(secret, clock.now()) === '000000' ? '111111' : '000000';
    await page.getByLabel('Authenticator app code').fill(wrong);
    await page.getByRole('button', { name: 'Verify' }).click();
    await expect(page.getByRole('alert').first().textContent()).resolves.toContain("That code didn't work. 4 attempts left.");
    // Refresh and Back after a wrong code post nothing again: the same page, the same count, no resubmission.
    await page.reload();
    await expect(page.getByRole('alert').first().textContent()).resolves.toContain("That code didn't work. 4 attempts left.");
    await page.goBack();
    await expect(page.getByRole('heading', { level: 1 }).textContent()).resolves.toBe("Verify it's you");
    await page.goForward();
    await expect(page.getByRole('heading', { level: 1 }).textContent()).resolves.toBe("Verify it's you");
    expect(dialogs).toEqual([]);

    // Lost your phone? Her recovery codes are a way in, and a pass from the administrator is the way when they are gone too.
    const lost = page.getByRole('region', { name: 'Lost your phone?' });
    expect(await lost.getByRole('link', { name: 'sign in with the pass' }).getAttribute('href')).toBe('/t/first/signin/tap');
    await lost.getByRole('button', { name: 'Sign in with a recovery code' }).click();
    expect(await page.getByLabel('Recovery code').count()).toBe(1);
    await check('second step, a recovery code in place of the phone');
    await page.getByRole('button', { name: /^Use Authenticator app/ }).click();

    clock.advance(30_000);
    await page.getByLabel('Authenticator app code').fill(totpCode(secret, clock.now()));
    await page.getByRole('button', { name: 'Verify' }).click();
    expect(page.url()).toMatch(/\/t\/first\/my\/security-info$/);
    await expect(page.getByRole('heading', { name: /Step \d of 3/ }).count()).resolves.toBe(0);
  });

  it('serves a page, not JSON, for an error at a page address', async () => {
    const res = await page.goto(`${server.url}/t/first/my/signins?cursor=${'x'.repeat(300)}`);
    expect(res!.status()).toBe(400);
    expect(res!.headers()['content-type']).toContain('text/html');
    expect(await page.locator('html').getAttribute('lang')).toBe('en');
    expect(await page.title()).toContain('The request is not valid');
    await check('error page');
  });

  it('found no accessibility violations on any page state', () => {
    expect(violations).toEqual([]);
  });
});
