import { createDecipheriv, createECDH, createHmac, createPublicKey, randomBytes, verify } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A message the stand-in received, decrypted, with what its VAPID header proved. */
export interface ReceivedPush {
  endpoint: string;
  ttl: number;
  urgency: string | undefined;
  /** The VAPID JWT verified against the key in the header. */
  vapidValid: boolean;
  /** The `k=` public key the request was signed with (base64url). */
  vapidKey: string;
  vapidClaims: Record<string, unknown>;
  plaintext: string;
}

const hmac = (key: Buffer, data: Buffer) => createHmac('sha256', key).update(data).digest();

/**
 * A push service on loopback, as a browser vendor runs one: it takes Web Push
 * requests (RFC 8030), checks the VAPID signature (RFC 8292), and decrypts
 * the message (RFC 8291, aes128gcm) with the browser's side of the keys, which
 * it made itself when the "browser" subscribed. The decryption is written here
 * from the RFC with node:crypto, independent of the `web-push` library that
 * encrypts it. `status` makes it answer 410 (gone) or 500 instead of 201.
 */
export class PushServiceStandIn {
  readonly received: ReceivedPush[] = [];
  status = 201;
  private readonly browsers = new Map<string, { ecdh: ReturnType<typeof createECDH>; auth: Buffer }>();
  private server!: Server;
  url = '';

  static async start(): Promise<PushServiceStandIn> {
    const standIn = new PushServiceStandIn();
    standIn.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const endpoint = `${standIn.url}${req.url ?? ''}`;
        try {
          const browser = standIn.browsers.get(endpoint);
          if (!browser) return void res.writeHead(404).end();
          if (standIn.status !== 201) return void res.writeHead(standIn.status).end();
          const auth = String(req.headers.authorization ?? '');
          const vapid = checkVapid(auth, new URL(endpoint).origin);
          standIn.received.push({
            endpoint,
            ttl: Number(req.headers.ttl),
            urgency: req.headers.urgency as string | undefined,
            ...vapid,
            plaintext: decrypt(Buffer.concat(chunks), browser.ecdh, browser.auth),
          });
          res.writeHead(201).end();
        } catch {
          res.writeHead(400).end();
        }
      });
    });
    await new Promise<void>((resolve) => standIn.server.listen(0, '127.0.0.1', resolve));
    standIn.url = `http://127.0.0.1:${(standIn.server.address() as AddressInfo).port}`;
    return standIn;
  }

  /** A browser subscribes: its keys, kept here to decrypt what is sent to it. */
  subscribe(): { endpoint: string; keys: { p256dh: string; auth: string } } {
    const ecdh = createECDH('prime256v1');
    ecdh.generateKeys();
    const auth = randomBytes(16);
    const endpoint = `${this.url}/push/${randomBytes(12).toString('base64url')}`;
    this.browsers.set(endpoint, { ecdh, auth });
    return { endpoint, keys: { p256dh: ecdh.getPublicKey().toString('base64url'), auth: auth.toString('base64url') } };
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** RFC 8292: `vapid t=<JWT>, k=<public key>`; the JWT is ES256 by that key, for this push service's origin. */
function checkVapid(header: string, audience: string): { vapidValid: boolean; vapidKey: string; vapidClaims: Record<string, unknown> } {
  const t = /t=([^,\s]+)/.exec(header)?.[1] ?? '';
  const k = /k=([^,\s]+)/.exec(header)?.[1] ?? '';
  const [h, p, s] = t.split('.');
  const point = Buffer.from(k, 'base64url');
  const key = createPublicKey({
    key: { kty: 'EC', crv: 'P-256', x: point.subarray(1, 33).toString('base64url'), y: point.subarray(33, 65).toString('base64url') },
    format: 'jwk',
  });
  const claims = JSON.parse(Buffer.from(p ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
  const signed = verify('sha256', Buffer.from(`${h}.${p}`), { key, dsaEncoding: 'ieee-p1363' }, Buffer.from(s ?? '', 'base64url'));
  const fresh = typeof claims.exp === 'number' && claims.exp * 1000 > Date.now() && claims.exp * 1000 <= Date.now() + 24 * 3600_000;
  return { vapidValid: signed && claims.aud === audience && fresh && typeof claims.sub === 'string', vapidKey: k, vapidClaims: claims };
}

/** RFC 8291 section 3.4 and RFC 8188: one aes128gcm record, decrypted with the user agent's keys. */
function decrypt(body: Buffer, ecdh: ReturnType<typeof createECDH>, authSecret: Buffer): string {
  const salt = body.subarray(0, 16);
  const idLength = body[20]!;
  const senderPublic = body.subarray(21, 21 + idLength);
  const ciphertext = body.subarray(21 + idLength);
  const shared = ecdh.computeSecret(senderPublic);
  const prkKey = hmac(authSecret, shared);
  const keyInfo = Buffer.concat([Buffer.from('WebPush: info\0'), ecdh.getPublicKey(), senderPublic]);
  const ikm = hmac(prkKey, Buffer.concat([keyInfo, Buffer.from([1])]));
  const prk = hmac(salt, ikm);
  const cek = hmac(prk, Buffer.from('Content-Encoding: aes128gcm\0\x01', 'binary')).subarray(0, 16);
  const nonce = hmac(prk, Buffer.from('Content-Encoding: nonce\0\x01', 'binary')).subarray(0, 12);
  const decipher = createDecipheriv('aes-128-gcm', cek, nonce);
  decipher.setAuthTag(ciphertext.subarray(ciphertext.length - 16));
  const padded = Buffer.concat([decipher.update(ciphertext.subarray(0, ciphertext.length - 16)), decipher.final()]);
  // The last record ends with the delimiter 0x02, then zero padding.
  let end = padded.length - 1;
  while (end >= 0 && padded[end] === 0) end--;
  if (padded[end] !== 2) throw new Error('no last-record delimiter');
  return padded.subarray(0, end).toString('utf8');
}
