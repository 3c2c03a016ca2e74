import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminPersonSession } from '../helpers/admin-person.ts';
import { ManualClock } from '../../src/clock.ts';
import type { Tenant } from '../../src/directory/tenants.ts';
import { sqliteMemory, type Backend } from '../helpers/backends.ts';
import { api, startTestServer, type TestServer } from '../helpers/test-server.ts';
import { totpCode } from '../helpers/totp.ts';
import { PageClient, flowOf } from '../helpers/page-client.ts';

const PASSWORD = 'correct horse battery staple';

/**
 * The sign-in pages' post-redirect-get (issue 18, item 3): every post answers
 * 303 to a page; what it tells that page travels in the sealed flash, which
 * is bound to one attempt or one flow, so it never shows on another's page
 * (another person at the same browser, another flow), carries no password
 * and no code, and a page shown again (refresh, Back) costs no attempt.
 */
describe('sign-in pages: post-redirect-get', () => {
  let backend: Backend;
  let server: TestServer;
  let tenant: Tenant;
  let secret = '';
  let adminToken = '';
  const clock = new ManualClock(Date.UTC(2026, 10, 30, 9, 0, 5));

  beforeAll(async () => {
    backend = await sqliteMemory.create();
    server = await startTestServer(backend, { clock });
    tenant = await server.services.tenants.create('acme', 'Acme');
    adminToken = (await server.services.adminTokens.create(tenant.id, 'admin')).token;
    expect((await api(server.url, 'POST', '/api/v1/admin/users', { username: 'pia', password: PASSWORD }, adminToken)).status).toBe(201);
    // Pia's authenticator app, added over the API with her registration session.
    const start = await api(server.url, 'POST', '/api/v1/t/acme/signin', { username: 'pia', password: PASSWORD });
    const token = start.body.session.token as string;
    const added = await api(server.url, 'POST', '/api/v1/me/methods', { type: 'totp' }, token);
    secret = added.body.secret as string;
    expect((await api(server.url, 'POST', `/api/v1/me/methods/${added.body.id}/confirm`, { code: totpCode(secret, clock.now()) }, token)).status).toBe(200);
    clock.advance(30_000);
  });
  afterAll(async () => {
    await server?.close();
    await backend?.cleanup();
  });

  it('answers a wrong password with a redirect; the error and username show once, for that attempt only, never the password', async () => {
    const browser = new PageClient(server.url);
    const wrong = await browser.post('/t/acme/signin', { username: 'pia', password: 'not her password' }, { from: '/t/acme/signin' });
    expect(wrong.status).toBe(303);
    expect(wrong.location).toMatch(/^\/t\/acme\/signin\?attempt=[A-Za-z0-9_-]{20,}$/);
    const sealed = browser.cookies.get('sf_flash')!;
    expect(sealed).not.toContain('pia');
    // Another attempt id, or none, shows nothing of it (someone else at the same browser).
    const other = new PageClient(server.url);
    other.cookies.set('sf_flash', sealed);
    const elsewhere = await other.get('/t/acme/signin?attempt=someone-elses-attempt-id');
    expect(elsewhere.text).not.toContain('value="pia"');
    expect(elsewhere.text).not.toContain('incorrect');
    const shown = await browser.get(wrong.location!);
    expect(shown.status).toBe(200);
    expect(shown.text).toContain('The username or password is incorrect');
    expect(shown.text).toContain('value="pia"');
    expect(shown.text).not.toContain('not her password');
    // Shown once: a refresh shows a clean form.
    const again = await browser.get(wrong.location!);
    expect(again.text).not.toContain('incorrect');
  });

  it('leads to the second step at an address naming the flow; a refresh costs no attempt and a wrong code keeps no code', async () => {
    const browser = new PageClient(server.url);
    const start = await browser.post('/t/acme/signin', { username: 'pia', password: PASSWORD }, { from: '/t/acme/signin' });
    const flow = flowOf(start)!;
    expect(flow).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect((await browser.get(start.location!)).text).toContain("Verify it's you");
    const wrongCode = totpCode(secret, clock.now()) === '000000' ? '111111' : '000000';
    const wrong = await browser.post('/t/acme/signin/verify', { flow, method: 'totp', code: wrongCode }, { from: start.location! });
    expect(wrong.status).toBe(303);
    expect(wrong.location).toContain(`/t/acme/signin/verify?flow=${flow}&method=totp`);
    for (let i = 0; i < 3; i++) {
      const page = await browser.get(wrong.location!);
      expect(page.text).toContain('That code didn&#39;t work. 4 attempts left.');
      expect(page.text).not.toContain(wrongCode);
    }
    // Another flow's page, in the same browser, shows nothing of this one's error.
    const otherStart = await new PageClient(server.url).post('/t/acme/signin', { username: 'pia', password: PASSWORD }, { from: '/t/acme/signin' });
    const otherPage = await browser.get(otherStart.location!);
    expect(otherPage.text).toContain("Verify it's you");
    expect(otherPage.text).not.toContain('attempts left');
    // The refreshes cost nothing: the next wrong code leaves three.
    const second = await browser.post('/t/acme/signin/verify', { flow, method: 'totp', code: wrongCode }, { from: wrong.location! });
    expect((await browser.get(second.location!)).text).toContain('That code didn&#39;t work. 3 attempts left.');
    const done = await browser.post('/t/acme/signin/verify', { flow, method: 'totp', code: totpCode(secret, clock.now()) }, { from: second.location! });
    expect(done.status).toBe(303);
    expect(done.location).toBe('/t/acme/my/security-info');
  });

  it('keeps "don\'t ask again" ticked after a wrong code, and nothing else of the post', async () => {
    expect((await api(server.url, 'PUT', '/api/v1/admin/policy', { rememberedDeviceDays: 7 }, await adminPersonSession(server.services, 'acme'))).status).toBe(
      200,
    );
    const browser = new PageClient(server.url);
    const start = await browser.post('/t/acme/signin', { username: 'pia', password: PASSWORD }, { from: '/t/acme/signin' });
    expect((await browser.get(start.location!)).text).not.toMatch(/name="remember" value="on" checked/);
    const wrongCode = totpCode(secret, clock.now()) === '000000' ? '111111' : '000000';
    const wrong = await browser.post(
      '/t/acme/signin/verify',
      { flow: flowOf(start)!, method: 'totp', code: wrongCode, remember: 'on' },
      { from: start.location! },
    );
    const page = (await browser.get(wrong.location!)).text;
    expect(page).toMatch(/name="remember" value="on" checked/);
    expect(page).not.toContain(wrongCode);
    expect((await api(server.url, 'PUT', '/api/v1/admin/policy', { rememberedDeviceDays: 0 }, await adminPersonSession(server.services, 'acme'))).status).toBe(
      200,
    );
  });

  it('sends an unknown or foreign flow back to the start, with nothing of any account', async () => {
    const browser = new PageClient(server.url);
    const unknown = await browser.get('/t/acme/signin/verify?flow=no-such-flow-at-all&method=totp');
    expect(unknown.status).toBe(303);
    expect(unknown.location).toMatch(/^\/t\/acme\/signin\?attempt=/);
    expect((await browser.get(unknown.location!)).text).toMatch(/sign-in has expired|not found|start again/i);
    const other = await server.services.tenants.create('other', 'Other');
    expect(other.id).not.toBe(tenant.id);
    const start = await browser.post('/t/acme/signin', { username: 'pia', password: PASSWORD }, { from: '/t/acme/signin' });
    const foreign = await browser.get(`/t/other/signin/verify?flow=${flowOf(start)}&method=totp`);
    expect(foreign.status).toBe(303);
    expect(foreign.location).toMatch(/^\/t\/other\/signin\?attempt=/);
  });

  it('goes back to an app through a page after a complete sign-in, and only for a signed-in browser', async () => {
    const stranger = await new PageClient(server.url).get('/t/acme/signin/continue?next=oidc:abcdefghijklmnop');
    expect(stranger.status).toBe(303);
    expect(stranger.location).toBe('/t/acme/signin?next=oidc%3Aabcdefghijklmnop');
  });
});
