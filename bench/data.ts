/**
 * `npm run bench -- data`
 *
 * A large sign-in log on each durable store (BENCH_EVENTS, default ten
 * million, written in bulk straight into the database), then, against a real
 * node (`steadfast start` in its own process):
 *
 * 1. the store's size per million events;
 * 2. admin log queries (first page and the pages after it) p50/p99 for each filter;
 * 3. a full CSV export alone: rows per second (read by curl, in its own process);
 * 4. password sign-ins and a cheap request (GET /api/v1/status) p99, first
 *    alone (the reference), then with exports running back to back: the ratio
 *    is the figure (target: sign-in p99 within 1.2x; no request waits 50 ms);
 * 5. the sweeper removing expired events (in this process, the node stopped):
 *    rows per second against the rate a node at capacity writes them, and the
 *    longest hold of the event loop while it runs.
 *
 * Settings: BENCH_EVENTS, BENCH_BACKENDS (sqlite,postgres), BENCH_PG_URL,
 * BENCH_SECONDS (load window, 15), BENCH_QUERY_PAGES (pages per filter, 30).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, existsSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import pg from 'pg';
import { loadConfig, sqlitePath } from '../src/config/config.ts';
import { buildServices, type Services } from '../src/server/services.ts';
import { ManualClock } from '../src/clock.ts';
import { fmt, load, startServerProcess } from './harness.ts';
import { generatePostgres, generateSqlite, type GeneratedLog } from './data-generator.ts';
import { cpuSnapshot, cpuSplit } from './cpu-split.ts';

const EVENTS = Number(process.env.BENCH_EVENTS ?? 10_000_000);
const BACKENDS = (process.env.BENCH_BACKENDS ?? 'sqlite,postgres').split(',').map((b) => b.trim());
const PG_URL = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const SECONDS = Number(process.env.BENCH_SECONDS ?? 15);
const QUERY_PAGES = Number(process.env.BENCH_QUERY_PAGES ?? 30);
const BENCH_PROCESS = { 'this process (load generator, status probe)': process.pid };
const SIGNIN_USERS = 200;
const PASSWORD = 'bench password 123';
const DAY = 86_400_000;

const out = (line = '') => process.stdout.write(line + '\n');
const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
const mb = (bytes: number) => bytes / 1024 / 1024;

interface Prepared {
  env: Record<string, string>;
  log: GeneratedLog;
  token: string;
  bytes: () => Promise<number>;
  servicesOptions: { pgSchema?: string };
  /** Password sign-ins per second the node managed without an export (its capacity here). */
  signinsPerSecond?: number;
  cleanup: () => Promise<void>;
}

/** A tenant with sign-in users and an admin token, then the log in bulk. */
async function prepare(backend: string): Promise<Prepared> {
  const dataDir = mkdtempSync(join(tmpdir(), 'steadfast-bench-data-'));
  const env: Record<string, string> = {
    STEADFAST_DATA_DIR: dataDir,
    STEADFAST_MASTER_KEY: randomBytes(32).toString('base64'),
    STEADFAST_LOG_LEVEL: 'warn',
    STEADFAST_TRUST_PROXY: '1',
    // The benchmark's events span 90 days up to now: no sweeping under the measurements.
    STEADFAST_SWEEP_INTERVAL_SECONDS: '0',
  };
  let schema: string | undefined;
  if (backend === 'postgres') {
    schema = `bench_${Date.now().toString(36)}`;
    const admin = new pg.Client({ connectionString: PG_URL });
    await admin.connect();
    await admin.query(`create schema ${schema}`);
    await admin.end();
    env.STEADFAST_DATABASE_URL = `${PG_URL}${PG_URL.includes('?') ? '&' : '?'}options=${encodeURIComponent(`-c search_path=${schema}`)}`;
  }
  const services = await buildServices(loadConfig(env));
  const tenant = await services.tenants.create('bench');
  const passwordHash = await services.hasher.hash(PASSWORD);
  for (let i = 0; i < SIGNIN_USERS; i++) await services.users.create(tenant.id, { username: `signin${i}`, passwordHash });
  const token = (await services.adminTokens.create(tenant.id, 'admin')).token;
  await services.close();

  const started = performance.now();
  let last = started;
  const onProgress = (done: number) => {
    if (performance.now() - last > 10_000) {
      last = performance.now();
      out(`  … ${fmt(done)} events written`);
    }
  };
  const log =
    backend === 'postgres'
      ? await generatePostgres(PG_URL, schema!, tenant.id, EVENTS, { onProgress })
      : generateSqlite(sqlitePath(loadConfig(env)), tenant.id, EVENTS, { onProgress });
  const seconds = (performance.now() - started) / 1000;
  out(`  wrote ${fmt(EVENTS)} events in ${fmt(seconds, 1)} s (${fmt(EVENTS / seconds)} rows/s, bulk inserts)`);

  const bytes = async () => {
    if (backend === 'postgres') {
      const client = new pg.Client({ connectionString: env.STEADFAST_DATABASE_URL });
      await client.connect();
      const { rows } = await client.query<{ bytes: string }>(`select pg_total_relation_size('signin_events') as bytes`);
      await client.end();
      return Number(rows[0]!.bytes);
    }
    const path = sqlitePath(loadConfig(env));
    return statSync(path).size + (existsSync(`${path}-wal`) ? statSync(`${path}-wal`).size : 0);
  };
  return {
    env,
    log,
    token,
    bytes,
    servicesOptions: schema ? { pgSchema: schema } : {},
    cleanup: async () => {
      rmSync(dataDir, { recursive: true, force: true });
      if (schema) {
        const admin = new pg.Client({ connectionString: PG_URL });
        await admin.connect();
        await admin.query(`drop schema ${schema} cascade`);
        await admin.end();
      }
    },
  };
}

