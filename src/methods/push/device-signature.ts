import { createHash, createPublicKey, verify, type KeyObject } from 'node:crypto';

/** A device's public key as the app sends it: a P-256 JWK, public part only. */
export interface DevicePublicKey {
  kty: 'EC';
  crv: 'P-256';
  x: string;
  y: string;
}

const COORDINATE = /^[A-Za-z0-9_-]{43}$/;

/** The public key in a pairing request, or undefined when it is not a P-256 public JWK (a private `d` is refused too). */
export function parseDevicePublicKey(value: unknown): DevicePublicKey | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const jwk = value as Record<string, unknown>;
  if (jwk.kty !== 'EC' || jwk.crv !== 'P-256' || 'd' in jwk) return undefined;
  if (typeof jwk.x !== 'string' || typeof jwk.y !== 'string' || !COORDINATE.test(jwk.x) || !COORDINATE.test(jwk.y)) return undefined;
  const key: DevicePublicKey = { kty: 'EC', crv: 'P-256', x: jwk.x, y: jwk.y };
  try {
    // Node checks that the point is on the curve.
    createPublicKey({ key: { ...key }, format: 'jwk' });
  } catch {
    return undefined;
  }
  return key;
}

/** What a device signs to approve or deny a request: every field that makes the answer this one and no other. */
export interface DecisionStatement {
  decision: 'approve' | 'deny';
  challengeId: string;
  /** Names the sign-in flow without giving the flow's handle to the device (`flowBinding`). */
  binding: string;
  /** The number the person typed ('' for a denial: nothing to match). */
  number: string;
  /** The device's clock, epoch ms. */
  time: number;
}

export const decisionMessage = (s: DecisionStatement) => ['steadfast-push-v1', s.decision, s.challengeId, s.binding, s.number, String(s.time)].join('\n');

/** What a device signs to read its pending requests (list or stream): it proves the key, nothing else. */
export const readMessage = (deviceId: string, time: number) => ['steadfast-push-v1', 'read', deviceId, String(time)].join('\n');

/**
 * What a device signs to change its own Web Push subscription (null: none).
 * The keys are signed with the endpoint: a captured request cannot be replayed
 * with keys of someone else's choosing, which would make pushes unreadable.
 */
export const subscriptionMessage = (deviceId: string, subscription: { endpoint: string; keys: { p256dh: string; auth: string } } | null, time: number) =>
  ['steadfast-push-v1', 'subscribe', deviceId, subscription?.endpoint ?? '', subscription?.keys.p256dh ?? '', subscription?.keys.auth ?? '', String(time)].join(
    '\n',
  );

/** The flow as the device knows it: a hash, so the device (or whoever reads its screen) never holds the flow's handle. */
export const flowBinding = (flowId: string) => createHash('sha256').update(`push-flow:${flowId}`).digest('base64url').slice(0, 22);

const keyCache = new WeakMap<DevicePublicKey, KeyObject>();

/**
 * Checks an ECDSA P-256 / SHA-256 signature by the device key. WebCrypto
 * signs in IEEE P1363 form (r || s, 64 bytes), not DER.
 */
export function verifyDeviceSignature(key: DevicePublicKey, message: string, signature: string): boolean {
  if (!/^[A-Za-z0-9_-]{86}$/.test(signature)) return false;
  let publicKey = keyCache.get(key);
  try {
    if (!publicKey) {
      publicKey = createPublicKey({ key: { ...key }, format: 'jwk' });
      keyCache.set(key, publicKey);
    }
    return verify('sha256', Buffer.from(message, 'utf8'), { key: publicKey, dsaEncoding: 'ieee-p1363' }, Buffer.from(signature, 'base64url'));
  } catch {
    return false;
  }
}
