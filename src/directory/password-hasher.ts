/** Argon2id hashing and verification with bounded concurrency, ranked by class and shared fairly by tenants. */
import { availableParallelism } from 'node:os';
import type { Options } from '@node-rs/argon2';
import { AppError } from '../errors/app-error.ts';
import { Bulkhead, type BulkheadEvents } from '../admission/bulkhead.ts';
import { PRIORITY } from '../admission/admission-class.ts';
import { currentTicket } from '../admission/work-ticket.ts';
import { sharedArgon2Threads } from './argon2-threads.ts';
import type { Argon2, Argon2Params, HashPriority } from './argon2.ts';

// @node-rs/argon2 declares Algorithm as a const enum, which isolated-module
// compilers cannot inline; 2 is its Argon2id member.
const ARGON2ID = 2 as NonNullable<Options['algorithm']>;

/** OWASP's Argon2id baseline: 19 MiB, 2 passes, 1 lane. */
export const ARGON2_PARAMS = Object.freeze({ memoryCost: 19456, timeCost: 2, parallelism: 1 });

type Params = Argon2Params;

const TOP_RANK = Math.max(...Object.values(PRIORITY));

/** Whether hashing for a request is still worth starting. */
export interface WorkWindow {
  /** Aborted when the client has gone: nobody would read the answer. */
  signal?: AbortSignal | undefined;
  /** Epoch ms after which the client has most likely given up. */
  deadline?: number | undefined;
}

/** The Argon2id implementation; tests put one in that they can hold and count. */
export type { Argon2 } from './argon2.ts';

export interface PasswordHasherOptions {
  params?: Params;
  /** How many hashes may run at once; defaults to the number of cores. */
  concurrency?: number;
  /** Hashes that may wait for a turn; defaults to four per running one. */
  queueLimit?: number;
  /** The longest a hash waits for its turn; defaults to 1 s. */
  maxWaitMs?: number;
  /** Told of every hash let in, refused or evicted, by class and tenant. */
  events?: BulkheadEvents;
  /** Defaults to the process's hashing threads, which run below the event loop's priority (`argon2-threads.ts`). */
  argon2?: Argon2;
}

/**
 * Argon2id hashing in a bulkhead of its own: the hashing pool. Each hash takes
 * ~20 MiB and a core for tens of milliseconds; running more at once than there
 * are cores only makes every one slower and starves the event loop, so at most
 * `concurrency` run and the rest wait in a short queue ranked by the request's
 * class, with tenants taking turns (see `Bulkhead`). This is where overload
 * from password sign-ins is really shed: a hash that would wait too long is
 * refused at once with a 503, and cheap work (second factors, sessions, pages)
 * never queues here at all.
 *
 * Whose work a hash is comes from the request's work ticket (`WorkTicket`);
 * work outside any request (the command line, start-up) is never refused.
 */
export class PasswordHasher {
  readonly params: Params;
  readonly pool: Bulkhead;
  private readonly argon2: Argon2;
  private dummyHash: Promise<string> | undefined;
  /** Password checks run so far; the cluster monitor reads it at each heartbeat (the only cost on the sign-in path). */
  checksDone = 0;

  constructor(options: PasswordHasherOptions = {}) {
    this.params = options.params ?? ARGON2_PARAMS;
    const concurrency = options.concurrency ?? availableParallelism();
    // One spare slot for a tenant with nothing running (see `BulkheadOptions.spare`), so one more thread.
    this.argon2 = options.argon2 ?? sharedArgon2Threads(concurrency + 1);
    this.pool = new Bulkhead(
      { limit: concurrency, spare: 1, queueLimit: options.queueLimit ?? 4 * concurrency, maxWaitMs: options.maxWaitMs ?? 1000 },
      options.events,
    );
  }

  /** Starts every hashing thread now, for a node about to take traffic (see `Argon2Threads.prestart`). */
  async prestartThreads(): Promise<void> {
    await this.argon2.prestart?.();
  }

  hash(secret: string): Promise<string> {
    return this.inPool({}, (priority) => this.argon2.hash(secret, { ...this.params, algorithm: ARGON2ID }, priority));
  }

  /**
   * A malformed stored hash counts as a mismatch. Throws a 503 problem, without
   * hashing, when the pool is full for this request's class and tenant, or
   * when the request's client has gone or its deadline passed while it waited
   * for a turn: under overload, hashing for nobody is what turns a queue into
   * an outage.
   */
  verify(storedHash: string, secret: string, window: WorkWindow = {}): Promise<boolean> {
    const ticket = currentTicket();
    const signal = window.signal ?? ticket?.signal;
    const deadline = window.deadline ?? ticket?.deadline;
    return this.inPool({ signal }, async (priority) => {
      if (signal?.aborted || (deadline !== undefined && Date.now() > deadline)) {
        throw new AppError('unavailable', 'the service is busy; retry shortly', {}, 1);
      }
      this.checksDone++;
      try {
        return await this.argon2.verify(storedHash, secret, priority);
      } catch {
        return false;
      }
    });
  }

  /**
   * Spends the same work as a real verification, for unknown users and users
   * without a password, so response time does not tell whether an account exists.
   */
  async verifyNothing(secret: string, window: WorkWindow = {}): Promise<false> {
    // Made once, outside the pool: it is not any request's work, and a refusal must not stick.
    this.dummyHash ??= this.argon2.hash('steadfast-dummy-password-for-timing', { ...this.params, algorithm: ARGON2ID }).catch((err: unknown) => {
      this.dummyHash = undefined;
      throw err;
    });
    await this.verify(await this.dummyHash, secret, window);
    return false;
  }

  /** True when the stored hash was made with other parameters than the current ones. */
  needsRehash(storedHash: string): boolean {
    const match = /^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$/.exec(storedHash);
    if (!match) return true;
    return Number(match[1]) !== this.params.memoryCost || Number(match[2]) !== this.params.timeCost || Number(match[3]) !== this.params.parallelism;
  }

  /** Hashes running or waiting. */
  get pending(): number {
    const { running, queued } = this.pool.state;
    return running + queued;
  }

  /**
   * Runs one hash in the pool, as the work of the current request (if any).
   * A hash of a tenant that still has more of its own waiting when it starts
   * (a surge: it asks for more than the pool gives it) runs at the `bulk`
   * priority, so another tenant's hash started alongside gets a core first
   * and takes about its usual time; the most important classes (a recovery
   * code, a TAP) and a tenant's hashes while it has none waiting stay `prompt`.
   */
  private async inPool<T>(window: Pick<WorkWindow, 'signal'>, work: (priority: HashPriority) => Promise<T>): Promise<T> {
    const ticket = currentTicket();
    const cls = ticket?.cls ?? 'background';
    let priority: HashPriority = 'prompt';
    const release = await this.pool.acquire(cls, ticket?.tenant ?? '-', {
      signal: window.signal,
      committed: !ticket || ticket.hashed,
      // Marked as soon as the pool takes it, so hashes the request starts alongside (Promise.all) count as committed too.
      onLetIn: () => {
        if (ticket) ticket.hashed = true;
      },
      onStart: (backlogged) => {
        priority = backlogged && PRIORITY[cls] < TOP_RANK ? 'bulk' : 'prompt';
      },
    });
    try {
      return await work(priority);
    } finally {
      release();
    }
  }
}
