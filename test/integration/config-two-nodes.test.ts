import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends, type Backend } from '../helpers/backends.ts';
import { startTestServer, type TestServer } from '../helpers/test-server.ts';
import { startWebhookReceiver, type StandIn } from '../helpers/vendor-standins.ts';

const SECRET = 'two-nodes-webhook-secret-0123';

/**
 * A configuration change reaches a second node without a restart: node A
 * stores the version (as `steadfast config apply` does), node B takes it on
 * its next read of the store (`guard.tick`, which a running node does every
 * few seconds): new providers with their own breakers, new admission lanes,
 * a new tenant cache time. Then the rollback travels the same way.
 */
for (const spec of backends) {
  describe.runIf(await spec.available())(`a configuration change across two nodes on ${spec.name}`, () => {
    let backend: Backend;
    let a: TestServer;
    let b: TestServer;
    let first: StandIn;
    let second: StandIn;

    beforeAll(async () => {
      [first, second] = await Promise.all([startWebhookReceiver(SECRET), startWebhookReceiver(SECRET)]);
      const configFile = join(tmpdir(), `steadfast-two-nodes-${process.pid}-${spec.name}.json`);
      writeFileSync(configFile, JSON.stringify({ delivery: { sms: [{ name: 'first', type: 'webhook', url: first.url, secret: SECRET }] } }));
      backend = await spec.create({ STEADFAST_CONFIG: configFile, STEADFAST_ADMISSION_LIMIT: '16' });
      // Two nodes on the same stores (the same SQLite file, or the same PostgreSQL schema).
      a = await startTestServer(backend);
      b = await startTestServer(backend);
    });
    afterAll(async () => {
      await a?.close();
      await b?.close();
      await backend?.cleanup();
      await Promise.all([first, second].map((s) => s?.close()));
    });

    it('node B runs the version node A stored, and the rollback, without a restart', async () => {
      expect(b.services.delivery.health().sms?.providers.map((p) => p.name)).toEqual(['first']);
      expect(b.services.admission.state.limit).toBe(16);

      const version = await a.services.rollouts.applyNode(
        {
          delivery: { sms: [{ name: 'second', type: 'webhook', url: second.url, secret: SECRET }], code: { digits: 8 } },
          admission: { limit: 24 },
          cache: { tenantSeconds: 2 },
        },
        { actor: 'cli' },
      );
      expect(version.state).toBe('promoted');
      // Until B reads the store, it runs what it ran.
      expect(b.services.runtime.versions.stable).toBe(0);
      await b.services.guard.tick();
      expect(b.services.runtime.versions.stable).toBe(version.version);
      expect(b.services.delivery.health().sms?.providers.map((p) => p.name)).toEqual(['second']);
      expect(b.services.admission.state.limit).toBe(24);
      expect(b.services.runtime.settings.cache.tenantSeconds).toBe(2);
      expect(b.services.runtime.current().delivery.code.digits).toBe(8);

      // A code sent by node B goes out through the new provider.
      await b.services.delivery.send({ channel: 'sms', to: '+447700900001', text: 'test 123456' });
      expect(second.received.map((m) => m.to)).toEqual(['+447700900001']);
      expect(first.received).toEqual([]);

      const back = await a.services.rollouts.rollback('node', { version: undefined, actor: 'cli', reason: 'drill' }).catch((err: Error) => err);
      // There is no good version before the first one: going back to the start-up configuration is done by applying it.
      expect(back).toBeInstanceOf(Error);
      const empty = await a.services.rollouts.applyNode({}, { actor: 'cli' });
      await b.services.guard.tick();
      expect(b.services.runtime.versions.stable).toBe(empty.version);
      expect(b.services.delivery.health().sms?.providers.map((p) => p.name)).toEqual(['first']);
      expect(b.services.admission.state.limit).toBe(16);
      const rolled = await a.services.rollouts.rollback('node', { version: version.version, actor: 'cli', reason: 'drill' });
      await b.services.guard.tick();
      expect(b.services.runtime.versions.stable).toBe(rolled.version);
      expect(b.services.admission.state.limit).toBe(24);
    });
  });
}
