/** Authenticator apps (RFC 6238): a secret sealed at rest, codes within one step either side, each step used once. */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { Secret, TOTP } from 'otpauth';
import type { Clock } from '../../clock.ts';
import type { KeyRing } from '../../crypto/key-ring.ts';
import { newId } from '../../crypto/random.ts';
import { secretContext, type Credentials, type Credential } from '../credentials.ts';
import { qrCodeSvg } from '../qr-code-svg.ts';
import type { Method } from '../method.ts';

// RFC 6238 as every authenticator app implements it: SHA-1, 6 digits, 30 s steps.
const PERIOD_SECONDS = 30;
const DIGITS = 6;
// One step either side absorbs clock drift and the seconds a person takes to type.
const WINDOW = 1;
const SECRET_BYTES = 20;
// A pending enrolment not confirmed within this time can no longer be confirmed.
const PENDING_LIFETIME_MS = 60 * 60 * 1000;

export interface TotpDeps {
  credentials: Credentials;
  keyRing: KeyRing;
  clock: Clock;
}

// Node's native HMAC is many times faster than otpauth's portable fallback.
export const nodeHmac = (algorithm: string, key: Uint8Array, message: Uint8Array): Uint8Array =>
  // Stryker disable next-line MethodExpression,StringLiteral: equivalent for the one algorithm used (Node reads digest names in any case, and "SHA1" has no dash)
  createHmac(algorithm.toLowerCase().replace('-', ''), key).update(message).digest();

/** What an authenticator app needs: the secret, as text, as an otpauth:// URI and as a QR code. */
async function provisioning(issuer: string, account: string, secret: Secret) {
  const otpauthUri = new TOTP({ issuer, label: account, secret, algorithm: 'SHA1', digits: DIGITS, period: PERIOD_SECONDS }).toString();
  return { secret: secret.base32, otpauthUri, qrCodeSvg: await qrCodeSvg(otpauthUri) };
}

export function createTotpMethod(deps: TotpDeps) {
  const sealContext = (credentialId: string) => secretContext('totp', credentialId);

  const openSecret = (credential: Credential): Secret => {
    if (!credential.secret) throw new Error(`TOTP credential ${credential.id} has no secret`);
    return Secret.fromBase32(deps.keyRing.open(credential.secret, sealContext(credential.id)).toString('utf8'));
  };

  /**
   * Checks the code and consumes its time step. A step once used is refused for
   * this credential forever, even across restarts and nodes, because the
   * last-used step lives in the durable store and moves only forward.
   */
  const checkAndConsume = async (credential: Credential, code: string): Promise<boolean> => {
    if (!/^[0-9]{6}$/.test(code)) return false;
    const now = deps.clock.now();
    const delta = TOTP.validate({
      token: code,
      secret: openSecret(credential),
      algorithm: 'SHA1',
      digits: DIGITS,
      period: PERIOD_SECONDS,
      timestamp: now,
      window: WINDOW,
      hmac: nodeHmac,
    });
    if (delta === null) return false;
    const step = Math.floor(now / 1000 / PERIOD_SECONDS) + delta;
    return deps.credentials.consumeStep(credential, step);
  };

  return {
    type: 'totp',
    enrolmentProvesPossession: false,

    async enrol(tenant, user, input) {
      const id = newId();
      // Stryker disable next-line ObjectLiteral: equivalent (otpauth's default size is also 20 bytes; the test checks the 160 bits)
      const secret = new Secret({ size: SECRET_BYTES });
      const label = input.label?.trim() || 'Authenticator app';
      const credential = await deps.credentials.insert({
        id,
        tenantId: tenant.id,
        userId: user.id,
        type: 'totp',
        label,
        state: 'pending',
        secret: deps.keyRing.seal(secret.base32, sealContext(id)),
        bySession: input.bySession,
      });
      return { credential, reveal: await provisioning(tenant.name, user.username, secret) };
    },

    async reveal(tenant, user, credential) {
      return provisioning(tenant.name, user.username, openSecret(credential));
    },

    async confirm(credential, code, activation) {
      if (deps.clock.now() - credential.createdAt > PENDING_LIFETIME_MS) return false;
      if (!(await checkAndConsume(credential, code))) return false;
      return deps.credentials.activate(credential, activation);
    },

    async challenge() {
      return {};
    },

    wellFormed: (code: string) => /^[0-9]{6}$/.test(code),

    async justUsed(candidates, code) {
      if (!/^[0-9]{6}$/.test(code)) return undefined;
      const nowSeconds = deps.clock.now() / 1000;
      const current = Math.floor(nowSeconds / PERIOD_SECONDS);
      for (const credential of candidates) {
        const step = credential.lastStep;
        // Only while that code can still be on the app's screen (the acceptance window): older codes are plain wrong ones.
        if (step === null || step < current - WINDOW) continue;
        const spent = TOTP.generate({
          secret: openSecret(credential),
          algorithm: 'SHA1',
          digits: DIGITS,
          period: PERIOD_SECONDS,
          timestamp: step * PERIOD_SECONDS * 1000,
          hmac: nodeHmac,
        });
        if (timingSafeEqual(Buffer.from(spent), Buffer.from(code))) {
          // The app shows the next code once step + 1 begins.
          return { nextInSeconds: Math.max(0, Math.ceil((step + 1) * PERIOD_SECONDS - nowSeconds)) };
        }
      }
      return undefined;
    },

    async verify(candidates, input) {
      // A user may have several apps; each costs one HMAC round, no slow hash.
      for (const credential of candidates) {
        // Stryker disable next-line StringLiteral: equivalent (any fixed string but six digits is refused before the check)
        if (await checkAndConsume(credential, input.code ?? '')) return { credential, amr: ['otp'] };
      }
      return undefined;
    },
  } satisfies Method;
}
