/**
 * The load generator of `npm run bench -- overload`, in a process of its own
 * (never the server's event loop, never the orchestrating bench's). Started by
 * `startLoadGenerator()`; takes one job at a time over IPC and answers with
 * every outcome.
 *
 * - `closed`: autocannon, `connections` requests in flight, for capacity.
 * - `open`: streams of scenarios arriving on schedule at a fixed rate,
 *   whatever the answers (open loop: a slow server gets more, not less, work
 *   in flight), each scenario one or more dependent HTTP steps. autocannon's
 *   own rate option sends each connection's share in a burst at the start of
 *   every second, which is a different test; the schedule here is smooth.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { Pool } from 'undici';
import autocannon from 'autocannon';
import { totpCode } from '../test/helpers/totp.ts';

export interface Step {
  method: 'GET' | 'POST';
  path: string;
  headers?: Record<string, string>;
  body?: Record<string, unknown>;
  /** Put the current TOTP code of this secret in `body.code`. */
  totpSecret?: string;
  /** Confirm what the previous step enrolled: `:id` in the path from its `id`, `body.code` from its `secret`. */
  confirmPrevious?: boolean;
  /** Go on with the flow the previous step started: `:flow` in the path from its `flow` (a second factor after the password). */
  flowFromPrevious?: boolean;
}

export interface Stream {
  name: string;
  /** Scenarios per second. */
  rate: number;
  /** Taken in turn, cycling; each is one arrival. */
  scenarios: Step[][];
  /** Statuses that count as success besides 2xx (a wrong password answered 401 is a password checked). */
  alsoSucceeds?: number[];
}

export type Job =
  | { kind: 'open'; url: string; seconds: number; timeoutMs: number; streams: Stream[] }
  | { kind: 'closed'; url: string; seconds: number; connections: number; scenarios: Step[] };

/** One arrival: the status of its last step (0: timed out or failed to connect), total time, start offset, and each step's own. */
export interface Outcome {
  stream: string;
  status: number;
  ok: boolean;
  ms: number;
  at: number;
  /** When it failed: the step that did (1-based) and the problem type it answered, if any. */
  failed?: { step: number; problem?: string };
  /** The steps sent, in order: status (0: timed out or failed) and time of each. */
  steps: { status: number; ms: number }[];
}

export interface ClosedResult {
  /** Answers of any status per second. */
  perSecond: number;
  seconds: number;
  p99: number;
  statuses: Record<string, number>;
}

let ip = 0;
// Distinct source addresses (the server trusts X-Forwarded-For in the bench), so guessing limits per source do not answer first.
const nextIp = () => `10.${(ip >> 16) & 255}.${(ip >> 8) & 255}.${ip++ & 255}`;

