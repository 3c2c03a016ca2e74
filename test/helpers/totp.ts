import { TOTP, Secret } from 'otpauth';
import { createHmac } from 'node:crypto';

/** The code an authenticator app would show for `secret` at `atMs`: an independent computation for tests. */
export function totpCode(secretBase32: string, atMs: number): string {
  return TOTP.generate({
    secret: Secret.fromBase32(secretBase32),
    algorithm: 'SHA1',
    digits: 6,
    period: 30,
    timestamp: atMs,
    hmac: (_alg, key, msg) => createHmac('sha1', key).update(msg).digest(),
  });
}
