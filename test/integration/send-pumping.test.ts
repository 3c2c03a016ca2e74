import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.ts';
import { loadConfig } from '../../src/config/config.ts';
import { backends, type Backend } from '../helpers/backends.ts';
import { api, startTestServer, type TestServer } from '../helpers/test-server.ts';
import { startWebhookReceiver, type StandIn } from '../helpers/vendor-standins.ts';

const PASSWORD = 'correct horse battery staple';
const HOOK = 'send-pumping-webhook-secret';

/**
 * SMS pumping (toll fraud) through Steadfast: a registration session adding
 * premium-rate number after number, many sessions from one place, numbers in
 * countries the operator does not serve, and email limits dodged by spelling
 * one address many ways (issue 11, items 12 and 13).
 */
for (const spec of backends) {
  describe.runIf(await spec.available())(`sending codes cannot be pumped on ${spec.name}`, () => {
    let backend: Backend;
    let server: TestServer;
    let gateway: StandIn;
    let adminToken = '';
    const clock = new ManualClock(Date.now());

    /** A registration session of a new user, from `ip` (the node trusts one proxy hop). */
    const registrationSession = async (username: string, ip: string) => {
      await api(server.url, 'POST', '/api/v1/admin/users', { username, password: PASSWORD }, adminToken);
      const res = await fetch(`${server.url}/api/v1/t/acme/signin`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-forwarded-for': ip },
        body: JSON.stringify({ username, password: PASSWORD }),
      });
      const body = (await res.json()) as { session: { token: string } };
      return body.session.token;
    };
    const addMethod = (token: string, body: Record<string, string>, ip: string) =>
      fetch(`${server.url}/api/v1/me/methods`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, 'x-forwarded-for': ip },
        body: JSON.stringify(body),
      }).then(async (r) => ({ status: r.status, body: (await r.json()) as { type: string } }));

    beforeAll(async () => {
      gateway = await startWebhookReceiver(HOOK);
      const configFile = join(tmpdir(), `steadfast-pumping-${process.pid}-${spec.name}.json`);
      writeFileSync(
        configFile,
        JSON.stringify({
          delivery: {
            sms: [{ name: 'gateway', type: 'webhook', url: gateway.url, secret: HOOK }],
            email: [{ name: 'mail', type: 'webhook', url: gateway.url, secret: HOOK }],
            allowedCountries: ['GB', 'IE'],
            limits: { perSessionPerHour: 3, perSourcePerHour: 6, perDestinationPerHour: 3 },
          },
        }),
      );
      backend = await spec.create({ STEADFAST_CONFIG: configFile, STEADFAST_TRUST_PROXY: '1' });
      server = await startTestServer(backend, { clock });
      const tenant = await server.services.tenants.create('acme', 'Acme');
      adminToken = (await server.services.adminTokens.create(tenant.id, 'admin')).token;
    });
    afterAll(async () => {
      await server?.close();
      await backend?.cleanup();
      await gateway?.close();
    });

    it('refuses numbers outside the allowed countries before sending anything', async () => {
      const token = await registrationSession('roamer', '198.51.100.10');
      const before = gateway.received.length;
      const abroad = await addMethod(token, { type: 'sms', to: '+882 1234 5678' }, '198.51.100.10');
      expect(abroad.status).toBe(400);
      expect(abroad.body.type).toMatch(/\/destination-not-allowed$/);
      const us = await addMethod(token, { type: 'sms', to: '+1 202 555 0123' }, '198.51.100.10');
      expect(us.body.type).toMatch(/\/destination-not-allowed$/);
      expect(gateway.received.length).toBe(before);
      expect((await addMethod(token, { type: 'sms', to: '+353 85 123 4567' }, '198.51.100.10')).status).toBe(201);
    });

    it('caps what one registration session can send, and what one source can', async () => {
      const token = await registrationSession('pumper', '203.0.113.5');
      const statuses = [];
      for (let i = 0; i < 5; i++) statuses.push((await addMethod(token, { type: 'sms', to: `+44 7400 12345${i}` }, '203.0.113.5')).status);
      expect(statuses).toEqual([201, 201, 201, 429, 429]);
      // A fresh session from the same place gets three more sends before the source's cap.
      const second = await registrationSession('pumper2', '203.0.113.5');
      const more = [];
      for (let i = 0; i < 4; i++) more.push((await addMethod(second, { type: 'sms', to: `+44 7400 22345${i}` }, '203.0.113.5')).status);
      expect(more).toEqual([201, 201, 201, 429]);
      // Someone elsewhere is not held back.
      const other = await registrationSession('elsewhere', '192.0.2.77');
      expect((await addMethod(other, { type: 'sms', to: '+44 7555 123456' }, '192.0.2.77')).status).toBe(201);
    });

    it('counts an email address once however its case or +tag is written', async () => {
      const spellings = ['Victim@example.com', 'victim+1@example.com', 'VICTIM+x@Example.COM', 'victim+2@example.com'];
      const statuses = [];
      for (const [i, to] of spellings.entries()) {
        const token = await registrationSession(`mailer${i}`, `192.0.2.${100 + i}`);
        statuses.push((await addMethod(token, { type: 'email', to }, `192.0.2.${100 + i}`)).status);
      }
      expect(statuses).toEqual([201, 201, 201, 429]);
    });

    it('names every problem with the allow-list and the limits at start', () => {
      const file = join(tmpdir(), `steadfast-pumping-bad-${process.pid}.json`);
      writeFileSync(file, JSON.stringify({ delivery: { allowedCountries: ['GB', 'Narnia'], limits: { perSessionPerHour: 0 } } }));
      expect(() => loadConfig({ STEADFAST_CONFIG: file })).toThrow(
        /"Narnia" is not a country code.*perSessionPerHour|perSessionPerHour.*"Narnia" is not a country code/,
      );
    });
  });
}
