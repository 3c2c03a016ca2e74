import { createHmac } from 'node:crypto';
import { Secret, TOTP } from 'otpauth';

export const TOTP_PERIOD_MS = 30_000;

/** What an authenticator app shows for `secret` in time step `step` (RFC 6238, SHA-1, 6 digits, 30 s). */
export function totpCodeAt(secretBase32: string, step: number): string {
  return TOTP.generate({
    secret: Secret.fromBase32(secretBase32),
    algorithm: 'SHA1',
    digits: 6,
    period: 30,
    timestamp: step * TOTP_PERIOD_MS,
    hmac: (_alg, key, msg) => createHmac('sha1', key).update(msg).digest(),
  });
}

export const currentStep = (now = Date.now()) => Math.floor(now / TOTP_PERIOD_MS);
