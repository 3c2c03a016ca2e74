/**
 * `npm run bench -- overload`
 *
 * For admission control on (the defaults) and, in the same run, off:
 * 1. capacity: password sign-ins per second, closed loop at concurrency 10;
 * 2. surge: five times that rate, open loop, for 20 s, while second-factor
 *    completions of sign-ins already past their password arrive at a steady rate;
 * 3. recovery: closed loop again, until p99 is back within 1.5x of before.
 * Prints goodput/capacity, accepted and refusal p99, timeouts, the share of
 * second-factor completions that succeeded, and the time back to normal.
 */
import { availableParallelism, tmpdir } from 'node:os';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Pool } from 'undici';
import { Secret } from 'otpauth';
import { loadConfig } from '../src/config/config.ts';
import { buildServices } from '../src/server/services.ts';
import { secretContext } from '../src/methods/credentials.ts';
import { totpCode } from '../test/helpers/totp.ts';
import { fmt, load, startServerProcess } from './harness.ts';

const SURGE_SECONDS = Number(process.env.BENCH_SURGE_SECONDS ?? 20);
const SURGE_FACTOR = 5;
const SECOND_FACTOR_RATE = 10;
const USERS = 4000;
const MFA_USERS = SURGE_SECONDS * SECOND_FACTOR_RATE + 50;
const CLIENT_TIMEOUT_MS = 5000;
const PASSWORD = 'overload password 1';
const out = (line = '') => process.stdout.write(line + '\n');

interface Outcome {
  kind: 'password' | 'second-factor';
  status: number;
  ms: number;
}

const p99 = (values: number[]) => {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))]!;
};

let ip = 0;
const nextIp = () => `10.${(ip >> 16) & 255}.${(ip >> 8) & 255}.${ip++ & 255}`;

