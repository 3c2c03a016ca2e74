import { describe, expect, it } from 'vitest';
import { PasswordHasher, ARGON2_PARAMS } from '../../src/directory/password-hasher.ts';

describe('password hasher', () => {
  const hasher = new PasswordHasher();

  it('hashes with Argon2id at the configured parameters and verifies', async () => {
    const hash = await hasher.hash('correct horse');
    expect(hash).toMatch(new RegExp(`^\\$argon2id\\$v=19\\$m=${ARGON2_PARAMS.memoryCost},t=${ARGON2_PARAMS.timeCost},p=${ARGON2_PARAMS.parallelism}\\$`));
    expect(await hasher.verify(hash, 'correct horse')).toBe(true);
    expect(await hasher.verify(hash, 'correct horsE')).toBe(false);
    expect(hasher.needsRehash(hash)).toBe(false);
  });

  it('asks for a rehash when the parameters changed, and treats garbage as a mismatch', async () => {
    const weak = new PasswordHasher({ params: { memoryCost: 4096, timeCost: 1, parallelism: 1 } });
    const old = await weak.hash('pw');
    expect(hasher.needsRehash(old)).toBe(true);
    expect(await hasher.verify(old, 'pw')).toBe(true);
    expect(await hasher.verify('not a hash', 'pw')).toBe(false);
    expect(hasher.needsRehash('$2b$10$bcrypt')).toBe(true);
  });

  it('drops work whose client has gone or whose deadline passed before it started', async () => {
    const limited = new PasswordHasher({ concurrency: 1, params: { memoryCost: 4096, timeCost: 1, parallelism: 1 } });
    const hash = await limited.hash('pw');
    const gone = new AbortController();
    const first = limited.verify(hash, 'pw');
    const abandoned = limited.verify(hash, 'pw', { signal: gone.signal });
    const late = limited.verify(hash, 'pw', { deadline: Date.now() - 1 });
    gone.abort();
    await expect(first).resolves.toBe(true);
    await expect(abandoned).rejects.toMatchObject({ code: 'unavailable', retryAfter: 1 });
    await expect(late).rejects.toMatchObject({ code: 'unavailable' });
    await expect(limited.verify(hash, 'pw', { signal: new AbortController().signal, deadline: Date.now() + 60_000 })).resolves.toBe(true);
  });

  it('runs no more hashes at once than allowed', async () => {
    const limited = new PasswordHasher({ concurrency: 1, params: { memoryCost: 4096, timeCost: 1, parallelism: 1 } });
    const work = Array.from({ length: 4 }, (_, i) => limited.hash(`pw${i}`));
    expect(limited.pending).toBe(4);
    await Promise.all(work);
    expect(limited.pending).toBe(0);
  });
});
