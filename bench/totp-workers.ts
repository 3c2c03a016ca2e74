/**
 * Part of `npm run bench -- signin`: TOTP verifications per second of one node
 * on shared stores (Redis for flows and counters, the durable store of the
 * earlier phases or BENCH_DATABASE_URL), first as one process, then with
 * STEADFAST_WORKERS=N (default: the core count).
 *
 * The flows a password step would open are written straight into Redis, so the
 * run is not bounded by Argon2id. Each run has half of the users, and each user
 * verifies three times, with the code
 * of the step before, of the current step and of the next one (computed at send
 * time, so crossing a 30 s boundary keeps them in ascending order; each is
 * accepted once, as a real authenticator's would be).
 */
import { FLOW_RECORD_VERSION, type Flow } from '../src/signin/flow.ts';
import { randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { Redis } from 'ioredis';
import pg from 'pg';
import { loadConfig } from '../src/config/config.ts';
import { buildServices } from '../src/server/services.ts';
import { secretContext } from '../src/methods/credentials.ts';
import { totpCode } from '../test/helpers/totp.ts';
import { cpuByGroup, fmt, load, startServerProcess } from './harness.ts';

export interface TotpWorkersOptions {
  env: Record<string, string>;
  redisUrl: string;
  tenantId: string;
  tenantSlug: string;
  users: { id: string; username: string; secret: string }[];
  concurrency: number;
  out: (line: string) => void;
}

const ROUNDS = 3;
const FLOW_TTL_MS = 10 * 60_000;

async function run(options: TotpWorkersOptions, users: TotpWorkersOptions['users'], workers: number) {
  const namespace = `bench-${randomBytes(4).toString('hex')}`;
  const redis = new Redis(options.redisUrl, { keyPrefix: `${namespace}:` });
  const items: { flow: string; user: number; round: number }[] = [];
  const now = Date.now();
  for (let round = 0; round < ROUNDS; round++) {
    const pipeline = redis.pipeline();
    users.forEach((u, user) => {
      const id = randomBytes(24).toString('base64url');
      const flow = {
        v: FLOW_RECORD_VERSION,
        id,
        kind: 'second-factor',
        tenantId: options.tenantId,
        userId: u.id,
        username: u.username,
        amr: ['pwd'],
        createdAt: now,
        expiresAt: now + FLOW_TTL_MS,
      } satisfies Flow;
      pipeline.set(`flow:${id}`, JSON.stringify(flow), 'PX', FLOW_TTL_MS);
      items.push({ flow: id, user, round });
    });
    await pipeline.exec();
  }
  const server = await startServerProcess({
    ...options.env,
    STEADFAST_REDIS_URL: options.redisUrl,
    STEADFAST_REDIS_NAMESPACE: namespace,
    STEADFAST_WORKERS: String(workers),
  });
  try {
    const warm = Math.min(500, Math.floor(users.length / 5));
    let next = 0;
    let ip = 0;
    let failures = 0;
    // From the first request sent to the last answer: autocannon's own run with `amount` ends on its next
    // one-second tick, which rounded every run up to whole seconds (8,500 verifications read as 849/s each time).
    let first = 0;
    let last = 0;
    const request = {
      method: 'POST' as const,
      headers: { 'content-type': 'application/json' },
      setupRequest: (req: any) => {
        first ||= performance.now();
        const item = items[next++]!;
        const code = totpCode(users[item.user]!.secret, Date.now() + (item.round - 1) * 30_000);
        return {
          ...req,
          path: `/api/v1/t/${options.tenantSlug}/signin/${item.flow}/verify`,
          body: JSON.stringify({ method: 'totp', code }),
          headers: { ...req.headers, 'x-forwarded-for': `10.9.${(ip >> 8) & 255}.${ip++ & 255}` },
        };
      },
      onResponse: (status: number, body: string) => {
        last = performance.now();
        if (status !== 200) {
          failures++;
          if (process.env.BENCH_DEBUG) process.stderr.write(`${status} ${body.slice(0, 200)}\n`);
        }
      },
    };
    // Warm-up on the first flows of round 0 (their users then go on to rounds 1 and 2 as usual).
    await load({ url: server.url, connections: options.concurrency, amount: warm, requests: [request] });
    // The reference of this run: the same server's bare HTTP ceiling (GET /healthz) at the same concurrency.
    const http = await load({ url: `${server.url}/healthz`, connections: options.concurrency, duration: 3 });
    const measured = items.length - warm;
    failures = 0;
    first = 0;
    const cpuBefore = cpuByGroup(server.child.pid!);
    const result = await load({ url: server.url, connections: options.concurrency, amount: measured, requests: [request] });
    // The CPU read at the end includes autocannon's idle tail, which costs the server nothing.
    const cpuAfter = cpuByGroup(server.child.pid!);
    const wall = (last - first) / 1000;
    // Where the machine's cores went during the run, in cores (1.00 = one core busy throughout).
    const cores = Object.fromEntries(Object.entries(cpuAfter).map(([k, v]) => [k, (v - cpuBefore[k as keyof typeof cpuBefore]) / wall])) as typeof cpuAfter;
    // Requests that got no answer at all (refused or reset connections) fail too.
    return { perSecond: measured / wall, p50: result.p50, p99: result.p99, failures: failures + result.errors, measured, http: http.perSecond, cores };
  } finally {
    await server.stop();
    const keys = await redis.keys(`${namespace}:*`);
    for (let i = 0; i < keys.length; i += 1000) await redis.unlink(...keys.slice(i, i + 1000).map((k) => k.slice(namespace.length + 1)));
    redis.disconnect();
  }
}

/**
 * BENCH_DATABASE_URL=postgres://…: the runs use PostgreSQL (a fresh schema,
 * the same users) instead of the SQLite file. Several processes writing one
 * SQLite file take turns for its write lock, so workers share PostgreSQL best.
 */
async function onPostgres(options: TotpWorkersOptions, url: string): Promise<{ options: TotpWorkersOptions; drop: () => Promise<void> }> {
  const schema = `bench_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  await admin.query(`create schema ${schema}`);
  await admin.end();
  const env = { ...options.env, STEADFAST_DATABASE_URL: `${url}${url.includes('?') ? '&' : '?'}options=${encodeURIComponent(`-c search_path=${schema}`)}` };
  const services = await buildServices(loadConfig(env));
  const tenant = await services.tenants.create(options.tenantSlug);
  const users = [];
  for (const [i, u] of options.users.entries()) {
    const user = await services.users.create(tenant.id, { username: u.username, passwordHash: 'unused' });
    const id = `cred-${i}`;
    await services.credentials.insert({
      id,
      tenantId: tenant.id,
      userId: user.id,
      type: 'totp',
      label: 'bench',
      state: 'active',
      secret: services.keyRing.seal(u.secret, secretContext('totp', id)),
    });
    users.push({ ...u, id: user.id });
  }
  await services.close();
  return {
    options: { ...options, env, tenantId: tenant.id, users },
    drop: async () => {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      await c.query(`drop schema ${schema} cascade`);
      await c.end();
    },
  };
}

export async function measureTotpWorkers(given: TotpWorkersOptions): Promise<void> {
  const workers = Number(process.env.BENCH_WORKERS ?? availableParallelism());
  const pgUrl = process.env.BENCH_DATABASE_URL;
  const postgres = pgUrl ? await onPostgres(given, pgUrl) : undefined;
  const options = postgres?.options ?? given;
  try {
    await compare(options, workers, pgUrl ? 'PostgreSQL + Redis' : 'SQLite + Redis');
  } finally {
    await postgres?.drop();
  }
}

async function compare(options: TotpWorkersOptions, workers: number, stores: string): Promise<void> {
  // Each run has its own users: a step a run used is spent for good.
  const half = Math.floor(options.users.length / 2);
  // CPU of everything one verification needs (server, load generator, Redis, PostgreSQL), in µs.
  const allCost = (r: Awaited<ReturnType<typeof run>>) => (1e6 * (r.cores.server + r.cores.loadGenerator + r.cores.redis + r.cores.postgres)) / r.perSecond;
  const line = (label: string, r: Awaited<ReturnType<typeof run>>) =>
    `${label}: ${fmt(r.perSecond)}/s = ${fmt(r.perSecond / r.http, 2)}x its bare HTTP ceiling (${fmt(r.http)} req/s); p50 ${fmt(r.p50, 1)} ms, p99 ${fmt(r.p99, 1)} ms; failed ${r.failures} of ${r.measured}\n` +
    `    cores busy: server ${fmt(r.cores.server, 2)}, load generator ${fmt(r.cores.loadGenerator, 2)}, redis ${fmt(r.cores.redis, 2)}, postgres ${fmt(r.cores.postgres, 2)}, other ${fmt(r.cores.other, 2)}; ` +
    `server CPU per verification ${fmt((1e6 * r.cores.server) / r.perSecond)} µs, all of it ${fmt(allCost(r))} µs, so ${availableParallelism()} cores given to nothing else would do ${fmt((availableParallelism() * 1e6) / allCost(r))}/s`;
  // BENCH_WORKER_RUNS=1|N|both (default both): which of the two runs to make.
  const runs = process.env.BENCH_WORKER_RUNS ?? 'both';
  const one = runs === 'N' ? undefined : await run(options, options.users.slice(0, half), 1);
  if (one) options.out(line(`TOTP verify, ${stores}, 1 process (c=${options.concurrency})`, one));
  if (runs === '1') return;
  const many = await run(options, options.users.slice(half), workers);
  options.out(
    line(`TOTP verify, ${stores}, STEADFAST_WORKERS=${workers} (c=${options.concurrency})`, many) +
      (one ? `\n    ${fmt(many.perSecond / one.perSecond, 2)}x one process` : ''),
  );
}
