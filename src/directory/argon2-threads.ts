import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type { Argon2, HashPriority } from './argon2.ts';

/**
 * How much lower than the event loop hashing threads run (Linux nice, per
 * thread). Hashing is throughput work; the event loop answers everything else
 * (second factors, pages, and the fast 503s that keep a surge from becoming
 * timeouts). At equal priority, two hashing threads on two cores take two
 * thirds of the CPU from the event loop whenever it has work; at nice 5 the
 * event loop runs when it needs to and hashing uses the rest.
 */
export const HASHING_NICE = 5;

/**
 * Lower still: the threads for `bulk` hashes, those of a tenant with more of
 * its own waiting in the pool (a surge). When another tenant's hash runs
 * alongside a surge's on a saturated machine, the kernel gives it a core
 * first (weight 335 against 36 each), so it takes about its usual time
 * instead of a third of the cores; the surge's hashes use what is left, so
 * nothing is lost in throughput. (An unprivileged thread can raise its nice
 * value but never lower it again, hence threads of their own.)
 */
export const BULK_HASHING_NICE = 15;

const NICE: Readonly<Record<HashPriority, number>> = { prompt: HASHING_NICE, bulk: BULK_HASHING_NICE };

// The worker is plain CommonJS evaluated in place: it must load without the
// TypeScript loader, under tsx, vitest and plain Node alike.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const argon2 = require(workerData.argon2);
try { require('node:os').setPriority(workerData.nice); } catch {}
parentPort.on('message', ({ op, args }) => {
  if (op === 'ready') return parentPort.postMessage({ value: true });
  try {
    const value = op === 'hash' ? argon2.hashSync(args[0], args[1]) : argon2.verifySync(args[0], args[1]);
    parentPort.postMessage({ value });
  } catch (err) {
    parentPort.postMessage({ error: String(err && err.message || err) });
  }
});
`;

interface Job {
  priority: HashPriority;
  op: 'hash' | 'verify' | 'ready';
  args: unknown[];
  resolve: (value: any) => void;
  reject: (err: Error) => void;
}

interface Thread {
  priority: HashPriority;
  worker: Worker;
  job?: Job | undefined;
}

/**
 * Argon2id on threads of its own at a lower OS priority than the event loop:
 * a small pool of worker threads running @node-rs/argon2's synchronous calls,
 * one job each at a time, at one of two priorities (`prompt` at
 * `HASHING_NICE`, `bulk` at `BULK_HASHING_NICE`), each with threads of its
 * own. It grows on demand up to `size` threads of each priority; callers
 * bound how many jobs run at once (the hashing pool's concurrency), so jobs
 * rarely wait here. Threads do not keep the process alive.
 */
export class Argon2Threads implements Argon2 {
  private readonly threads: Thread[] = [];
  private readonly waiting: Record<HashPriority, Job[]> = { prompt: [], bulk: [] };

  constructor(private size: number) {}

  /** Allows more threads (several hashers in one process share one pool). */
  growTo(size: number): void {
    this.size = Math.max(this.size, size);
  }

  /**
   * Starts every thread it may grow to, of both priorities, and waits until
   * each has loaded Argon2: for a node about to take traffic. A thread started
   * on demand costs its first hash 40 to 60 ms more, and a surge needs new ones
   * at the worst moment (the spare slot for another tenant's sign-in, the
   * low-priority threads for the surge itself).
   */
  async prestart(): Promise<void> {
    const started: Promise<unknown>[] = [];
    for (const priority of ['prompt', 'bulk'] as const) {
      while (this.count(priority) < this.size) {
        const thread = this.spawn(priority);
        started.push(
          new Promise((resolve, reject) => {
            thread.job = { priority, op: 'ready', args: [], resolve, reject };
            thread.worker.ref();
            thread.worker.postMessage({ op: 'ready', args: [] });
          }),
        );
      }
    }
    await Promise.all(started);
  }

  hash(secret: string, options: object, priority: HashPriority = 'prompt'): Promise<string> {
    return this.run(priority, 'hash', [secret, options]);
  }

  verify(storedHash: string, secret: string, priority: HashPriority = 'prompt'): Promise<boolean> {
    return this.run(priority, 'verify', [storedHash, secret]);
  }

  private run<T>(priority: HashPriority, op: Job['op'], args: unknown[]): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.waiting[priority].push({ priority, op, args, resolve, reject });
      this.dispatch();
    });
  }

  private dispatch(): void {
    for (const priority of ['prompt', 'bulk'] as const) {
      const waiting = this.waiting[priority];
      while (waiting.length > 0) {
        const thread = this.threads.find((t) => t.priority === priority && !t.job) ?? (this.count(priority) < this.size ? this.spawn(priority) : undefined);
        if (!thread) break;
        const job = waiting.shift()!;
        thread.job = job;
        thread.worker.ref();
        thread.worker.postMessage({ op: job.op, args: job.args });
      }
    }
  }

  private count(priority: HashPriority): number {
    return this.threads.filter((t) => t.priority === priority).length;
  }

  private spawn(priority: HashPriority): Thread {
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { argon2: createRequire(import.meta.url).resolve('@node-rs/argon2'), nice: NICE[priority] },
    });
    const thread: Thread = { priority, worker };
    worker.unref();
    worker.on('message', (message: { value?: unknown; error?: string }) => {
      const job = thread.job;
      thread.job = undefined;
      worker.unref();
      if (message.error !== undefined) job?.reject(new Error(message.error));
      else job?.resolve(message.value);
      this.dispatch();
    });
    // A thread that dies takes only its own job with it; the next job starts a new one.
    const lost = (err: Error) => {
      const index = this.threads.indexOf(thread);
      if (index >= 0) this.threads.splice(index, 1);
      thread.job?.reject(err);
      thread.job = undefined;
      this.dispatch();
    };
    worker.on('error', lost);
    worker.on('exit', (code) => lost(new Error(`hashing thread exited (${code})`)));
    this.threads.push(thread);
    return thread;
  }
}

let shared: Argon2Threads | undefined;

/** The process's hashing threads, shared by every hasher in it (`size` threads of each priority). */
export function sharedArgon2Threads(size: number): Argon2Threads {
  shared ??= new Argon2Threads(size);
  shared.growTo(size);
  return shared;
}
