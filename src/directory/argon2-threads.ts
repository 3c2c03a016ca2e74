import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type { Argon2 } from './argon2.ts';

/**
 * How much lower than the event loop hashing threads run (Linux nice, per
 * thread). Hashing is throughput work; the event loop answers everything else
 * (second factors, pages, and the fast 503s that keep a surge from becoming
 * timeouts). At equal priority, two hashing threads on two cores take two
 * thirds of the CPU from the event loop whenever it has work; at nice 5 the
 * event loop runs when it needs to and hashing uses the rest.
 */
export const HASHING_NICE = 5;

// The worker is plain CommonJS evaluated in place: it must load without the
// TypeScript loader, under tsx, vitest and plain Node alike.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const argon2 = require(workerData.argon2);
try { require('node:os').setPriority(workerData.nice); } catch {}
parentPort.on('message', ({ op, args }) => {
  try {
    const value = op === 'hash' ? argon2.hashSync(args[0], args[1]) : argon2.verifySync(args[0], args[1]);
    parentPort.postMessage({ value });
  } catch (err) {
    parentPort.postMessage({ error: String(err && err.message || err) });
  }
});
`;

interface Job {
  op: 'hash' | 'verify';
  args: unknown[];
  resolve: (value: any) => void;
  reject: (err: Error) => void;
}

interface Thread {
  worker: Worker;
  job?: Job | undefined;
}

/**
 * Argon2id on threads of its own at a lower OS priority than the event loop:
 * a small pool of worker threads running @node-rs/argon2's synchronous calls,
 * one job each at a time. It grows on demand up to `size` threads; callers
 * bound how many jobs run at once (the hashing pool's concurrency), so jobs
 * rarely wait here. Threads do not keep the process alive.
 */
export class Argon2Threads implements Argon2 {
  private readonly threads: Thread[] = [];
  private readonly waiting: Job[] = [];

  constructor(
    private size: number,
    private readonly nice = HASHING_NICE,
  ) {}

  /** Allows more threads (several hashers in one process share one pool). */
  growTo(size: number): void {
    this.size = Math.max(this.size, size);
  }

  hash(secret: string, options: object): Promise<string> {
    return this.run('hash', [secret, options]);
  }

  verify(storedHash: string, secret: string): Promise<boolean> {
    return this.run('verify', [storedHash, secret]);
  }

  private run<T>(op: Job['op'], args: unknown[]): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.waiting.push({ op, args, resolve, reject });
      this.dispatch();
    });
  }

  private dispatch(): void {
    while (this.waiting.length > 0) {
      const thread = this.threads.find((t) => !t.job) ?? (this.threads.length < this.size ? this.spawn() : undefined);
      if (!thread) return;
      const job = this.waiting.shift()!;
      thread.job = job;
      thread.worker.ref();
      thread.worker.postMessage({ op: job.op, args: job.args });
    }
  }

  private spawn(): Thread {
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { argon2: createRequire(import.meta.url).resolve('@node-rs/argon2'), nice: this.nice },
    });
    const thread: Thread = { worker };
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

/** The process's hashing threads, shared by every hasher in it. */
export function sharedArgon2Threads(size: number): Argon2Threads {
  shared ??= new Argon2Threads(size);
  shared.growTo(size);
  return shared;
}
