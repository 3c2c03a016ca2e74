/**
 * `npm run bench -- overload`
 *
 * A real node (`steadfast start`, its own process) and a load generator in a
 * process of its own (bench/load-generator.ts), measured against references
 * taken in the same run:
 * 1. normal: the quiet tenant's sign-ins alone at their low rate (their p99),
 *    and a probe load at half capacity (its p99);
 * 2. capacity: password sign-ins per second, closed loop (autocannon) with the
 *    surge's mix of right, wrong and unknown-user passwords;
 * 3. for each surge factor (default 5 and 10): one tenant's password sign-ins
 *    at that multiple of capacity, open loop, for 20 s, while the traffic that
 *    matters arrives at its own pace: second factors of sign-ins already past
 *    their password, new users setting up their first authenticator (enrol and
 *    confirm with a registration session), another tenant's sign-ins (its
 *    users sign in as they really do: password, then their authenticator
 *    app's code; both steps count), and an administrator issuing TAPs;
 * 4. after each surge, one-second probe windows until p99 is back within 1.5x
 *    of normal with nothing refused.
 * Prints each stream's success rate and p99 (for the other tenant, also its
 * password step alone, what this bench measured before its users had a second
 * factor), goodput against capacity, the refusals' p99, timeouts, where the
 * CPU went during the surge, and the targets met or missed.
 *
 * Settings: BENCH_SURGE_SECONDS (20), BENCH_SURGE_FACTORS ("5,10"),
 * BENCH_SERVER_NODE_ARGS (extra Node options for the server, e.g. a CPU profile),
 * BENCH_OUTCOMES_FILE (every surge's outcomes written to FILE.{factor}x.json, to look at over time).
 */
import { availableParallelism, tmpdir } from 'node:os';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Secret } from 'otpauth';
import { loadConfig } from '../src/config/config.ts';
import { buildServices } from '../src/server/services.ts';
import { secretContext } from '../src/methods/credentials.ts';
import { fmt, startServerProcess } from './harness.ts';
import { startLoadGenerator, type Outcome, type Step, type Stream } from './load-generator.ts';
import { measureCpu } from './cpu-use.ts';

const SURGE_SECONDS = Number(process.env.BENCH_SURGE_SECONDS ?? 20);
const SURGE_FACTORS = (process.env.BENCH_SURGE_FACTORS ?? '5,10').split(',').map(Number);
const SECOND_FACTOR_RATE = 5;
const SETUP_RATE = 1;
const QUIET_RATE = 4;
const EMERGENCY_RATE = 0.5;
const CLIENT_TIMEOUT_MS = 5000;
const SURGE_USERS = 4000;
const PASSWORD = 'overload password 1';
const out = (line = '') => process.stdout.write(line + '\n');

const percentile = (values: number[], p: number) => {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
};
const p99 = (values: number[]) => percentile(values, 0.99);
const pct = (n: number, of: number) => (of === 0 ? NaN : (100 * n) / of);

// ---- Data, made before the server starts ---------------------------------------------------------

const perSurge = (rate: number) => Math.ceil(rate * SURGE_SECONDS) + 5;
const MFA_USERS = SURGE_FACTORS.length * perSurge(SECOND_FACTOR_RATE) + 20;
const NEW_USERS = SURGE_FACTORS.length * perSurge(SETUP_RATE) + 5;
const WARM_UP_RATE = 20;
// A fresh user for every one of the other tenant's sign-ins, so no code of its authenticator app is ever spent twice.
const QUIET_USERS = 2 * WARM_UP_RATE + (1 + SURGE_FACTORS.length) * perSurge(QUIET_RATE) + 20;

const dataDir = mkdtempSync(join(tmpdir(), 'steadfast-bench-'));
const base = { STEADFAST_DATA_DIR: dataDir, STEADFAST_MASTER_KEY: randomBytes(32).toString('base64'), STEADFAST_LOG_LEVEL: 'warn', STEADFAST_TRUST_PROXY: '1' };
out(`Steadfast overload benchmark: ${availableParallelism()} cores, Node ${process.version}, SQLite + in-process state; load generator in its own process`);

