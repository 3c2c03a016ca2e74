/** Randomness: ids, tokens and digits from the CSPRNG, without modulo bias. */
import { randomBytes, randomInt, randomUUID } from 'node:crypto';

// Tokens are drawn from a pool filled by the CSPRNG in one call: a
// randomBytes() call per token costs more than the rest of making it. Each
// byte is handed out once (Node's randomUUID works the same way).
const POOL_BYTES = 8192;
let pool = Buffer.alloc(0);
let poolOffset = 0;

function poolBytes(count: number): Buffer {
  if (count > POOL_BYTES) return randomBytes(count);
  if (poolOffset + count > pool.length) {
    pool = randomBytes(POOL_BYTES);
    poolOffset = 0;
  }
  const out = pool.subarray(poolOffset, poolOffset + count);
  poolOffset += count;
  return out;
}

/** An opaque identifier or token with `bytes` bytes of entropy, base64url encoded. */
export function randomToken(bytes = 32): string {
  return poolBytes(bytes).toString('base64url');
}

/** A numeric code of `digits` digits from the CSPRNG, leading zeros kept. */
export function randomDigits(digits: number): string {
  let out = '';
  for (let i = 0; i < digits; i++) out += String(randomInt(10));
  return out;
}

// Crockford's base32 alphabet: no I, L, O, U, so codes read aloud or copied by hand survive.
const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

export function randomBase32(length: number): string {
  let out = '';
  for (let i = 0; i < length; i++) out += CROCKFORD[randomInt(32)];
  return out;
}

/** Normalises user-typed base32 (Crockford): case, separators and look-alike letters. */
export function normaliseBase32(input: string): string {
  return input.toUpperCase().replace(/[\s-]/g, '').replace(/[IL]/g, '1').replace(/O/g, '0');
}

export function newId(): string {
  return randomUUID();
}

let lastMs = -1;
let sequence = 0;

/**
 * An id that sorts by creation time (48-bit milliseconds, then a per-process
 * sequence, then 64 random bits), so records made in the same millisecond
 * still list in the order they were made.
 */
export function newSortableId(nowMs: number): string {
  if (nowMs === lastMs) sequence = (sequence + 1) & 0xffff;
  else {
    lastMs = nowMs;
    sequence = 0;
  }
  return nowMs.toString(16).padStart(12, '0') + sequence.toString(16).padStart(4, '0') + poolBytes(8).toString('hex');
}
