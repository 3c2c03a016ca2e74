import { once } from 'node:events';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { backends, type Backend } from '../helpers/backends.ts';
import { api, startTestServer, type TestServer } from '../helpers/test-server.ts';
import type { SigninEventTable } from '../../src/store/durable/schema.ts';
import { MAX_EXPORTS } from '../../src/activity/report-reader.ts';
import { ExportPacing } from '../../src/activity/export-pacing.ts';
import { SIGNIN_CSV_HEADER, signinLines } from '../../src/activity/signin-export-format.ts';
import type { AdminSigninEvent } from '../../src/activity/signin-event.ts';

const EVENTS = 2600;

/** Exports stream every match, in pages, pulled as the client takes them; no cap, no silent cut. */
for (const spec of backends) {
  describe.runIf(await spec.available())(`sign-in log exports on ${spec.name}`, () => {
    let backend: Backend;
    let server: TestServer;
    let token = '';
    let tenantId = '';
    const download = (query: string, headers: Record<string, string> = {}) =>
      fetch(`${server.url}/api/v1/admin/signins?${query}`, { headers: { authorization: `Bearer ${token}`, ...headers } });

    beforeAll(async () => {
      backend = await spec.create();
      server = await startTestServer(backend);
      const tenant = await server.services.tenants.create('exports');
      tenantId = tenant.id;
      token = (await server.services.adminTokens.create(tenant.id, 'admin')).token;
      // More than one export page (2000 rows), written in bulk; some at the same millisecond.
      const start = Date.UTC(2026, 0, 1);
      const rows: SigninEventTable[] = Array.from({ length: EVENTS }, (_, i) => ({
        id: `${(start + Math.floor(i / 3)).toString(16).padStart(12, '0')}${i.toString(16).padStart(20, '0')}`,
        tenant_id: tenant.id,
        user_id: `user-${i % 7}`,
        // A formula to defuse, and text beyond ASCII that the worker encodes (a page boundary falls in no character).
        username: i === 5 ? '=cmd|calc' : i % 250 === 11 ? `zoë-日本-${i}` : `user${i % 7}`,
        at: start + Math.floor(i / 3),
        ip: '192.0.2.1',
        user_agent: 'agent, "quoted"',
        app: null,
        step: 'password',
        outcome: i % 4 === 0 ? 'failure' : 'success',
        reason: i % 4 === 0 ? 'invalid_credentials' : 'ok',
        method: null,
        node: 'test',
        degraded: 0,
        reported_at: null,
        credential_id: null,
      }));
      for (let i = 0; i < rows.length; i += 500)
        await server.services.durable.db
          .insertInto('signin_events')
          .values(rows.slice(i, i + 500))
          .execute();
    });
    afterAll(async () => {
      await server?.close();
      await backend?.cleanup();
    });

    it('streams every match as CSV, beyond one page, newest first, formulas defused', async () => {
      const res = await download('format=csv');
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/csv/);
      expect(res.headers.get('transfer-encoding')).toBe('chunked');
      const lines = (await res.text()).trimEnd().split('\r\n');
      expect(lines[0]).toBe('id,at,userId,username,ip,userAgent,app,step,method,outcome,reason,reported');
      expect(lines).toHaveLength(EVENTS + 1);
      const ids = lines.slice(1).map((l) => l.split(',')[0]!);
      expect(new Set(ids).size).toBe(EVENTS);
      expect([...ids].sort().reverse()).toEqual(ids);
      expect(lines.some((l) => l.includes(",'=cmd|calc,"))).toBe(true);
      expect(lines[1]).toContain(',"agent, ""quoted""",');
    });

    it('streams NDJSON (format=ndjson or Accept), each line the item the JSON pages show', async () => {
      const res = await download('outcome=failure', { accept: 'application/x-ndjson' });
      expect(res.headers.get('content-type')).toMatch(/^application\/x-ndjson/);
      const lines = (await res.text())
        .trimEnd()
        .split('\n')
        .map((l) => JSON.parse(l));
      expect(lines).toHaveLength(EVENTS / 4);
      const pages = [];
      let cursor = '';
      do {
        const page = await api(server.url, 'GET', `/api/v1/admin/signins?outcome=failure&limit=500${cursor ? `&cursor=${cursor}` : ''}`, undefined, token);
        pages.push(...page.body.items);
        cursor = page.body.next ?? '';
      } while (cursor);
      expect(lines).toEqual(pages);
      expect(await (await download('format=ndjson&user=nobody')).text()).toBe('');
    });

    it('sends the very bytes the formats make of the rows (encoded in the worker, handed over as they are)', async () => {
      const events: AdminSigninEvent[] = [];
      let cursor: string | undefined;
      do {
        const page = await server.services.events.list(tenantId, {}, 500, cursor);
        events.push(...page.items);
        cursor = page.next ?? undefined;
      } while (cursor);
      expect(events).toHaveLength(EVENTS);
      const csv = Buffer.from(await (await download('format=csv')).arrayBuffer());
      expect(csv.equals(Buffer.from(SIGNIN_CSV_HEADER + signinLines(events, 'csv')))).toBe(true);
      const ndjson = Buffer.from(await (await download('format=ndjson')).arrayBuffer());
      expect(ndjson.equals(Buffer.from(signinLines(events, 'ndjson')))).toBe(true);
    });

    it('pauses between pages while the node serves requests, and still sends every row', async () => {
      const pacing = server.services.reportReader.pacing;
      // Only the wall clock is moved: the pool counts a node that hashed a password within the last 250 ms as busy.
      vi.useFakeTimers({ toFake: ['Date'] });
      try {
        vi.setSystemTime(Date.now() + 1000);
        // The node is busy while a password is being hashed (or any request is admitted), and not otherwise.
        expect(pacing.busy()).toBe(false);
        const hashing = await server.services.hasher.pool.acquire('start-signin', tenantId);
        expect(pacing.busy()).toBe(true);
        const pauses: number[] = [];
        const busyPacing = new ExportPacing({ busy: () => pacing.busy(), sleep: async (ms) => void pauses.push(ms) });
        const afterPage = vi.spyOn(pacing, 'afterPage').mockImplementation((pageMs) => busyPacing.afterPage(pageMs));
        try {
          let text = '';
          for await (const chunk of server.services.events.export(tenantId, {}, 'csv', 500)) text += String(chunk);
          expect(text.trimEnd().split('\r\n')).toHaveLength(EVENTS + 1);
          // One pause after each page but the last, seven times its page (the export takes an eighth of the time),
          // two seconds at most (a slow page on a loaded machine).
          expect(afterPage).toHaveBeenCalledTimes(Math.ceil(EVENTS / 500) - 1);
          expect(pauses).toHaveLength(Math.ceil(EVENTS / 500) - 1);
          afterPage.mock.calls.forEach(([pageMs], i) => expect(pauses[i]).toBeCloseTo(Math.min(2000, 7 * pageMs), 6));
        } finally {
          afterPage.mockRestore();
          hashing();
        }
        // Sign-ins come in bursts: just after a hash the node is still busy, a quarter second later it is not.
        expect(pacing.busy()).toBe(true);
        vi.setSystemTime(Date.now() + 300);
        expect(pacing.busy()).toBe(false);
      } finally {
        vi.useRealTimers();
      }
    });

    it('pulls the next page only when the last one was taken (back-pressure)', async () => {
      const pages = vi.spyOn(server.services.reportReader, 'page');
      try {
        const stream = Readable.from(server.services.events.export(tenantId, {}, 'csv', 100), { objectMode: false, highWaterMark: 1024 });
        stream.read(0);
        await once(stream, 'readable');
        // Nobody reads: one page was enough to fill the buffer, and no more are fetched.
        for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
        expect(pages).toHaveBeenCalledTimes(1);
        let text = '';
        for await (const chunk of stream) text += String(chunk);
        expect(text.trimEnd().split('\r\n')).toHaveLength(EVENTS + 1);
        expect(pages).toHaveBeenCalledTimes(Math.ceil(EVENTS / 100) + (EVENTS % 100 === 0 ? 1 : 0));
      } finally {
        pages.mockRestore();
      }
    });

    it('gives the admission slot back once streaming starts, and streams at most a few exports at once (503 with Retry-After beyond)', async () => {
      const reader = server.services.reportReader;
      const real = reader.page.bind(reader);
      let openGate!: () => void;
      const gate = new Promise<void>((resolve) => (openGate = resolve));
      let calls = 0;
      const pages = vi.spyOn(reader, 'page').mockImplementation(async (query, shape) => {
        if (++calls === 2) await gate;
        return real(query, shape);
      });
      try {
        const res = await download('format=csv');
        expect(res.status).toBe(200);
        // The download is open (its second page waits), and holds no admission slot.
        expect(server.services.admission.state.inFlight).toBe(0);
        openGate();
        expect((await res.text()).trimEnd().split('\r\n')).toHaveLength(EVENTS + 1);
      } finally {
        openGate();
        pages.mockRestore();
      }

      const held = Array.from({ length: MAX_EXPORTS }, () => server.services.events.takeExportSlot());
      const refused = await download('format=ndjson');
      expect(refused.status).toBe(503);
      expect(refused.headers.get('retry-after')).toBe('10');
      expect((await refused.json()).detail).toMatch(/exports are running on this node/);
      for (const release of held) release();
      const ok = await download('format=ndjson&outcome=failure');
      expect(ok.status).toBe(200);
      await ok.text();
      // Every slot came back once the downloads ended.
      let free = 0;
      for (let i = 0; i < 100 && free < MAX_EXPORTS; i++) {
        const taken: (() => void)[] = [];
        try {
          for (let k = 0; k < MAX_EXPORTS; k++) taken.push(server.services.events.takeExportSlot());
          free = MAX_EXPORTS;
        } catch {
          await new Promise((resolve) => setImmediate(resolve));
        } finally {
          for (const release of taken) release();
        }
      }
      expect(free).toBe(MAX_EXPORTS);
    });

    it('ends a download that fails part-way without its last chunk, so it cannot pass for a whole file', async () => {
      const reader = server.services.reportReader;
      const real = reader.page.bind(reader);
      let calls = 0;
      const pages = vi.spyOn(reader, 'page').mockImplementation(async (query, shape) => {
        if (++calls === 2) throw new Error('the database went away');
        return real(query, shape);
      });
      try {
        const res = await download('format=csv');
        expect(res.status).toBe(200);
        await expect(res.text()).rejects.toThrow();
      } finally {
        pages.mockRestore();
      }
      // The node goes on serving.
      expect((await api(server.url, 'GET', '/api/v1/admin/signins?limit=1', undefined, token)).status).toBe(200);
    });
  });
}