async function runOpen(job: Extract<Job, { kind: 'open' }>): Promise<Outcome[]> {
  const pool = new Pool(job.url, {
    connections: 4096,
    pipelining: 1,
    connectTimeout: job.timeoutMs,
    headersTimeout: job.timeoutMs,
    bodyTimeout: job.timeoutMs,
  });
  const outcomes: Promise<Outcome>[] = [];
  const started = performance.now();

  const send = async (step: Step, previous: Record<string, unknown> | undefined): Promise<{ status: number; body: Record<string, unknown> | undefined }> => {
    const body = step.body ? { ...step.body } : undefined;
    let path = step.path;
    if (step.totpSecret && body) body.code = totpCode(step.totpSecret, Date.now());
    if (step.confirmPrevious && body && previous) {
      path = path.replace(':id', String(previous.id));
      body.code = totpCode(String(previous.secret), Date.now());
    }
    if (step.flowFromPrevious && previous) path = path.replace(':flow', String(previous.flow));
    const headers: Record<string, string> = { 'x-forwarded-for': nextIp(), ...step.headers };
    if (body) headers['content-type'] = 'application/json';
    // No AbortSignal.timeout per request: it cost the generator a third of its time per request (a timer
    // and a finalizer each), CPU the server under test does not get on a shared machine. The pool's own
    // timeouts bound every step the same way.
    const res = await pool.request({ method: step.method, path, headers, body: body ? JSON.stringify(body) : null });
    const text = await res.body.text();
    let parsed: Record<string, unknown> | undefined;
    try {
      parsed = text ? (JSON.parse(text) as Record<string, unknown>) : undefined;
    } catch {
      parsed = undefined;
    }
    return { status: res.statusCode, body: parsed };
  };

  const arrive = async (stream: Stream, steps: Step[]): Promise<Outcome> => {
    const begin = performance.now();
    let status = 0;
    let previous: Record<string, unknown> | undefined;
    let step = 0;
    const timings: Outcome['steps'] = [];
    let stepBegin = begin;
    try {
      for (; step < steps.length; step++) {
        // A step that goes on with a flow the previous answer did not start is told apart from a lost flow.
        if (steps[step]!.flowFromPrevious && previous?.flow === undefined) {
          status = -1;
          break;
        }
        stepBegin = performance.now();
        const res = await send(steps[step]!, previous);
        status = res.status;
        timings.push({ status, ms: performance.now() - stepBegin });
        previous = res.body;
        if (status >= 300) break;
      }
    } catch {
      status = 0;
      timings.push({ status, ms: performance.now() - stepBegin });
    }
    const noFlow = status === -1 ? `no flow in the answer before (state ${String(previous?.state)})` : undefined;
    if (noFlow) status = 200;
    const ok = !noFlow && ((status >= 200 && status < 300) || (stream.alsoSucceeds ?? []).includes(status));
    const problem = noFlow ?? (!ok && typeof previous?.type === 'string' ? previous.type.split('/').pop() : undefined);
    return {
      stream: stream.name,
      status,
      ok,
      ms: performance.now() - begin,
      at: (begin - started) / 1000,
      steps: timings,
      ...(ok ? {} : { failed: { step: Math.min(step, steps.length - 1) + 1, ...(problem ? { problem } : {}) } }),
    };
  };

  const sent = job.streams.map(() => 0);
  await new Promise<void>((resolve) => {
    const tick = () => {
      const elapsed = (performance.now() - started) / 1000;
      const until = Math.min(elapsed, job.seconds);
      job.streams.forEach((stream, i) => {
        for (; sent[i]! < Math.floor(until * stream.rate); sent[i]!++) {
          const steps = stream.scenarios[sent[i]! % stream.scenarios.length]!;
          outcomes.push(arrive(stream, steps));
        }
      });
      if (elapsed >= job.seconds) resolve();
      else setTimeout(tick, 2);
    };
    tick();
  });
  const results = await Promise.all(outcomes);
  await pool.close();
  return results;
}

async function runClosed(job: Extract<Job, { kind: 'closed' }>): Promise<ClosedResult> {
  let next = 0;
  const statuses: Record<string, number> = {};
  const started = performance.now();
  const result = await autocannon({
    url: job.url,
    connections: job.connections,
    duration: job.seconds,
    requests: [
      {
        setupRequest: (req: any) => {
          const step = job.scenarios[next++ % job.scenarios.length]!;
          return {
            ...req,
            method: step.method,
            path: step.path,
            headers: { 'content-type': 'application/json', 'x-forwarded-for': nextIp() },
            body: JSON.stringify(step.body),
          };
        },
        onResponse: (status: number) => {
          statuses[status] = (statuses[status] ?? 0) + 1;
        },
      },
    ],
  });
  const seconds = (performance.now() - started) / 1000;
  return { perSecond: result.requests.total / seconds, seconds, p99: result.latency.p99, statuses };
}

// As the child: run each job sent and answer with its results.
if (process.send && process.argv.includes('--load-generator')) {
  process.on('message', (job: Job) => {
    const run = job.kind === 'open' ? runOpen(job) : runClosed(job);
    run.then(
      (result) => process.send!({ ok: true, result }),
      (err: Error) => process.send!({ ok: false, error: err.message }),
    );
  });
}

/** Starts the generator as a child process; `run` sends it a job and waits for the results. */
export function startLoadGenerator(): {
  pid: number;
  run<T extends Job>(job: T): Promise<T extends { kind: 'open' } ? Outcome[] : ClosedResult>;
  stop(): void;
} {
  const child: ChildProcess = fork(new URL(import.meta.url).pathname, ['--load-generator'], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    // A session of its own, as the server has: where the kernel shares CPU by session (Linux
    // autogroup), sending the surge does not come out of the server's share, as from another host.
    detached: true,
  });
  process.once('exit', () => child.kill('SIGKILL'));
  return {
    pid: child.pid!,
    run: (job) =>
      new Promise((resolve, reject) => {
        child.once('message', (message: { ok: boolean; result?: any; error?: string }) =>
          message.ok ? resolve(message.result) : reject(new Error(message.error)),
        );
        child.send(job);
      }),
    stop: () => child.kill(),
  };
}