async function scenario(label: string, env: Record<string, string>, secrets: string[]): Promise<void> {
  const server = await startServerProcess(env);
  const pool = new Pool(server.url, { connections: 1024, pipelining: 1, headersTimeout: CLIENT_TIMEOUT_MS, bodyTimeout: CLIENT_TIMEOUT_MS });
  const send = async (kind: Outcome['kind'], path: string, body: unknown): Promise<Outcome> => {
    const started = performance.now();
    try {
      const res = await pool.request({ method: 'POST', path, headers: { 'content-type': 'application/json', 'x-forwarded-for': nextIp() }, body: JSON.stringify(body), signal: AbortSignal.timeout(CLIENT_TIMEOUT_MS) });
      const text = await res.body.text();
      return { kind, status: res.statusCode, ms: performance.now() - started, ...(kind === 'password' && res.statusCode === 200 ? { flow: JSON.parse(text).flow } : {}) };
    } catch {
      return { kind, status: 0, ms: performance.now() - started };
    }
  };
  let user = 0;
  const signinBody = () => ({ username: `user${MFA_USERS + (user++ % (USERS - MFA_USERS))}`, password: PASSWORD });

  try {
    // 1. Capacity, closed loop.
    const capacityRun = await load({
      url: server.url,
      connections: 10,
      duration: 5,
      requests: [{ method: 'POST', path: '/api/v1/t/bench/signin', setupRequest: (req: any) => ({ ...req, headers: { 'content-type': 'application/json', 'x-forwarded-for': nextIp() }, body: JSON.stringify(signinBody()) }) }],
    });
    const capacity = capacityRun.perSecond;
    const normalP99 = capacityRun.p99;

    // Sign-ins past their password, to be finished during the surge.
    const flows: { flow: string; user: number }[] = [];
    for (let i = 0; i < MFA_USERS; i++) {
      const res = await send('password', '/api/v1/t/bench/signin', { username: `user${i}`, password: PASSWORD });
      const flow = (res as Outcome & { flow?: string }).flow;
      if (flow) flows.push({ flow, user: i });
    }

    // 2. Surge, open loop: requests leave on schedule whatever the answers.
    const rate = capacity * SURGE_FACTOR;
    const outcomes: Promise<Outcome>[] = [];
    const tickMs = 10;
    const started = performance.now();
    let sentPasswords = 0;
    let sentFactors = 0;
    await new Promise<void>((resolve) => {
      const timer = setInterval(() => {
        const elapsed = (performance.now() - started) / 1000;
        if (elapsed >= SURGE_SECONDS) {
          clearInterval(timer);
          resolve();
          return;
        }
        for (; sentPasswords < elapsed * rate; sentPasswords++) outcomes.push(send('password', '/api/v1/t/bench/signin', signinBody()));
        for (; sentFactors < elapsed * SECOND_FACTOR_RATE && sentFactors < flows.length; sentFactors++) {
          const { flow, user: u } = flows[sentFactors]!;
          outcomes.push(send('second-factor', `/api/v1/t/bench/signin/${flow}/verify`, { method: 'totp', code: totpCode(secrets[u]!, Date.now()) }));
        }
      }, tickMs);
    });
    const surgeEnded = performance.now();
    const results = await Promise.all(outcomes);
    const passwords = results.filter((r) => r.kind === 'password');
    const factors = results.filter((r) => r.kind === 'second-factor');
    const accepted = passwords.filter((r) => r.status === 200);
    const refused = passwords.filter((r) => r.status === 503 || r.status === 429);
    const timeouts = results.filter((r) => r.status === 0 || r.status === 504).length;
    const goodput = accepted.length / SURGE_SECONDS;

    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    const shedBy = (reason: string) =>
      [...metrics.matchAll(new RegExp(`steadfast_admission_shed_total\\{[^}]*reason="${reason}"[^}]*\\} (\\d+)`, 'g'))].reduce((n, m) => n + Number(m[1]), 0);

    // 3. Back to normal: one-second closed-loop windows until p99 is within 1.5x of before.
    let backAfter = NaN;
    for (let second = 0; second < 30; second++) {
      const window = await load({
        url: server.url,
        connections: 10,
        duration: 1,
        requests: [{ method: 'POST', path: '/api/v1/t/bench/signin', setupRequest: (req: any) => ({ ...req, headers: { 'content-type': 'application/json', 'x-forwarded-for': nextIp() }, body: JSON.stringify(signinBody()) }) }],
      });
      if (window.p99 <= normalP99 * 1.5 && window.non2xx === 0) {
        backAfter = (performance.now() - surgeEnded) / 1000;
        break;
      }
    }

    out(`${label}:`);
    out(`  capacity ${fmt(capacity, 1)} sign-ins/s (closed loop, c=10, p99 ${fmt(normalP99)} ms); surge offered ${fmt(rate)}/s for ${SURGE_SECONDS} s`);
    out(`  goodput ${fmt(goodput, 1)}/s = ${fmt((100 * goodput) / capacity)}% of capacity; accepted p99 ${fmt(p99(accepted.map((r) => r.ms)))} ms; refused ${refused.length} with p99 ${fmt(p99(refused.map((r) => r.ms)))} ms; timeouts ${timeouts}`);
    out(`  refused by admission: ${shedBy('queue-full')} at once (queue full or predicted wait too long), ${shedBy('evicted')} evicted for more important work, ${shedBy('timed-out')} after waiting the maximum`);
    out(`  second-factor completions during the surge: ${factors.filter((r) => r.status === 200).length}/${factors.length} = ${fmt((100 * factors.filter((r) => r.status === 200).length) / Math.max(1, factors.length), 1)}% succeeded`);
    out(`  back to normal p99 ${Number.isNaN(backAfter) ? 'not within 30 s' : `after ${fmt(backAfter, 1)} s`}`);
  } finally {
    await pool.close();
    await server.stop();
  }
}

const dataDir = mkdtempSync(join(tmpdir(), 'steadfast-bench-'));
const base = { STEADFAST_DATA_DIR: dataDir, STEADFAST_MASTER_KEY: randomBytes(32).toString('base64'), STEADFAST_LOG_LEVEL: 'warn', STEADFAST_TRUST_PROXY: 'true' };
out(`Steadfast overload benchmark: ${availableParallelism()} cores, Node ${process.version}, SQLite + in-process state`);
const secrets: string[] = [];
{
  const services = await buildServices(loadConfig(base));
  const tenant = await services.tenants.create('bench');
  const passwordHash = await services.hasher.hash(PASSWORD);
  for (let i = 0; i < USERS; i++) {
    const u = await services.users.create(tenant.id, { username: `user${i}`, passwordHash });
    if (i < MFA_USERS) {
      const secret = new Secret({ size: 20 }).base32;
      await services.credentials.insert({ id: `c${i}`, tenantId: tenant.id, userId: u.id, type: 'totp', label: 'bench', state: 'active', secret: services.keyRing.seal(secret, secretContext('totp', `c${i}`)) });
      secrets.push(secret);
    }
  }
  await services.close();
}
try {
  await scenario('admission on (defaults)', base, secrets);
  // A fresh set of flows and TOTP steps: the second run uses the next 30 s step's codes.
  await new Promise((r) => setTimeout(r, 30_000 - (Date.now() % 30_000) + 100));
  await scenario('admission off (limit 1,000,000)', { ...base, STEADFAST_ADMISSION_LIMIT: '1000000' }, secrets);
} finally {
  rmSync(dataDir, { recursive: true, force: true });
}
