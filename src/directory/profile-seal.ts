import { createHmac } from 'node:crypto';
import type { KeyRing } from '../crypto/key-ring.ts';

export type ProfileField = 'email' | 'phone';

/**
 * A user's email address and phone number are personal data that a copy of
 * the database must not give away: they are sealed with the key ring, bound to
 * the user and the field. Looking a user up by exact email goes through a
 * keyed hash (HMAC under a key derived from the master key), never through
 * the address in clear.
 */
export class ProfileSeal {
  constructor(private readonly keyRing: KeyRing) {}

  seal(userId: string, field: ProfileField, value: string): string {
    return this.keyRing.seal(value, context(userId, field));
  }

  open(userId: string, field: ProfileField, sealed: string): string {
    return this.keyRing.open(sealed, context(userId, field)).toString('utf8');
  }

  /** The lookup key for an email address: the same for every spelling of its case. */
  emailIndex(email: string): string {
    return createHmac('sha256', this.keyRing.deriveKey('user-email-index')).update(email.normalize('NFKC').trim().toLowerCase()).digest('base64url');
  }

  needsRewrap(sealed: string): boolean {
    return this.keyRing.needsRewrap(sealed);
  }
}

const context = (userId: string, field: ProfileField) => `user-${field}:${userId}`;
