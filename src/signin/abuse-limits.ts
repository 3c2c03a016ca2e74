import { RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { EphemeralStore } from '../store/ephemeral/ephemeral-store.ts';
import { AppError } from '../errors/app-error.ts';
import { sourceKey } from './source-key.ts';

/**
 * Guessing limits for passwords and second factors (ASVS v5 V6.3, NIST 800-63B 5.2.2).
 *
 * - Per account: at most 100 consecutive failures, then a one-hour block. The
 *   count resets on success. A block ends on its own: nobody can lock an
 *   account for good.
 * - Per account and source: 10 failures in 15 minutes, then 15 minutes of
 *   back-off for that source only, so one attacker slows himself down long
 *   before he can touch the account-wide limit that the real user feels.
 * - Per source: 100 failures in 15 minutes, whoever they target, against
 *   spraying many accounts from one place.
 *
 * Password and second-factor failures count separately. Points are taken
 * before the check runs, so a burst of parallel guesses cannot slip past the
 * limit, and given back on success.
 */
export interface AbuseLimitsOptions {
  accountFailures?: number;
  accountBlockSeconds?: number;
  accountSourceFailures?: number;
  sourceFailures?: number;
  windowSeconds?: number;
}

interface LimiterSet {
  accountSource: RateLimiterAbstract;
  source: RateLimiterAbstract;
}

type Counter = [RateLimiterAbstract, string];

export type Factor = 'password' | 'second-factor';

export interface Attempt {
  factor: Factor;
  /** Tenant-qualified account key; for unknown usernames the typed name, so both cost the same. */
  account: string;
  ip: string;
  /** The tenant's own consecutive-failure limit and block time; the lower of it and the node's applies. */
  accountFailures?: number | undefined;
  accountBlockSeconds?: number | undefined;
}

export class AbuseLimits {
  private readonly limiters: Record<Factor, LimiterSet>;
  private readonly accountLimiters = new Map<string, RateLimiterAbstract>();
  private readonly accountFailures: number;
  private readonly accountBlockSeconds: number;

  constructor(
    private readonly store: EphemeralStore,
    options: AbuseLimitsOptions = {},
  ) {
    const window = options.windowSeconds ?? 900;
    this.accountFailures = options.accountFailures ?? 100;
    this.accountBlockSeconds = options.accountBlockSeconds ?? 3600;
    const build = (prefix: string): LimiterSet => ({
      accountSource: store.rateLimiter({ keyPrefix: `${prefix}:acctsrc`, points: options.accountSourceFailures ?? 10, durationSeconds: window, blockSeconds: window }),
      source: store.rateLimiter({ keyPrefix: `${prefix}:src`, points: options.sourceFailures ?? 100, durationSeconds: window, blockSeconds: window }),
    });
    this.limiters = { password: build('rl:pw'), 'second-factor': build('rl:mfa') };
  }

  /**
   * One limiter per limit in use: every one counts on the same keys, so a
   * tenant that changes its limit keeps its counts and the new limit applies
   * to them at once.
   */
  private accountLimiter(prefix: string, points: number, blockSeconds: number): RateLimiterAbstract {
    const key = `${prefix}|${points}|${blockSeconds}`;
    let limiter = this.accountLimiters.get(key);
    if (!limiter) {
      limiter = this.store.rateLimiter({ keyPrefix: `${prefix}:acct`, points, durationSeconds: 24 * 3600, blockSeconds });
      this.accountLimiters.set(key, limiter);
    }
    return limiter;
  }

  /** Takes one point from each counter; throws a 429 problem when any is used up. */
  async begin(attempt: Attempt): Promise<void> {
    const counters = this.counters(attempt);
    const results = await Promise.allSettled(counters.map(([limiter, key]) => limiter.consume(key)));
    const refused = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
    if (refused.length === 0) return;
    // A refused attempt costs nothing: otherwise a source already held back by
    // its own limit could keep burning the account-wide budget and lock the
    // real user out.
    await Promise.all(counters.map(([limiter, key], i) => (results[i]!.status === 'fulfilled' ? limiter.reward(key, 1) : undefined)));
    const failure = refused.find((r) => !(r instanceof RateLimiterRes));
    if (failure) throw failure;
    const waitMs = Math.max(...refused.map((r) => (r as RateLimiterRes).msBeforeNext));
    throw new AppError('too-many-requests', undefined, {}, Math.max(1, Math.ceil(waitMs / 1000)));
  }

  /** A correct answer: consecutive-failure counts for the account restart, and the source gets its point back. */
  async succeeded(attempt: Attempt): Promise<void> {
    const [[account, accountKey], [accountSource, accountSourceKey], [source, sourceKey]] = this.counters(attempt);
    await Promise.all([account.delete(accountKey), accountSource.delete(accountSourceKey), source.reward(sourceKey, 1)]);
  }

  private counters(attempt: Attempt): [Counter, Counter, Counter] {
    const { accountSource, source } = this.limiters[attempt.factor];
    const prefix = attempt.factor === 'password' ? 'rl:pw' : 'rl:mfa';
    const account = this.accountLimiter(
      prefix,
      Math.min(this.accountFailures, attempt.accountFailures ?? Infinity),
      Math.min(this.accountBlockSeconds, attempt.accountBlockSeconds ?? Infinity),
    );
    const src = sourceKey(attempt.ip);
    return [
      [account, attempt.account],
      [accountSource, `${attempt.account}|${src}`],
      [source, src],
    ];
  }
}
