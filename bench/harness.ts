import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { freePort } from '../test/helpers/free-port.ts';
import autocannon from 'autocannon';

/** Starts `steadfast start` as its own process, as an operator would, and waits for readiness. */
export async function startServerProcess(
  env: Record<string, string>,
  nodeArgs: string[] = [],
  options: { ownSession?: boolean } = {},
): Promise<{ url: string; child: ChildProcess; stop: () => Promise<void> }> {
  const port = await freePort();
  const child = spawn(process.execPath, [...nodeArgs, new URL('../bin/steadfast.js', import.meta.url).pathname, 'start'], {
    env: { ...process.env, ...env, PORT: String(port), HOST: '127.0.0.1' },
    stdio: ['ignore', 'ignore', 'inherit'],
    // A session of its own: where the kernel groups CPU shares by session (Linux autogroup), the
    // server's share does not shrink by what the bench's own load generator uses, as on a real host.
    detached: options.ownSession === true,
  });
  // Never outlives the bench, even one that fails.
  const orphanGuard = () => child.kill('SIGKILL');
  if (options.ownSession) process.once('exit', orphanGuard);
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 200; i++) {
    try {
      if ((await fetch(`${url}/readyz`)).ok) break;
    } catch {
      // not up yet
    }
    if (child.exitCode !== null) throw new Error('server exited during start');
    await new Promise((r) => setTimeout(r, 100));
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
