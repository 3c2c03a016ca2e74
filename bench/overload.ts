/**
 * `npm run bench -- overload`
 *
 * A real node (`steadfast start`, its own process) and a load generator in a
 * process of its own (bench/load-generator.ts). For each surge factor
 * (default 5 and 10), rounds (default 3) of:
 * 1. references, taken just before the surge they are compared with:
 *    capacity (password sign-ins per second, closed loop, the surge's mix of
 *    right, wrong and unknown-user passwords), the quiet tenant's sign-ins
 *    alone at their low rate (their p99), and a probe load at half capacity;
 * 2. one tenant's password sign-ins at that multiple of capacity, open loop,
 *    for 20 s, while the traffic that matters arrives at its own pace: second
 *    factors of sign-ins already past their password, new users setting up
 *    their first authenticator (enrol and confirm with a registration
 *    session), another tenant's sign-ins (its users sign in as they really
 *    do: password, then their authenticator app's code; both steps count),
 *    and an administrator issuing TAPs;
 * 3. one-second probe windows until p99 is back within 1.5x of normal with
 *    nothing refused.
 * Prints each round (each stream's success rate and p99, for the other tenant
 * also its password step alone; goodput against capacity; the refusals' p99;
 * timeouts; where the CPU went), then the rounds together, with the targets
 * met or missed: success rates, timeouts and the refusals' p99 over every
 * round's arrivals; goodput, the other tenant's p99 against normal and the
 * time back to normal as the median round, with the range. One 20 s run on a
 * shared machine is one draw: its speed drifts by a third from one minute to
 * the next, and a verdict from one round flips with it.
 *
 * Settings: BENCH_ROUNDS (3), BENCH_SURGE_SECONDS (20), BENCH_SURGE_FACTORS ("5,10"),
 * BENCH_SERVER_NODE_ARGS (extra Node options for the server, e.g. a CPU profile),
 * BENCH_OUTCOMES_FILE (every round's outcomes written to FILE.{factor}x.{round}.json, to look at over time).
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
const ROUNDS = Math.max(1, Math.floor(Number(process.env.BENCH_ROUNDS ?? 3)));
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
const SURGES = SURGE_FACTORS.length * ROUNDS;
const MFA_USERS = SURGES * perSurge(SECOND_FACTOR_RATE) + 20;
const NEW_USERS = SURGES * perSurge(SETUP_RATE) + 5;
const WARM_UP_RATE = 20;
// A fresh user for every one of the other tenant's sign-ins, so no code of its authenticator app is ever spent twice.
// (Each surge round has the other tenant's normal and its surge.)
const QUIET_USERS = 2 * WARM_UP_RATE + 2 * SURGES * perSurge(QUIET_RATE) + 20;

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

/** One surge round's figures, each against the references measured just before it. */
interface Round {
  capacity: number;
  /** Password checks per hashing core in the surge against the capacity run's, in percent. */
  perHashingCorePct: number;
  goodputPct: number;
  /** The other tenant's p99 (both steps) against its normal, and its password step's alone. */
  quietRatio: number;
  quietPasswordRatio: number;
  backAfter: number;
  outcomes: Outcome[];
}

