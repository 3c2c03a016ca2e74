import { RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { EphemeralStore } from '../store/ephemeral/ephemeral-store.ts';
import { AppError } from '../errors/app-error.ts';
import { sourceKey } from './source-key.ts';

/**
 * Guessing limits for passwords and second factors (ASVS v5 V6.3, NIST 800-63B 5.2.2),
 * built so that an attacker cannot turn them against the account's owner.
 *
 * - Per account: at most N failures (the tenant's `lockout.accountFailures`, 100 by
 *   default, NIST's ceiling), split by where the guesses come from:
 *   - browsers holding the account's known-browser mark (an HMAC the owner's browser
 *     got at a complete sign-in, void once the owner's sessions are ended) share a
 *     tenth, and sources where that factor was proved in the last 30 days another
 *     tenth; each blocks for the tenant's `lockout.blockMinutes`, and a success
 *     restarts its count;
 *   - everyone else shares the rest, and once it is spent strangers are refused
 *     until a day has passed since their first failure: a block that lifts and
 *     restarts the count would let a patient attacker guess on for ever.
 *   An attacker spraying the account from new places exhausts only the strangers'
 *   part; someone sharing the owner's network, only the familiar sources' part; the
 *   owner's own browser keeps its part. All of them together never get more than N.
 * - Per account and source: 10 failures in 15 minutes, then 15 minutes of back-off
 *   for that source only.
 * - Per source: 100 failures in 15 minutes, whoever they target, against spraying
 *   many accounts from one place.
 * - A Temporary Access Pass is 80 random bits: nobody guesses one, so its checks have
 *   no account budget to lock (per-source limits only, against load), and a valid
 *   pass gets in even while the account's password is blocked. Likewise the current
 *   password asked for by a password change, which only a signed-in session can
 *   try: limited per session and source, never the account.
 *
 * Points are taken before the check runs, so a burst of parallel guesses cannot
 * slip past the limit, and given back on success.
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

export type Factor = 'password' | 'second-factor' | 'tap' | 'password-change';

/** Where a guess comes from, as far as the account's budget is concerned. */
export type Place = 'stranger' | 'familiar-source' | 'known-browser';

export interface Attempt {
  factor: Factor;
  /** Tenant-qualified account key; for unknown usernames the typed name, so both cost the same. */
  account: string;
  ip: string;
  /** Which part of the account's budget the guess counts against; strangers' when absent. */
  place?: Place | undefined;
  /**
   * A password change only: the user whose password it is (tenant-qualified), while `account` is the session
   * guessing. Every session's guesses together have a day's cap for the user.
   */
  owner?: string | undefined;
  /** The tenant's own consecutive-failure limit and block time; the lower of it and the node's applies. */
  accountFailures?: number | undefined;
  accountBlockSeconds?: number | undefined;
}

// How long a source stays familiar to an account after a sign-in from it.
const FAMILIAR_SOURCE_SECONDS = 30 * 86_400;

/** Each familiar part of an account budget of `total` guesses: a tenth, at least one. */
export const familiarShare = (total: number) => Math.max(1, Math.floor(total / 10));
const DAY_SECONDS = 24 * 3600;
/** Wrong current passwords a day, from one session, before its password changes are refused. */
export const PASSWORD_CHANGE_FAILURES_PER_DAY = 20;
/**
 * Wrong current passwords a day from all of a user's sessions together: a thief who can open sessions at will
 * (a passkey they added, a pass) gets no more. Nothing a session can do clears it (a thief's own "this wasn't
 * me" would): one stolen session, at 20, cannot reach it, so it holds the owner back only from a thief who can
 * sign in at will, for the rest of the day; an administrator can set a new password meanwhile.
 */
export const PASSWORD_CHANGE_FAILURES_PER_USER_DAY = 50;

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
      accountSource: store.rateLimiter({
        keyPrefix: `${prefix}:acctsrc`,
        points: options.accountSourceFailures ?? 10,
        durationSeconds: window,
        blockSeconds: window,
      }),
      source: store.rateLimiter({ keyPrefix: `${prefix}:src`, points: options.sourceFailures ?? 100, durationSeconds: window, blockSeconds: window }),
    });
    // Stryker disable next-line StringLiteral: any one of these made empty still differs from the others (':src' is not 'rl:mfa:src'), so no two factors share a key; a shared prefix is caught on Redis (test/integration/limits-for-real.test.ts)
    this.limiters = { password: build('rl:pw'), 'second-factor': build('rl:mfa'), tap: build('rl:tap'), 'password-change': build('rl:pwchange') };
  }

  /**
   * One limiter per limit in use: every one counts on the same keys, so a
   * tenant that changes its limit keeps its counts and the new limit applies
   * to them at once.
   */
  private accountLimiter(prefix: string, points: number, durationSeconds: number, blockSeconds: number): RateLimiterAbstract {
    const key = `${prefix}|${points}|${durationSeconds}|${blockSeconds}`;
    let limiter = this.accountLimiters.get(key);
    if (!limiter) {
      limiter = this.store.rateLimiter({ keyPrefix: `${prefix}:acct`, points, durationSeconds, blockSeconds });
      this.accountLimiters.set(key, limiter);
    }
    return limiter;
  }

  private passwordChangeOwnerLimiter(): RateLimiterAbstract {
    // Stryker disable next-line StringLiteral: equivalent (made empty, the limiter's key and its prefix ':acct' still differ from every other limiter's, as for the prefixes below)
    return this.accountLimiter('rl:pwchange:user', PASSWORD_CHANGE_FAILURES_PER_USER_DAY, DAY_SECONDS, 0);
  }

  /** Whether this factor of this account was proved from this source lately. */
  async isFamiliarSource(factor: Factor, account: string, ip: string): Promise<boolean> {
    return (await this.store.get(familiarKey(factor, account, ip))) !== undefined;
  }

  /** Takes one point from each counter; throws a 429 problem when any is used up. */
  async begin(attempt: Attempt): Promise<void> {
    const counters = this.counters(attempt);
    const results = await Promise.allSettled(counters.map(([limiter, key]) => limiter.consume(key)));
    const refused = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
    if (refused.length === 0) return;
    // A refused attempt costs nothing: otherwise a source already held back by
    // its own limit could keep burning the account-wide budget.
    await Promise.all(counters.map(([limiter, key], i) => (results[i]!.status === 'fulfilled' ? limiter.reward(key, 1) : undefined)));
    const failure = refused.find((r) => !(r instanceof RateLimiterRes));
    if (failure) throw failure;
    const waitMs = Math.max(...refused.map((r) => (r as RateLimiterRes).msBeforeNext));
    throw new AppError('too-many-requests', undefined, {}, Math.max(1, Math.ceil(waitMs / 1000)));
  }

  /**
   * A correct answer: the consecutive-failure count of its part of the account
   * budget restarts, the source gets its point back, and the source becomes
   * familiar to the account.
   */
  /**
   * Gives back what `begin` took, for an attempt that turned out to be no
   * guess (the code this user just used, still on their screen; see
   * SigninService.verifyInFlow). Nothing else is refunded.
   */
  async refund(attempt: Attempt): Promise<void> {
    await Promise.all(this.counters(attempt).map(([limiter, key]) => limiter.reward(key, 1)));
  }

  async succeeded(attempt: Attempt): Promise<void> {
    const work = this.counters(attempt).map(([limiter, key], i) => (i === SOURCE_COUNTER ? limiter.reward(key, 1) : limiter.delete(key)));
    await Promise.all([...work, this.store.set(familiarKey(attempt.factor, attempt.account, attempt.ip), 1, FAMILIAR_SOURCE_SECONDS * 1000)]);
  }

  private counters(attempt: Attempt): Counter[] {
    const { accountSource, source } = this.limiters[attempt.factor];
    const src = sourceKey(attempt.ip);
    const bySource: Counter[] = [
      [accountSource, `${attempt.account}|${src}`],
      [source, src],
    ];
    if (attempt.factor === 'tap') return bySource;
    // The current password guessed from a signed-in session (the attempt's `account` is that session): capped
    // for the session as a whole too, so a stolen session cannot go on guessing from ever more sources. Never
    // the sign-in budget nor the owner's other sessions: the owner still signs in, ends the thief's session
    // with "this wasn't me", and changes the password.
    if (attempt.factor === 'password-change')
      return [
        ...bySource,
        // Stryker disable next-line StringLiteral: equivalent (made empty, the limiter's key and its prefix ':acct' still differ from every other limiter's, as for the prefixes above)
        [this.accountLimiter('rl:pwchange', PASSWORD_CHANGE_FAILURES_PER_DAY, DAY_SECONDS, 0), attempt.account],
        ...(attempt.owner ? [[this.passwordChangeOwnerLimiter(), attempt.owner] as Counter] : []),
      ];
    const total = Math.min(this.accountFailures, attempt.accountFailures ?? Infinity);
    const share = familiarShare(total);
    const block = Math.min(this.accountBlockSeconds, attempt.accountBlockSeconds ?? Infinity);
    // Stryker disable next-line StringLiteral,EqualityOperator: either one made empty still differs from the other, as above; `!==` swaps the two names, which keeps the factors apart as well
    const prefix = attempt.factor === 'password' ? 'rl:pw' : 'rl:mfa';
    const place = attempt.place ?? 'stranger';
    const account =
      place === 'stranger'
        ? // Strangers' failures count for a day from the first, with no block that lifts and starts them afresh.
          this.accountLimiter(prefix, Math.max(1, total - 2 * share), DAY_SECONDS, 0)
        : this.accountLimiter(`${prefix}:${place}`, share, DAY_SECONDS, block);
    return [...bySource, [account, attempt.account]];
  }
}

/** The per-source counter's place in `counters()`: it is given back on success, the others restart. */
const SOURCE_COUNTER = 1;

/**
 * Familiarity is per factor: a source where someone proved the password is not
 * thereby familiar for second factors, or whoever holds a stolen password could
 * spend the owner's familiar second-factor budget.
 */
const familiarKey = (factor: Factor, account: string, ip: string) => `familiar:${factor}:${account}|${sourceKey(ip)}`;
