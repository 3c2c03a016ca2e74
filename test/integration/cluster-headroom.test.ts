import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.ts';
import { buildServices, type Services } from '../../src/server/services.ts';
import { backends, type Backend } from '../helpers/backends.ts';
import { api, startTestServer, type TestServer } from '../helpers/test-server.ts';

const PASSWORD = 'correct horse battery staple';
const HOUR = 3_600_000;

/**
 * Two nodes on one pair of stores, driven by a manual clock: node "a" serves
 * HTTP and takes real password sign-ins, node "b" only beats. Heartbeats (and
 * load buckets) are one second long; the peak window is one hour.
 */
for (const spec of backends) {
  describe.runIf(await spec.available())(`cluster membership and headroom on ${spec.name}`, () => {
    let backend: Backend;
    let a: TestServer;
    let b: Services;
    // On a second boundary, as the timers beat.
    const clock = new ManualClock(Date.UTC(2026, 10, 22, 12, 0, 0));
    let adminToken = '';
    let sessionCookie = '';
    const clustered = spec.name === 'postgres+redis';

    beforeAll(async () => {
      backend = await spec.create({ STEADFAST_HEARTBEAT_SECONDS: '1', STEADFAST_PEAK_WINDOW_HOURS: '1', STEADFAST_NODE_NAME: 'a' });
      a = await startTestServer(backend, { clock });
      b = await buildServices(
        { ...backend.config, nodeName: 'b' },
        { clock, ...(backend.pgSchema ? { pgSchema: backend.pgSchema } : {}), ...(backend.redisNamespace ? { redisNamespace: backend.redisNamespace } : {}) },
      );
      const tenant = await a.services.tenants.create('acme', 'Acme');
      const admin = await a.services.users.create(tenant.id, { username: 'ada', passwordHash: await a.services.hasher.hash(PASSWORD) });
      await a.services.users.update(tenant.id, admin.id, { isAdmin: true });
      adminToken = (await a.services.adminTokens.create(tenant.id, 'admin')).token;
      const { token } = await a.services.sessions.create({
        tenantId: tenant.id,
        userId: admin.id,
        scope: 'full',
        amr: ['pwd', 'otp', 'mfa'],
        ip: '127.0.0.1',
        userAgent: 'test',
      });
      sessionCookie = `sf_session=${token}`;
      a.services.cluster.begin(2);
      b.cluster.begin(1);
    });
    afterAll(async () => {
      await a?.close();
      await b?.close();
      await backend?.cleanup();
    });

    const status = async () => (await api(a.url, 'GET', '/api/v1/status')).body.cluster;
    const beatBoth = async () => {
      await a.services.cluster.beat();
      await b.cluster.beat();
    };

    it('lists both nodes with their capacity; with no load yet, losing the larger one is survivable', async () => {
      clock.advance(1000);
      await beatBoth();
      const cluster = await status();
      expect(cluster.nodes).toEqual([
        { name: 'a', state: 'up', capacityPerSecond: 2, loadPerSecond: 0, lastSeen: new Date(clock.now()).toISOString() },
        { name: 'b', state: 'up', capacityPerSecond: 1, loadPerSecond: 0, lastSeen: new Date(clock.now()).toISOString() },
      ]);
      expect(cluster).toMatchObject({ capacityPerSecond: 3, peakLoadPerSecond: 0, survivesNodeLoss: true });
    });

    it('counts real password sign-ins as load, keeps the peak in the store, and warns when losing a node is not survivable', async () => {
      for (let i = 0; i < 3; i++) expect((await api(a.url, 'POST', '/api/v1/t/acme/signin', { username: 'nobody', password: 'wrong' })).status).toBe(401);
      clock.advance(1000);
      await beatBoth();
      const cluster = await status();
      expect(cluster.nodes.find((n: { name: string }) => n.name === 'a').loadPerSecond).toBe(3);
      // Losing "a" leaves 1 sign-in per second for a peak of 3.
      expect(cluster).toMatchObject({ capacityPerSecond: 3, peakLoadPerSecond: 3, survivesNodeLoss: false, capacityAfterLossPerSecond: 1 });

      const metrics = await (await fetch(`${a.url}/metrics`)).text();
      expect(metrics).toMatch(/^steadfast_cluster_survives_node_loss 0$/m);
      expect(metrics).toMatch(/^steadfast_cluster_peak_load_per_second 3$/m);
      expect(metrics).toMatch(/^steadfast_cluster_nodes\{state="up"\} 2$/m);

      const page = await (await fetch(`${a.url}/status`)).text();
      expect(page).toContain('data-survives-node-loss="false"');
      expect(page).toContain('less than the busiest moment seen (3 per second)');

      const adminView = await api(a.url, 'GET', '/api/v1/admin/cluster', undefined, adminToken);
      expect(adminView.status).toBe(200);
      const console = await (await fetch(`${a.url}/t/acme/admin`, { headers: { cookie: sessionCookie } })).text();
      const warned = a.logs.lines.filter((l) => l.includes('"alert":"cluster-headroom"'));
      if (clustered) {
        expect(adminView.body.warning).toMatch(/would not survive losing a node/);
        expect(console).toContain('data-alert="cluster-headroom"');
        expect(warned).toHaveLength(1);
      } else {
        // The embedded store is one node by design: nothing to warn about.
        expect(adminView.body.warning).toBeNull();
        expect(console).not.toContain('data-alert="cluster-headroom"');
        expect(warned).toHaveLength(0);
      }

      // The peak stays after the load is gone, and the warning is not repeated at every beat.
      clock.advance(1000);
      await beatBoth();
      expect(await status()).toMatchObject({ peakLoadPerSecond: 3, survivesNodeLoss: false, nodes: [{ loadPerSecond: 0 }, { loadPerSecond: 0 }] });
      expect(a.logs.lines.filter((l) => l.includes('"alert":"cluster-headroom"')).length).toBe(clustered ? 1 : 0);

      // A node started now reads the peak from the durable store.
      const c = await buildServices(
        { ...backend.config, nodeName: 'c' },
        { clock, ...(backend.pgSchema ? { pgSchema: backend.pgSchema } : {}), ...(backend.redisNamespace ? { redisNamespace: backend.redisNamespace } : {}) },
      );
      try {
        c.cluster.begin(1);
        await c.cluster.beat();
        expect(c.cluster.latest).toMatchObject({ peakLoadPerSecond: 3, capacityPerSecond: 4 });
      } finally {
        await c.cluster.stop();
        await c.close();
      }
    });

    it('shows a draining node at once, then as down once it misses its heartbeats', async () => {
      await b.cluster.announceState('draining');
      expect((await status()).nodes[1]).toMatchObject({ name: 'b', state: 'draining' });
      expect((await status()).capacityPerSecond).toBe(2);
      clock.advance(3000);
      await a.services.cluster.beat();
      expect((await status()).nodes[1]).toMatchObject({ name: 'b', state: 'draining' });
      clock.advance(1000);
      await a.services.cluster.beat();
      expect((await status()).nodes[1]).toMatchObject({ name: 'b', state: 'down', capacityPerSecond: 0 });
    });

    it('lets the peak fall out of its window and forgets members gone for an hour', async () => {
      clock.advance(HOUR + 10_000);
      // The peak is re-read from the store every sixth beat.
      for (let i = 0; i < 6; i++) {
        clock.advance(1000);
        await a.services.cluster.beat();
      }
      const cluster = await status();
      expect(cluster.nodes.map((n: { name: string }) => n.name)).toEqual(['a']);
      // One node alone never survives losing a node.
      expect(cluster).toMatchObject({ peakLoadPerSecond: 0, capacityPerSecond: 2, survivesNodeLoss: false });
    });
  });
}
