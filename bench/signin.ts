/**
 * `npm run bench -- signin`
 *
 * 1. Reference: the Argon2id ceiling, hashes per second on all cores with the
 *    configured parameters, and the bare HTTP ceiling (GET /healthz) of the same
 *    server.
 * 2. Password sign-ins per second at concurrency 10 against the real server
 *    (`steadfast start` in its own process, SQLite, in-process state), as a
 *    share of the Argon2id ceiling.
 * 3. TOTP verifications per second at concurrency 10, each on its own flow
 *    and credential (a code is single-use), with p50/p99.
 * 4. Unknown user against wrong password: median times side by side.
 * 5. TOTP verifications per second on shared stores (Redis), one process
 *    against STEADFAST_WORKERS=N (bench/totp-workers.ts), each against the
 *    same server's bare HTTP ceiling, with where the machine's cores went.
 *    BENCH_TOTP_ONLY=1 runs only this part; BENCH_WORKER_RUNS=1 or N only one
 *    of its two runs; BENCH_DATABASE_URL=postgres://… on PostgreSQL.
 */
import { availableParallelism } from 'node:os';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { verify } from '@node-rs/argon2';
import { loadConfig } from '../src/config/config.ts';
import { buildServices } from '../src/server/services.ts';
import { seedReturningUsers } from './returning-users.ts';
import { PasswordHasher } from '../src/directory/password-hasher.ts';
import { totpCode } from '../test/helpers/totp.ts';
import { cpuSeconds, fmt, load, runPrepared, startServerProcess } from './harness.ts';
import { measureTotpWorkers } from './totp-workers.ts';
import { REDIS_URL, redisAvailable } from '../test/helpers/services-available.ts';

const USERS = Number(process.env.BENCH_USERS ?? 6000);
const SIGNIN_SECONDS = Number(process.env.BENCH_SIGNIN_SECONDS ?? 20);
const CONCURRENCY = 10;
const PASSWORD = 'bench password 123';
const LOG_LEVEL = process.env.BENCH_LOG_LEVEL ?? 'warn';

const out = (line = '') => process.stdout.write(line + '\n');

async function argon2Ceiling(seconds: number): Promise<number> {
  const hasher = new PasswordHasher();
  const hash = await hasher.hash(PASSWORD);
  const workers = availableParallelism();
  let done = 0;
  const deadline = performance.now() + seconds * 1000;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: workers }, async () => {
      while (performance.now() < deadline) {
        await verify(hash, PASSWORD);
        done++;
      }
    }),
  );
  return done / ((performance.now() - started) / 1000);
}

const dataDir = mkdtempSync(join(tmpdir(), 'steadfast-bench-'));
const masterKey = randomBytes(32).toString('base64');
const env: Record<string, string> = {
  STEADFAST_DATA_DIR: dataDir,
  STEADFAST_MASTER_KEY: masterKey,
  STEADFAST_LOG_LEVEL: LOG_LEVEL,
  STEADFAST_TRUST_PROXY: '1',
};

out(`Steadfast sign-in benchmark: ${availableParallelism()} cores, Node ${process.version}, SQLite + in-process state, log level ${LOG_LEVEL}`);

// Users share one password hash (the verification cost is the same as with distinct ones) and each has its own TOTP secret.
const secrets: string[] = [];
const userIds: string[] = [];
let tenantId = '';
{
  const services = await buildServices(loadConfig(env));
  const tenant = await services.tenants.create('bench');
  tenantId = tenant.id;
  for (const user of await seedReturningUsers(services, tenant.id, USERS, PASSWORD)) {
    secrets.push(user.secret);
    userIds.push(user.id);
  }
  await services.close();
}

// The users whose codes the single-process part spent: their steps are taken in the database the next part shares.
const spent = new Set<number>();
if (process.env.BENCH_TOTP_ONLY !== '1') await singleProcess();
if (await redisAvailable()) {
  await measureTotpWorkers({
    env,
    redisUrl: REDIS_URL,
    tenantId,
    tenantSlug: 'bench',
    // Without them: their first code here (the step before the current one) would rightly be refused as used.
    users: userIds.flatMap((id, i) => (spent.has(i) ? [] : [{ id, username: `user${i}`, secret: secrets[i]! }])),
    concurrency: CONCURRENCY,
    out,
  });
} else {
  out('TOTP verify on shared stores: skipped (no Redis at STEADFAST_TEST_REDIS_URL or 127.0.0.1:6379)');
}
rmSync(dataDir, { recursive: true, force: true });

