import { RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { EphemeralStore } from '../store/ephemeral/ephemeral-store.ts';
import { AppError } from '../errors/app-error.ts';
import { sourceKey } from './source-key.ts';

// Generous for people (a page load starts one), tight for a script filling the store.
const PER_SOURCE_PER_MINUTE = 60;

/**
 * Requests that anyone may make without signing in, and that leave state in
 * the ephemeral store for minutes (a passkey sign-in's challenge, an app's
 * authorization request): limited per source, so nobody can fill the store
 * (Redis memory) from one place.
 */
export class AnonymousStarts {
  private readonly limiter: RateLimiterAbstract;

  constructor(store: EphemeralStore) {
    this.limiter = store.rateLimiter({ keyPrefix: 'rl:anon-start', points: PER_SOURCE_PER_MINUTE, durationSeconds: 60, blockSeconds: 60 });
  }

  /** Counts one start from this address; a 429 problem once the minute's budget is spent. */
  async take(ip: string): Promise<void> {
    try {
      await this.limiter.consume(sourceKey(ip));
    } catch (err) {
      if (err instanceof RateLimiterRes) throw new AppError('too-many-requests', undefined, {}, Math.max(1, Math.ceil(err.msBeforeNext / 1000)));
      throw err;
    }
  }
}