/** The references of one round: capacity (closed loop), the other tenant alone, and the probe load at half capacity. */
async function references() {
  // Enough connections to keep every hashing thread busy even when each answer
  // takes a while to come back and be replaced; only answered password checks
  // (right or wrong) count, and any refused are shown.
  const connections = 4 * availableParallelism();
  const capacityCpu = measureCpu(server.child.pid!, generator.pid);
  const capacityRun = await generator.run({
    kind: 'closed',
    url: server.url,
    seconds: 8,
    connections,
    scenarios: surgeScenarios.slice(0, 5000).map((s) => s[0]!),
  });
  const capacity = ((capacityRun.statuses['200'] ?? 0) + (capacityRun.statuses['401'] ?? 0)) / capacityRun.seconds;
  const capacityCpuUse = capacityCpu.stop();
  // The other tenant's normal takes as many sign-ins as it sends during a surge: a p99 of fewer is its slowest one.
  const quietRun = await generator.run({
    kind: 'open',
    url: server.url,
    seconds: SURGE_SECONDS,
    timeoutMs: CLIENT_TIMEOUT_MS,
    streams: [quietStream(SURGE_SECONDS)],
  });
  const quiet = figures(quietRun, QUIET);
  const quietPassword = firstStepFigures(quietRun, QUIET);
  const probe: Stream = { ...surgeStream(capacity / 2), name: 'probe' };
  const probeNormal = figures(await generator.run({ kind: 'open', url: server.url, seconds: 3, timeoutMs: CLIENT_TIMEOUT_MS, streams: [probe] }), 'probe');
  out(
    `  references: capacity ${fmt(capacity, 1)} password checks/s (closed loop, ${connections} connections, ${capacityRun.statuses['503'] ?? 0} refused; hashing threads ${fmt(capacityCpuUse.hashing, 2)} cores, event loop ${fmt(capacityCpuUse.eventLoop, 2)}, load generator ${fmt(capacityCpuUse.generator, 2)}); normal p99: other tenant ${fmt(quiet.p99Ms)} ms at ${QUIET_RATE}/s (password step ${fmt(quietPassword.p99Ms)} ms; ${quiet.succeeded}/${quiet.offered} signed in), probe ${fmt(probeNormal.p99Ms)} ms at ${fmt(capacity / 2)}/s`,
  );
  return { capacity, capacityHashingCores: capacityCpuUse.hashing, quiet, quietPassword, probe, probeNormal };
}

async function surgeRound(factor: number): Promise<Round> {
  const ref = await references();
  const { factors, setups } = await prepare();
  // Let the preparation's sign-ins drain and the TOTP step turn, so each code is fresh.
  await new Promise((r) => setTimeout(r, 1000));
  const streams: Stream[] = [
    surgeStream(ref.capacity * factor),
    { name: 'second factors', rate: SECOND_FACTOR_RATE, scenarios: factors },
    { name: 'first set-ups', rate: SETUP_RATE, scenarios: setups },
    quietStream(SURGE_SECONDS),
    { name: 'admin TAPs', rate: EMERGENCY_RATE, scenarios: emergencyScenarios },
  ];
  out(`  surge: ${fmt(ref.capacity * factor)} sign-ins/s from one tenant`);
  const cpu = measureCpu(server.child.pid!, generator.pid);
  const outcomes = await generator.run({ kind: 'open', url: server.url, seconds: SURGE_SECONDS, timeoutMs: CLIENT_TIMEOUT_MS, streams });
  const surgeEnded = performance.now();
  const cpuUse = cpu.stop();

  // Back to normal: probe windows until p99 is within 1.5x of normal and nothing is refused.
  let backAfter = NaN;
  for (let second = 0; second < 30; second++) {
    const window = figures(await generator.run({ kind: 'open', url: server.url, seconds: 1, timeoutMs: CLIENT_TIMEOUT_MS, streams: [ref.probe] }), 'probe');
    if (window.p99Ms <= ref.probeNormal.p99Ms * 1.5 && window.succeeded === window.offered) {
      backAfter = (performance.now() - surgeEnded) / 1000;
      break;
    }
  }

  // Password checks answered: the surge's (right or wrong) and the other tenant's password steps.
  const passwordChecks =
    outcomes.filter((o) => o.stream === 'surge sign-ins' && o.ok).length + outcomes.filter((o) => o.stream === QUIET && o.steps[0]?.status === 200).length;
  const goodput = passwordChecks / SURGE_SECONDS;
  const quiet = figures(outcomes, QUIET);
  const quietPassword = firstStepFigures(outcomes, QUIET);
  printStreams(
    streams.map((s) => s.name),
    outcomes,
  );
  out(`  goodput ${fmt(goodput, 1)} password checks/s = ${fmt(pct(goodput, ref.capacity))}% of capacity; ${refusalLine(outcomes)}`);
  out(
    `  other tenant p99 ${fmt(quiet.p99Ms)} ms = ${fmt(quiet.p99Ms / ref.quiet.p99Ms, 2)}x normal (password and second factor); password step alone ${fmt(quietPassword.p99Ms)} ms = ${fmt(quietPassword.p99Ms / ref.quietPassword.p99Ms, 2)}x normal, ${fmt(pct(quietPassword.succeeded, quietPassword.offered), 1)}% succeeded`,
  );
  out(`  other tenant's slowest: ${slowest(outcomes, QUIET, 3)}`);
  out(
    `  CPU during the surge, in cores of ${cpuUse.cores}: server event loop ${fmt(cpuUse.eventLoop, 2)}, hashing threads ${fmt(cpuUse.hashing, 2)}, other server threads ${fmt(cpuUse.otherThreads, 2)}, load generator ${fmt(cpuUse.generator, 2)}, elsewhere ${fmt(cpuUse.elsewhere, 2)}`,
  );
  // The same hashing cores doing as many checks in the surge as in the capacity run: admission wastes none
  // of them (no idle slot, no hash for an answer nobody gets); a goodput short of capacity then is CPU the
  // hashing threads did not get, from the event loop, the load generator or the machine.
  const perHashingCore = goodput / cpuUse.hashing / (ref.capacity / ref.capacityHashingCores);
  out(
    `  password checks per hashing core: ${fmt(goodput / cpuUse.hashing, 1)}/s in the surge against ${fmt(ref.capacity / ref.capacityHashingCores, 1)}/s in the capacity run (${fmt(100 * perHashingCore)}%)`,
  );
  out(`  back to normal ${Number.isNaN(backAfter) ? 'not within 30 s' : `after ${fmt(backAfter, 1)} s`}`);
  return {
    perHashingCorePct: 100 * perHashingCore,
    capacity: ref.capacity,
    goodputPct: pct(goodput, ref.capacity),
    quietRatio: quiet.p99Ms / ref.quiet.p99Ms,
    quietPasswordRatio: quietPassword.p99Ms / ref.quietPassword.p99Ms,
    backAfter,
    outcomes,
  };
}