const secrets: string[] = [];
const quietSecrets: string[] = [];
const tapTargets: string[] = [];
let adminToken = '';
{
  const services = await buildServices(loadConfig(base));
  const surge = await services.tenants.create('surge');
  const quiet = await services.tenants.create('quiet');
  const passwordHash = await services.hasher.hash(PASSWORD);
  for (let i = 0; i < SURGE_USERS; i++) await services.users.create(surge.id, { username: `user${i}`, passwordHash });
  const withTotp = async (tenantId: string, username: string, credentialId: string) => {
    const u = await services.users.create(tenantId, { username, passwordHash });
    const secret = new Secret({ size: 20 }).base32;
    await services.credentials.insert({
      id: credentialId,
      tenantId,
      userId: u.id,
      type: 'totp',
      label: 'bench',
      state: 'active',
      secret: services.keyRing.seal(secret, secretContext('totp', credentialId)),
    });
    return secret;
  };
  for (let i = 0; i < QUIET_USERS; i++) quietSecrets.push(await withTotp(quiet.id, `quiet${i}`, `q${i}`));
  for (let i = 0; i < MFA_USERS; i++) secrets.push(await withTotp(surge.id, `mfa${i}`, `c${i}`));
  // New hires with no method yet: their password gives them a registration-scoped session (MFA is required).
  for (let i = 0; i < NEW_USERS; i++) await services.users.create(surge.id, { username: `new${i}`, passwordHash });
  for (let i = 0; i < 50; i++) tapTargets.push((await services.users.create(surge.id, { username: `locked${i}` })).id);
  adminToken = (await services.adminTokens.create(surge.id, 'admin')).token;
  await services.close();
}

// ---- Traffic -------------------------------------------------------------------------------------

const signinStep = (tenant: string, username: string, password = PASSWORD): Step => ({
  method: 'POST',
  path: `/api/v1/t/${tenant}/signin`,
  body: { username, password },
});

/** The surge's mix: mostly right passwords, a share wrong and a few unknown users (each costs the same Argon2id hash). */
const surgeScenarios: Step[][] = Array.from({ length: 20_000 }, (_, i) => {
  if (i % 10 < 3) return [signinStep('surge', `user${(i * 7) % SURGE_USERS}`, 'not the password')];
  if (i % 20 === 3) return [signinStep('surge', `nobody${i}`)];
  return [signinStep('surge', `user${i % SURGE_USERS}`)];
});
const surgeStream = (rate: number): Stream => ({ name: 'surge sign-ins', rate, scenarios: surgeScenarios, alsoSucceeds: [401] });
const QUIET = 'other tenant sign-ins';
let quietNext = 0;
/** The other tenant's users signing in as they do: password, then the code of their authenticator app. A fresh user each. */
const quietStream = (seconds: number, rate = QUIET_RATE): Stream => ({
  name: QUIET,
  rate,
  scenarios: Array.from({ length: Math.ceil(seconds * rate) + 1 }, () => {
    const i = quietNext++ % QUIET_USERS;
    return [
      signinStep('quiet', `quiet${i}`),
      { method: 'POST', path: '/api/v1/t/quiet/signin/:flow/verify', body: { method: 'totp' }, totpSecret: quietSecrets[i]!, flowFromPrevious: true },
    ];
  }),
});

// BENCH_SERVER_NODE_ARGS (read by startServerProcess): e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof" to see where its event loop goes.
const server = await startServerProcess(base, [], { ownSession: true });
const generator = startLoadGenerator();
let mfaNext = 0;
let newNext = 0;

