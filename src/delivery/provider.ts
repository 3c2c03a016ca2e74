/** One vendor account that can carry messages for one channel, and how its failures are told apart. */
import type { Channel, OutboundMessage } from './channel.ts';

/** One vendor account that can carry messages for one channel. One file per vendor in `providers/`. */
export interface DeliveryProvider {
  readonly name: string;
  readonly type: string;
  readonly channel: Channel;
  /** Resolves once the vendor has accepted the message; aborting the signal abandons the call. */
  send(message: OutboundMessage, signal: AbortSignal): Promise<void>;
  close?(): Promise<void> | void;
}

/**
 * - `unavailable`: the vendor could not take the message (5xx, throttled, bad
 *   credentials, unreachable, too slow); counts against its breaker.
 * - `rejected`: the vendor refused this destination or message (4xx); the next
 *   provider may still deliver it, but it says nothing about the vendor's health,
 *   so a user cannot open a breaker by enrolling numbers that do not exist.
 */
export type FailureKind = 'unavailable' | 'rejected';

/** A provider's failure, described without the request or response body: those may hold the code. */
export class ProviderFailure extends Error {
  constructor(
    readonly kind: FailureKind,
    /** Short and free of message content, e.g. "HTTP 503" or "ECONNREFUSED". */
    readonly reason: string,
  ) {
    super(`${kind}: ${reason}`);
  }
}

/** Classifies an HTTP status from a vendor API. */
export function failureForStatus(status: number): ProviderFailure {
  // Authentication, throttling and timeouts are the vendor account's problem, not the destination's.
  const vendorSide = status >= 500 || status === 401 || status === 403 || status === 408 || status === 429;
  return new ProviderFailure(vendorSide ? 'unavailable' : 'rejected', `HTTP ${status}`);
}

/** Turns a network-level error (undici, sockets) into a failure without its message text. */
export function failureForNetworkError(err: unknown): ProviderFailure {
  if (err instanceof ProviderFailure) return err;
  const e = err as { name?: string; code?: string; cause?: { code?: string } };
  if (e?.name === 'AbortError' || e?.name === 'TimeoutError') return new ProviderFailure('unavailable', 'timed out');
  return new ProviderFailure('unavailable', e?.code ?? e?.cause?.code ?? e?.name ?? 'network error');
}
