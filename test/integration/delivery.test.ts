import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends, type Backend } from '../helpers/backends.ts';
import { api, startTestServer, type TestServer } from '../helpers/test-server.ts';
import { totpCode } from '../helpers/totp.ts';
import { containsSecret } from '../helpers/contains-secret.ts';
import { codeIn, startSmtpStandIn, startTwilioStandIn, startWebhookReceiver, type SmtpStandIn, type StandIn } from '../helpers/vendor-standins.ts';

const PASSWORD = 'correct horse battery staple';
const TWILIO = { accountSid: 'AC0123456789abcdef', authToken: 'twilio-test-token' };
const HOOK_SECRET = 'webhook-shared-secret-0123';
const RESET_AFTER_MS = 800;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

for (const spec of backends) {
  describe.runIf(await spec.available())(`SMS, voice and email codes on ${spec.name}`, () => {
    let backend: Backend;
    let server: TestServer;
    let sms: StandIn;
    let backupSms: StandIn;
    let calls: StandIn;
    let mail: SmtpStandIn;
    /** Every problem body the suite saw, checked at the end for leaks. */
    const answers: unknown[] = [];
    /** Every code and full destination sent, which must never reach a log. */
    const secrets = new Set<string>();

    const call = async (method: string, path: string, body?: unknown, token?: string) => {
      const res = await api(server.url, method, path, body, token);
      answers.push(res.body);
      return res;
    };
    const lastCode = (standIn: { received: { text: string }[] }) => {
      const code = codeIn(standIn.received.at(-1) as never);
      secrets.add(code);
      return code;
    };

    /** A user with a password whose first method is the given phone number or address, confirmed. */
    const userWith = async (username: string, type: 'sms' | 'voice' | 'email', to: string, inbox: () => { received: { text: string }[] }) => {
      const tenant = (await server.services.tenants.findBySlug('acme'))!;
      await server.services.users.create(tenant.id, { username, passwordHash: await server.services.hasher.hash(PASSWORD) });
      const start = await call('POST', '/api/v1/t/acme/signin', { username, password: PASSWORD });
      expect(start.body.state).toBe('registration_required');
      const token = start.body.session.token as string;
      const enrol = await call('POST', '/api/v1/me/methods', { type, to }, token);
      expect(enrol.status).toBe(201);
      secrets.add(to.replace(/[\s-]/g, ''));
      const confirm = await call('POST', `/api/v1/me/methods/${enrol.body.id}/confirm`, { code: lastCode(inbox()) }, token);
      expect(confirm.body).toEqual({ id: enrol.body.id, state: 'active' });
      return { token, methodId: enrol.body.id as string };
    };

    /** Security notices counted as failed so far, all actions. */
    const noticesFailed = async () => {
      const text = await server.services.metrics.registry.getSingleMetricAsString('steadfast_security_notices_total');
      return [...text.matchAll(/outcome="failed"\} (\d+)/g)].reduce((n, m) => n + Number(m[1]), 0);
    };

    const passwordStep = async (username: string) => {
      const res = await call('POST', '/api/v1/t/acme/signin', { username, password: PASSWORD });
      expect(res.body.state).toBe('factor_required');
      return res.body as { flow: string; methods: { id: string; type: string; available: boolean; default: boolean }[] };
    };

    beforeAll(async () => {
      [sms, backupSms, calls, mail] = await Promise.all([
        startTwilioStandIn(TWILIO),
        startWebhookReceiver(HOOK_SECRET),
        startTwilioStandIn(TWILIO),
        startSmtpStandIn(),
      ]);
      const configFile = join(tmpdir(), `steadfast-delivery-${process.pid}-${spec.name}.json`);
      const breaker = { timeoutMs: 300, volumeThreshold: 2, errorPercent: 50, resetAfterMs: RESET_AFTER_MS };
      writeFileSync(
        configFile,
        JSON.stringify({
          delivery: {
            sms: [
              { name: 'primary', type: 'twilio', baseUrl: sms.url, ...TWILIO, from: '+15005550006', ...breaker },
              { name: 'backup', type: 'webhook', url: backupSms.url, secret: HOOK_SECRET, ...breaker },
            ],
            voice: [{ name: 'calls', type: 'twilio', baseUrl: calls.url, ...TWILIO, from: '+15005550006', ...breaker }],
            email: [{ name: 'mail', type: 'smtp', host: '127.0.0.1', port: mail.port, from: 'Acme sign-in <no-reply@example.test>', timeoutMs: 3000 }],
            code: { resendCooldownSeconds: 5 },
            // Every request of this file comes from one address: its source cap is above what they all send.
            limits: { perDestinationPerHour: 10, perSourcePerHour: 200 },
          },
        }),
      );
      backend = await spec.create({ STEADFAST_CONFIG: configFile, STEADFAST_PUBLIC_URL: 'https://id.example.test' });
      server = await startTestServer(backend, { logLevel: 'trace' });
      await server.services.tenants.create('acme', 'Acme');
    });
    afterAll(async () => {
      await server?.close();
      await backend?.cleanup();
      await Promise.all([sms, backupSms, calls, mail].map((s) => s?.close()));
    });

    it('enrols a phone number with a confirmation code, then signs in with a code bound to the site', async () => {
      const tenant = (await server.services.tenants.findBySlug('acme'))!;
      await server.services.users.create(tenant.id, { username: 'bob', passwordHash: await server.services.hasher.hash(PASSWORD) });
      const token = (await call('POST', '/api/v1/t/acme/signin', { username: 'bob', password: PASSWORD })).body.session.token as string;

      const bad = await call('POST', '/api/v1/me/methods', { type: 'sms', to: '0770 090' }, token);
      expect(bad.status).toBe(400);
      expect(bad.body.detail).toMatch(/country code/);

      const enrol = await call('POST', '/api/v1/me/methods', { type: 'sms', to: '+44 7700 900-123' }, token);
      expect(enrol.status).toBe(201);
      expect(enrol.body).toMatchObject({ state: 'pending', to: '+••••••••••23', delivery: { channel: 'sms', to: '+••••••••••23', resendAfterSeconds: 5 } });
      secrets.add('+447700900123');
      const message = sms.received.at(-1)!;
      expect(message.to).toBe('+447700900123');
      // The origin-bound form on the last line lets browsers fill the code in on this site only.
      expect(message.text).toMatch(/\n@id\.example\.test #[0-9]{6}$/);
      const code = lastCode(sms);

      const tooSoon = await call('POST', `/api/v1/me/methods/${enrol.body.id}/resend`, undefined, token);
      expect(tooSoon.status).toBe(429);
      expect(tooSoon.body.type).toMatch(/\/code-recently-sent$/);
      expect(Number(tooSoon.headers.get('retry-after'))).toBeGreaterThan(0);

      const wrong = await call('POST', `/api/v1/me/methods/${enrol.body.id}/confirm`, { code: code === '000000' ? '111111' : '000000' }, token);
      expect(wrong.status).toBe(401);
      const confirm = await call('POST', `/api/v1/me/methods/${enrol.body.id}/confirm`, { code }, token);
      expect(confirm.body).toEqual({ id: enrol.body.id, state: 'active' });

      const { flow, methods } = await passwordStep('bob');
      expect(methods).toEqual([{ id: enrol.body.id, type: 'sms', label: '+••••••••••23', available: true, default: true }]);
      const challenge = await call('POST', `/api/v1/t/acme/signin/${flow}/challenge`, { method: enrol.body.id });
      expect(challenge.status).toBe(200);
      expect(challenge.body).toMatchObject({ method: enrol.body.id, type: 'sms', delivery: { channel: 'sms', to: '+••••••••••23' } });
      const signinCode = lastCode(sms);
      const wrongVerify = await call('POST', `/api/v1/t/acme/signin/${flow}/verify`, { method: 'sms', code: signinCode === '000000' ? '111111' : '000000' });
      expect(wrongVerify.status).toBe(401);
      expect(wrongVerify.body).toMatchObject({ attemptsLeft: 4 });
      const verify = await call('POST', `/api/v1/t/acme/signin/${flow}/verify`, { method: 'sms', code: signinCode });
      expect(verify.body.state).toBe('complete');
      const me = await call('GET', '/api/v1/me', undefined, verify.body.session.token);
      expect(me.body.session.amr).toEqual(expect.arrayContaining(['pwd', 'sms', 'mfa']));

      // Single use: a second flow cannot reuse it either.
      const again = await passwordStep('bob');
      const reuse = await call('POST', `/api/v1/t/acme/signin/${again.flow}/verify`, { method: 'sms', code: signinCode });
      expect(reuse.status).toBe(401);
    });

    it('reads the code out in a call, and sends it by email through a real SMTP server', async () => {
      await userWith('carol', 'voice', '+14155550100', () => calls);
      const call1 = calls.received.at(-1)!;
      expect(call1.to).toBe('+14155550100');
      expect(call1.text).toMatch(/verification code is ([0-9], ){5}[0-9]\./);

      const { token } = await userWith('dora', 'email', 'Dora@Example.TEST', () => mail);
      expect(mail.received.at(-1)!.to).toBe('Dora@example.test');
      const methods = await call('GET', '/api/v1/me/methods', undefined, token);
      expect(methods.body[0]).toMatchObject({ type: 'email', label: 'D•••@e•••.test', state: 'active' });

      const { flow } = await passwordStep('dora');
      const challenge = await call('POST', `/api/v1/t/acme/signin/${flow}/challenge`, { method: 'email' });
      expect(challenge.body.delivery).toMatchObject({ channel: 'email', to: 'D•••@e•••.test' });
      const verify = await call('POST', `/api/v1/t/acme/signin/${flow}/verify`, { method: 'email', code: lastCode(mail) });
      expect(verify.body.state).toBe('complete');
    });

    it('keeps email codes going when someone enrols addresses the mail server refuses, and caps their sends (round 28)', async () => {
      // A domain the relay answers 450 for (not found, greylisted): three such refusals in a row opened the
      // breaker for every tenant's email codes, and failed sends cost the sender nothing, so it could go on.
      mail.refusedDomains.set('nxdomain.test', 450);
      try {
        const tenant = (await server.services.tenants.findBySlug('acme'))!;
        await server.services.users.create(tenant.id, { username: 'mallory', passwordHash: await server.services.hasher.hash(PASSWORD) });
        const token = (await call('POST', '/api/v1/t/acme/signin', { username: 'mallory', password: PASSWORD })).body.session.token as string;
        const answers: number[] = [];
        for (let i = 0; i < 7; i++) answers.push((await call('POST', '/api/v1/me/methods', { type: 'email', to: `m${i}@nxdomain.test` }, token)).status);
        // Each refused address is no method; the session's sends run out at its cap (5 an hour) all the same.
        expect(answers).toEqual([409, 409, 409, 409, 409, 429, 429]);
        expect(server.services.delivery.health().email?.state).toBe('up');

        // Someone else's email code still goes (userWith confirms it with the code that came).
        await userWith('ezra', 'email', 'ezra@example.test', () => mail);
        expect(mail.received.at(-1)!.to).toBe('ezra@example.test');
      } finally {
        mail.refusedDomains.clear();
      }
    });

    it('keeps an owner’s email codes going however many strangers, in any tenant, type the address to enrol it (round 29)', async () => {
      const elsewhere = await server.services.tenants.create('elsewhere-dest', 'Elsewhere');
      await server.services.users.create(elsewhere.id, { username: 'stranger', passwordHash: await server.services.hasher.hash(PASSWORD) });
      // Ten enrolments of ezra's address, as case and +tag variants, from three registration sessions of another tenant.
      const answers: number[] = [];
      for (let s = 0; s < 3; s++) {
        const start = await call('POST', '/api/v1/t/elsewhere-dest/signin', { username: 'stranger', password: PASSWORD });
        for (let i = 0; i < 5 && answers.length < 12; i++)
          answers.push((await call('POST', '/api/v1/me/methods', { type: 'email', to: `Ezra+${s}x${i}@Example.TEST` }, start.body.session.token)).status);
      }
      // The address's cap of unconfirmed sends (ten an hour, one of them ezra's own enrolment) ran out for them.
      expect(answers.filter((a) => a === 201).length).toBeLessThanOrEqual(10);
      expect(answers.slice(-2)).toEqual([429, 429]);
      // Its owner still signs in with a code to it.
      const { flow } = await passwordStep('ezra');
      const challenge = await call('POST', `/api/v1/t/acme/signin/${flow}/challenge`, { method: 'email' });
      expect(challenge.status).toBe(200);
      const verify = await call('POST', `/api/v1/t/acme/signin/${flow}/verify`, { method: 'email', code: lastCode(mail) });
      expect(verify.body.state).toBe('complete');
    });

    it('never lets notices to addresses whose server fails open the breaker everyone’s codes share (round 29)', async () => {
      // A tenant's administrator gives accounts addresses at a domain whose server fails at once (421), then issues
      // them passes: each pass's notice fails. Counted against the breaker, three opened it for every tenant.
      mail.refusedDomains.set('closing.test', 421);
      try {
        const tenant = (await server.services.tenants.findBySlug('acme'))!;
        const failedBefore = await noticesFailed();
        for (let i = 0; i < 5; i++) {
          const u = await server.services.admin.createUser(tenant, 'cli', { username: `closing-${i}`, email: `closing-${i}@closing.test` });
          await server.services.admin.issuePass(tenant, 'cli', u.id, { minutes: 30 });
        }
        for (let waited = 0; waited < 5000 && (await noticesFailed()) < failedBefore + 5; waited += 50) await new Promise((r) => setTimeout(r, 50));
        expect(await noticesFailed()).toBe(failedBefore + 5);
        expect(server.services.delivery.health().email?.state).toBe('up');
        // The failed notices are logged with their tenant and audit entry, never the address.
        const logged = server.logs.lines.filter((l) => l.includes('security notice not sent') && l.includes('tap.issued'));
        expect(logged.length).toBeGreaterThanOrEqual(5);
        expect(JSON.parse(logged.at(-1)!).notice).toMatchObject({ tenantId: tenant.id, entryId: expect.any(String), action: 'tap.issued' });
        expect(logged.join('\n')).not.toContain('closing.test');
        // Codes still go.
        const { flow } = await passwordStep('ezra');
        expect((await call('POST', `/api/v1/t/acme/signin/${flow}/challenge`, { method: 'email' })).status).toBe(200);
      } finally {
        mail.refusedDomains.clear();
      }
    });

    it('fails over to the backup provider within the same request when the primary hangs', async () => {
      await userWith('erin', 'sms', '+447700900200', () => sms);
      sms.behave({ kind: 'hang' });
      const before = backupSms.received.length;
      const { flow } = await passwordStep('erin');
      const challenge = await call('POST', `/api/v1/t/acme/signin/${flow}/challenge`, { method: 'sms' });
      expect(challenge.status).toBe(200);
      expect(backupSms.received.length).toBe(before + 1);
      expect(backupSms.received.at(-1)!.to).toBe('+447700900200');
      const verify = await call('POST', `/api/v1/t/acme/signin/${flow}/verify`, { method: 'sms', code: lastCode(backupSms) });
      expect(verify.body.state).toBe('complete');
    });

    it('opens the hung primary breaker, skips it without calling it, and closes it after a good probe', async () => {
      sms.behave({ kind: 'hang' });
      // Timeouts pile up until more than half the recent calls failed; every challenge still delivers, through the backup.
      const primaryState = async () => (await call('GET', '/readyz')).body.components.delivery.sms.providers[0].state as string;
      let challenges = 0;
      while ((await primaryState()) === 'closed' && challenges < 6) {
        const { flow } = await passwordStep('erin');
        expect((await call('POST', `/api/v1/t/acme/signin/${flow}/challenge`, { method: 'sms' })).status).toBe(200);
        challenges++;
      }
      const ready = await call('GET', '/readyz');
      expect(ready.status).toBe(200);
      expect(ready.body.components.delivery.sms).toEqual({
        state: 'degraded',
        providers: [
          { name: 'primary', type: 'twilio', state: 'open' },
          { name: 'backup', type: 'webhook', state: 'closed' },
        ],
      });
      const metrics = await fetch(`${server.url}/metrics`).then((r) => r.text());
      expect(metrics).toMatch(/steadfast_delivery_breaker_state\{channel="sms",provider="primary"\} 2/);
      const status = await call('GET', '/api/v1/status');
      expect(status.body).toMatchObject({ status: 'degraded', components: { delivery: { sms: { state: 'degraded' } } } });

      const primaryCalls = sms.requests;
      const skipped = await passwordStep('bob');
      expect((await call('POST', `/api/v1/t/acme/signin/${skipped.flow}/challenge`, { method: 'sms' })).status).toBe(200);
      expect(sms.requests).toBe(primaryCalls);
      const verify = await call('POST', `/api/v1/t/acme/signin/${skipped.flow}/verify`, { method: 'sms', code: lastCode(backupSms) });
      expect(verify.body.state).toBe('complete');

      // After the reset time one probe goes to the primary; it answers, and the breaker closes.
      sms.behave({ kind: 'ok' });
      await sleep(RESET_AFTER_MS + 100);
      const probe = await passwordStep('bob');
      expect((await call('POST', `/api/v1/t/acme/signin/${probe.flow}/challenge`, { method: 'sms' })).status).toBe(200);
      expect(sms.requests).toBe(primaryCalls + 1);
      expect((await call('GET', '/readyz')).body.components.delivery.sms.state).toBe('up');
      lastCode(sms);
    });

    it('holds the per-destination send limit', async () => {
      // Ten an hour to a confirmed number, its owner's own (the enrolment code counted among the sends to it unconfirmed).
      await userWith('fred', 'sms', '+447700900300', () => sms);
      const outcomes: number[] = [];
      for (let i = 0; i < 11; i++) {
        const { flow } = await passwordStep('fred');
        const res = await call('POST', `/api/v1/t/acme/signin/${flow}/challenge`, { method: 'sms' });
        outcomes.push(res.status);
        if (res.status === 429) {
          expect(res.body.type).toMatch(/\/send-limit$/);
          expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
        } else {
          lastCode(sms);
        }
      }
      expect(outcomes).toEqual([...Array(10).fill(200), 429]);
    });

    it('with every SMS provider down, marks SMS unavailable, says so, and lets the user in with another method', async () => {
      const { token } = await userWith('gina', 'sms', '+447700900400', () => sms);
      const totp = await call('POST', '/api/v1/me/methods', { type: 'totp' }, token);
      const now = Date.now();
      await call('POST', `/api/v1/me/methods/${totp.body.id}/confirm`, { code: totpCode(totp.body.secret, now) }, token);

      sms.behave({ kind: 'fail', status: 503 });
      backupSms.behave({ kind: 'fail', status: 502 });
      // While the breakers still let calls through, a send that every provider fails is answered the same way.
      const tried = await passwordStep('gina');
      expect(tried.methods.map((m) => [m.type, m.available])).toEqual([
        ['sms', true],
        ['totp', true],
      ]);
      const refused = await call('POST', `/api/v1/t/acme/signin/${tried.flow}/challenge`, { method: 'sms' });
      expect(refused.status).toBe(409);
      expect(refused.body).toMatchObject({ type: expect.stringMatching(/\/method-unavailable$/), methods: [{ type: 'totp', available: true }] });
      // Failures pile up until more than half the recent calls of each provider failed and both breakers open.
      for (let i = 0; i < 40 && (await call('GET', '/api/v1/status')).body.components.delivery.sms.state !== 'down'; i++) {
        const again = await passwordStep('gina');
        expect((await call('POST', `/api/v1/t/acme/signin/${again.flow}/challenge`, { method: 'sms' })).status).toBe(409);
      }

      // Now both breakers are open: SMS is offered last, as unavailable, and the default moves to what works.
      const { flow, methods } = await passwordStep('gina');
      expect(methods.map((m) => [m.type, m.available, m.default])).toEqual([
        ['totp', true, false],
        ['sms', false, true],
      ]);
      const requestsBefore = sms.requests + backupSms.requests;
      const unavailable = await call('POST', `/api/v1/t/acme/signin/${flow}/challenge`, { method: 'sms' });
      expect(unavailable.status).toBe(409);
      expect(unavailable.body.methods).toEqual([expect.objectContaining({ type: 'totp', available: true })]);
      expect(sms.requests + backupSms.requests).toBe(requestsBefore);
      expect((await call('GET', '/api/v1/status')).body.components.delivery.sms.state).toBe('down');
      // The status page says it in words, with what to do instead.
      const page = await (await fetch(`${server.url}/status`)).text();
      expect(page).toMatch(/Some parts are degraded/);
      expect(page).toMatch(/Text message codes<\/th><td data-state="down">Down<\/td><td>Use another sign-in method/);
      expect((await call('GET', '/readyz')).status).toBe(200);

      const verify = await call('POST', `/api/v1/t/acme/signin/${flow}/verify`, { method: 'totp', code: totpCode(totp.body.secret, now + 30_000) });
      expect(verify.body.state).toBe('complete');
      sms.behave({ kind: 'ok' });
      backupSms.behave({ kind: 'ok' });
    });

    it('never lets a code or a destination reach the logs, the sign-in events or an answer', async () => {
      expect(secrets.size).toBeGreaterThan(10);
      // Provider failures were logged, by name and reason only.
      expect(server.logs.text).toMatch(/delivery provider failed/);
      expect(server.logs.text).toMatch(/breaker open/);
      const events = await server.services.durable.db.selectFrom('signin_events').selectAll().execute();
      const haystacks = [server.logs.text, JSON.stringify(events), JSON.stringify(answers)];
      for (const secret of secrets) {
        for (const haystack of haystacks) expect(containsSecret(haystack, secret), `"${secret}" leaked`).toBe(false);
      }
    });
  });
}