async function singleProcess() {
  const ceiling = await argon2Ceiling(5);
  out(`reference  Argon2id ceiling (m=19456 KiB, t=2, p=1, ${availableParallelism()} at once): ${fmt(ceiling, 1)} verifications/s`);

  const server = await startServerProcess(env);
  try {
    const http = await load({ url: `${server.url}/healthz`, connections: CONCURRENCY, duration: 3 });
    out(`reference  bare HTTP ceiling (GET /healthz, c=${CONCURRENCY}): ${fmt(http.perSecond)} req/s, p99 ${fmt(http.p99, 1)} ms`);

    let next = 0;
    let ip = 0;
    const flows: { flow: string; user: number }[] = [];
    const signinRequest = (path: string) => ({
      method: 'POST' as const,
      path,
      headers: { 'content-type': 'application/json' },
      setupRequest: (req: any, context: any) => {
        // Every flow gets its own user: a second flow of the same user in the same
        // 30 s step would, rightly, be refused its already-used code.
        const user = next++ % USERS;
        context.user = user;
        return {
          ...req,
          body: JSON.stringify({ username: `user${user}`, password: PASSWORD }),
          headers: { ...req.headers, 'x-forwarded-for': `10.${(ip >> 16) & 255}.${(ip >> 8) & 255}.${ip++ & 255}` },
        };
      },
      onResponse: (status: number, body: string, context: any) => {
        if (status === 200) flows.push({ flow: JSON.parse(body).flow, user: context.user });
      },
    });
    const signin = await load({ url: server.url, connections: CONCURRENCY, duration: SIGNIN_SECONDS, requests: [signinRequest('/api/v1/t/bench/signin')] });
    out(
      // Only answered sign-ins count: admission refuses what the hashing pool cannot take (503), and a refusal is not a sign-in.
      `password sign-in (c=${CONCURRENCY}, ${SIGNIN_SECONDS} s): ${fmt(flows.length / SIGNIN_SECONDS, 1)}/s succeeded = ${fmt((100 * flows.length) / SIGNIN_SECONDS / ceiling)}% of the Argon2id ceiling; p50 ${fmt(signin.p50)} ms, p99 ${fmt(signin.p99)} ms (all answers); refused or failed ${signin.non2xx}, errors ${signin.errors}`,
    );

    // Warm the verify path on the first flows, then measure on the rest.
    const verifyRun = (batch: { flow: string; user: number }[]) =>
      runPrepared(
        server.url,
        batch.map((item) => ({
          path: `/api/v1/t/bench/signin/${item.flow}/verify`,
          body: JSON.stringify({ method: 'totp', code: totpCode(secrets[item.user]!, Date.now()) }),
        })),
        CONCURRENCY,
      );
    // One flow per user: refused sign-ins also take a user number, so users wrap around, and a second flow of
    // a user in the same 30 s step would rightly be refused the code the first one spent.
    const unique = flows.filter((item) => !spent.has(item.user) && spent.add(item.user));
    flows.length = 0;
    flows.push(...unique);
    const warm = Math.min(200, Math.floor(flows.length / 5));
    await verifyRun(flows.slice(0, warm));
    const measured = flows.slice(warm);
    const cpuBefore = cpuSeconds(server.child.pid!);
    const clientBefore = process.cpuUsage();
    const wallBefore = performance.now();
    const totp = await verifyRun(measured);
    const wall = (performance.now() - wallBefore) / 1000;
    const serverCpu = (cpuSeconds(server.child.pid!) - cpuBefore) / wall;
    const clientUsage = process.cpuUsage(clientBefore);
    const clientCpu = (clientUsage.user + clientUsage.system) / 1e6 / wall;
    out(
      `TOTP verify (c=${CONCURRENCY}, ${measured.length} flows): ${fmt(totp.perSecond)}/s = ${fmt((100 * totp.perSecond) / http.perSecond)}% of the bare HTTP ceiling; p50 ${fmt(totp.p50, 1)} ms, p99 ${fmt(totp.p99, 1)} ms; failed ${totp.failures}; server busy ${fmt(100 * serverCpu)}% of a core, load generator ${fmt(100 * clientCpu)}%`,
    );

    // Uniform failures: each request from its own address so no limit interferes.
    const timing = async (username: (i: number) => string) => {
      let k = 0;
      return load({
        url: server.url,
        connections: 2,
        amount: 200,
        requests: [
          {
            method: 'POST',
            path: '/api/v1/t/bench/signin',
            setupRequest: (req: any) => ({
              ...req,
              headers: { 'content-type': 'application/json', 'x-forwarded-for': `172.16.${(ip >> 8) & 255}.${ip++ & 255}` },
              body: JSON.stringify({ username: username(k++), password: 'wrong password' }),
            }),
          },
        ],
      });
    };
    const wrong = await timing((i) => `user${(i * 7) % USERS}`);
    const unknown = await timing((i) => `nobody${i}`);
    out(
      `uniform failures (c=2, 200 each): wrong password p50 ${fmt(wrong.p50, 1)} ms / p99 ${fmt(wrong.p99, 1)} ms; unknown user p50 ${fmt(unknown.p50, 1)} ms / p99 ${fmt(unknown.p99, 1)} ms; ratio of medians ${fmt(unknown.p50 / wrong.p50, 2)}`,
    );
  } finally {
    await server.stop();
  }
}
