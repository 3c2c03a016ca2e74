/** The master key file in the data dir: created with mode 0600 on first start of the embedded default. */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';

export interface LoadedMasterKey {
  key: Buffer;
  /** Set when the key was generated now: the caller warns the operator. */
  generatedAt?: string;
}

/** Decodes a base64 (or base64url) master key, insisting on exactly 32 bytes. */
export function decodeMasterKey(text: string, origin: string): Buffer {
  const trimmed = text.trim();
  if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(trimmed)) throw new Error(`${origin} is not base64`);
  const key = Buffer.from(trimmed, trimmed.includes('-') || trimmed.includes('_') ? 'base64url' : 'base64');
  if (key.length !== 32) throw new Error(`${origin} must decode to 32 bytes, not ${key.length}`);
  return key;
}

/**
 * Reads the master key from the data dir, generating it on first start. The file
 * is created with mode 0600 and exclusively, so two nodes starting together on a
 * shared dir cannot end up with different keys.
 */
export function loadOrCreateMasterKeyFile(dataDir: string): LoadedMasterKey {
  const path = join(dataDir, 'master.key');
  if (existsSync(path)) return { key: decodeMasterKey(readFileSync(path, 'utf8'), path) };
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const key = randomBytes(32);
  try {
    writeFileSync(path, key.toString('base64') + '\n', { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return { key: decodeMasterKey(readFileSync(path, 'utf8'), path) };
    throw err;
  }
  return { key, generatedAt: path };
}

/** The data dir's master key file, if there is one; never creates it (restoring must not invent a key). */
export function readMasterKeyFile(dataDir: string): Buffer | undefined {
  const path = join(dataDir, 'master.key');
  return existsSync(path) ? decodeMasterKey(readFileSync(path, 'utf8'), path) : undefined;
}
