import { createHash, createHmac } from 'node:crypto';

/**
 * Keyed hash for short, low-entropy secrets (one-time codes): HMAC-SHA256 under a
 * key derived from the master key, so a copy of the database alone cannot be
 * brute-forced offline over the small code space.
 */
export class KeyedHasher {
  constructor(private readonly key: Buffer) {}

  hash(value: string): string {
    return createHmac('sha256', this.key).update(value).digest('base64url');
  }
}

/**
 * Unkeyed SHA-256 for high-entropy bearer tokens (sessions, API tokens). With
 * 256 random bits nothing can be guessed, and an unkeyed hash keeps tokens valid
 * across master-key rotation.
 */
export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}
