import { randomBytes } from 'node:crypto';
import { mkdtempSync, statSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { KeyRing } from '../../src/crypto/key-ring.ts';
import { loadOrCreateMasterKeyFile, decodeMasterKey } from '../../src/crypto/master-key-file.ts';

describe('key ring', () => {
  const ring = new KeyRing(randomBytes(32));

  it('seals and opens, with a fresh data key and IV each time', () => {
    const a = ring.seal('JBSWY3DPEHPK3PXP', 'totp-secret:1');
    const b = ring.seal('JBSWY3DPEHPK3PXP', 'totp-secret:1');
    expect(a).not.toBe(b);
    expect(a).not.toContain('JBSWY3DPEHPK3PXP');
    expect(ring.open(a, 'totp-secret:1').toString()).toBe('JBSWY3DPEHPK3PXP');
  });

  it('seals a large value off the event loop in the same envelope: head and body in base64url open as a sealed value', async () => {
    const image = randomBytes(3 * 1024 * 1024 + 5);
    const { head, body } = await ring.sealLarge(image, 'fallback-snapshot:v1');
    expect(head.split('.')).toHaveLength(5);
    expect(body.length).toBe(image.length + 16);
    expect(body.includes(image.subarray(0, 64))).toBe(false);
    const sealed = `${head}.${body.toString('base64url')}`;
    expect(ring.open(sealed, 'fallback-snapshot:v1').equals(image)).toBe(true);
    expect(() => ring.open(sealed, 'fallback-snapshot:v2')).toThrow();
    const tampered = Buffer.from(body);
    tampered[1000] = tampered[1000]! ^ 1;
    expect(() => ring.open(`${head}.${tampered.toString('base64url')}`, 'fallback-snapshot:v1')).toThrow();
    const again = await ring.sealLarge(image, 'fallback-snapshot:v1');
    expect(again.head).not.toBe(head);
  });

  it('refuses a value moved to another context (row or purpose)', () => {
    const sealed = ring.seal('secret', 'totp-secret:1');
    expect(() => ring.open(sealed, 'totp-secret:2')).toThrow();
  });

  it('refuses any tampered byte', () => {
    const sealed = ring.seal('secret', 'ctx');
    const parts = sealed.split('.');
    for (const index of [3, 5]) {
      const bytes = Buffer.from(parts[index]!, 'base64url');
      bytes[0] = bytes[0]! ^ 1;
      const tampered = [...parts];
      tampered[index] = bytes.toString('base64url');
      expect(() => ring.open(tampered.join('.'), 'ctx')).toThrow();
    }
  });

  it('rotates: values sealed under a previous key still open and are flagged for rewrap', () => {
    const oldKey = randomBytes(32);
    const sealedOld = new KeyRing(oldKey).seal('secret', 'ctx');
    const rotated = new KeyRing(randomBytes(32), [oldKey]);
    expect(rotated.open(sealedOld, 'ctx').toString()).toBe('secret');
    expect(rotated.needsRewrap(sealedOld)).toBe(true);
    expect(rotated.needsRewrap(rotated.seal('secret', 'ctx'))).toBe(false);
    expect(() => new KeyRing(randomBytes(32)).open(sealedOld, 'ctx')).toThrow(/not in the key ring/);
  });

  it('derives distinct purpose keys', () => {
    expect(ring.deriveKey('a').equals(ring.deriveKey('b'))).toBe(false);
    expect(ring.deriveKey('a').equals(ring.deriveKey('a'))).toBe(true);
  });

  it('derives a purpose key for a named key of the ring, old or active, and for no other', () => {
    const oldKey = randomBytes(32);
    const old = new KeyRing(oldKey);
    const rotated = new KeyRing(randomBytes(32), [oldKey]);
    expect(rotated.keyIds).toEqual([rotated.active.id, old.active.id]);
    expect(rotated.deriveKeyFor(old.active.id, 'audit-chain')!.equals(old.deriveKey('audit-chain'))).toBe(true);
    expect(rotated.deriveKeyFor(rotated.active.id, 'audit-chain')!.equals(rotated.deriveKey('audit-chain'))).toBe(true);
    expect(rotated.deriveKeyFor(old.active.id, 'audit-chain')!.equals(rotated.deriveKey('audit-chain'))).toBe(false);
    expect(new KeyRing(randomBytes(32)).deriveKeyFor(old.active.id, 'audit-chain')).toBeUndefined();
  });

  it('generates the master key file once, mode 0600', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sf-key-'));
    const first = loadOrCreateMasterKeyFile(dir);
    expect(first.generatedAt).toBeDefined();
    expect(statSync(join(dir, 'master.key')).mode & 0o777).toBe(0o600);
    const second = loadOrCreateMasterKeyFile(dir);
    expect(second.generatedAt).toBeUndefined();
    expect(second.key.equals(first.key)).toBe(true);
    expect(decodeMasterKey(readFileSync(join(dir, 'master.key'), 'utf8'), 'file').equals(first.key)).toBe(true);
  });

  it('rejects master keys that are not 32 bytes of base64', () => {
    expect(() => decodeMasterKey('short', 'K')).toThrow(/32 bytes/);
    expect(() => decodeMasterKey('not base64!', 'K')).toThrow(/base64/);
  });
});
