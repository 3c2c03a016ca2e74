/**
 * `npm run bench -- outage`
 *
 * A real node (`steadfast start`, its own process) on a private PostgreSQL and
 * a private Redis that the bench stops and starts, and a load generator in a
 * process of its own (bench/load-generator.ts) sending returning users'
 * sign-ins (password, then TOTP) at a steady rate, open loop, the whole time:
 * 1. reference: the node's capacity for password sign-ins (closed loop), then
 *    the healthy phase at half of it (success rate and p99: the reference);
 * 2. PostgreSQL stopped (immediate shutdown, as a crashed host) while the load
 *    runs: the node signs in from its local fallback;
 * 3. Redis killed too: flows and codes fall back to the node's memory;
 * 4. both started again: the journal is replayed; the bench waits until it is
 *    empty and times the drain.
 * Prints each phase's success rate and p99 (and p99 as a multiple of the
 * healthy phase's), the journal's depth at its peak, the drain time, requests
 * lost (sent and never answered, or answered as a sign-in the database does
 * not have after replay), journal entries replayed twice (replay counted by
 * the node against the entries the database recorded as applied, each once),
 * and the targets of issue 12 met or missed.
 *
 * BENCH_PROFILE=DIR writes the node's CPU profile there (and prints the
 * monotonic time of each switch, to cut it into phases).
 *
 * Settings: BENCH_OUTAGE_SECONDS ("20,30,20,10": healthy, database down, both
 * down, recovery), BENCH_OUTAGE_USERS (5000; each user signs in once, so this
 * caps the rate), BENCH_OUTAGE_RATE (sign-ins per second; default half the
 * measured capacity).
 */
import { availableParallelism, tmpdir } from 'node:os';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { loadConfig } from '../src/config/config.ts';
import { buildServices } from '../src/server/services.ts';
import { seedReturningUsers } from './returning-users.ts';
import { PrivatePostgres } from '../test/helpers/private-postgres.ts';
import { PrivateRedis } from '../test/helpers/private-redis.ts';
import { fmt, startServerProcess } from './harness.ts';
import { startLoadGenerator, type Outcome, type Step } from './load-generator.ts';

const [HEALTHY_S, DB_DOWN_S, BOTH_DOWN_S, RECOVERY_S] = (process.env.BENCH_OUTAGE_SECONDS ?? '20,30,20,10').split(',').map(Number) as [
  number,
  number,
  number,
  number,
];
const LOAD_SECONDS = HEALTHY_S + DB_DOWN_S + BOTH_DOWN_S + RECOVERY_S;
const USERS = Number(process.env.BENCH_OUTAGE_USERS ?? 5000);
const CLIENT_TIMEOUT_MS = 10_000;
const PASSWORD = 'outage password 1';
const out = (line = '') => process.stdout.write(line + '\n');

const percentile = (values: number[], p: number) => {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
};
const pct = (n: number, of: number) => (of === 0 ? NaN : (100 * n) / of);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

if (!PrivatePostgres.available() || !PrivateRedis.available()) {
  out('outage benchmark: skipped (needs root, /usr/lib/postgresql/15/bin and redis-server to run a private PostgreSQL and Redis it can stop)');
  process.exit(0);
}

out(`Steadfast outage benchmark: ${availableParallelism()} cores, Node ${process.version}, private PostgreSQL 15 + Redis; load generator in its own process`);
const [postgres, redis] = await Promise.all([PrivatePostgres.start(), PrivateRedis.start()]);
const seedDir = mkdtempSync(join(tmpdir(), 'steadfast-bench-seed-'));
const dataDir = mkdtempSync(join(tmpdir(), 'steadfast-bench-'));
const masterKey = randomBytes(32).toString('base64');
const env = {
  STEADFAST_DATA_DIR: dataDir,
  STEADFAST_MASTER_KEY: masterKey,
  STEADFAST_DATABASE_URL: postgres.url,
  STEADFAST_REDIS_URL: redis.url,
  STEADFAST_LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'error',
  STEADFAST_TRUST_PROXY: '1',
  STEADFAST_NODE_NAME: 'bench-node',
};

// ---- Returning users: a password and a confirmed TOTP each, seeded before the node starts (so its snapshot has them).
const secrets: string[] = [];
{
  const seeding = performance.now();
  const { STEADFAST_REDIS_URL: _redis, ...withoutRedis } = env;
  const services = await buildServices(loadConfig({ ...withoutRedis, STEADFAST_DATA_DIR: seedDir }));
  const tenant = await services.tenants.create('outage');
  secrets.push(...(await seedReturningUsers(services, tenant.id, USERS, PASSWORD)).map((user) => user.secret));
  await services.close();
  out(`seeded ${USERS} returning users (password + TOTP) in ${fmt((performance.now() - seeding) / 1000, 1)} s`);
}

