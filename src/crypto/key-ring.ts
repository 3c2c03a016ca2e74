/** The key ring: master keys by id, AES-256-GCM envelopes bound to their context, HKDF subkeys. */
import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes, webcrypto } from 'node:crypto';

/**
 * The key ring holds the master keys. Data is sealed with envelope encryption:
 * every value gets its own random data key (AES-256-GCM), and that data key is
 * wrapped with the active master key. Rotating the master key therefore only
 * needs the small wrapped keys rewritten, and older master keys stay in the
 * ring for reading until every value has been rewrapped.
 *
 * Sealed format (all base64url, dot separated):
 *   v1.<keyId>.<wrapIv>.<wrappedDataKey+tag>.<dataIv>.<ciphertext+tag>
 *
 * The caller's `context` (for example "totp-secret:<credentialId>") is bound as
 * additional authenticated data, so a sealed value copied into another row or
 * purpose fails to open instead of being used out of place.
 */
export interface MasterKey {
  id: string;
  key: Buffer;
}

const VERSION = 'v1';
const IV_BYTES = 12;
const TAG_BYTES = 16;

export class KeyRing {
  readonly active: MasterKey;
  private readonly byId: Map<string, MasterKey>;

  constructor(active: Buffer, previous: Buffer[] = []) {
    this.active = toMasterKey(active);
    this.byId = new Map([this.active, ...previous.map(toMasterKey)].map((k) => [k.id, k]));
  }

  seal(plaintext: Buffer | string, context: string): string {
    const dataKey = randomBytes(32);
    const wrapIv = randomBytes(IV_BYTES);
    const wrapped = gcmEncrypt(this.active.key, wrapIv, dataKey, `wrap:${this.active.id}`);
    const dataIv = randomBytes(IV_BYTES);
    const body = gcmEncrypt(dataKey, dataIv, Buffer.from(plaintext), context);
    dataKey.fill(0);
    return [VERSION, this.active.id, b64(wrapIv), b64(wrapped), b64(dataIv), b64(body)].join('.');
  }

  /**
   * `seal` for a large value (the fallback snapshot, megabytes), without
   * holding the event loop: the same envelope, its body encrypted on libuv's
   * thread pool (WebCrypto's AES-GCM gives the same ciphertext and tag) and
   * left as bytes, since base64 of megabytes is itself a long block.
   * `${head}.${body in base64url}` is exactly what `seal` returns; `open` opens it.
   */
  async sealLarge(plaintext: Buffer, context: string): Promise<{ head: string; body: Buffer }> {
    const dataKey = randomBytes(32);
    const wrapIv = randomBytes(IV_BYTES);
    const wrapped = gcmEncrypt(this.active.key, wrapIv, dataKey, `wrap:${this.active.id}`);
    const dataIv = randomBytes(IV_BYTES);
    try {
      const key = await webcrypto.subtle.importKey('raw', dataKey, 'AES-GCM', false, ['encrypt']);
      const body = await webcrypto.subtle.encrypt(
        { name: 'AES-GCM', iv: dataIv, additionalData: Buffer.from(context), tagLength: TAG_BYTES * 8 },
        key,
        plaintext,
      );
      return { head: [VERSION, this.active.id, b64(wrapIv), b64(wrapped), b64(dataIv)].join('.'), body: Buffer.from(body) };
    } finally {
      dataKey.fill(0);
    }
  }

  open(sealed: string, context: string): Buffer {
    const parts = sealed.split('.');
    if (parts.length !== 6 || parts[0] !== VERSION) throw new Error('sealed value has an unknown format');
    const [, keyId, wrapIv, wrapped, dataIv, body] = parts as [string, string, string, string, string, string];
    const master = this.byId.get(keyId);
    if (!master) throw new Error(`sealed with master key ${keyId}, which is not in the key ring`);
    const dataKey = gcmDecrypt(master.key, unb64(wrapIv), unb64(wrapped), `wrap:${keyId}`);
    try {
      return gcmDecrypt(dataKey, unb64(dataIv), unb64(body), context);
    } finally {
      dataKey.fill(0);
    }
  }

  /** True when the value was sealed under a master key other than the active one. */
  needsRewrap(sealed: string): boolean {
    return sealed.split('.')[1] !== this.active.id;
  }

  /** A purpose-specific subkey derived from the active master key (HKDF-SHA256). */
  deriveKey(purpose: string): Buffer {
    return derive(this.active.key, purpose);
  }

  /**
   * The same subkey derived from the master key with this id, or undefined
   * when that key is not in the ring. Values keyed (not sealed) under an older
   * master key, such as the audit chain's MACs, name the key they used and are
   * checked with it.
   */
  deriveKeyFor(keyId: string, purpose: string): Buffer | undefined {
    const master = this.byId.get(keyId);
    return master && derive(master.key, purpose);
  }

  /** The ids of every master key in the ring, the active one first. */
  get keyIds(): string[] {
    return [...this.byId.keys()];
  }
}

function derive(key: Buffer, purpose: string): Buffer {
  return Buffer.from(hkdfSync('sha256', key, Buffer.alloc(0), `steadfast:${purpose}`, 32));
}

function toMasterKey(key: Buffer): MasterKey {
  if (key.length !== 32) throw new Error('a master key must be exactly 32 bytes');
  // The id names the key without revealing it: a truncated hash of a derived value.
  const id = createHash('sha256').update('steadfast-key-id').update(key).digest('hex').slice(0, 12);
  return { id, key };
}

function gcmEncrypt(key: Buffer, iv: Buffer, plaintext: Buffer, aad: string): Buffer {
  const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(Buffer.from(aad));
  return Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
}

function gcmDecrypt(key: Buffer, iv: Buffer, sealed: Buffer, aad: string): Buffer {
  if (sealed.length < TAG_BYTES) throw new Error('sealed value is truncated');
  const decipher = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
  decipher.setAAD(Buffer.from(aad));
  decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
  return Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - TAG_BYTES)), decipher.final()]);
}

const b64 = (b: Buffer) => b.toString('base64url');
const unb64 = (s: string) => Buffer.from(s, 'base64url');
