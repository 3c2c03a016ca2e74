import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import AxeBuilder from '@axe-core/playwright';
import { Secret } from 'otpauth';
import { sqliteMemory, type Backend } from '../helpers/backends.ts';
import { startTestServer, type TestServer } from '../helpers/test-server.ts';
import { totpCode } from '../helpers/totp.ts';
import { chromiumAvailable, launchChromium } from '../helpers/browser.ts';
import { secretContext } from '../../src/methods/credentials.ts';
import type { Tenant } from '../../src/directory/tenants.ts';

/** Axe on the page as it stands: every rule, and no violation allowed. */
async function expectNoAxeViolations(page: Page): Promise<void> {
  const results = await new AxeBuilder({ page }).analyze();
  expect(results.violations.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`)).toEqual([]);
}

/**
 * An administrator rolls the policy back from the console's history in
 * Chromium: the button on an earlier version leads to a confirmation page
 * that shows what will change for everyone; confirming makes that version's
 * policy current again (audited, in the history). A canary is ended the same
 * way, and while it bakes the policy page refuses to save. The change needs
 * the form's CSRF token and a recent sign-in. Axe checks every page.
 */
describe.runIf(chromiumAvailable())('rolling the policy back from the console in Chromium', () => {
  let backend: Backend;
  let server: TestServer;
  let browser: Browser;
  let page: Page;
  let tenant: Tenant;
  let adaId = '';
  const adminSecret = new Secret({ size: 20 }).base32;
  const cspViolations: string[] = [];
  const stored = async () => (await server.services.tenants.storedPolicy(tenant.id))!;
  const history = () => page.goto(`${server.url}/t/corp/admin/policy/history`);
  const section = (version: number) => page.locator('section.version', { has: page.getByRole('heading', { name: new RegExp(`^Version ${version}:`) }) });

  beforeAll(async () => {
    backend = await sqliteMemory.create();
    server = await startTestServer(backend);
    const { services } = server;
    tenant = await services.tenants.create('corp', 'Corp');
    const ada = await services.users.create(tenant.id, { username: 'ada', passwordHash: await services.hasher.hash('ada admin password'), isAdmin: true });
    adaId = ada.id;
    await services.credentials.insert({
      id: 'ada-totp',
      tenantId: tenant.id,
      userId: ada.id,
      type: 'totp',
      label: 'Phone',
      state: 'active',
      secret: services.keyRing.seal(adminSecret, secretContext('totp', 'ada-totp')),
    });
    // Two changes for everyone, as the policy page or PUT /admin/policy make them.
    await services.rollouts.applyPolicy(tenant, { rememberedDeviceDays: 7 }, { actor: 'cli' });
    await services.rollouts.applyPolicy(tenant, { rememberedDeviceDays: 14, lockout: { accountFailures: 20 } }, { actor: 'cli' });

    browser = await launchChromium();
    page = await (await browser.newContext()).newPage();
    page.setDefaultTimeout(10_000);
    page.on('console', (msg) => {
      if (/Content Security Policy/i.test(msg.text())) cspViolations.push(msg.text());
    });
    await page.goto(`${server.url}/t/corp/signin?next=admin`);
    await page.getByLabel('Username').fill('ada');
    await page.getByLabel('Password').fill('ada admin password');
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.getByLabel('Authenticator app code').fill(totpCode(adminSecret, Date.now()));
    await page.getByRole('button', { name: 'Verify' }).click();
    expect(page.url()).toMatch(/\/t\/corp\/admin$/);
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await backend?.cleanup();
  });

  it('rolls back to an earlier version after a confirmation that shows what changes for everyone', async () => {
    await page.getByRole('link', { name: 'Policy', exact: true }).click();
    await page.getByRole('link', { name: 'policy history' }).click();
    await expect(page.getByRole('heading', { level: 1 }).textContent()).resolves.toBe('Policy history');
    // The current version has nothing to roll back to; the earlier one has.
    await expect(section(2).getByRole('heading').textContent()).resolves.toContain('(current)');
    expect(await section(2).getByRole('button').count()).toBe(0);
    await expectNoAxeViolations(page);

    await section(1).getByRole('button', { name: 'Roll back to this version' }).click();
    await expect(page.getByRole('heading', { level: 1 }).textContent()).resolves.toBe('Roll back to version 1?');
    const changes = (await page.locator('table').textContent()) ?? '';
    expect(changes).toContain('rememberedDeviceDays');
    expect(changes).toContain('lockout.accountFailures');
    // Nothing happens before the confirmation.
    expect((await stored()).rememberedDeviceDays).toBe(14);
    await expectNoAxeViolations(page);

    await page.getByLabel(/^Why/).fill('remembering browsers for two weeks was too long');
    await page.getByRole('button', { name: 'Yes, roll back to version 1' }).click();
    expect(page.url()).toMatch(/\/t\/corp\/admin\/policy\/history\?done=3$/);
    await expect(page.getByRole('status').first().textContent()).resolves.toContain('Version 3 is the policy for everyone now');
    await expect(section(3).getByRole('heading').textContent()).resolves.toContain('(current)');
    await expect(section(3).textContent()).resolves.toContain('remembering browsers for two weeks was too long (back to version 1)');
    expect(await stored()).toMatchObject({ rememberedDeviceDays: 7, lockout: { accountFailures: 100 } });
    await expectNoAxeViolations(page);

    const [entry] = await server.services.audit.list(tenant.id, { limit: 1, action: 'config.rolled-back' });
    expect(entry).toMatchObject({
      actor: `user:${adaId}`,
      details: { scope: 'policy', version: 3, to: 1, reason: 'remembering browsers for two weeks was too long' },
    });
    expect(cspViolations).toEqual([]);
  });

  it('ends a canary from the history, and the policy page saves nothing while it bakes', async () => {
    const canary = await server.services.rollouts.applyPolicy(tenant, { rememberedDeviceDays: 30 }, { actor: 'cli', canaryPercent: 10, bakeSeconds: 600 });
    await page.goto(`${server.url}/t/corp/admin/policy`);
    // The page says so before anything is typed.
    await expect(page.getByRole('status').first().textContent()).resolves.toContain(`Version ${canary.version} of this policy is on its canary (10% of users)`);
    await page.getByLabel(/Days a browser may skip/).fill('3');
    await page.getByRole('button', { name: 'Save policy' }).click();
    await expect(page.getByRole('alert').first().textContent()).resolves.toContain(`version ${canary.version} is on its canary (10% of users)`);
    expect((await stored()).rememberedDeviceDays).toBe(7);
    await expectNoAxeViolations(page);

    await page.getByRole('link', { name: 'Go to the policy history to roll the canary back' }).click();
    // While the canary bakes, only the canary can be rolled back.
    expect(await page.getByRole('button', { name: 'Roll back to this version' }).count()).toBe(0);
    await section(canary.version).getByRole('button', { name: 'Roll back this canary' }).click();
    await expect(page.getByRole('heading', { level: 1 }).textContent()).resolves.toBe(`Roll back the canary, version ${canary.version}?`);
    await expectNoAxeViolations(page);
    await page.getByRole('button', { name: 'Yes, roll back the canary' }).click();
    await expect(page.getByRole('status').first().textContent()).resolves.toContain(`Version ${canary.version} is rolled back`);
    expect((await server.services.configVersions.get(`tenant:${tenant.id}`, canary.version))!.state).toBe('rolled-back');
    await expect(section(canary.version).textContent()).resolves.toContain('rolled back from the admin console');
    expect((await stored()).rememberedDeviceDays).toBe(7);
    await expectNoAxeViolations(page);
  });

  it('refuses the rollback without the form token, or with a sign-in older than 10 minutes', async () => {
    const before = (await server.services.rollouts.status(`tenant:${tenant.id}`)).history.length;
    // A forged post: the session cookie goes along, the form's token cannot.
    const forged = await page.request.post(`${server.url}/t/corp/admin/policy/history/rollback`, {
      form: { version: '2' },
      headers: { origin: server.url },
      maxRedirects: 0,
    });
    expect(forged.status()).toBe(403);

    await server.services.durable.db
      .updateTable('sessions')
      .set((eb) => ({ auth_time: eb('auth_time', '-', 11 * 60_000) }))
      .where('user_id', '=', adaId)
      .execute();
    await history();
    await section(2).getByRole('button', { name: 'Roll back to this version' }).click();
    await page.getByRole('button', { name: 'Yes, roll back to version 2' }).click();
    await expect(page.getByRole('heading', { level: 1 }).textContent()).resolves.toBe("Confirm it's you");
    expect((await server.services.rollouts.status(`tenant:${tenant.id}`)).history).toHaveLength(before);
    expect((await stored()).rememberedDeviceDays).toBe(7);
    await expectNoAxeViolations(page);
  });
});