/** Sign-ins past their password (flows), and new users' registration sessions, made before a surge. */
async function prepare(): Promise<{ factors: Step[][]; setups: Step[][] }> {
  const post = async (path: string, body: unknown) => {
    const res = await fetch(`${server.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-forwarded-for': `192.0.2.${mfaNext % 250}` },
      body: JSON.stringify(body),
    });
    return (await res.json()) as Record<string, any>;
  };
  const factors: Step[][] = [];
  for (let n = 0; n < perSurge(SECOND_FACTOR_RATE); n++) {
    const i = mfaNext++;
    const res = await post('/api/v1/t/surge/signin', { username: `mfa${i}`, password: PASSWORD });
    if (res.flow) factors.push([{ method: 'POST', path: `/api/v1/t/surge/signin/${res.flow}/verify`, body: { method: 'totp' }, totpSecret: secrets[i]! }]);
  }
  const setups: Step[][] = [];
  for (let n = 0; n < perSurge(SETUP_RATE); n++) {
    const res = await post('/api/v1/t/surge/signin', { username: `new${newNext++}`, password: PASSWORD });
    const token = res.session?.token as string | undefined;
    if (!token) continue;
    const auth = { authorization: `Bearer ${token}` };
    setups.push([
      { method: 'POST', path: '/api/v1/me/methods', headers: auth, body: { type: 'totp' } },
      { method: 'POST', path: '/api/v1/me/methods/:id/confirm', headers: auth, body: {}, confirmPrevious: true },
    ]);
  }
  return { factors, setups };
}

const emergencyScenarios: Step[][] = tapTargets.map((id) => [
  { method: 'POST', path: `/api/v1/admin/users/${id}/tap`, headers: { authorization: `Bearer ${adminToken}` }, body: { minutes: 60 } },
]);

interface StreamFigures {
  offered: number;
  succeeded: number;
  refused: number;
  timeouts: number;
  p99Ms: number;
}

function figures(outcomes: Outcome[], name: string): StreamFigures {
  const mine = outcomes.filter((o) => o.stream === name);
  const ok = mine.filter((o) => o.ok);
  return {
    offered: mine.length,
    succeeded: ok.length,
    refused: mine.filter((o) => o.status === 503 || o.status === 429).length,
    timeouts: mine.filter((o) => o.status === 0).length,
    p99Ms: p99(ok.map((o) => o.ms)),
  };
}

/** The first step of a stream's arrivals alone: the other tenant's password step, what this bench measured before its users had a second factor. */
function firstStepFigures(outcomes: Outcome[], name: string): StreamFigures {
  const firsts = outcomes.filter((o) => o.stream === name).map((o) => o.steps[0] ?? { status: 0, ms: NaN });
  const ok = firsts.filter((s) => s.status >= 200 && s.status < 300);
  return {
    offered: firsts.length,
    succeeded: ok.length,
    refused: firsts.filter((s) => s.status === 503 || s.status === 429).length,
    timeouts: firsts.filter((s) => s.status === 0).length,
    p99Ms: p99(ok.map((s) => s.ms)),
  };
}

const check = (met: boolean) => (met ? 'met' : 'MISSED');

/** A stream's slowest arrivals, when each began and each step's time: whether a slow one waited at its password or its code. */
function slowest(outcomes: Outcome[], name: string, n: number): string {
  return outcomes
    .filter((o) => o.stream === name)
    .sort((a, b) => b.ms - a.ms)
    .slice(0, n)
    .map((o) => `${fmt(o.ms)} ms at ${fmt(o.at, 1)} s (${o.steps.map((s) => `${s.status} in ${fmt(s.ms)} ms`).join(', then ')})`)
    .join('; ');
}

try {
  // Warm up: JIT, the dummy hash, SQLite's page cache.
  await generator.run({ kind: 'open', url: server.url, seconds: 2, timeoutMs: CLIENT_TIMEOUT_MS, streams: [quietStream(2, WARM_UP_RATE)] });

  // 1. Capacity, closed loop, the surge's own mix.
  // Enough connections to keep every hashing thread busy even when each answer
  // takes a while to come back and be replaced; only answered password checks
  // (right or wrong) count, and any refused are shown.
  const connections = 4 * availableParallelism();
  const capacityRun = await generator.run({
    kind: 'closed',
    url: server.url,
    seconds: 8,
    connections,
    scenarios: surgeScenarios.slice(0, 5000).map((s) => s[0]!),
  });
  const capacity = ((capacityRun.statuses['200'] ?? 0) + (capacityRun.statuses['401'] ?? 0)) / capacityRun.seconds;
  const refusedInCapacity = capacityRun.statuses['503'] ?? 0;

  // 2. Normal: the quiet tenant alone at its rate, and the probe load (half capacity) alone. The quiet
  // tenant's normal takes as many sign-ins as it sends during a surge: a p99 of fewer is its slowest one.
  const quietNormalRun = await generator.run({
    kind: 'open',
    url: server.url,
    seconds: SURGE_SECONDS,
    timeoutMs: CLIENT_TIMEOUT_MS,
    streams: [quietStream(SURGE_SECONDS)],
  });
  const quietNormal = figures(quietNormalRun, QUIET);
  const quietPasswordNormal = firstStepFigures(quietNormalRun, QUIET);
  const probe = (): Stream => ({ ...surgeStream(capacity / 2), name: 'probe' });
  const probeNormal = figures(await generator.run({ kind: 'open', url: server.url, seconds: 3, timeoutMs: CLIENT_TIMEOUT_MS, streams: [probe()] }), 'probe');

  out(
    `capacity ${fmt(capacity, 1)} password checks/s (closed loop, ${connections} connections, ${refusedInCapacity} refused); normal p99: other tenant ${fmt(quietNormal.p99Ms)} ms at ${QUIET_RATE}/s (password step ${fmt(quietPasswordNormal.p99Ms)} ms; ${quietNormal.succeeded}/${quietNormal.offered} signed in), probe ${fmt(probeNormal.p99Ms)} ms at ${fmt(capacity / 2)}/s`,
  );

  // The load generator's own warm-up: its open-loop code at the highest surge rate, against the health
  // check, so the surge's first second does not measure the generator compiling itself (the node's
  // HTTP path warms too, as on a node that has been up; its refusals stay cold, as on a real first surge).
  await generator.run({
    kind: 'open',
    url: server.url,
    seconds: 2,
    timeoutMs: CLIENT_TIMEOUT_MS,
    streams: [{ name: 'warm-up', rate: capacity * Math.max(...SURGE_FACTORS), scenarios: [[{ method: 'GET', path: '/healthz' }]] }],
  });

  for (const factor of SURGE_FACTORS) {
    const { factors, setups } = await prepare();
    // Let the preparation's sign-ins drain and the TOTP step turn, so each code is fresh.
    await new Promise((r) => setTimeout(r, 1000));
    const rate = capacity * factor;
    const streams: Stream[] = [
      surgeStream(rate),
      { name: 'second factors', rate: SECOND_FACTOR_RATE, scenarios: factors },
      { name: 'first set-ups', rate: SETUP_RATE, scenarios: setups },
      quietStream(SURGE_SECONDS),
      { name: 'admin TAPs', rate: EMERGENCY_RATE, scenarios: emergencyScenarios },
    ];
    const cpu = measureCpu(server.child.pid!, generator.pid);
    const outcomes = await generator.run({ kind: 'open', url: server.url, seconds: SURGE_SECONDS, timeoutMs: CLIENT_TIMEOUT_MS, streams });
    const surgeEnded = performance.now();
    if (process.env.BENCH_OUTCOMES_FILE) writeFileSync(`${process.env.BENCH_OUTCOMES_FILE}.${factor}x.json`, JSON.stringify(outcomes));
    const cpuUse = cpu.stop();

    // Back to normal: probe windows until p99 is within 1.5x of normal and nothing is refused.
    let backAfter = NaN;
    for (let second = 0; second < 30; second++) {
      const window = figures(await generator.run({ kind: 'open', url: server.url, seconds: 1, timeoutMs: CLIENT_TIMEOUT_MS, streams: [probe()] }), 'probe');
      if (window.p99Ms <= probeNormal.p99Ms * 1.5 && window.succeeded === window.offered) {
        backAfter = (performance.now() - surgeEnded) / 1000;
        break;
      }
    }

    // Password checks answered: the surge's (right or wrong) and the other tenant's password steps.
    const passwordChecks =
      outcomes.filter((o) => o.stream === 'surge sign-ins' && o.ok).length + outcomes.filter((o) => o.stream === QUIET && o.steps[0]?.status === 200).length;
    const goodput = passwordChecks / SURGE_SECONDS;
    const refusals = outcomes.filter((o) => o.status === 503 || o.status === 429);
    const timeouts = outcomes.filter((o) => o.status === 0).length;
    const by = Object.fromEntries(streams.map((s) => [s.name, figures(outcomes, s.name)]));
    const rateOf = (name: string) => pct(by[name]!.succeeded, by[name]!.offered);

    out();
    out(`surge at ${factor}x capacity (${fmt(rate)} sign-ins/s from one tenant, open loop, ${SURGE_SECONDS} s; 30% wrong passwords, 5% unknown users):`);
    out(`  ${'stream'.padEnd(24)}${'offered'.padStart(9)}${'succeeded'.padStart(11)}${'refused'.padStart(9)}${'timeouts'.padStart(10)}${'p99 ms'.padStart(9)}`);
    for (const s of streams) {
      const f = by[s.name]!;
      out(
        `  ${s.name.padEnd(24)}${String(f.offered).padStart(9)}${`${fmt(pct(f.succeeded, f.offered), 1)}%`.padStart(11)}${String(f.refused).padStart(9)}${String(f.timeouts).padStart(10)}${fmt(f.p99Ms).padStart(9)}`,
      );
    }
    out(
      `  goodput ${fmt(goodput, 1)} password checks/s = ${fmt(pct(goodput, capacity))}% of capacity; refusals ${refusals.length}, p99 ${fmt(p99(refusals.map((o) => o.ms)))} ms; timeouts ${timeouts}`,
    );
    const quietPassword = firstStepFigures(outcomes, QUIET);
    out(
      `  other tenant p99 ${fmt(by[QUIET]!.p99Ms)} ms = ${fmt(by[QUIET]!.p99Ms / quietNormal.p99Ms, 2)}x normal (password and second factor); password step alone ${fmt(quietPassword.p99Ms)} ms = ${fmt(quietPassword.p99Ms / quietPasswordNormal.p99Ms, 2)}x normal, ${fmt(pct(quietPassword.succeeded, quietPassword.offered), 1)}% succeeded`,
    );
    out(`  other tenant's slowest: ${slowest(outcomes, QUIET, 3)}`);
    out(
      `  CPU during the surge, in cores of ${cpuUse.cores}: server event loop ${fmt(cpuUse.eventLoop, 2)}, hashing threads ${fmt(cpuUse.hashing, 2)}, other server threads ${fmt(cpuUse.otherThreads, 2)}, load generator ${fmt(cpuUse.generator, 2)}, elsewhere ${fmt(cpuUse.elsewhere, 2)}`,
    );
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    const shed = [...metrics.matchAll(/^steadfast_(admission|hashing)_shed_total\{class="([^"]+)",tenant="([^"]+)",reason="([^"]+)"\} (\d+)/gm)]
      .map(([, where, cls, tenant, reason, n]) => `${where === 'hashing' ? 'pool' : 'lane'} ${cls}/${tenant} ${reason} ${n}`)
      .join(', ');
    out(`  refused so far, by where, class/tenant and reason: ${shed || 'none'}`);
    out(`  back to normal ${Number.isNaN(backAfter) ? 'not within 30 s' : `after ${fmt(backAfter, 1)} s`}`);
    const targets = [
      [`goodput >= 90% of capacity`, pct(goodput, capacity) >= 90],
      [`second factors >= 99.5%`, rateOf('second factors') >= 99.5],
      [`first set-ups >= 99%`, rateOf('first set-ups') >= 99],
      [`other tenant >= 95%`, rateOf(QUIET) >= 95],
      [`other tenant p99 <= 2x normal`, by[QUIET]!.p99Ms <= 2 * quietNormal.p99Ms],
      [`admin TAPs all succeed`, rateOf('admin TAPs') === 100],
      [`refusals p99 <= 50 ms`, !(p99(refusals.map((o) => o.ms)) > 50)],
      [`no timeouts`, timeouts === 0],
      [`normal within 5 s`, backAfter <= 5],
    ] as const;
    out(`  targets: ${targets.map(([name, met]) => `${name}: ${check(met)}`).join('; ')}`);
  }
} finally {
  generator.stop();
  await server.stop();
  rmSync(dataDir, { recursive: true, force: true });
}
