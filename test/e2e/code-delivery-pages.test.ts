import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { sqliteMemory, type Backend } from '../helpers/backends.ts';
import { startTestServer, type TestServer } from '../helpers/test-server.ts';
import { chromiumAvailable, launchChromium } from '../helpers/browser.ts';
import { codeIn, startSmtpStandIn, startTwilioStandIn, type SmtpStandIn, type StandIn } from '../helpers/vendor-standins.ts';

const TWILIO = { accountSid: 'AC77', authToken: 'e2e-token' };

const SHOTS = process.env.STEADFAST_SCREENSHOTS ? new URL('../../docs/screenshots/', import.meta.url).pathname : undefined;

/**
 * A person adds a phone and an email address on the security-info page, signs
 * in with a text-message code, and, when text messages cannot be sent, is
 * moved to the email code with a word about why.
 */
describe.runIf(chromiumAvailable())('code delivery pages in Chromium', () => {
  let backend: Backend;
  let server: TestServer;
  let browser: Browser;
  let page: Page;
  let sms: StandIn;
  let mail: SmtpStandIn;

  beforeAll(async () => {
    [sms, mail] = await Promise.all([startTwilioStandIn(TWILIO), startSmtpStandIn()]);
    const configFile = join(tmpdir(), `steadfast-e2e-delivery-${process.pid}.json`);
    const breaker = { timeoutMs: 500, volumeThreshold: 1, errorPercent: 1, resetAfterMs: 60_000 };
    writeFileSync(
      configFile,
      JSON.stringify({
        delivery: {
          sms: [{ name: 'primary', type: 'twilio', baseUrl: sms.url, ...TWILIO, from: '+15005550006', ...breaker }],
          email: [{ name: 'mail', type: 'smtp', host: '127.0.0.1', port: mail.port, from: 'no-reply@example.test' }],
          code: { resendCooldownSeconds: 5 },
        },
      }),
    );
    backend = await sqliteMemory.create({ STEADFAST_CONFIG: configFile });
    server = await startTestServer(backend);
    const tenant = await server.services.tenants.create('web', 'Web Co');
    await server.services.users.create(tenant.id, { username: 'pat', passwordHash: await server.services.hasher.hash('pat password 1') });
    browser = await launchChromium();
    page = await browser.newPage();
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await backend?.cleanup();
    await Promise.all([sms?.close(), mail?.close()]);
  });

  async function signInWithPassword() {
    await page.goto(`${server.url}/t/web/signin`);
    await page.getByLabel('Username').fill('pat');
    await page.getByLabel('Password').fill('pat password 1');
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  }

  it('adds a phone number with the code sent to it', async () => {
    await signInWithPassword();
    expect(page.url()).toContain('/t/web/my/security-info');
    await page.getByLabel('Phone number, with country code').fill('+44 7700 900 555');
    await page.getByRole('button', { name: 'Add phone' }).click();
    await expect(page.getByRole('heading', { level: 1 }).textContent()).resolves.toBe('Confirm your phone');
    await expect(page.locator('main').textContent()).resolves.toContain('We sent a code to +••••••••••55');

    await page.getByRole('button', { name: 'Send a new code' }).click();
    await expect(page.getByRole('alert').textContent()).resolves.toMatch(/A code was sent moments ago.*Try again in [0-9]+ seconds/);

    await page.getByLabel('Code').fill(codeIn(sms.received.at(-1)));
    await page.getByRole('button', { name: 'Confirm' }).click();
    await expect(page.getByRole('status').first().textContent()).resolves.toContain('Text message added');
    await expect(page.locator('ul.methods').textContent()).resolves.toContain('+••••••••••55');
  });

  it('adds an email address', async () => {
    await page.getByLabel('Email address').fill('pat@example.test');
    await page.getByRole('button', { name: 'Add email' }).click();
    await expect(page.getByRole('heading', { level: 1 }).textContent()).resolves.toBe('Confirm your email address');
    await page.getByLabel('Code').fill(codeIn(mail.received.at(-1)));
    await page.getByRole('button', { name: 'Confirm' }).click();
    await expect(page.getByRole('status').first().textContent()).resolves.toContain('Email added');
  });

  it('signs in with the text-message code, typed wrong once', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await signInWithPassword();
    await expect(page.getByRole('status').first().textContent()).resolves.toContain('We sent a code to +••••••••••55');
    const sent = sms.received.length;
    await page.reload();
    await expect(page.getByRole('status').first().textContent()).resolves.toContain('We sent a code to +••••••••••55');
    expect(sms.received.length).toBe(sent);
    const code = codeIn(sms.received.at(-1));
    await page.getByLabel('Text message code').fill(code === '000000' ? '111111' : '000000');
    await page.getByRole('button', { name: 'Verify' }).click();
    await expect(page.getByRole('alert').textContent()).resolves.toContain("That code didn't work. 4 attempts left.");
    // A wrong code does not send a new one: the code already on the phone still works.
    expect(sms.received.length).toBe(sent);
    // Nor does a refresh of the page (post-redirect-get: the page sends nothing), and it still says where the code went.
    await page.reload();
    await expect(page.getByRole('alert').textContent()).resolves.toContain("That code didn't work. 4 attempts left.");
    expect(sms.received.length).toBe(sent);
    await page.getByLabel('Text message code').fill(code);
    await page.getByRole('button', { name: 'Verify' }).click();
    expect(page.url()).toContain('/t/web/my/security-info');
  });

  it('moves to the email code, saying why, when text messages cannot be sent', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    sms.behave({ kind: 'fail', status: 500 });
    await signInWithPassword();
    await expect(page.getByRole('alert').textContent()).resolves.toContain("Text message can't be used right now. Use another way to sign in.");
    await expect(page.getByRole('status').first().textContent()).resolves.toMatch(/We sent a code to p•••@e•••\.test/);
    await expect(page.locator('ul.methods').textContent()).resolves.toContain('(unavailable right now)');
    if (SHOTS) await page.screenshot({ path: `${SHOTS}channel-down-desktop.png`, fullPage: true });
    await page.getByLabel('Email code').fill(codeIn(mail.received.at(-1)));
    await page.getByRole('button', { name: 'Verify' }).click();
    expect(page.url()).toContain('/t/web/my/security-info');
  });
});
