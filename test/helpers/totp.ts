import { TOTP, Secret } from 'otpauth';

/** The code an authenticator app would show for `secret` at `atMs`: an independent computation for tests. */
export function totpCode(secretBase32: string, atMs: number): string {
  return TOTP.generate({ secret: Secret.fromBase32(secretBase32), algorithm: 'SHA1', digits: 6, period: 30, timestamp: atMs });
}
