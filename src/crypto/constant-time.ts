import { timingSafeEqual, createHash } from 'node:crypto';

/**
 * Compares two strings without leaking where they differ. Both sides are hashed
 * first, so unequal lengths cost the same as equal ones.
 */
export function constantTimeEqual(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a).digest();
  const hb = createHash('sha256').update(b).digest();
  return timingSafeEqual(ha, hb);
}
