/** How many codes may be sent per destination, user and tenant an hour, so nobody pumps messages at our cost. */
import { RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { EphemeralStore } from '../../store/ephemeral/ephemeral-store.ts';
import { AppError } from '../../errors/app-error.ts';
import { sourceKey } from '../../signin/source-key.ts';

export interface SendLimitSettings {
  perDestinationPerHour: number;
  perUserPerHour: number;
  perTenantPerHour: number;
  perSessionPerHour: number;
  perSourcePerHour: number;
}

export interface SendTarget {
  tenantId: string;
  userId: string;
  /** A keyed hash of the destination: the store never holds the number itself. */
  destinationKey: string;
  /** What asked: a session (adding a phone) or a sign-in flow; and from which address. */
  requester?: SendRequester | undefined;
}

export interface SendRequester {
  origin: string;
  ip: string;
}

/**
 * Caps on codes sent, so nobody can use Steadfast to pump messages to
 * premium-rate numbers (toll fraud) or to flood one person: per destination,
 * per user, per session (or sign-in), per source address and per tenant, each
 * over an hour. A registration session adding number after number hits its
 * session cap after a few; many sessions from one place hit the source cap.
 */
export class SendLimits {
  private readonly destination: RateLimiterAbstract;
  private readonly user: RateLimiterAbstract;
  private readonly tenant: RateLimiterAbstract;
  private readonly session: RateLimiterAbstract;
  private readonly source: RateLimiterAbstract;

  constructor(store: EphemeralStore, settings: SendLimitSettings) {
    const hourly = (keyPrefix: string, points: number) => store.rateLimiter({ keyPrefix, points, durationSeconds: 3600, blockSeconds: 0 });
    // Stryker disable StringLiteral: any one of these prefixes made empty still differs from the others and from every other
    // key in the store (its keys become the bare destination hash, tenant|user, session, source or tenant id), so no two
    // limits share counts; the memory store keeps each limiter apart whatever its prefix, so only Redis could show a shared one.
    this.destination = hourly('send:dest', settings.perDestinationPerHour);
    this.user = hourly('send:user', settings.perUserPerHour);
    this.tenant = hourly('send:tenant', settings.perTenantPerHour);
    this.session = hourly('send:session', settings.perSessionPerHour);
    this.source = hourly('send:source', settings.perSourcePerHour);
    // Stryker restore StringLiteral
  }

  /**
   * Counts one send against every limit, or throws a 429 problem naming none of
   * them to the client. The returned function gives the send back when nothing
   * went out, to the destination, the user and the tenant: a provider outage
   * must not use up a user's sends for the hour. Never to the session and the
   * source that asked: each send they make a provider try is theirs, sent or
   * not, or whoever types addresses that fail (a domain whose server stalls)
   * could make a provider fail as often as they like (round 28).
   */
  async consume(target: SendTarget): Promise<() => Promise<void>> {
    type Counter = [RateLimiterAbstract, string];
    const destination: Counter = [this.destination, target.destinationKey];
    const user: Counter = [this.user, `${target.tenantId}|${target.userId}`];
    const tenant: Counter = [this.tenant, target.tenantId];
    const askers: Counter[] = target.requester
      ? [
          [this.session, target.requester.origin],
          [this.source, sourceKey(target.requester.ip)],
        ]
      : [];
    const counters = [destination, user, ...askers, tenant];
    const refund = async () => {
      await Promise.all([destination, user, tenant].map(([l, k]) => l.reward(k, 1)));
    };
    for (const [i, [limiter, key]] of counters.entries()) {
      try {
        await limiter.consume(key);
      } catch (err) {
        if (!(err instanceof RateLimiterRes)) throw err;
        // Limits already passed give their point back: a refused send costs nothing.
        await Promise.all(counters.slice(0, i).map(([l, k]) => l.reward(k, 1)));
        throw new AppError('send-limit', undefined, {}, Math.max(1, Math.ceil(err.msBeforeNext / 1000)));
      }
    }
    return refund;
  }
}