// BENCH_PROFILE=DIR (read by startServerProcess): the marks below place the store switches in the profile.
const profileDir = process.env.BENCH_PROFILE;
const server = await startServerProcess(env);
const generator = startLoadGenerator();
const database = new pg.Client({ connectionString: postgres.url });
let exitCode = 0;
try {
  // ---- Reference: capacity for password sign-ins on the healthy stores (closed loop, 5 s).
  const passwordOnly: Step[] = Array.from({ length: 200 }, (_, i) => ({
    method: 'POST',
    path: '/api/v1/t/outage/signin',
    body: { username: `user${i}`, password: PASSWORD },
  }));
  const capacity = await generator.run({ kind: 'closed', url: server.url, seconds: 5, connections: 8, scenarios: passwordOnly });
  const capacityPerSecond = (capacity.statuses['200'] ?? 0) / capacity.seconds;
  const wanted = Number(process.env.BENCH_OUTAGE_RATE ?? Math.max(2, capacityPerSecond / 2));
  const rate = Math.min(wanted, USERS / LOAD_SECONDS);
  out(`reference  capacity, password sign-ins (closed loop, c=8, 5 s): ${fmt(capacityPerSecond, 1)}/s, p99 ${fmt(capacity.p99)} ms`);
  out(
    `load       returning users' sign-ins (password, then TOTP), open loop at ${fmt(rate, 1)}/s for ${LOAD_SECONDS} s` +
      (rate < wanted ? ` (capped by BENCH_OUTAGE_USERS=${USERS}: each user signs in once)` : ''),
  );

  // Each arrival is a user of its own: a TOTP code is single-use, and a second sign-in in the same step would rightly be refused.
  const scenarios: Step[][] = secrets.map((secret, i) => [
    { method: 'POST', path: '/api/v1/t/outage/signin', body: { username: `user${i}`, password: PASSWORD } },
    { method: 'POST', path: '/api/v1/t/outage/signin/:flow/verify', body: { method: 'totp' }, totpSecret: secret, flowFromPrevious: true },
  ]);

  // ---- The journal's depth, sampled from the node's metrics the whole time.
  let peakDepth = 0;
  let sampling = true;
  const metric = async (name: string): Promise<number> => {
    const text = await (await fetch(`${server.url}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith(`${name} `));
    return line ? Number(line.split(' ')[1]) : NaN;
  };
  const sampler = (async () => {
    while (sampling) {
      try {
        peakDepth = Math.max(peakDepth, (await metric('steadfast_outage_journal_depth')) || 0);
      } catch {
        // a sample missed under load; the next one counts
      }
      await sleep(250);
    }
  })();

  // ---- The run: one open-loop job; the stores are stopped and started on schedule while it goes on.
  const loadStartWall = Date.now();
  const t0 = performance.now();
  const since = () => (performance.now() - t0) / 1000;
  const job = generator.run({
    kind: 'open',
    url: server.url,
    seconds: LOAD_SECONDS,
    timeoutMs: CLIENT_TIMEOUT_MS,
    streams: [{ name: 'returning', rate, scenarios }],
  });
  const at = { dbDown: 0, bothDown: 0, back: 0, backDone: 0 };
  // With a profile: the monotonic clock (µs, as the profile's timestamps) at each switch, to cut the profile into phases.
  const mark = (what: string) => profileDir && out(`profile    ${what} at ${process.hrtime.bigint() / 1000n} µs (monotonic)`);
  mark('load started');
  await sleep(HEALTHY_S * 1000);
  at.dbDown = since();
  mark('database stopped');
  await postgres.down();
  await sleep(Math.max(0, (HEALTHY_S + DB_DOWN_S - since()) * 1000));
  at.bothDown = since();
  mark('Redis killed');
  await redis.down();
  await sleep(Math.max(0, (HEALTHY_S + DB_DOWN_S + BOTH_DOWN_S - since()) * 1000));
  at.back = since();
  mark('both started');
  await Promise.all([postgres.up(), redis.up()]);
  at.backDone = since();
  const outcomes: Outcome[] = await job;

  // ---- Drain: until the journal is empty and the node is back on the database.
  let drainedAfter = NaN;
  for (let i = 0; i < 240; i++) {
    try {
      if ((await metric('steadfast_outage_journal_depth')) === 0 && (await metric('steadfast_fallback_active')) === 0) {
        drainedAfter = since() - at.backDone;
        break;
      }
    } catch {
      // not answering yet
    }
    await sleep(250);
  }
  sampling = false;
  await sampler;

  // ---- Phases.
  const phases = [
    { name: 'healthy', from: 0, to: at.dbDown },
    { name: 'database down', from: at.dbDown, to: at.bothDown },
    { name: 'database and Redis down', from: at.bothDown, to: at.back },
    { name: 'both back (replay)', from: at.back, to: Infinity },
  ].map((phase) => {
    const mine = outcomes.filter((o) => o.at >= phase.from && o.at < phase.to);
    const answered = mine.filter((o) => o.status !== 0);
    return {
      ...phase,
      sent: mine.length,
      ok: mine.filter((o) => o.ok).length,
      unanswered: mine.length - answered.length,
      p99: percentile(
        answered.map((o) => o.ms),
        0.99,
      ),
      statuses: mine.reduce<Record<string, number>>((acc, o) => {
        // A failure is named by its status, the step that failed and the problem it answered: "404 at step 2 (flow-not-found)".
        const key = o.ok
          ? '200'
          : `${o.status === 0 ? 'no answer' : o.status} at step ${o.failed?.step ?? '?'}${o.failed?.problem ? ` (${o.failed.problem})` : ''}`;
        return { ...acc, [key]: (acc[key] ?? 0) + 1 };
      }, {}),
    };
  });
  const healthy = phases[0]!;
  out(
    `reference  healthy: ${fmt(healthy.ok / (at.dbDown || 1), 1)} sign-ins/s succeeded, ${fmt(pct(healthy.ok, healthy.sent), 2)}% of ${healthy.sent}, p99 ${fmt(healthy.p99)} ms`,
  );
  for (const phase of phases.slice(1)) {
    const statuses = Object.entries(phase.statuses)
      .filter(([status]) => status !== '200')
      .map(([status, n]) => `${status}: ${n}`)
      .join(', ');
    out(
      `${phase.name.padEnd(24)} ${fmt(pct(phase.ok, phase.sent), 2)}% of ${phase.sent} succeeded, p99 ${fmt(phase.p99)} ms = ${fmt(phase.p99 / healthy.p99, 2)}x healthy` +
        (statuses ? ` (others: ${statuses})` : ''),
    );
  }
  out(
    `stores     PostgreSQL stopped at ${fmt(at.dbDown, 1)} s, Redis killed at ${fmt(at.bothDown, 1)} s, both started at ${fmt(at.back, 1)} s (up by ${fmt(at.backDone, 1)} s)`,
  );
  out(
    `journal    peak depth ${fmt(peakDepth)} entries; drained ${Number.isNaN(drainedAfter) ? 'NOT within 60 s' : `${fmt(drainedAfter, 1)} s after the stores were back`}`,
  );

  // ---- Nothing lost, nothing replayed twice: what the clients were told against what the database has.
  await database.connect();
  const count = async (text: string, values: unknown[] = []) => Number((await database.query<{ n: string }>(text, values)).rows[0]!.n);
  const succeeded = outcomes.filter((o) => o.ok).length;
  const unanswered = outcomes.filter((o) => o.status === 0).length;
  const events = await count(`select count(*) as n from signin_events where step = 'second-factor' and outcome = 'success' and at >= $1`, [loadStartWall]);
  const sessions = await count(`select count(*) as n from sessions where created_at >= $1`, [loadStartWall]);
  const appliedOnce = await count('select count(*) as n from outage_replays');
  const replayed = await metric('steadfast_outage_journal_replayed_total');
  const rejected = await metric('steadfast_outage_journal_rejected_total');
  const missing = Math.max(0, succeeded - events) + Math.max(0, succeeded - sessions);
  const lost = unanswered + missing;
  const replayedTwice = Math.max(0, replayed - appliedOnce);
  out(
    `records    ${succeeded} sign-ins answered as complete; the database has ${events} successful sign-in events and ${sessions} sessions from the run` +
      ` (a sign-in it completed whose answer the client did not get counts as unanswered)`,
  );
  out(`replay     ${fmt(replayed)} journal entries replayed, ${fmt(appliedOnce)} recorded as applied (each once), ${fmt(rejected)} refused by the database`);

  const dbDown = phases[1]!;
  const bothDown = phases[2]!;
  const checks: [string, boolean][] = [
    [`returning users' sign-ins with the database down >= 99%: ${fmt(pct(dbDown.ok, dbDown.sent), 2)}%`, pct(dbDown.ok, dbDown.sent) >= 99],
    [`with the database and Redis down >= 95%: ${fmt(pct(bothDown.ok, bothDown.sent), 2)}%`, pct(bothDown.ok, bothDown.sent) >= 95],
    [
      `p99 within 2x of healthy: database down ${fmt(dbDown.p99 / healthy.p99, 2)}x, both down ${fmt(bothDown.p99 / healthy.p99, 2)}x`,
      dbDown.p99 <= 2 * healthy.p99 && bothDown.p99 <= 2 * healthy.p99,
    ],
    [`requests lost = 0: ${lost} (${unanswered} never answered, ${missing} answered but missing from the database)`, lost === 0],
    [`journal entries replayed twice = 0: ${replayedTwice}`, replayedTwice === 0],
    [`journal drained after recovery`, !Number.isNaN(drainedAfter)],
  ];
  for (const [what, met] of checks) out(`target     ${met ? 'met   ' : 'MISSED'} ${what}`);
  if (checks.some(([, met]) => !met)) exitCode = 1;
} finally {
  generator.stop();
  await server.stop();
  await database.end().catch(() => {});
  await Promise.all([postgres.destroy(), redis.down()]);
  rmSync(seedDir, { recursive: true, force: true });
  rmSync(dataDir, { recursive: true, force: true });
}
process.exit(exitCode);
