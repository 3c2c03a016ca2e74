import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import type { Browser, Page } from 'playwright-core';
import AxeBuilder from '@axe-core/playwright';
import { Secret } from 'otpauth';
import { sqliteMemory, type Backend } from '../helpers/backends.ts';
import { startTestServer, type TestServer } from '../helpers/test-server.ts';
import { totpCode } from '../helpers/totp.ts';
import { chromiumAvailable, launchChromium } from '../helpers/browser.ts';
import { startTwilioStandIn, type StandIn } from '../helpers/vendor-standins.ts';
import { secretContext } from '../../src/methods/credentials.ts';
import { newSortableId } from '../../src/crypto/random.ts';

const SHOTS = process.env.STEADFAST_SCREENSHOTS ? new URL('../../docs/screenshots/', import.meta.url).pathname : undefined;
const TWILIO = { accountSid: 'AC78', authToken: 'overview-token' };
const HOUR = 3_600_000;

/** Axe on the page as it stands: every rule, and no violation allowed. */
async function expectNoAxeViolations(page: Page): Promise<void> {
  const results = await new AxeBuilder({ page }).analyze();
  expect(results.violations.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`)).toEqual([]);
}

/**
 * An administrator's overview in Chromium: charts of a seeded day (sign-ins
 * per hour, failures by reason, methods, registration coverage, an SMS
 * provider that failed once), each an SVG with a title, a description and a
 * table; and the sign-in and audit logs in words. Axe checks every page.
 */
describe.runIf(chromiumAvailable())('admin overview and readable logs in Chromium', () => {
  let backend: Backend;
  let server: TestServer;
  let browser: Browser;
  let page: Page;
  let sms: StandIn;
  const adminSecret = new Secret({ size: 20 }).base32;
  let tenantId = '';
  const ids: Record<string, string> = {};

  beforeAll(async () => {
    sms = await startTwilioStandIn(TWILIO);
    const configFile = join(tmpdir(), `steadfast-e2e-overview-${process.pid}.json`);
    const breaker = { timeoutMs: 2000, volumeThreshold: 100, errorPercent: 100, resetAfterMs: 60_000, consecutiveFailures: 100 };
    writeFileSync(
      configFile,
      JSON.stringify({ delivery: { sms: [{ name: 'primary', type: 'twilio', baseUrl: sms.url, ...TWILIO, from: '+15005550006', ...breaker }] } }),
    );
    backend = await sqliteMemory.create({ STEADFAST_CONFIG: configFile });
    server = await startTestServer(backend);
    const { services } = server;
    const tenant = await services.tenants.create('corp', 'Corp');
    tenantId = tenant.id;
    const user = async (username: string, isAdmin = false) =>
      (ids[username] = (await services.users.create(tenant.id, { username, passwordHash: await services.hasher.hash(`${username} password 12`), isAdmin })).id);
    const ada = await user('ada', true);
    await services.credentials.insert({
      id: 'ada-totp',
      tenantId,
      userId: ada,
      type: 'totp',
      label: 'Phone',
      state: 'active',
      secret: services.keyRing.seal(adminSecret, secretContext('totp', 'ada-totp')),
    });
    // Bob has only a phone, Carol a passkey, Dave nothing yet.
    await services.credentials.insert({
      tenantId,
      userId: await user('bob'),
      type: 'sms',
      label: '+•••55',
      state: 'active',
      secret: null,
      publicData: { phone: '+447700900555' },
    });
    await services.credentials.insert({
      tenantId,
      userId: await user('carol'),
      type: 'webauthn',
      label: 'Laptop',
      state: 'active',
      secret: null,
      externalId: 'carol-key',
      publicData: {},
    });
    await user('dave');

    // A day of sign-ins: successes and failures spread over past hours, as they were recorded.
    const now = Date.now();
    const row = (at: number, username: string, outcome: 'success' | 'failure', reason: string, method: string | null, step = 'password') => ({
      id: newSortableId(at),
      tenant_id: tenantId,
      user_id: ids[username] ?? null,
      username,
      at,
      ip: '192.0.2.7',
      user_agent: null,
      app: null,
      step,
      outcome,
      reason,
      method,
      node: 'test',
      degraded: 0,
      reported_at: null,
    });
    await services.durable.db
      .insertInto('signin_events')
      .values([
        row(now - 20 * HOUR, 'carol', 'success', 'ok', 'passkey', 'passkey'),
        row(now - 9 * HOUR, 'bob', 'success', 'factor_required', 'password'),
        row(now - 9 * HOUR + 1000, 'bob', 'success', 'ok', 'sms', 'second-factor'),
        row(now - 5 * HOUR, 'bob', 'failure', 'invalid_credentials', 'password'),
        row(now - 5 * HOUR + 1000, 'bob', 'failure', 'invalid_credentials', 'password'),
        row(now - 3 * HOUR, 'carol', 'failure', 'invalid_code', 'totp', 'second-factor'),
        // Another tenant's sign-ins never show here.
        { ...row(now - 2 * HOUR, 'mallory', 'failure', 'rate_limited', 'password'), tenant_id: (await services.tenants.create('other', 'Other')).id },
      ])
      .execute();

    // The SMS provider takes three messages and fails one.
    for (let i = 0; i < 3; i++) await services.delivery.send({ channel: 'sms', to: '+447700900555', text: `code ${i}` });
    sms.behave({ kind: 'fail', status: 503 });
    await services.delivery.send({ channel: 'sms', to: '+447700900555', text: 'code 4' }).catch(() => {});
    sms.behave({ kind: 'ok' });

    browser = await launchChromium();
    page = await (await browser.newContext()).newPage();
    page.setDefaultTimeout(20_000);
    await page.goto(`${server.url}/t/corp/signin?next=admin`);
    await page.getByLabel('Username').fill('ada');
    await page.getByLabel('Password').fill('ada password 12');
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.getByLabel('Authenticator app code').fill(totpCode(adminSecret, Date.now()));
    await page.getByRole('button', { name: 'Verify' }).click();
    expect(page.url()).toMatch(/\/t\/corp\/admin$/);
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await backend?.cleanup();
    await sms?.close();
  });

  it('draws the last day as charts, each with a title, a description and a table of its numbers', async () => {
    await page.getByRole('link', { name: 'Overview' }).click();
    await expect(page.getByRole('heading', { level: 1 }).textContent()).resolves.toBe('Overview');
    const charts = page.getByRole('img');
    expect(await charts.count()).toBe(5);

    // Sign-ins per hour: Carol's passkey, Bob's SMS and Ada's app (her sign-in just now); three failures. Not the other tenant's.
    const hours = page.getByRole('img', { name: /Sign-ins per hour/ });
    await expect(hours.getAttribute('aria-labelledby')).resolves.toBe('chart-hours-title chart-hours-desc');
    await expect(page.locator('#chart-hours-desc').textContent()).resolves.toMatch(/^Over the last 24 hours: 3 signed in and 3 failed\./);

    const table = async (name: RegExp) =>
      (await page
        .locator('figure', { has: page.getByRole('img', { name }) })
        .locator('table')
        .textContent()) ?? '';
    const failures = await table(/Failed sign-ins by reason/);
    expect(failures).toContain('Invalid credentials (wrong username or password)2');
    expect(failures).toContain('Wrong code or key1');
    expect(failures).not.toMatch(/too many attempts/i);
    const methods = await table(/completed them/);
    expect(methods).toContain('Authenticator app1');
    expect(methods).toContain('Passkey, no password1');
    expect(methods).not.toMatch(/\btotp\b/);

    const coverage = await table(/strongest sign-in method/);
    expect(coverage).toContain('Phishing-resistant (passkey or security key)125%');
    expect(coverage).toContain('Only phone-based (SMS, voice)125%');
    expect(coverage).toContain('No method yet125%');
    await expect(page.locator('main').textContent()).resolves.toContain('1 user relies on a phone alone');

    const delivery = await table(/Delivery providers/);
    expect(delivery).toContain('some failed (75% delivered)');
    await expect(page.locator('#chart-delivery-desc').textContent()).resolves.toMatch(/: primary: 0 hours all delivered, 1 with some failures/);
    await expectNoAxeViolations(page);

    if (SHOTS) {
      await page.setViewportSize({ width: 1280, height: 900 });
      await page.screenshot({ path: `${SHOTS}admin-overview-desktop.png`, fullPage: true });
      await page.setViewportSize({ width: 390, height: 844 });
      await page.screenshot({ path: `${SHOTS}admin-overview-phone.png`, fullPage: true });
      await page.setViewportSize({ width: 1280, height: 720 });
    }
  });

  it('shows the sign-in log in words: steps, method names from the descriptors, reasons', async () => {
    await page.getByRole('link', { name: 'Sign-in log' }).click();
    const text = (await page.locator('table tbody').textContent()) ?? '';
    expect(text).toContain('Second step');
    expect(text).toContain('Authenticator app');
    expect(text).toContain('Failed: wrong code or key');
    expect(text).not.toMatch(/\btotp\b|invalid_code|second-factor/);
    await expectNoAxeViolations(page);
  });

  it('tells the audit log as sentences with names, not ids and JSON', async () => {
    const tenant = (await server.services.tenants.findById(tenantId))!;
    await server.services.admin.resetMethods(tenant, `user:${ids.ada}`, ids.bob!);
    await server.services.admin.issuePass(tenant, 'cli', ids.dave!, { minutes: 60, oneTime: true });
    await page.getByRole('link', { name: 'Audit log' }).click();
    const rows = page.locator('tbody tr');
    await expect(rows.nth(0).textContent()).resolves.toContain('Temporary Access Pass for dave issued by the command line');
    await expect(rows.nth(0).textContent()).resolves.toContain('usable once');
    await expect(rows.nth(1).textContent()).resolves.toContain('Methods of bob reset by ada');
    await expect(rows.nth(1).textContent()).resolves.toContain('1 method removed; 0 sessions ended');
    const all = (await page.locator('tbody').textContent()) ?? '';
    expect(all).not.toContain('{"');
    expect(all).not.toContain(ids.bob!);
    await expectNoAxeViolations(page);

    // One user's entries, from their page.
    await page.getByRole('link', { name: "(bob's page)" }).click();
    await expect(page.getByRole('heading', { level: 1 }).textContent()).resolves.toBe('bob');
    await expectNoAxeViolations(page);
    await page.getByRole('link', { name: 'Audit entries' }).click();
    await expect(page.getByRole('heading', { level: 1 }).textContent()).resolves.toBe('Audit log of bob');
    expect(await rows.count()).toBe(1);
  });

  it('passes axe on the users and policy pages', async () => {
    await page.getByRole('link', { name: 'Users' }).click();
    await expectNoAxeViolations(page);
    await page.getByRole('link', { name: 'Policy' }).click();
    await expectNoAxeViolations(page);
  });
});
