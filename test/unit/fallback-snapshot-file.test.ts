import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { KeyRing } from '../../src/crypto/key-ring.ts';
import { FallbackSnapshot } from '../../src/store/fallback/fallback-snapshot.ts';

const dir = mkdtempSync(join(tmpdir(), 'steadfast-snapshot-'));
const ring = new KeyRing(randomBytes(32));

async function snapshotWithUser(username: string): Promise<FallbackSnapshot> {
  const snapshot = await FallbackSnapshot.create();
  snapshot.sqlite
    .prepare('insert into users (id, tenant_id, username, password_hash, status, must_register, created_at, updated_at) values (?, ?, ?, ?, ?, ?, ?, ?)')
    .run('u1', 't1', username, '$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA', 'active', 0, 1, 1);
  snapshot.syncedAt = 1234;
  snapshot.touched();
  return snapshot;
}

const usernames = (snapshot: FallbackSnapshot) =>
  (snapshot.sqlite.prepare('select username from users').all() as { username: string }[]).map((r) => r.username);

describe('the fallback snapshot file', () => {
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('is sealed (nothing in clear), opens again with its time, and only with the key ring', async () => {
    const file = join(dir, 'round-trip.sealed');
    const snapshot = await snapshotWithUser('olive');
    expect(await snapshot.save(file, ring)).toBe(true);
    // Nothing changed since: nothing written.
    expect(await snapshot.save(file, ring)).toBe(false);
    const raw = readFileSync(file);
    expect(raw.includes('olive')).toBe(false);
    expect(raw.includes('$argon2')).toBe(false);

    const restored = (await FallbackSnapshot.restore(file, ring))!;
    expect(restored.syncedAt).toBe(1234);
    expect(usernames(restored)).toEqual(['olive']);
    expect(await FallbackSnapshot.restore(file, new KeyRing(randomBytes(32)))).toBeUndefined();
    await Promise.all([snapshot.close(), restored.close()]);
  });

  it('saves one after another, the last state last', async () => {
    const file = join(dir, 'in-turn.sealed');
    const snapshot = await snapshotWithUser('rick');
    const first = snapshot.save(file, ring);
    snapshot.sqlite.prepare("update users set username = 'rick2'").run();
    snapshot.touched();
    const second = snapshot.save(file, ring);
    // The second waits for the first; whatever the first took, the file ends with the last state.
    expect((await Promise.all([first, second]))[0]).toBe(true);
    const restored = (await FallbackSnapshot.restore(file, ring))!;
    expect(usernames(restored)).toEqual(['rick2']);
    await Promise.all([snapshot.close(), restored.close()]);
  });

  it('opens a file an earlier release wrote (one JSON object with the whole sealed value)', async () => {
    const file = join(dir, 'earlier.sealed');
    const snapshot = await snapshotWithUser('dora');
    writeFileSync(file, JSON.stringify({ syncedAt: 99, data: ring.seal(snapshot.sqlite.serialize(), 'fallback-snapshot:v1') }));
    const restored = (await FallbackSnapshot.restore(file, ring))!;
    expect(restored.syncedAt).toBe(99);
    expect(usernames(restored)).toEqual(['dora']);
    await Promise.all([snapshot.close(), restored.close()]);
  });
});
