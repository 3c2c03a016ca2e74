import { writeFileSync } from 'node:fs';
import { adminPersonSession } from '../helpers/admin-person.ts';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends, type Backend } from '../helpers/backends.ts';
import { api, startTestServer, type TestServer } from '../helpers/test-server.ts';
import { totpCode } from '../helpers/totp.ts';
import { codeIn, startWebhookReceiver, type StandIn } from '../helpers/vendor-standins.ts';
import { SteadfastClient } from 'steadfast/client';

const PASSWORD = 'correct horse battery staple';
const HOOK = 'admin-suite-webhook-secret';

for (const spec of backends) {
  describe.runIf(await spec.available())(`admin API on ${spec.name}`, () => {
    let backend: Backend;
    let server: TestServer;
    let gateway: StandIn;
    let token = '';
    const call = (method: string, path: string, body?: unknown, bearer = token) => api(server.url, method, path, body, bearer);
    // The policy and apps are a person's to change: an administrator's session, not the admin token.
    let person = '';
    const asPerson = (method: string, path: string, body?: unknown) => call(method, path, body, person);
    let clockOffset = 0;
    const now = () => Date.now() + clockOffset;

    /** A user with a password and a confirmed authenticator app; its TOTP secret. */
    /** `byPerson`: made by the command line's actor (an account a token made is never made an administrator later). */
    const userWithTotp = async (username: string, byPerson = false) => {
      const created = byPerson
        ? {
            status: 201,
            body: await server.services.admin.createUser((await server.services.tenants.findBySlug('acme'))!, 'cli', { username, password: PASSWORD }),
          }
        : await call('POST', '/api/v1/admin/users', { username, password: PASSWORD });
      expect(created.status).toBe(201);
      const start = await call('POST', '/api/v1/t/acme/signin', { username, password: PASSWORD }, undefined);
      const session = start.body.session.token as string;
      const totp = await call('POST', '/api/v1/me/methods', { type: 'totp' }, session);
      await call('POST', `/api/v1/me/methods/${totp.body.id}/confirm`, { code: totpCode(totp.body.secret, now()) }, session);
      return { id: created.body.id as string, secret: totp.body.secret as string, session };
    };

    beforeAll(async () => {
      gateway = await startWebhookReceiver(HOOK);
      const configFile = join(tmpdir(), `steadfast-admin-${process.pid}-${spec.name}.json`);
      writeFileSync(
        configFile,
        JSON.stringify({
          delivery: { sms: [{ name: 'gateway', type: 'webhook', url: gateway.url, secret: HOOK, consecutiveFailures: 1, resetAfterMs: 600_000 }] },
        }),
      );
      backend = await spec.create({ STEADFAST_CONFIG: configFile });
      server = await startTestServer(backend);
      const tenant = await server.services.tenants.create('acme', 'Acme');
      token = (await server.services.adminTokens.create(tenant.id, 'admin')).token;
      person = await adminPersonSession(server.services, 'acme');
    });
    afterAll(async () => {
      await server?.close();
      await backend?.cleanup();
      await gateway?.close();
    });

    it('onboards a new hire with no password: a one-time TAP signs them in to register a method', async () => {
      const created = await call('POST', '/api/v1/admin/users', { username: 'Nina', email: 'nina@example.test' });
      expect(created.status).toBe(201);
      expect(created.body).toMatchObject({ username: 'nina', status: 'active', admin: false, breakGlass: false });

      const tooShort = await call('POST', `/api/v1/admin/users/${created.body.id}/tap`, { minutes: 5 });
      expect(tooShort.status).toBe(400);
      expect(tooShort.body.detail).toMatch(/from 10 to 480 minutes/);
      const tap = await call('POST', `/api/v1/admin/users/${created.body.id}/tap`, { minutes: 60, oneTime: true });
      expect(tap.status).toBe(201);
      expect(tap.headers.get('cache-control')).toBe('no-store');
      expect(tap.body.code).toMatch(/^[0-9A-Z]{4}(-[0-9A-Z]{4}){3}$/);
      expect(Date.parse(tap.body.expiresAt) - Date.now()).toBeGreaterThan(59 * 60_000);

      const wrong = await call('POST', '/api/v1/t/acme/signin', { username: 'nina', tap: 'AAAA-BBBB-CCCC-DDDD' }, undefined);
      expect(wrong.status).toBe(401);
      expect(wrong.body.type).toMatch(/\/invalid-credentials$/);
      // Typed in lower case without dashes, as people do.
      const start = await call('POST', '/api/v1/t/acme/signin', { username: 'nina', tap: tap.body.code.toLowerCase().replace(/-/g, ' ') }, undefined);
      expect(start.body).toMatchObject({ state: 'registration_required', flow: null });
      const session = start.body.session.token as string;
      const totp = await call('POST', '/api/v1/me/methods', { type: 'totp' }, session);
      await call('POST', `/api/v1/me/methods/${totp.body.id}/confirm`, { code: totpCode(totp.body.secret, now()) }, session);
      expect((await call('GET', '/api/v1/me', undefined, session)).body.session).toMatchObject({ scope: 'full', amr: expect.arrayContaining(['tap', 'mfa']) });

      const reused = await call('POST', '/api/v1/t/acme/signin', { username: 'nina', tap: tap.body.code }, undefined);
      expect(reused.status).toBe(401);
      const audit = await call('GET', `/api/v1/admin/audit?user=${created.body.id}`);
      expect(audit.body.items.map((e: { action: string }) => e.action)).toEqual(['method.added', 'tap.used', 'tap.issued', 'user.created']);
      expect(JSON.stringify(audit.body)).not.toContain(tap.body.code);
    });

    it('offers a TAP as a second factor while it is valid, keeps only the newest, and revokes it', async () => {
      const { id } = await userWithTotp('omar');
      const first = await call('POST', `/api/v1/admin/users/${id}/tap`, { minutes: 30, oneTime: false });
      const second = await call('POST', `/api/v1/admin/users/${id}/tap`, { minutes: 30, oneTime: false });
      const detail = await call('GET', `/api/v1/admin/users/${id}`);
      expect(detail.body.accessPass).toMatchObject({ oneTime: false, uses: 0, createdBy: expect.stringMatching(/^admin-token:/) });

      for (let i = 0; i < 2; i++) {
        const { flow, methods } = (await call('POST', '/api/v1/t/acme/signin', { username: 'omar', password: PASSWORD }, undefined)).body;
        expect(methods.map((m: { type: string }) => m.type)).toEqual(['totp', 'tap']);
        expect((await call('POST', `/api/v1/t/acme/signin/${flow}/verify`, { method: 'tap', code: first.body.code }, undefined)).status).toBe(401);
        const ok = await call('POST', `/api/v1/t/acme/signin/${flow}/verify`, { method: 'tap', code: second.body.code }, undefined);
        expect(ok.body.state).toBe('complete');
        expect((await call('GET', '/api/v1/me', undefined, ok.body.session.token)).body.session.amr).toEqual(['pwd', 'tap', 'mfa']);
      }

      expect((await call('DELETE', `/api/v1/admin/users/${id}/tap`)).status).toBe(204);
      expect((await call('DELETE', `/api/v1/admin/users/${id}/tap`)).status).toBe(404);
      const after = await call('POST', '/api/v1/t/acme/signin', { username: 'omar', password: PASSWORD }, undefined);
      expect(after.body.methods.map((m: { type: string }) => m.type)).toEqual(['totp']);
    });

    it('resets methods: every method and session gone, registration forced, with a pass or a new password, not the old one', async () => {
      const { id, session } = await userWithTotp('pia');
      const reset = await call('POST', `/api/v1/admin/users/${id}/reset-methods`);
      expect(reset.body).toEqual({ removed: 1, sessionsEnded: 1 });
      expect((await call('GET', '/api/v1/me', undefined, session)).status).toBe(401);
      expect((await call('GET', `/api/v1/admin/users/${id}`)).body).toMatchObject({ user: { mustRegister: true }, methods: [] });
      const refused = await call('POST', '/api/v1/t/acme/signin', { username: 'pia', password: PASSWORD }, undefined);
      expect(refused.status).toBe(403);
      expect(refused.body.type).toMatch(/\/password-cannot-register$/);
      // A password the administrator sets after the reset registers.
      await new Promise((r) => setTimeout(r, 2));
      expect((await call('PATCH', `/api/v1/admin/users/${id}`, { password: 'a new one from the helpdesk' })).status).toBe(200);
      const again = await call('POST', '/api/v1/t/acme/signin', { username: 'pia', password: 'a new one from the helpdesk' }, undefined);
      expect(again.body).toMatchObject({ state: 'registration_required', methods: [] });
    });

    it('resets methods and issues a pass in one call; the pass registers', async () => {
      const { id } = await userWithTotp('pia2');
      const reset = await call('POST', `/api/v1/admin/users/${id}/reset-methods`, { pass: { minutes: 30, oneTime: true } });
      expect(reset.body).toEqual({ removed: 1, sessionsEnded: 1, pass: { code: expect.any(String), expiresAt: expect.any(String), oneTime: true } });
      expect(reset.headers.get('cache-control')).toBe('no-store');
      await new Promise((r) => setTimeout(r, 2));
      const withPass = await call('POST', '/api/v1/t/acme/signin', { username: 'pia2', tap: reset.body.pass.code }, undefined);
      expect(withPass.body).toMatchObject({ state: 'registration_required' });
      expect((await call('POST', `/api/v1/admin/users/${id}/reset-methods`, { pass: { minutes: 0 } })).status).toBe(400);
    });

    it('revokes sessions and disables an account', async () => {
      const { id, session } = await userWithTotp('quinn');
      expect((await call('POST', `/api/v1/admin/users/${id}/revoke-sessions`)).body).toEqual({ sessionsEnded: 1 });
      expect((await call('GET', '/api/v1/me', undefined, session)).status).toBe(401);
      expect((await call('PATCH', `/api/v1/admin/users/${id}`, { status: 'disabled', phone: '+447700900111' })).body).toMatchObject({
        status: 'disabled',
        phone: '+447700900111',
      });
      const refused = await call('POST', '/api/v1/t/acme/signin', { username: 'quinn', password: PASSWORD }, undefined);
      expect(refused.body.type).toMatch(/\/account-disabled$/);
      expect((await call('POST', `/api/v1/admin/users/${id}/tap`, {})).status).toBe(409);
      expect((await call('PATCH', `/api/v1/admin/users/${id}`, { username: 'other' })).status).toBe(400);
    });

    it('filters the sign-in log and exports it as CSV, defusing formulas', async () => {
      await call('POST', '/api/v1/admin/users', { username: '=HYPERLINK("x")', password: PASSWORD });
      await call('POST', '/api/v1/t/acme/signin', { username: '=HYPERLINK("x")', password: 'wrong password!' }, undefined);
      const failures = await call('GET', '/api/v1/admin/signins?outcome=failure&user=%3DHYPERLINK(%22x%22)');
      expect(failures.body.items).toHaveLength(1);
      expect(failures.body.items[0]).toMatchObject({ outcome: 'failure', reason: 'invalid_credentials', username: '=HYPERLINK("x")' });
      const byMethod = await call('GET', '/api/v1/admin/signins?method=tap');
      expect(byMethod.body.items.length).toBeGreaterThan(0);
      expect(byMethod.body.items.every((e: { method: string }) => e.method === 'tap')).toBe(true);
      const future = await call('GET', `/api/v1/admin/signins?since=${encodeURIComponent(new Date(Date.now() + 3600_000).toISOString())}`);
      expect(future.body.items).toEqual([]);
      const paged = await call('GET', '/api/v1/admin/signins?limit=2');
      expect(paged.body.items).toHaveLength(2);
      const next = await call('GET', `/api/v1/admin/signins?limit=2&cursor=${paged.body.next}`);
      expect(next.body.items[0].id).not.toBe(paged.body.items[1].id);

      const csv = await fetch(`${server.url}/api/v1/admin/signins?format=csv&outcome=failure`, { headers: { authorization: `Bearer ${token}` } });
      expect(csv.headers.get('content-type')).toMatch(/^text\/csv/);
      const lines = (await csv.text()).trim().split('\r\n');
      expect(lines[0]).toBe('id,at,userId,username,ip,userAgent,app,step,method,outcome,reason,reported');
      expect(lines.some((l) => l.includes(`"'=HYPERLINK(""x"")"`))).toBe(true);
      expect(lines.length - 1).toBe((await call('GET', '/api/v1/admin/signins?outcome=failure&limit=500')).body.items.length);
    });

    it('validates the policy, naming every problem, and applies a valid one', async () => {
      const bad = await asPerson('PUT', '/api/v1/admin/policy', {
        allowedMethods: ['totp', 'carrier-pigeon'],
        tap: { minMinutes: 5, defaultMinutes: 9999 },
        failMode: 'open',
        colour: 'red',
        retention: { signinEventDays: 0, auditDays: 7, forever: true },
      });
      expect(bad.status).toBe(400);
      expect(bad.body.type).toMatch(/\/invalid-policy$/);
      expect(bad.body.problems).toEqual(
        expect.arrayContaining([
          '"colour" is not a policy setting',
          expect.stringMatching(/^allowedMethods: "carrier-pigeon" is not/),
          'tap.minMinutes must be a whole number from 10 to 43200',
          'tap.defaultMinutes must lie between tap.minMinutes and tap.maxMinutes',
          expect.stringMatching(/^failMode must be "closed" or "tap-only"/),
          'retention.signinEventDays must be a whole number from 1 to 3650',
          'retention.auditDays must be a whole number from 30 to 3650',
          '"retention.forever" is not a policy setting',
        ]),
      );
      expect((await call('GET', '/api/v1/admin/policy')).body.retention).toEqual({ signinEventDays: 90, auditDays: 400 });
      const ok = await asPerson('PUT', '/api/v1/admin/policy', { tap: { maxMinutes: 20 * 24 * 60 }, lockout: { accountFailures: 50 } });
      expect(ok.body).toMatchObject({
        mfaRequired: true,
        tap: { maxMinutes: 28800 },
        lockout: { accountFailures: 50, blockMinutes: 60 },
        failMode: 'closed',
        retention: { signinEventDays: 90, auditDays: 400 },
      });
      expect((await call('GET', '/api/v1/admin/policy')).body.tap.maxMinutes).toBe(28800);
      const entry = (await call('GET', '/api/v1/admin/audit?action=policy.changed')).body.items[0];
      expect(entry.details).toMatchObject({ changed: ['tap', 'lockout'], before: { tap: { maxMinutes: 480 } }, after: { tap: { maxMinutes: 28800 } } });
      const kept = await asPerson('PUT', '/api/v1/admin/policy', { retention: { signinEventDays: 30 } });
      expect(kept.body.retention).toEqual({ signinEventDays: 30, auditDays: 400 });
      await asPerson('PUT', '/api/v1/admin/policy', { retention: { signinEventDays: 90 } });
    });

    it('names the users a policy would leave with no usable method, before it is saved and after', async () => {
      const u = await userWithTotp('stranded-totp');
      const before = await call('GET', '/api/v1/admin/policy/stranded?allowedMethods=webauthn,%20sms');
      expect(before.status).toBe(200);
      expect(before.body.allowedMethods).toEqual(['webauthn', 'sms']);
      expect(before.body.users).toEqual(expect.arrayContaining([{ id: u.id, username: 'stranded-totp' }]));
      expect(before.body.count).toBe(before.body.users.length);
      // The typed client asks the same.
      const client = new SteadfastClient({ baseUrl: server.url, token });
      expect(await client.admin.strandedByPolicy(['webauthn', 'sms'])).toEqual(before.body);
      // Under the policy now (every type allowed), nobody.
      expect((await call('GET', '/api/v1/admin/policy/stranded')).body).toMatchObject({ count: 0, users: [] });
      const unknown = await call('GET', '/api/v1/admin/policy/stranded?allowedMethods=totp,carrier-pigeon');
      expect(unknown.status).toBe(400);
      expect(unknown.body.type).toMatch(/\/invalid-request$/);
      expect(unknown.body.detail).toContain('carrier-pigeon');
      // Another tenant's administrator sees only their own users.
      const other = await server.services.tenants.create('acme-stranded-other');
      const otherToken = (await server.services.adminTokens.create(other.id, 'admin')).token;
      expect((await call('GET', '/api/v1/admin/policy/stranded?allowedMethods=webauthn', undefined, otherToken)).body).toMatchObject({ count: 0, users: [] });
    });

    it('stores every policy change as a version for everyone at once, and refuses one while a policy canary bakes', async () => {
      const before = (await call('GET', '/api/v1/admin/policy/versions')).body.history.length as number;
      const changed = await asPerson('PUT', '/api/v1/admin/policy', { rememberedDeviceDays: 14 });
      expect(changed.status).toBe(200);
      expect(changed.body.rememberedDeviceDays).toBe(14);
      const versions = (await call('GET', '/api/v1/admin/policy/versions')).body;
      expect(versions.history).toHaveLength(before + 1);
      expect(versions.history[0]).toMatchObject({
        state: 'promoted',
        canaryPercent: 0,
        by: expect.stringMatching(/^user:/),
        policy: { rememberedDeviceDays: 14 },
        changes: [{ path: 'rememberedDeviceDays', after: '14' }],
      });
      expect(versions.lastGood.version).toBe(versions.history[0].version);
      const entry = (await call('GET', '/api/v1/admin/audit?action=policy.changed')).body.items[0];
      expect(entry.details).toMatchObject({ version: versions.history[0].version, changed: ['rememberedDeviceDays'], changes: ['rememberedDeviceDays'] });
      // A policy that does not validate makes no version.
      expect((await asPerson('PUT', '/api/v1/admin/policy', { rememberedDeviceDays: -1 })).status).toBe(400);
      expect((await call('GET', '/api/v1/admin/policy/versions')).body.history).toHaveLength(before + 1);

      const canary = await asPerson('POST', '/api/v1/admin/policy/versions', { policy: { rememberedDeviceDays: 30 }, canaryPercent: 10, bakeSeconds: 600 });
      expect(canary.status).toBe(201);
      const refused = await asPerson('PUT', '/api/v1/admin/policy', { rememberedDeviceDays: 7 });
      expect(refused.status).toBe(409);
      expect(refused.body).toMatchObject({
        type: expect.stringMatching(/\/canary-in-progress$/),
        detail: expect.stringContaining(`version ${canary.body.version} is on its canary (10% of users)`),
        canary: { version: canary.body.version, percent: 10, bakeEndsAt: expect.any(String) },
      });
      expect(refused.body.detail).toContain('POST /api/v1/admin/policy/rollback');
      // A second canary is refused the same way; nothing changed meanwhile.
      const second = await asPerson('POST', '/api/v1/admin/policy/versions', { policy: { rememberedDeviceDays: 7 }, canaryPercent: 5 });
      expect(second.status).toBe(409);
      expect(second.body.type).toMatch(/\/canary-in-progress$/);
      expect((await call('GET', '/api/v1/admin/policy')).body.rememberedDeviceDays).toBe(14);

      // Rolled back, the change goes through.
      expect((await asPerson('POST', '/api/v1/admin/policy/rollback', {})).body).toMatchObject({ version: canary.body.version, state: 'rolled-back' });
      const after = await asPerson('PUT', '/api/v1/admin/policy', { rememberedDeviceDays: 7 });
      expect(after.status).toBe(200);
      expect((await call('GET', '/api/v1/admin/policy')).body.rememberedDeviceDays).toBe(7);
      // Back to the default for the tests that follow.
      await asPerson('PUT', '/api/v1/admin/policy', { rememberedDeviceDays: 0 });
    });

    it('when every method of a user is down, fails closed with a clear message, or asks only for a TAP under tap-only', async () => {
      const created = await call('POST', '/api/v1/admin/users', { username: 'rosa', password: PASSWORD });
      const start = await call('POST', '/api/v1/t/acme/signin', { username: 'rosa', password: PASSWORD }, undefined);
      const session = start.body.session.token as string;
      const phone = await call('POST', '/api/v1/me/methods', { type: 'sms', to: '+447700900777' }, session);
      await call('POST', `/api/v1/me/methods/${phone.body.id}/confirm`, { code: codeIn(gateway.received.at(-1)) }, session);

      gateway.behave({ kind: 'fail', status: 503 });
      const { flow } = (await call('POST', '/api/v1/t/acme/signin', { username: 'rosa', password: PASSWORD }, undefined)).body;
      expect((await call('POST', `/api/v1/t/acme/signin/${flow}/challenge`, { method: 'sms' }, undefined)).status).toBe(409);

      const closed = await call('POST', '/api/v1/t/acme/signin', { username: 'rosa', password: PASSWORD }, undefined);
      expect(closed.status).toBe(503);
      expect(closed.headers.get('retry-after')).toBe('60');
      expect(closed.body).toMatchObject({ type: expect.stringMatching(/\/no-usable-method$/), title: expect.stringContaining('Temporary Access Pass') });
      expect(closed.body.session).toBeUndefined();

      await asPerson('PUT', '/api/v1/admin/policy', { failMode: 'tap-only' });
      const tapOnly = await call('POST', '/api/v1/t/acme/signin', { username: 'rosa', password: PASSWORD }, undefined);
      expect(tapOnly.body.state).toBe('factor_required');
      expect(tapOnly.body.methods.map((m: { type: string; available: boolean }) => [m.type, m.available])).toEqual([
        ['sms', false],
        ['tap', true],
      ]);
      const pass = await call('POST', `/api/v1/admin/users/${created.body.id}/tap`, { minutes: 30 });
      const verify = await call('POST', `/api/v1/t/acme/signin/${tapOnly.body.flow}/verify`, { method: 'tap', code: pass.body.code }, undefined);
      expect(verify.body.state).toBe('complete');
      await asPerson('PUT', '/api/v1/admin/policy', { failMode: 'closed' });
      gateway.behave({ kind: 'ok' });
    });

    it('raises an alert entry and a metric at every sign-in of a break-glass account', async () => {
      // Break-glass accounts are made and handled by a person or the command line, never by a token.
      const acme = (await server.services.tenants.findBySlug('acme'))!;
      await server.services.admin.createUser(acme, 'cli', { username: 'emergency-1', password: PASSWORD, breakGlass: true });
      await asPerson('PUT', '/api/v1/admin/policy', { mfaRequired: false });
      const signin = await call('POST', '/api/v1/t/acme/signin', { username: 'emergency-1', password: PASSWORD }, undefined);
      expect(signin.body.state).toBe('complete');
      await asPerson('PUT', '/api/v1/admin/policy', { mfaRequired: true });
      const alerts = await call('GET', '/api/v1/admin/audit?action=break-glass.signin');
      expect(alerts.body.items[0]).toMatchObject({ details: { username: 'emergency-1', method: 'password' } });
      // And after a second factor.
      const glass = await userWithTotp('emergency-2', true);
      await server.services.admin.updateUser(acme, 'cli', glass.id, { breakGlass: true });
      const pass = await server.services.admin.issuePass(acme, 'cli', glass.id, { minutes: 30 });
      const { flow } = (await call('POST', '/api/v1/t/acme/signin', { username: 'emergency-2', password: PASSWORD }, undefined)).body;
      expect((await call('POST', `/api/v1/t/acme/signin/${flow}/verify`, { method: 'tap', code: pass.code }, undefined)).body.state).toBe('complete');
      expect((await call('GET', '/api/v1/admin/audit?action=break-glass.signin')).body.items[0]).toMatchObject({
        details: { username: 'emergency-2', method: 'tap' },
      });
      const metrics = await fetch(`${server.url}/metrics`).then((r) => r.text());
      expect(metrics).toMatch(/steadfast_break_glass_signins_total\{tenant="acme"\} 2/);
    });

    it('registers apps and shows their secrets once', async () => {
      const oidc = await asPerson('POST', '/api/v1/admin/apps', { name: 'Wiki', kind: 'oidc', redirectUris: ['https://wiki.example.test/callback'] });
      expect(oidc.status).toBe(201);
      expect(oidc.body).toMatchObject({ id: expect.any(String), clientId: expect.stringMatching(/^sfc_/), clientSecret: expect.any(String) });
      const key = await asPerson('POST', '/api/v1/admin/apps', { name: 'VPN', kind: 'api' });
      expect(key.body).toMatchObject({ apiKey: expect.stringMatching(/^sfk_/) });
      expect((await asPerson('POST', '/api/v1/admin/apps', { name: 'Bad', kind: 'oidc', redirectUris: ['http://evil.example/cb'] })).status).toBe(400);
      const list = await call('GET', '/api/v1/admin/apps');
      expect(list.body.map((a: { name: string }) => a.name)).toEqual(['Wiki', 'VPN']);
      expect(JSON.stringify(list.body)).not.toContain(oidc.body.clientSecret);
      expect((await asPerson('DELETE', `/api/v1/admin/apps/${key.body.id}`)).status).toBe(204);
      expect((await server.services.apps.authenticateApiKey(key.body.apiKey)) === undefined).toBe(true);
    });

    it('lets an administrator user in with their session, and nobody else', async () => {
      const { session } = await userWithTotp('sam');
      expect((await call('GET', '/api/v1/admin/users', undefined, session)).status).toBe(403);
      const admin = await userWithTotp('tess', true);
      // An administrator is made by a person or the command line, never by a token (security-review.test.ts).
      expect((await call('PATCH', `/api/v1/admin/users/${admin.id}`, { admin: true })).status).toBe(403);
      await server.services.admin.updateUser((await server.services.tenants.findBySlug('acme'))!, 'cli', admin.id, { admin: true });
      const { flow } = (await call('POST', '/api/v1/t/acme/signin', { username: 'tess', password: PASSWORD }, undefined)).body;
      clockOffset += 30_000;
      const full = await call('POST', `/api/v1/t/acme/signin/${flow}/verify`, { method: 'totp', code: totpCode(admin.secret, now()) }, undefined);
      const list = await call('GET', '/api/v1/admin/users?q=TESS', undefined, full.body.session.token);
      expect(list.body.items.map((u: { username: string }) => u.username)).toEqual(['tess']);
      // A change with a session signed in more than 10 minutes ago needs a new sign-in; reading does not.
      await server.services.durable.db
        .updateTable('sessions')
        .set((eb) => ({ auth_time: eb('auth_time', '-', 11 * 60_000) }))
        .where('user_id', '=', admin.id)
        .execute();
      const stale = await call('PATCH', `/api/v1/admin/users/${admin.id}`, { email: 'tess@example.test' }, full.body.session.token);
      expect(stale.status).toBe(403);
      expect(stale.body.type).toMatch(/\/reauthentication-required$/);
      expect((await call('GET', '/api/v1/admin/users?q=tess', undefined, full.body.session.token)).status).toBe(200);
      expect((await call('GET', '/api/v1/admin/users', undefined, 'sfa_not-a-token')).status).toBe(401);
    });

    it('keeps an audit chain that notices an edited entry', async () => {
      expect(await server.services.audit.verify()).toMatchObject({ intact: true });
      const tenant = (await server.services.tenants.findBySlug('acme'))!;
      const [victim] = await server.services.audit.list(tenant.id, { limit: 1, action: 'tap.issued' });
      await server.services.durable.db.updateTable('audit_log').set({ details: '{"forged":true}' }).where('id', '=', victim!.id).execute();
      expect(await server.services.audit.verify(tenant.id)).toMatchObject({
        intact: false,
        seq: victim!.seq,
        id: victim!.id,
        reason: 'its contents do not match its hash',
      });
    });
  });
}
