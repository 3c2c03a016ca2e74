import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { sqliteMemory, type Backend } from '../helpers/backends.ts';
import { startTestServer, type TestServer } from '../helpers/test-server.ts';
import { totpCode } from '../helpers/totp.ts';
import { chromiumAvailable, launchChromium } from '../helpers/browser.ts';
import { Secret } from 'otpauth';
import { secretContext } from '../../src/methods/credentials.ts';
import { axeViolations, WIDTHS } from '../helpers/axe.ts';

const SHOTS = process.env.STEADFAST_SCREENSHOTS ? new URL('../../docs/screenshots/', import.meta.url).pathname : undefined;

/**
 * An administrator in Chromium: signs in to the console, adds a new hire and
 * issues them a Temporary Access Pass (which the new hire, in another browser,
 * uses to sign in and set up an app), resets a user's methods, filters the
 * sign-in log, and is told plainly what is wrong with a policy.
 */
describe.runIf(chromiumAvailable())('admin console in Chromium', () => {
  let backend: Backend;
  let server: TestServer;
  let browser: Browser;
  let adminContext: BrowserContext;
  let page: Page;
  const adminSecret = new Secret({ size: 20 }).base32;
  const cspViolations: string[] = [];
  const violations: string[] = [];
  /** axe on the page as it is, at a desktop and a phone width (first-day.test.ts does the same). */
  const check = async (state: string) => {
    for (const v of await axeViolations(page)) violations.push(`${state}: ${v}`);
  };

  beforeAll(async () => {
    backend = await sqliteMemory.create();
    server = await startTestServer(backend);
    const { services } = server;
    const tenant = await services.tenants.create('corp', 'Corp');
    const ada = await services.users.create(tenant.id, { username: 'ada', passwordHash: await services.hasher.hash('ada admin password'), isAdmin: true });
    // Ada's authenticator app, set up beforehand.
    const id = 'ada-totp';
    await services.credentials.insert({
      id,
      tenantId: tenant.id,
      userId: ada.id,
      type: 'totp',
      label: 'Phone',
      state: 'active',
      secret: services.keyRing.seal(adminSecret, secretContext('totp', id)),
    });
    const bob = await services.users.create(tenant.id, { username: 'bob', passwordHash: await services.hasher.hash('bob password 12') });
    await services.credentials.insert({
      tenantId: tenant.id,
      userId: bob.id,
      type: 'totp',
      label: 'Old phone',
      state: 'active',
      secret: services.keyRing.seal(new Secret({ size: 20 }).base32, secretContext('totp', 'x')),
    });
    browser = await launchChromium();
    adminContext = await browser.newContext({ viewport: WIDTHS.desktop });
    // The pass's copy button writes to the clipboard; the test reads it back.
    await adminContext.grantPermissions(['clipboard-read', 'clipboard-write']);
    page = await adminContext.newPage();
    page.setDefaultTimeout(10_000);
    page.on('console', (msg) => {
      if (/Content Security Policy/i.test(msg.text())) cspViolations.push(msg.text());
    });
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await backend?.cleanup();
  });

  it('sends a signed-out visitor to sign in, then back to the console', async () => {
    await page.goto(`${server.url}/t/corp/admin`);
    expect(page.url()).toContain('/t/corp/signin?next=admin');
    await page.getByLabel('Username').fill('ada');
    await page.getByLabel('Password').fill('ada admin password');
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.getByLabel('Authenticator app code').fill(totpCode(adminSecret, Date.now()));
    await page.getByRole('button', { name: 'Verify' }).click();
    expect(page.url()).toMatch(/\/t\/corp\/admin$/);
    await expect(page.getByRole('heading', { level: 1 }).textContent()).resolves.toBe('Users');
  });

  it("links to the console from the administrator's own pages", async () => {
    await page.goto(`${server.url}/t/corp/my/security-info`);
    expect(await page.getByRole('link', { name: 'Admin console' }).getAttribute('href')).toBe('/t/corp/admin/overview');
    await page.goto(`${server.url}/t/corp/admin`);
  });

  it('adds a new hire and issues a one-time pass, with which they sign in and set up an app', async () => {
    await page.getByLabel('Username').fill('newhire');
    await page.getByLabel('Email (optional)').fill('newhire@corp.example');
    await page.getByRole('button', { name: 'Add user' }).click();
    await expect(page.getByRole('status').first().textContent()).resolves.toContain('User newhire added');
    await page.getByLabel(/Valid for \(minutes/).fill('120');
    await page.getByRole('button', { name: 'Issue pass' }).click();
    const code = ((await page.getByLabel('Temporary Access Pass').textContent()) ?? '').trim();
    expect(code).toMatch(/^[0-9A-Z]{4}(-[0-9A-Z]{4}){3}$/);
    await expect(page.locator('main').textContent()).resolves.toContain('usable once');
    // The address to pass on with it, and a copy button that copies the pass as it is typed.
    expect(await page.locator('a.signin-url').textContent()).toMatch(/^https?:\/\/[^/]+\/t\/corp\/signin\/tap$/);
    await page.getByRole('button', { name: 'Copy the pass' }).click();
    // The label changes once the clipboard has taken the pass (a promise in the page): waited for, not read at once.
    await page.getByRole('button', { name: 'Copied' }).waitFor();
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(code);
    // On a phone the whole pass shows: nothing of it runs past its box or the screen.
    await page.setViewportSize(WIDTHS.phone);
    const fits = await page.locator('#issued-pass').evaluate((el) => el.scrollWidth <= el.clientWidth && el.getBoundingClientRect().right <= window.innerWidth);
    expect(fits).toBe(true);
    await page.setViewportSize(WIDTHS.desktop);
    await check('a pass just issued');
    if (SHOTS) await page.screenshot({ path: `${SHOTS}admin-user-desktop.png`, fullPage: true });

    // The new hire, in a browser of their own.
    const newHire = await (await browser.newContext()).newPage();
    await newHire.goto(`${server.url}/t/corp/signin`);
    await newHire.getByRole('link', { name: 'Sign in with a Temporary Access Pass' }).click();
    await newHire.getByLabel('Username').fill('newhire');
    await newHire.getByLabel('Temporary Access Pass').fill(code.toLowerCase());
    await newHire.getByRole('button', { name: 'Sign in' }).click();
    expect(newHire.url()).toContain('/t/corp/my/security-info');
    await newHire.getByRole('button', { name: 'Add authenticator app' }).click();
    const secret = ((await newHire.locator('code.secret').textContent()) ?? '').replace(/\s/g, '');
    await newHire.getByLabel('Code from the app').fill(totpCode(secret, Date.now()));
    await newHire.getByRole('button', { name: 'Confirm' }).click();
    await expect(newHire.getByRole('status').first().textContent()).resolves.toContain('Authenticator app added');
    await newHire.context().close();

    // The pass is shown once: reloading the page does not show it again, nor issue another.
    await page.reload();
    await expect(page.getByRole('status').first().textContent()).resolves.toContain('shown once and is not shown again');
    expect(await page.getByLabel('Temporary Access Pass').count()).toBe(0);
    await page.goto(page.url().replace(/\?.*$/, ''));
    await expect(page.locator('main').textContent()).resolves.toMatch(/Authenticator app/);
    await expect(page.locator('main').textContent()).resolves.toContain('None active.');
  });

  it("resets a user's methods", async () => {
    await page.getByRole('link', { name: 'Users' }).click();
    await page.getByLabel('Search users').fill('bob');
    await page.getByRole('button', { name: 'Search' }).click();
    await page.getByRole('link', { name: 'bob' }).click();
    await expect(page.locator('ul.methods').first().textContent()).resolves.toContain('Old phone');
    // A page says what will happen first; only its button resets.
    await page.getByRole('link', { name: 'Reset methods' }).click();
    await expect(page.getByRole('heading', { level: 1 }).textContent()).resolves.toBe('Reset the sign-in methods of bob?');
    const said = (await page.locator('main').textContent()) ?? '';
    expect(said).toContain('These sign-in methods are removed: Authenticator app “Old phone”');
    expect(said).toContain('must register a method again');
    expect(said).toContain('Their password no longer does that on its own');
    // The way back in comes with the reset: a one-time pass, offered and checked.
    await expect(page.getByLabel(/Issue a one-time Temporary Access Pass/).isChecked()).resolves.toBe(true);
    await check('confirm resetting methods');
    await page.getByRole('link', { name: 'Cancel' }).click();
    await expect(page.locator('ul.methods').first().textContent()).resolves.toContain('Old phone');
    await page.getByRole('link', { name: 'Reset methods' }).click();
    await page.getByRole('button', { name: 'Reset methods of bob' }).click();
    await expect(page.getByRole('status').first().textContent()).resolves.toContain('Methods reset: 1 removed');
    await expect(page.getByRole('status').first().textContent()).resolves.toContain('Temporary Access Pass issued.');
    await expect(page.getByLabel('Temporary Access Pass').textContent()).resolves.toMatch(/\w/);
    await expect(page.locator('main').textContent()).resolves.toContain('the user must register one at the next sign-in');
  });

  it("asks before disabling a user's account, saying they cannot sign in", async () => {
    await page.getByRole('link', { name: 'Disable account' }).click();
    await expect(page.getByRole('heading', { level: 1 }).textContent()).resolves.toBe('Disable the account of bob?');
    await expect(page.locator('main').textContent()).resolves.toContain('They cannot sign in, with any method');
    await check('confirm disabling an account');
    await page.getByRole('button', { name: 'Disable bob' }).click();
    await expect(page.getByRole('status').first().textContent()).resolves.toContain('Account disabled');
    await page.getByRole('button', { name: 'Enable account' }).click();
    await expect(page.getByRole('status').first().textContent()).resolves.toContain('Account enabled');
    // Each action answered with a redirect to the user's page: a refresh posts nothing again.
    expect(page.url()).toMatch(/\/t\/corp\/admin\/users\/[^/?]+$/);
    const dialogs: string[] = [];
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    await page.reload();
    await expect(page.getByRole('heading', { level: 1 }).textContent()).resolves.toBe('bob');
    await expect(page.getByRole('status').count()).resolves.toBe(0);
    expect(dialogs).toEqual([]);
  });

  it('filters the sign-in log', async () => {
    // A wrong password for bob, from elsewhere.
    await fetch(`${server.url}/api/v1/t/corp/signin`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'bob', password: 'not his password' }),
    });
    await page.getByRole('link', { name: 'Sign-in log' }).click();
    const rows = page.locator('table tbody tr');
    expect(await rows.count()).toBeGreaterThanOrEqual(4);
    await page.getByLabel('User').fill('bob');
    await page.getByLabel('Outcome').selectOption('failure');
    await page.getByRole('button', { name: 'Filter' }).click();
    expect(page.url()).toContain('outcome=failure');
    expect(await rows.count()).toBe(1);
    await expect(rows.first().textContent()).resolves.toContain('invalid credentials');
    if (SHOTS) await page.screenshot({ path: `${SHOTS}admin-signins-desktop.png`, fullPage: true });
    const csv = await page.request.get(`${server.url}/t/corp/admin/signins.csv?user=bob&outcome=failure`);
    expect((await csv.text()).trim().split('\r\n')).toHaveLength(2);
  });

  it('names every problem of a policy it will not save, keeping what was typed', async () => {
    await page.getByRole('link', { name: 'Policy' }).click();
    await page.getByLabel('Shortest lifetime (minutes)').fill('600');
    await page.getByLabel(/Days a browser may skip/).fill('7');
    await page.getByLabel(/^Audit log \(days/).fill('10');
    await page.getByRole('button', { name: 'Save policy' }).click();
    await expect(page.locator('ul.problems').textContent()).resolves.toContain('“Audit log (days)” must be a whole number from 30 to 3650.');
    await expect(page.locator('ul.problems').textContent()).resolves.toContain('“Shortest lifetime” must not exceed “Longest lifetime”.');
    // Each problem sits at its field, which says it is invalid and points at it; the first takes the focus.
    const audit = page.getByLabel(/^Audit log \(days/);
    expect(await audit.getAttribute('aria-invalid')).toBe('true');
    await expect(page.locator(`#${await audit.getAttribute('aria-describedby')}`).textContent()).resolves.toContain('whole number from 30 to 3650');
    expect(await page.getByLabel('Shortest lifetime (minutes)').getAttribute('aria-invalid')).toBe('true');
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('tap-min');
    // What was typed stays, the wrong values too: nothing is put back silently.
    expect(await audit.inputValue()).toBe('10');
    expect(await page.getByLabel('Shortest lifetime (minutes)').inputValue()).toBe('600');
    expect(await page.getByLabel(/Days a browser may skip/).inputValue()).toBe('7');
    await check('policy with problems at their fields');
    await page.getByLabel('Shortest lifetime (minutes)').fill('15');
    await page.getByLabel(/^Audit log \(days/).fill('730');
    await page.getByLabel(/Go on to the second step and accept only/).check();
    await page.getByRole('button', { name: 'Save policy' }).click();
    await expect(page.getByRole('status').first().textContent()).resolves.toContain('Policy saved');
    const tenant = (await server.services.tenants.findBySlug('corp'))!;
    expect((await server.services.tenants.findById(tenant.id))!.policy).toMatchObject({
      failMode: 'tap-only',
      tap: { minMinutes: 15 },
      rememberedDeviceDays: 7,
      retention: { signinEventDays: 90, auditDays: 730 },
    });
    // Stopping text messages strands a user whose only method is one: the page says so when it saves.
    const onlySms = await server.services.users.create(tenant.id, { username: 'only-sms' });
    await server.services.credentials.insert({ tenantId: tenant.id, userId: onlySms.id, type: 'sms', label: 'Phone', state: 'active', activation: 'any' });
    await page.getByLabel('Text message', { exact: true }).uncheck();
    await page.getByRole('button', { name: 'Save policy' }).click();
    await expect(page.locator('main').textContent()).resolves.toContain(
      '1 user has only sign-in methods this policy no longer allows: they sign in with a Temporary Access Pass only',
    );
    // And, for as long as it does, the page names them, each a link to the page where a pass is issued.
    await page.goto(`${server.url}/t/corp/admin/policy`);
    await expect(page.getByRole('heading', { name: '1 user has no method this policy allows' }).count()).resolves.toBe(1);
    await check('policy stranding a user');
    await page.getByRole('link', { name: 'only-sms', exact: true }).click();
    await page.waitForURL(`**/t/corp/admin/users/${onlySms.id}`);
    await page.goto(`${server.url}/t/corp/admin/policy`);
    await page.getByLabel('Text message', { exact: true }).check();
    await page.getByRole('button', { name: 'Save policy' }).click();
    await expect(page.getByRole('status').first().textContent()).resolves.toContain('Policy saved');
    await expect(page.getByRole('heading', { name: /no method this policy allows/ }).count()).resolves.toBe(0);
    await page.getByRole('link', { name: 'Audit log' }).click();
    await expect(page.locator('tbody tr').first().textContent()).resolves.toContain('policy.changed');
    expect(cspViolations).toEqual([]);
  });

  it('asks for a new sign-in before a change when the last one is more than 10 minutes old', async () => {
    const tenant = (await server.services.tenants.findBySlug('corp'))!;
    const ada = (await server.services.users.findByUsername(tenant.id, 'ada'))!;
    await server.services.durable.db
      .updateTable('sessions')
      .set((eb) => ({ auth_time: eb('auth_time', '-', 11 * 60_000) }))
      .where('user_id', '=', ada.id)
      .execute();
    await page.getByRole('link', { name: 'Users' }).click();
    await page.getByLabel('Username').fill('latecomer');
    await page.getByRole('button', { name: 'Add user' }).click();
    await expect(page.getByRole('heading', { level: 1 }).textContent()).resolves.toBe("Confirm it's you");
    expect(await server.services.users.findByUsername(tenant.id, 'latecomer')).toBeUndefined();
    expect(await page.getByRole('button', { name: 'Sign in again' }).count()).toBe(1);
    // (Signing in again is the security-info page's flow, tested there; here the sign-in is made recent instead.)
    await server.services.durable.db
      .updateTable('sessions')
      .set((eb) => ({ auth_time: eb('auth_time', '+', 11 * 60_000) }))
      .where('user_id', '=', ada.id)
      .execute();
    await page.goto(`${server.url}/t/corp/admin`);
  });

  it('remembers a browser for the days the policy allows, until the sessions are ended', async () => {
    const signIn = async () => {
      await page.getByLabel('Username').fill('ada');
      await page.getByLabel('Password').fill('ada admin password');
      await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    };
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.goto(`${server.url}/t/corp/signin?next=admin`);
    await signIn();
    await page.getByLabel("Don't ask again on this browser for 7 days").check();
    await page.getByLabel('Authenticator app code').fill(totpCode(adminSecret, Date.now() + 30_000));
    await page.getByRole('button', { name: 'Verify' }).click();
    expect(page.url()).toMatch(/\/t\/corp\/admin$/);

    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.goto(`${server.url}/t/corp/signin`);
    await signIn();
    expect(page.url()).toMatch(/\/t\/corp\/my\/security-info$/);
    // The remembered browser stands in for the second factor on the user's own pages, not in the console.
    await page.goto(`${server.url}/t/corp/admin`);
    await expect(page.getByRole('heading', { level: 1 }).textContent()).resolves.toBe('Sign in with a second factor');
    const [event] = (await server.services.admin.signins((await server.services.tenants.findBySlug('corp'))!, { outcome: 'success' }, 1)).items;
    expect(event).toMatchObject({ username: 'ada', reason: 'remembered_device' });

    // Ending the sessions (as a reset, a password change or "this wasn't me" do) forgets the browser.
    const tenant = (await server.services.tenants.findBySlug('corp'))!;
    const ada = (await server.services.users.findByUsername(tenant.id, 'ada'))!;
    await server.services.admin.revokeSessions(tenant, 'cli', ada.id);
    await page.goto(`${server.url}/t/corp/signin`);
    await signIn();
    await expect(page.getByRole('heading', { level: 1 }).textContent()).resolves.toBe("Verify it's you");
  });

  it('turns away a user who is not an administrator', async () => {
    const other = await (await browser.newContext()).newPage();
    await other.goto(`${server.url}/t/corp/signin?next=admin`);
    await other.getByRole('link', { name: 'Sign in with a Temporary Access Pass' }).click();
    expect(other.url()).toContain('next=admin');
    const res = await other.request.get(`${server.url}/t/corp/admin`);
    expect(res.url()).toContain('/t/corp/signin?next=admin');
    await other.context().close();
  });

  it('found no accessibility violations on the page states it checked', () => {
    expect(violations).toEqual([]);
  });
});
