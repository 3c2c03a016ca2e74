import fc from 'fast-check';
import { adminPersonSession } from '../helpers/admin-person.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends, type Backend } from '../helpers/backends.ts';
import { api, startTestServer, type TestServer } from '../helpers/test-server.ts';
import { totpCode } from '../helpers/totp.ts';
import { DEFAULT_POLICY } from '../../src/directory/policy.ts';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { codeIn, startWebhookReceiver, type StandIn } from '../helpers/vendor-standins.ts';

const GATEWAY_SECRET = 'fuzz-gateway-secret-0123';

/**
 * Property: whatever a client sends (any JSON, any text, any content type, any
 * path segment, any token), the answer is never a 5xx, and every error is
 * problem+json with a type, a title and no stack trace.
 */
const RUNS = Number(process.env.STEADFAST_FUZZ_RUNS ?? 120);
/**
 * Every property draws from this seed: a failure names it (and fast-check's
 * own seed and path), and `STEADFAST_FUZZ_SEED=<n>` replays the whole file.
 * Nothing below draws randomness any other way (no `fc.sample`, no Math.random).
 */
const SEED = Number(process.env.STEADFAST_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
fc.configureGlobal({ seed: SEED });
process.stdout.write(`hostile-input: STEADFAST_FUZZ_SEED=${SEED}\n`);

const POLLUTING_JSON = [
  '{"__proto__":{"polluted":true}}',
  '{"constructor":{"prototype":{"polluted":true}}}',
  '{"username":"x","password":"y","__proto__":{"admin":true,"polluted":true}}',
  '{"method":"totp","code":"123456","constructor":{"prototype":{"polluted":true}}}',
  '{"lockout":{"__proto__":{"polluted":true}},"tap":{"constructor":{"prototype":{"polluted":true}}}}',
  '[{"__proto__":{"polluted":true}}]',
];

/** Whether anything reached Object.prototype (the server runs in this process, so it would show here). */
const prototypeIsClean = () => !('polluted' in Object.prototype) && !('admin' in Object.prototype) && ({} as Record<string, unknown>).polluted === undefined;

const anyJson = fc.oneof(
  fc.jsonValue(),
  fc.record({ username: fc.jsonValue(), password: fc.jsonValue() }, { requiredKeys: [] }),
  fc.record({ username: fc.string({ maxLength: 300 }), password: fc.string({ maxLength: 1100 }) }),
  fc.record(
    {
      method: fc.oneof(fc.string(), fc.constantFrom('totp', 'recovery-codes', 'tap', 'passkey')),
      code: fc.oneof(fc.string({ maxLength: 70 }), fc.jsonValue()),
    },
    { requiredKeys: [] },
  ),
  fc.record({ type: fc.oneof(fc.string(), fc.constantFrom('totp', 'recovery-codes', 'sms', 'webauthn')), label: fc.jsonValue() }, { requiredKeys: [] }),
  fc.record({ label: fc.oneof(fc.string({ maxLength: 120 }), fc.jsonValue()), default: fc.jsonValue() }, { requiredKeys: [] }),
  fc.record(
    { currentPassword: fc.oneof(fc.string({ maxLength: 40 }), fc.jsonValue()), newPassword: fc.oneof(fc.string({ maxLength: 40 }), fc.jsonValue()) },
    { requiredKeys: [] },
  ),
  fc.record({ kind: fc.oneof(fc.constantFrom('passkey', 'security-key'), fc.jsonValue()) }, { requiredKeys: [] }),
  // Admin bodies: users, passes, policy, apps; and NUL characters, which no text column takes.
  fc.record(
    {
      username: fc.oneof(fc.string({ maxLength: 300 }), fc.constant('a\u0000b')),
      password: fc.oneof(fc.string({ maxLength: 40 }), fc.jsonValue()),
      email: fc.oneof(fc.string({ maxLength: 40 }), fc.constant(null), fc.emailAddress()),
      phone: fc.oneof(fc.string({ maxLength: 40 }), fc.constant(null)),
      status: fc.oneof(fc.constantFrom('active', 'disabled'), fc.string()),
      admin: fc.jsonValue(),
      breakGlass: fc.boolean(),
      minutes: fc.oneof(fc.integer(), fc.double(), fc.jsonValue()),
      oneTime: fc.jsonValue(),
      tap: fc.oneof(fc.string({ maxLength: 70 }), fc.jsonValue()),
    },
    { requiredKeys: [] },
  ),
  fc.record(
    {
      mfaRequired: fc.jsonValue(),
      allowedMethods: fc.oneof(fc.array(fc.constantFrom('totp', 'sms', 'tap', 'x')), fc.jsonValue()),
      tap: fc.oneof(
        fc.record({ minMinutes: fc.jsonValue(), maxMinutes: fc.integer(), defaultMinutes: fc.integer(), oneTimeDefault: fc.jsonValue() }, { requiredKeys: [] }),
        fc.jsonValue(),
      ),
      lockout: fc.jsonValue(),
      failMode: fc.oneof(fc.constantFrom('closed', 'tap-only', 'open'), fc.jsonValue()),
      rememberedDeviceDays: fc.jsonValue(),
    },
    { requiredKeys: [] },
  ),
  fc.record(
    {
      username: fc.constantFrom('fred', 'x', 'FRED'),
      method: fc.constantFrom('totp', 'sms', 'tap', 'recovery-codes', 'webauthn', 'nope'),
      code: fc.oneof(fc.string({ maxLength: 10 }), fc.jsonValue()),
      txid: fc.oneof(fc.string({ maxLength: 70 }), fc.jsonValue()),
    },
    { requiredKeys: [] },
  ),
  fc.record(
    {
      name: fc.oneof(fc.string({ maxLength: 210 }), fc.jsonValue()),
      kind: fc.constantFrom('oidc', 'api', 'x'),
      redirectUris: fc.oneof(fc.array(fc.webUrl()), fc.array(fc.string()), fc.jsonValue()),
      public: fc.jsonValue(),
    },
    { requiredKeys: [] },
  ),
  fc.record(
    {
      type: fc.constantFrom('sms', 'voice', 'email'),
      to: fc.oneof(fc.string({ maxLength: 340 }), fc.jsonValue(), fc.stringMatching(/^\+[1-9][0-9]{7,14}$/), fc.emailAddress()),
      method: fc.constantFrom('sms', 'voice', 'email'),
    },
    { requiredKeys: [] },
  ),
  // WebAuthn responses: right shape, wrong bytes; and wrong shape.
  fc.record(
    {
      method: fc.constantFrom('passkey', 'webauthn'),
      type: fc.constant('webauthn'),
      assertion: fc.record({
        id: fc.base64String({ minLength: 4, maxLength: 60 }),
        rawId: fc.base64String({ maxLength: 60 }),
        type: fc.constant('public-key'),
        response: fc.record({
          clientDataJSON: fc.base64String({ maxLength: 200 }),
          authenticatorData: fc.base64String({ maxLength: 200 }),
          signature: fc.base64String({ maxLength: 100 }),
          userHandle: fc.base64String({ maxLength: 40 }),
        }),
      }),
      attestation: fc.record({
        id: fc.base64String({ minLength: 4, maxLength: 60 }),
        rawId: fc.base64String({ maxLength: 60 }),
        type: fc.constant('public-key'),
        response: fc.record({ clientDataJSON: fc.base64String({ maxLength: 200 }), attestationObject: fc.base64String({ maxLength: 300 }) }),
      }),
    },
    { requiredKeys: [] },
  ),
  fc.record({ method: fc.constantFrom('passkey', 'webauthn'), assertion: fc.jsonValue(), attestation: fc.jsonValue() }, { requiredKeys: [] }),
);

const anyBody = fc.oneof(
  anyJson.map((v) => ({ contentType: 'application/json', body: JSON.stringify(v) })),
  fc.string({ maxLength: 500 }).map((s) => ({ contentType: 'application/json', body: s })),
  fc
    .tuple(fc.constantFrom('text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data', 'application/xml', ''), fc.string({ maxLength: 500 }))
    .map(([contentType, s]) => ({ contentType, body: s })),
  // Prototype pollution: `__proto__` and `constructor` keys at the top and nested, in JSON and in forms.
  fc.constantFrom(...POLLUTING_JSON).map((body) => ({ contentType: 'application/json', body })),
  fc
    .constantFrom('__proto__[polluted]=yes&username=x', 'constructor[prototype][polluted]=yes', '__proto__=x&_csrf=x')
    .map((body) => ({ contentType: 'application/x-www-form-urlencoded', body })),
  fc.constant({ contentType: 'application/json', body: 'x'.repeat(70 * 1024) }),
);

const segment = fc.oneof(fc.string({ maxLength: 80 }), fc.constantFrom('demo', 'fuzz', '..', '%00', '%', 'a/b', ' ', 'x'.repeat(300), 'nul\u0000inside'));

for (const spec of backends) {
  describe.runIf(await spec.available())(`hostile input never causes a 5xx on ${spec.name}`, () => {
    let backend: Backend;
    let server: TestServer;
    let token = '';
    let methodId = '';
    let eventId = '';
    let csrfCookie = '';
    let csrfToken = '';
    let gateway: StandIn;

    beforeAll(async () => {
      // Every channel goes to a local gateway, so code sends reach the providers too.
      gateway = await startWebhookReceiver(GATEWAY_SECRET);
      const provider = { name: 'gateway', type: 'webhook', url: gateway.url, secret: GATEWAY_SECRET };
      const configFile = join(tmpdir(), `steadfast-fuzz-${process.pid}.json`);
      writeFileSync(configFile, JSON.stringify({ delivery: { sms: [provider], voice: [provider], email: [provider] } }));
      backend = await spec.create({ STEADFAST_CONFIG: configFile });
      // Generous limits so the fuzzer keeps reaching the handlers instead of the 429 in front of them.
      server = await startTestServer(backend, { limits: { accountFailures: 1e6, accountSourceFailures: 1e6, sourceFailures: 1e6 } });
      const tenant = await server.services.tenants.create('fuzz');
      await server.services.users.create(tenant.id, { username: 'fred', passwordHash: await server.services.hasher.hash('fred password') });
      const first = await api(server.url, 'POST', '/api/v1/t/fuzz/signin', { username: 'fred', password: 'fred password' });
      const enrol = await api(server.url, 'POST', '/api/v1/me/methods', { type: 'totp' }, first.body.session.token);
      await api(server.url, 'POST', `/api/v1/me/methods/${enrol.body.id}/confirm`, { code: totpCode(enrol.body.secret, Date.now()) }, first.body.session.token);
      token = first.body.session.token;
      methodId = enrol.body.id;
      // An administrator, so the console's forms are reached too.
      await server.services.users.update(tenant.id, (await server.services.users.findByUsername(tenant.id, 'fred'))!.id, { isAdmin: true });
      const phone = await api(server.url, 'POST', '/api/v1/me/methods', { type: 'sms', to: '+447700900999' }, token);
      await api(server.url, 'POST', `/api/v1/me/methods/${phone.body.id}/confirm`, { code: codeIn(gateway.received.at(-1)) }, token);
      eventId = (await api(server.url, 'GET', '/api/v1/me/signins', undefined, token)).body.items[0].id;
      // A real CSRF pair, so hostile forms also reach the handlers behind the CSRF check.
      const res = await fetch(`${server.url}/t/fuzz/signin`);
      csrfCookie = /sf_csrf=[^;]+/.exec(res.headers.get('set-cookie') ?? '')![0];
      csrfToken = /name="_csrf" value="([^"]+)"/.exec(await res.text())![1]!;
    });
    afterAll(async () => {
      await server.close();
      await backend.cleanup();
      await gateway.close();
    });

    async function send(method: string, path: string, body?: { contentType: string; body: string }, headers: Record<string, string> = {}) {
      const res = await fetch(server.url + path, {
        method,
        headers: { ...(body && body.contentType ? { 'content-type': body.contentType } : {}), ...headers },
        ...(body && method !== 'GET' ? { body: body.body } : {}),
      });
      const text = await res.text();
      expect(res.status, `${method} ${path} -> ${res.status} ${text.slice(0, 300)}`).toBeLessThan(500);
      if (res.status >= 400 && path.startsWith('/api/')) {
        expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
        const problem = JSON.parse(text);
        expect(problem.type).toMatch(/^https:\/\/steadfast\.dev\/problems\/[a-z-]+$/);
        expect(typeof problem.title).toBe('string');
        expect(problem.status).toBe(res.status);
      }
      expect(text).not.toMatch(/\n\s+at .+:\d+:\d+/);
      if (res.status === 429 || res.status === 503) expect(res.headers.get('retry-after')).toBeTruthy();
      return res.status;
    }

    const enc = encodeURIComponent;

    it('POST /api/v1/t/{t}/signin', async () => {
      await fc.assert(
        fc.asyncProperty(segment, anyBody, async (t, body) => void (await send('POST', `/api/v1/t/${enc(t)}/signin`, body))),
        { numRuns: RUNS },
      );
      await fc.assert(
        fc.asyncProperty(anyBody, async (body) => void (await send('POST', '/api/v1/t/fuzz/signin', body))),
        { numRuns: RUNS },
      );
    });

    it('POST /api/v1/t/{t}/signin/{flow}/challenge and /verify', async () => {
      const flow = (await api(server.url, 'POST', '/api/v1/t/fuzz/signin', { username: 'fred', password: 'fred password' })).body.flow as string;
      await fc.assert(
        fc.asyncProperty(fc.oneof(segment, fc.constant(flow)), fc.constantFrom('challenge', 'verify'), anyBody, async (f, step, body) => {
          await send('POST', `/api/v1/t/fuzz/signin/${enc(f)}/${step}`, body);
        }),
        { numRuns: RUNS },
      );
    });

    it('POST /api/v1/t/{t}/signin/passkey and its verify', async () => {
      await fc.assert(
        fc.asyncProperty(segment, anyBody, async (t, body) => {
          const status = await send('POST', `/api/v1/t/${enc(t)}/signin/passkey`, body);
          if (t === 'fuzz' && status === 200) {
            const flow = (await api(server.url, 'POST', '/api/v1/t/fuzz/signin/passkey', {})).body.flow as string;
            await send('POST', `/api/v1/t/fuzz/signin/${flow}/verify`, body);
          }
        }),
        { numRuns: RUNS },
      );
    });

    it('self-service endpoints, with and without a valid session', async () => {
      const tokens = fc.oneof(
        fc.constant(token),
        fc.string({ maxLength: 120 }).map((s) => s.replace(/[^\x21-\x7e]/g, 'x')),
        fc.constant('sfs_' + 'A'.repeat(43)),
      );
      const routes = fc.constantFrom(
        ['GET', '/api/v1/me'],
        ['GET', '/api/v1/me/methods'],
        ['POST', '/api/v1/me/methods'],
        ['POST', `/api/v1/me/methods/ID/confirm`],
        ['POST', `/api/v1/me/methods/ID/resend`],
        ['PATCH', `/api/v1/me/methods/ID`],
        ['GET', '/api/v1/me/signins'],
        ['POST', `/api/v1/me/signins/EVENT/report`],
        ['POST', '/api/v1/me/methods/webauthn/options'],
        ['POST', '/api/v1/me/password'],
      );
      await fc.assert(
        fc.asyncProperty(routes, tokens, fc.oneof(segment, fc.constant(methodId)), anyBody, async ([method, path], tok, id, body) => {
          await send(method!, path!.replace('ID', enc(id)).replace('EVENT', enc(id === methodId ? eventId : id)), body, { authorization: `Bearer ${tok}` });
        }),
        { numRuns: RUNS * 2 },
      );
      // Never the real method: removing it would end the property's setting.
      await fc.assert(
        fc.asyncProperty(segment, async (id) => void (await send('DELETE', `/api/v1/me/methods/${enc(id)}`, undefined, { authorization: `Bearer ${token}` }))),
        { numRuns: RUNS },
      );
    });

    it('admin endpoints, with and without a valid admin token', async () => {
      const tenant = (await server.services.tenants.findBySlug('fuzz'))!;
      const admin = (await server.services.adminTokens.create(tenant.id, 'admin')).token;
      // An administrator's own session reaches what a token may not (the policy, apps).
      const person = await adminPersonSession(server.services, 'fuzz');
      const fred = (await server.services.users.findByUsername(tenant.id, 'fred'))!.id;
      const appKey = (await server.services.apps.create(tenant.id, { name: 'Fuzz app', kind: 'api' })).apiKey!;
      const tokens = fc.oneof(
        fc.constant(admin),
        fc.constant(person),
        fc.constant(token),
        fc.constant(appKey),
        fc.string({ maxLength: 80 }).map((s) => s.replace(/[^\x21-\x7e]/g, 'x')),
        fc.constant('sfa_' + 'A'.repeat(43)),
      );
      const routes = fc.constantFrom(
        ['GET', '/api/v1/admin/users?q=Q&limit=L&after=Q'],
        ['POST', '/api/v1/admin/users'],
        ['GET', '/api/v1/admin/users/ID'],
        ['PATCH', '/api/v1/admin/users/ID'],
        ['POST', '/api/v1/admin/users/ID/tap'],
        ['DELETE', '/api/v1/admin/users/ID/tap'],
        ['POST', '/api/v1/admin/users/ID/revoke-sessions'],
        ['GET', '/api/v1/admin/signins?user=Q&outcome=Q&method=Q&since=Q&until=Q&limit=L&cursor=Q&format=Q'],
        ['GET', '/api/v1/admin/audit?limit=L&before=L&user=Q&action=Q'],
        ['GET', '/api/v1/admin/policy'],
        ['GET', '/api/v1/admin/policy/stranded?allowedMethods=Q'],
        ['PUT', '/api/v1/admin/policy'],
        ['POST', '/api/v1/admin/apps'],
        ['GET', '/api/v1/admin/apps'],
        ['DELETE', '/api/v1/admin/apps/ID'],
        ['POST', '/api/v1/t/fuzz/signin'],
        ['POST', '/api/v1/app/preauth'],
        ['POST', '/api/v1/app/auth'],
        ['GET', '/api/v1/app/auth/ID'],
      );
      const text = fc.oneof(fc.string({ maxLength: 60 }), fc.constantFrom('success', 'failure', 'totp', 'csv', 'fred', '2026-11-22T00:00:00Z', '\u0000'));
      const limit = fc.oneof(fc.integer({ min: -5, max: 1000 }).map(String), fc.string({ maxLength: 6 }));
      await fc.assert(
        fc.asyncProperty(routes, tokens, fc.oneof(segment, fc.constant(fred)), text, limit, anyBody, async ([method, path], tok, id, q, l, body) => {
          // Never delete or reset fred or end his sessions: later properties rely on them.
          const target = method === 'PATCH' || method === 'POST' ? `${id}-x` : id;
          await send(
            method!,
            path!
              .replace('ID', enc(target))
              .replace(/=Q/g, `=${enc(q)}`)
              .replace(/=L/g, `=${enc(l)}`),
            body,
            { authorization: `Bearer ${tok}` },
          );
        }),
        { numRuns: RUNS * 2 },
      );
      // The policy may have changed under the fuzzer: put the default back for the properties after this one.
      await server.services.tenants.setPolicy(tenant, DEFAULT_POLICY);
    });

    it('the sign-ins query string', async () => {
      await fc.assert(
        fc.asyncProperty(fc.string({ maxLength: 20 }), fc.string({ maxLength: 250 }), async (limit, cursor) => {
          await send('GET', `/api/v1/me/signins?limit=${enc(limit)}&cursor=${enc(cursor)}`, undefined, { authorization: `Bearer ${token}` });
        }),
        { numRuns: RUNS },
      );
    });

    it('page forms', async () => {
      const pages = fc.constantFrom(
        '/t/fuzz/signin',
        '/t/fuzz/signin/method',
        '/t/fuzz/signin/verify',
        '/t/fuzz/signin/passkey',
        '/t/fuzz/signout',
        '/t/fuzz/my/security-info/totp',
        '/t/fuzz/my/security-info/webauthn',
        '/t/fuzz/my/security-info/recovery-codes',
        '/t/fuzz/my/security-info/phone',
        '/t/fuzz/my/security-info/email',
        `/t/fuzz/my/security-info/codes/${methodId}/confirm`,
        `/t/fuzz/my/security-info/codes/${methodId}/resend`,
        `/t/fuzz/my/security-info/methods/${methodId}/delete`,
        `/t/fuzz/my/security-info/methods/${methodId}/rename`,
        `/t/fuzz/my/signins/${eventId}/report`,
        '/t/fuzz/my/password',
        '/t/fuzz/signin/tap',
        '/t/fuzz/admin/users',
        `/t/fuzz/admin/users/${methodId}/tap`,
        `/t/fuzz/admin/users/${methodId}/reset-methods`,
        `/t/fuzz/admin/users/${eventId}/disable`,
        '/t/fuzz/admin/policy',
        '/t/fuzz/admin/policy/history/rollback',
        '/t/fuzz/oidc/token',
        '/t/fuzz/oidc/token/revocation',
        '/t/fuzz/oidc/session/end/confirm',
        '/t/fuzz/oidc/interaction/abcdefghijklmnop/consent',
      );
      const form = fc
        .dictionary(
          fc.constantFrom(
            'username',
            'password',
            'flow',
            'method',
            'code',
            '_csrf',
            'label',
            'assertion',
            'attestation',
            'next',
            'kind',
            'currentPassword',
            'newPassword',
            'to',
            'channel',
            'tap',
            'minutes',
            'oneTime',
            'mfaRequired',
            'allowedMethods',
            'tapMinMinutes',
            'auditDays',
            'confirm',
            'failMode',
            'version',
            'reason',
            'grant_type',
            'code',
            'client_id',
            'redirect_uri',
            'refresh_token',
            'token',
            'decision',
            'xsrf',
            'x',
          ),
          fc.string({ maxLength: 100 }),
        )
        .map((d) => ({ contentType: 'application/x-www-form-urlencoded', body: new URLSearchParams(d).toString() }));
      await fc.assert(
        fc.asyncProperty(pages, fc.oneof(form, anyBody), async (path, body) => void (await send('POST', path, body, { cookie: `sf_session=${token}` }))),
        { numRuns: RUNS },
      );
      const validCsrfForm = form.map((f) => ({ ...f, body: `${f.body}&_csrf=${encodeURIComponent(csrfToken)}` }));
      await fc.assert(
        fc.asyncProperty(pages, validCsrfForm, async (path, body) => {
          // Never sign out or report the shared session: later properties rely on it.
          if (path.endsWith('/signout') || path.includes('/report') || path.endsWith('/delete') || path.endsWith('/password')) return;
          await send('POST', path, body, { cookie: `sf_session=${token}; ${csrfCookie}` });
        }),
        { numRuns: RUNS },
      );
      await fc.assert(
        fc.asyncProperty(segment, async (t) => void (await send('GET', `/t/${enc(t)}/signin`))),
        { numRuns: RUNS / 2 },
      );
      const gets = fc.constantFrom(
        '/t/fuzz/my/signins',
        '/t/fuzz/my/security-info',
        '/t/fuzz/my/password',
        '/t/fuzz/signin',
        '/t/fuzz/signin/tap',
        '/t/fuzz/signin/verify',
        '/t/fuzz/signin/continue',
        `/t/fuzz/admin/users/${methodId}/reset-methods`,
        `/t/fuzz/admin/users/${methodId}/disable`,
        '/assets/x',
        '/t/fuzz/admin',
        '/t/fuzz/admin/signins',
        '/t/fuzz/admin/signins.csv',
        '/t/fuzz/admin/audit',
        '/t/fuzz/admin/policy',
        '/t/fuzz/admin/policy/history',
        '/t/fuzz/admin/policy/history/rollback',
        `/t/fuzz/admin/users/${methodId}`,
        '/t/fuzz/.well-known/openid-configuration',
        '/t/fuzz/oidc/auth',
        '/t/fuzz/oidc/userinfo',
        '/t/fuzz/oidc/jwks',
        '/t/fuzz/oidc/session/end',
        '/t/fuzz/oidc/interaction/abcdefghijklmnop',
        '/t/nope/oidc/auth',
      );
      await fc.assert(
        fc.asyncProperty(gets, fc.string({ maxLength: 60 }), fc.string({ maxLength: 30 }), async (path, cursor, next) => {
          const q = enc(cursor);
          await send(
            'GET',
            `${path}?cursor=${q}&next=${enc(next)}&username=${q}&q=${q}&user=${q}&outcome=${q}&method=${q}&since=${q}&until=${enc(next)}&before=${q}&client_id=${q}&response_type=${enc(next)}&redirect_uri=${q}&scope=${q}&prompt=${q}&max_age=${q}&acr_values=${q}&id_token_hint=${q}&version=${q}&done=${enc(next)}&flow=${q}&attempt=${enc(next)}`,
            undefined,
            { cookie: `sf_session=${token}` },
          );
        }),
        { numRuns: RUNS / 2 },
      );
    });

    it('keeps __proto__ and constructor keys in bodies from reaching any prototype or granting anything', async () => {
      const tenant = (await server.services.tenants.findBySlug('fuzz'))!;
      // An administrator's own session: the policy is not a token's to change, and this must reach its parsing.
      const admin = await adminPersonSession(server.services, 'fuzz');
      const raw = (method: string, path: string, body: string) =>
        fetch(server.url + path, { method, headers: { 'content-type': 'application/json', authorization: `Bearer ${admin}` }, body }).then(async (r) => ({
          status: r.status,
          body: (await r.json()) as any,
        }));
      for (const [i, extra] of ['"__proto__":{"admin":true,"breakGlass":true}', '"constructor":{"prototype":{"admin":true}}'].entries()) {
        const made = await raw('POST', '/api/v1/admin/users', `{"username":"proto-${i}",${extra}}`);
        expect(made.status).toBeLessThan(500);
        if (made.status === 201) expect(await server.services.users.get(tenant.id, made.body.id)).toMatchObject({ isAdmin: false, breakGlass: false });
      }
      const before = (await server.services.tenants.findBySlug('fuzz'))!.policy;
      const put = await raw(
        'PUT',
        '/api/v1/admin/policy',
        '{"__proto__":{"mfaRequired":false},"lockout":{"__proto__":{"accountFailures":1}},"constructor":{"prototype":{"mfaRequired":false}}}',
      );
      expect(put.status).toBeLessThan(500);
      expect((await server.services.tenants.findBySlug('fuzz'))!.policy).toEqual(before);
      expect(prototypeIsClean()).toBe(true);
    });

    // After every property above: nothing any of them sent reached Object.prototype in this process.
    it('left Object.prototype as it was', () => {
      expect(prototypeIsClean()).toBe(true);
    });
  });
}