/** Admin log pages for one filter: the first page, then the next ones by cursor. */
async function queryLatencies(url: string, token: string, query: string): Promise<number[]> {
  const times: number[] = [];
  let cursor = '';
  for (let i = 0; i < QUERY_PAGES; i++) {
    const started = performance.now();
    const res = await fetch(`${url}/api/v1/admin/signins?limit=100${query ? `&${query}` : ''}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, {
      headers: { authorization: `Bearer ${token}` },
    });
    const body = (await res.json()) as { next: string | null };
    times.push(performance.now() - started);
    if (!res.ok) throw new Error(`admin log answered ${res.status}`);
    // When a filter runs out, start again from the top.
    cursor = body.next ?? '';
  }
  return times.sort((a, b) => a - b);
}

/** CPU seconds this process's finished children (the export readers: sh, curl, wc) have used. */
function childrenCpuSeconds(): number {
  const fields = readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[13]) + Number(fields[14])) / 100;
}

/** One full export read by curl in its own process: rows and seconds. */
function exportOnce(url: string, token: string, format = 'csv'): { done: Promise<{ rows: number; seconds: number }>; stop: () => void } {
  const started = performance.now();
  const child = spawn('sh', ['-c', `curl -sS --fail -H "authorization: Bearer ${token}" "${url}/api/v1/admin/signins?format=${format}" | wc -l`], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let text = '';
  child.stdout.on('data', (chunk: Buffer) => (text += chunk.toString()));
  const done = new Promise<{ rows: number; seconds: number }>((resolve, reject) => {
    child.on('close', (code) =>
      code === 0 || code === null
        ? resolve({ rows: Math.max(0, Number(text.trim()) - 1), seconds: (performance.now() - started) / 1000 })
        : reject(new Error(`export exited ${code}`)),
    );
  });
  return { done, stop: () => child.kill('SIGTERM') };
}

/**
 * The longest event-loop delay the node saw since the last call, in ms, from
 * its own metrics (prom-client resets the delay histogram at each scrape).
 */
async function eventLoopLagMax(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('steadfast_nodejs_eventloop_lag_max_seconds '));
  return Number(line?.split(' ')[1] ?? NaN) * 1000;
}

/** GET /api/v1/status every 20 ms, one at a time, until stopped: how long a cheap request waits. */
function statusProbe(url: string): { stop: () => Promise<number[]> } {
  const times: number[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const started = performance.now();
      await (await fetch(`${url}/api/v1/status`)).arrayBuffer();
      times.push(performance.now() - started);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return times.sort((a, b) => a - b);
    },
  };
}

/** Password sign-ins at concurrency `c` (and at most `rate` per second) for the window, each from its own address. */
async function signins(url: string, c: number, rate?: number) {
  let n = 0;
  return load({
    url,
    connections: c,
    duration: SECONDS,
    ...(rate ? { overallRate: rate } : {}),
    requests: [
      {
        method: 'POST',
        path: '/api/v1/t/bench/signin',
        setupRequest: (req: any) => {
          const i = n++;
          return {
            ...req,
            headers: { 'content-type': 'application/json', 'x-forwarded-for': `10.9.${(i >> 8) & 255}.${i & 255}` },
            body: JSON.stringify({ username: `signin${i % SIGNIN_USERS}`, password: PASSWORD }),
          };
        },
      },
    ],
  });
}

async function sweeperRate(prepared: Prepared): Promise<{ rows: number; seconds: number; maxStallMs: number; p99StallMs: number }> {
  // The clock moved on so that about a tenth of the log (its oldest days) is past the 90 days kept.
  const clock = new ManualClock(Date.now() + 9 * DAY);
  // As a node runs it: checkpoints of the SQLite WAL in their worker thread.
  const services: Services = await buildServices(loadConfig(prepared.env), { clock, server: true, ...prepared.servicesOptions });
  try {
    const delay = monitorEventLoopDelay({ resolution: 5 });
    delay.enable();
    const started = performance.now();
    const report = await services.sweeper.runOnce();
    const seconds = (performance.now() - started) / 1000;
    delay.disable();
    return { rows: report.removed['signin-events'] ?? 0, seconds, maxStallMs: delay.max / 1e6, p99StallMs: delay.percentile(99) / 1e6 };
  } finally {
    await services.close();
  }
}

out(`Steadfast data benchmark: ${fmt(EVENTS)} sign-in events per store, ${availableParallelism()} cores, Node ${process.version}`);
for (const backend of BACKENDS) {
  out();
  out(`== ${backend === 'postgres' ? 'PostgreSQL' : 'SQLite (embedded)'}`);
  const prepared = await prepare(backend);
  try {
    const bytes = await prepared.bytes();
    out(`size: ${fmt(mb(bytes))} MB for the log (tables and indexes): ${fmt(mb(bytes) / (EVENTS / 1e6))} MB per million events`);

    const server = await startServerProcess(prepared.env);
    try {
      const filters: [string, string][] = [
        ['none', ''],
        ['user', `user=${prepared.log.sampleUserId}`],
        ['outcome=failure', 'outcome=failure'],
        ['method=tap', 'method=tap'],
        ['since=last 24 h', `since=${encodeURIComponent(new Date(Date.now() - DAY).toISOString())}`],
        ['outcome=failure&method=webauthn', 'outcome=failure&method=webauthn'],
      ];
      // The first report query may wait for the report worker to start: not counted.
      await queryLatencies(server.url, prepared.token, 'outcome=success');
      out(`admin log queries (limit=100, ${QUERY_PAGES} pages each, following the cursor):`);
      for (const [name, query] of filters) {
        const times = await queryLatencies(server.url, prepared.token, query);
        out(
          `  ${name.padEnd(32)} p50 ${fmt(percentile(times, 50), 1)} ms, p99 ${fmt(percentile(times, 99), 1)} ms${percentile(times, 99) > 100 ? '  (over the 100 ms target)' : ''}`,
        );
      }

      const cpuBefore = cpuSnapshot(server.child.pid!, BENCH_PROCESS);
      const readerBefore = childrenCpuSeconds();
      const alone = await exportOnce(server.url, prepared.token).done;
      const cpuAfter = cpuSnapshot(server.child.pid!, BENCH_PROCESS);
      out(
        `full CSV export alone: ${fmt(alone.rows)} rows in ${fmt(alone.seconds, 1)} s = ${fmt(alone.rows / alone.seconds)} rows/s${alone.rows !== EVENTS ? `  (expected ${fmt(EVENTS)} rows!)` : ''}`,
      );
      // Where the export costs CPU (cores busy on average while it ran): the node's threads, the database, the reader (curl | wc).
      out(
        `  CPU while it ran, in cores: ${cpuSplit(cpuBefore, cpuAfter, alone.seconds)}, reader (curl | wc) ${((childrenCpuSeconds() - readerBefore) / alone.seconds).toFixed(2)}`,
      );

      // Capacity: as many password sign-ins as the node takes at twice the cores in flight.
      const c = 2 * availableParallelism();
      const capacity = await signins(server.url, c);
      out(`password sign-ins at capacity (c=${c}, ${SECONDS} s): ${fmt(capacity.perSecond, 1)}/s, p99 ${fmt(capacity.p99)} ms`);
      // The comparison runs at 60% of capacity: a node serving sign-ins with the headroom it should have.
      const rate = Math.max(1, Math.round(0.6 * capacity.perSecond));

      await eventLoopLagMax(server.url);
      const probe = statusProbe(server.url);
      const cpuBeforeBefore = cpuSnapshot(server.child.pid!, BENCH_PROCESS);
      const beforeStarted = performance.now();
      const before = await signins(server.url, c, rate);
      const cpuReference = cpuSplit(cpuBeforeBefore, cpuSnapshot(server.child.pid!, BENCH_PROCESS), (performance.now() - beforeStarted) / 1000);
      const statusBefore = await probe.stop();
      const lagBefore = await eventLoopLagMax(server.url);

      // Exports back to back for the whole window.
      let exporting = true;
      let current = exportOnce(server.url, prepared.token);
      let exportedRows = 0;
      const exports = (async () => {
        while (exporting) {
          const result = await current.done.catch(() => ({ rows: 0, seconds: 0 }));
          exportedRows += result.rows;
          if (exporting) current = exportOnce(server.url, prepared.token);
        }
      })();
      const probeDuring = statusProbe(server.url);
      const cpuDuringBefore = cpuSnapshot(server.child.pid!, BENCH_PROCESS);
      const duringStarted = performance.now();
      const during = await signins(server.url, c, rate);
      const cpuDuring = cpuSplit(cpuDuringBefore, cpuSnapshot(server.child.pid!, BENCH_PROCESS), (performance.now() - duringStarted) / 1000);
      const statusDuring = await probeDuring.stop();
      const lagDuring = await eventLoopLagMax(server.url);
      exporting = false;
      current.stop();
      await exports;

      out(
        `password sign-ins at ${rate}/s (60% of capacity), reference without an export: p50 ${fmt(before.p50)} ms, p99 ${fmt(before.p99)} ms; non-2xx ${before.non2xx}`,
      );
      out(
        `password sign-ins at ${rate}/s with exports running back to back:        p50 ${fmt(during.p50)} ms, p99 ${fmt(during.p99)} ms; non-2xx ${during.non2xx}; ${fmt(exportedRows)} rows exported meanwhile`,
      );
      out(`  sign-in p99 ratio (with / without an export): ${fmt(during.p99 / before.p99, 2)}x (target at most 1.2x)`);
      out(
        `GET /api/v1/status every 20 ms: without an export p99 ${fmt(percentile(statusBefore, 99), 1)} ms, max ${fmt(statusBefore.at(-1) ?? NaN, 1)} ms; with exports p99 ${fmt(percentile(statusDuring, 99), 1)} ms, max ${fmt(statusDuring.at(-1) ?? NaN, 1)} ms (target: no wait over 50 ms)`,
      );
      out(`node's event loop, longest delay: ${fmt(lagBefore, 1)} ms without an export, ${fmt(lagDuring, 1)} ms with exports`);
      out(`  CPU in cores without an export: ${cpuReference}`);
      out(`  CPU in cores with exports: ${cpuDuring}`);
      prepared.signinsPerSecond = capacity.perSecond;
    } finally {
      await server.stop();
    }

    const sweep = await sweeperRate(prepared);
    // A sign-in writes two events (password, second factor).
    const written = 2 * (prepared.signinsPerSecond ?? 0);
    out(
      `sweeper: removed ${fmt(sweep.rows)} expired events in ${fmt(sweep.seconds, 1)} s = ${fmt(sweep.rows / sweep.seconds)} rows/s, ${fmt(sweep.rows / sweep.seconds / written, 1)}x the ${fmt(written)} events/s a node at capacity writes; event loop held at most ${fmt(sweep.maxStallMs, 1)} ms (p99 ${fmt(sweep.p99StallMs, 1)} ms)`,
    );
  } finally {
    await prepared.cleanup();
  }
}
