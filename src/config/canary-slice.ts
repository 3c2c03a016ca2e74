import { createHmac } from 'node:crypto';

/** Buckets a slice is counted in: a canary of P percent is the buckets below P × 100. */
export const SLICE_BUCKETS = 10_000;

/**
 * Puts each client in a stable bucket, so the same people stay in a canary
 * from one request to the next, on every node, and across versions (a 10%
 * canary after a 5% one holds the same 5% and more). Keyed with a subkey of
 * the master key: a client cannot pick an address that lands it in, or out
 * of, a canary.
 */
export class CanarySlicer {
  constructor(private readonly key: Buffer) {}

  bucket(tenant: string, client: string): number {
    const digest = createHmac('sha256', this.key).update(tenant).update('\n').update(client).digest();
    return digest.readUInt32BE(0) % SLICE_BUCKETS;
  }

  static inCanary(bucket: number | undefined, percent: number): boolean {
    return bucket !== undefined && bucket < Math.round(percent * (SLICE_BUCKETS / 100));
  }
}