/** Each stream's offered, succeeded, refused, timeouts and p99, as a table. */
function printStreams(names: string[], outcomes: Outcome[]) {
  out(`  ${'stream'.padEnd(24)}${'offered'.padStart(9)}${'succeeded'.padStart(11)}${'refused'.padStart(9)}${'timeouts'.padStart(10)}${'p99 ms'.padStart(9)}`);
  for (const name of names) {
    const f = figures(outcomes, name);
    out(
      `  ${name.padEnd(24)}${String(f.offered).padStart(9)}${`${fmt(pct(f.succeeded, f.offered), 1)}%`.padStart(11)}${String(f.refused).padStart(9)}${String(f.timeouts).padStart(10)}${fmt(f.p99Ms).padStart(9)}`,
    );
  }
}

const refusalsOf = (outcomes: Outcome[]) => outcomes.filter((o) => o.status === 503 || o.status === 429);
const refusalLine = (outcomes: Outcome[]) =>
  `refusals ${refusalsOf(outcomes).length}, p99 ${fmt(p99(refusalsOf(outcomes).map((o) => o.ms)))} ms; timeouts ${outcomes.filter((o) => o.status === 0).length}`;

const median = (values: number[]) => {
  const sorted = values.filter((v) => !Number.isNaN(v)).sort((a, b) => a - b);
  if (sorted.length < values.length) return NaN; // a round that never came back to normal: no median hides it
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};
const range = (values: number[], digits = 0) => `${fmt(Math.min(...values), digits)}-${fmt(Math.max(...values), digits)}`;

