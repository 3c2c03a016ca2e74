import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, readFileSync, readdirSync } from 'node:fs';
import { freePort } from '../test/helpers/free-port.ts';
import autocannon from 'autocannon';

/**
 * Starts `steadfast start` as its own process, as an operator would, and waits for readiness.
 * Its log (standard output) goes to the file BENCH_SERVER_LOG names, else nowhere.
 */
export async function startServerProcess(
  env: Record<string, string>,
  nodeArgs: string[] = [],
  options: { ownSession?: boolean } = {},
): Promise<{ url: string; child: ChildProcess; stop: () => Promise<void> }> {
  const port = await freePort();
  // For every server a bench starts: BENCH_PROFILE=DIR writes its CPU profile there (workers inherit the flag);
  // BENCH_SERVER_NODE_ARGS passes any other Node options (a preloaded probe).
  const profile = process.env.BENCH_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE}`] : [];
  const extra = [...profile, ...(process.env.BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean)];
  const child = spawn(process.execPath, [...extra, ...nodeArgs, new URL('../bin/steadfast.js', import.meta.url).pathname, 'start'], {
    env: { ...process.env, ...env, PORT: String(port), HOST: '127.0.0.1' },
    stdio: ['ignore', process.env.BENCH_SERVER_LOG ? openSync(process.env.BENCH_SERVER_LOG, 'a') : 'ignore', 'inherit'],
    // A session of its own: where the kernel groups CPU shares by session (Linux autogroup), the
    // server's share does not shrink by what the bench's own load generator uses, as on a real host.
    detached: options.ownSession === true,
  });
  // Never outlives the bench, even one that fails.
  const orphanGuard = () => child.kill('SIGKILL');
  if (options.ownSession) process.once('exit', orphanGuard);
  const url = `http://127.0.0.1:${port}`;
  // A node with workers migrates, calibrates and forks before it listens: on a busy machine that takes a while
  // (up to two minutes). It must be ready before anything is measured: figures against a port nobody listens on are no figures.
  let ready = false;
  for (let i = 0; i < 1200 && !ready; i++) {
    try {
      ready = (await fetch(`${url}/readyz`)).ok;
    } catch {
      // not up yet
    }
    if (child.exitCode !== null) throw new Error('server exited during start');
    if (!ready) await new Promise((r) => setTimeout(r, 100));
  }
  if (!ready) {
    child.kill('SIGKILL');
    throw new Error('server not ready after two minutes');
  }
  return {
    url,
    child,
    stop: () =>
      new Promise((resolve) => {
        process.off('exit', orphanGuard);
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

export interface LoadResult {
  requests: number;
  perSecond: number;
  p50: number;
  p99: number;
  non2xx: number;
  errors: number;
  timeouts: number;
}

export type LoadOptions = Parameters<typeof autocannon>[0];

export async function load(options: LoadOptions): Promise<LoadResult> {
  const started = performance.now();
  const result = await autocannon({ ...options });
  const seconds = (performance.now() - started) / 1000;
  const total = result.requests.total;
  return {
    requests: total,
    perSecond: total / seconds,
    p50: result.latency.p50,
    p99: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
  };
}

export const fmt = (n: number, digits = 0) => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

/** CPU seconds (user + system) a process has used so far, from /proc (Linux). */
export function cpuSeconds(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after the command name.
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return NaN;
  }
}

export interface PreparedRequest {
  path: string;
  body: string;
}

/**
 * Sends each prepared POST once, `concurrency` at a time. Throughput counts from
 * the first request sent to the last answer received, so the load generator's
 * own start-up does not weigh on a short run; bodies are made by the caller
 * before the clock starts, so the client's work is not counted as the server's.
 */
export async function runPrepared(url: string, batch: PreparedRequest[], concurrency: number): Promise<LoadResult & { failures: number }> {
  let i = 0;
  let failures = 0;
  let first = 0;
  let last = 0;
  const result = await load({
    url,
    connections: concurrency,
    amount: batch.length,
    requests: [
      {
        method: 'POST',
        setupRequest: (req: any) => {
          first ||= performance.now();
          const { path, body } = batch[i++]!;
          return { ...req, path, body, headers: { 'content-type': 'application/json' } };
        },
        onResponse: (status: number, body: string) => {
          last = performance.now();
          if (status !== 200) {
            failures++;
            if (process.env.BENCH_DEBUG) process.stderr.write(`${status} ${body.slice(0, 200)}\n`);
          }
        },
      },
    ],
  });
  return { ...result, perSecond: batch.length / ((last - first) / 1000), failures };
}

/** Every process on the machine as pid, parent pid, command name and CPU seconds so far (Linux /proc). */
function processes(): { pid: number; ppid: number; comm: string; cpu: number }[] {
  const all = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const fields = stat.slice(stat.lastIndexOf(') ') + 2).split(' ');
      all.push({ pid: Number(name), ppid: Number(fields[1]), comm, cpu: (Number(fields[11]) + Number(fields[12])) / 100 });
    } catch {
      // gone meanwhile
    }
  }
  return all;
}

/**
 * CPU seconds so far of the groups that share the machine during a run: the
 * server (with its worker processes), this process (the load generator), Redis,
 * PostgreSQL, and everything else. Differences of two readings say where the
 * machine's cores went.
 */
export function cpuByGroup(serverPid: number): Record<'server' | 'loadGenerator' | 'redis' | 'postgres' | 'other', number> {
  const all = processes();
  const server = new Set([serverPid]);
  for (let grew = true; grew;) {
    grew = false;
    for (const p of all) if (server.has(p.ppid) && !server.has(p.pid)) grew = server.add(p.pid) !== undefined;
  }
  const groups = { server: 0, loadGenerator: 0, redis: 0, postgres: 0, other: 0 };
  for (const p of all) {
    if (server.has(p.pid)) groups.server += p.cpu;
    else if (p.pid === process.pid) groups.loadGenerator += p.cpu;
    else if (p.comm.startsWith('redis-server')) groups.redis += p.cpu;
    else if (p.comm.startsWith('postgres')) groups.postgres += p.cpu;
    else groups.other += p.cpu;
  }
  return groups;
}
