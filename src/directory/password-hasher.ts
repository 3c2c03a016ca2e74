import { availableParallelism } from 'node:os';
import { hash, verify, type Options } from '@node-rs/argon2';
import pLimit, { type LimitFunction } from 'p-limit';
import { AppError } from '../errors/app-error.ts';

// @node-rs/argon2 declares Algorithm as a const enum, which isolated-module
// compilers cannot inline; 2 is its Argon2id member.
const ARGON2ID = 2 as NonNullable<Options['algorithm']>;

/** OWASP's Argon2id baseline: 19 MiB, 2 passes, 1 lane. */
export const ARGON2_PARAMS = Object.freeze({ memoryCost: 19456, timeCost: 2, parallelism: 1 });

/** Whether hashing for a request is still worth starting. */
export interface WorkWindow {
  /** Aborted when the client has gone: nobody would read the answer. */
  signal?: AbortSignal | undefined;
  /** Epoch ms after which the client has most likely given up. */
  deadline?: number | undefined;
}

export interface PasswordHasherOptions {
  params?: { memoryCost: number; timeCost: number; parallelism: number };
  /** How many hashes may run at once; defaults to the number of cores. */
  concurrency?: number;
}

/**
 * Argon2id hashing with bounded concurrency. Each hash takes ~20 MiB and a core
 * for tens of milliseconds; running more at once than there are cores only
 * makes every one of them slower and starves the event loop's other work.
 */
export class PasswordHasher {
  readonly params: { memoryCost: number; timeCost: number; parallelism: number };
  private readonly limit: LimitFunction;
  private dummyHash: Promise<string> | undefined;
  /** Password checks run so far; the cluster monitor reads it at each heartbeat (the only cost on the sign-in path). */
  checksDone = 0;

  constructor(options: PasswordHasherOptions = {}) {
    this.params = options.params ?? ARGON2_PARAMS;
    this.limit = pLimit(options.concurrency ?? availableParallelism());
  }

  hash(secret: string): Promise<string> {
    return this.limit(() => hash(secret, { ...this.params, algorithm: ARGON2ID }));
  }

  /**
   * A malformed stored hash counts as a mismatch. Throws a 503 problem, without
   * hashing, when the request's client has gone or its deadline passed while it
   * waited for a turn: under overload, hashing for nobody is what turns a
   * queue into an outage.
   */
  verify(storedHash: string, secret: string, window: WorkWindow = {}): Promise<boolean> {
    return this.limit(async () => {
      if (window.signal?.aborted || (window.deadline !== undefined && Date.now() > window.deadline)) {
        throw new AppError('unavailable', 'the service is busy; retry shortly', {}, 1);
      }
      this.checksDone++;
      try {
        return await verify(storedHash, secret);
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
    this.dummyHash ??= this.hash('steadfast-dummy-password-for-timing');
    await this.verify(await this.dummyHash, secret, window);
    return false;
  }

  /** True when the stored hash was made with other parameters than the current ones. */
  needsRehash(storedHash: string): boolean {
    const match = /^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$/.exec(storedHash);
    if (!match) return true;
    return Number(match[1]) !== this.params.memoryCost || Number(match[2]) !== this.params.timeCost || Number(match[3]) !== this.params.parallelism;
  }

  get pending(): number {
    return this.limit.pendingCount + this.limit.activeCount;
  }
}