try {
  // Warm up: JIT, the dummy hash, SQLite's page cache.
  await generator.run({ kind: 'open', url: server.url, seconds: 2, timeoutMs: CLIENT_TIMEOUT_MS, streams: [quietStream(2, WARM_UP_RATE)] });
  // The load generator's own warm-up: its open-loop code at a high rate, against the health check, so the
  // first surge's first second does not measure the generator compiling itself (the node's HTTP path warms
  // too, as on a node that has been up; its refusals stay cold, as on a real first surge).
  await generator.run({
    kind: 'open',
    url: server.url,
    seconds: 2,
    timeoutMs: CLIENT_TIMEOUT_MS,
    streams: [{ name: 'warm-up', rate: 100 * Math.max(...SURGE_FACTORS), scenarios: [[{ method: 'GET', path: '/healthz' }]] }],
  });

  for (const factor of SURGE_FACTORS) {
    const rounds: Round[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      out();
      out(
        `surge at ${factor}x capacity, round ${round} of ${ROUNDS} (one tenant's sign-ins, open loop, ${SURGE_SECONDS} s; 30% wrong passwords, 5% unknown users):`,
      );
      const r = await surgeRound(factor);
      if (process.env.BENCH_OUTCOMES_FILE) writeFileSync(`${process.env.BENCH_OUTCOMES_FILE}.${factor}x.${round}.json`, JSON.stringify(r.outcomes));
      rounds.push(r);
    }

    // Success rates, timeouts and the refusals' p99 over every round's arrivals together; the
    // figures measured against a reference (goodput, the other tenant's p99, recovery) as the
    // median round, each round against the references taken just before it: this shared 2-core
    // machine's speed drifts by a third from one minute to the next, and a single 20 s run is one draw.
    const all = rounds.flatMap((r) => r.outcomes);
    const rateOf = (name: string) => {
      const f = figures(all, name);
      return pct(f.succeeded, f.offered);
    };
    const refusalsP99 = p99(refusalsOf(all).map((o) => o.ms));
    const goodputPct = median(rounds.map((r) => r.goodputPct));
    const quietRatio = median(rounds.map((r) => r.quietRatio));
    const backAfter = median(rounds.map((r) => r.backAfter));
    out();
    out(`surge at ${factor}x capacity, ${ROUNDS} round${ROUNDS === 1 ? '' : 's'} together:`);
    printStreams(['surge sign-ins', 'second factors', 'first set-ups', QUIET, 'admin TAPs'], all);
    out(
      `  capacity ${range(
        rounds.map((r) => r.capacity),
        1,
      )} password checks/s; ${refusalLine(all)}`,
    );
    out(
      `  goodput, median round: ${fmt(goodputPct)}% of capacity (rounds ${range(rounds.map((r) => r.goodputPct))}%); per hashing core ${fmt(median(rounds.map((r) => r.perHashingCorePct)))}% of the capacity run's (rounds ${range(rounds.map((r) => r.perHashingCorePct))}%)`,
    );
    out(
      `  other tenant p99, median round: ${fmt(quietRatio, 2)}x normal (rounds ${range(
        rounds.map((r) => r.quietRatio),
        2,
      )}x); password step alone ${fmt(median(rounds.map((r) => r.quietPasswordRatio)), 2)}x`,
    );
    out(`  back to normal, median round: ${Number.isNaN(backAfter) ? 'not within 30 s in some round' : `after ${fmt(backAfter, 1)} s`}`);
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    const shed = [...metrics.matchAll(/^steadfast_(admission|hashing)_shed_total\{class="([^"]+)",tenant="([^"]+)",reason="([^"]+)"\} (\d+)/gm)]
      .map(([, where, cls, tenant, reason, n]) => `${where === 'hashing' ? 'pool' : 'lane'} ${cls}/${tenant} ${reason} ${n}`)
      .join(', ');
    out(`  refused so far, by where, class/tenant and reason: ${shed || 'none'}`);
    const targets = [
      [`goodput >= 90% of capacity`, goodputPct >= 90],
      [`second factors >= 99.5%`, rateOf('second factors') >= 99.5],
      [`first set-ups >= 99%`, rateOf('first set-ups') >= 99],
      [`other tenant >= 95%`, rateOf(QUIET) >= 95],
      [`other tenant p99 <= 2x normal`, quietRatio <= 2],
      [`admin TAPs all succeed`, rateOf('admin TAPs') === 100],
      [`refusals p99 <= 50 ms`, !(refusalsP99 > 50)],
      [`no timeouts`, all.every((o) => o.status !== 0)],
      [`normal within 5 s`, backAfter <= 5],
    ] as const;
    out(`  targets: ${targets.map(([name, met]) => `${name}: ${check(met)}`).join('; ')}`);
  }
} finally {
  generator.stop();
  await server.stop();
  rmSync(dataDir, { recursive: true, force: true });
}
