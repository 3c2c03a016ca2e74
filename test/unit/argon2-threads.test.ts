import { readFileSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Argon2Threads, BULK_HASHING_NICE, HASHING_NICE } from '../../src/directory/argon2-threads.ts';

/** The nice value of each thread of this process (Linux: per thread). */
function niceByThread(): number[] {
  return readdirSync('/proc/self/task').map((tid) => Number(readFileSync(`/proc/self/task/${tid}/stat`, 'utf8').split(') ')[1]!.split(' ')[16]));
}

const PARAMS = { memoryCost: 4096, timeCost: 1, parallelism: 1, algorithm: 2 };

describe('Argon2 hashing threads', () => {
  it('hash and verify on threads of their own, below the priority of the event loop', async () => {
    const before = niceByThread().filter((n) => n === HASHING_NICE).length;
    const threads = new Argon2Threads(2);
    const [a, b] = await Promise.all([threads.hash('one', PARAMS), threads.hash('two', PARAMS)]);
    expect(a).toMatch(/^\$argon2id\$v=19\$m=4096,t=1,p=1\$/);
    expect(await threads.verify(a!, 'one')).toBe(true);
    expect(await threads.verify(b!, 'one')).toBe(false);
    // Two new threads at the lower priority; the process's main thread is untouched.
    expect(niceByThread().filter((n) => n === HASHING_NICE).length).toBe(before + 2);
    expect(Number(readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ')[16])).toBe(0);
  });

  it("runs bulk hashes (a surging tenant's) on threads of their own, lower still", async () => {
    const before = niceByThread();
    const threads = new Argon2Threads(1);
    const [prompt, bulk] = await Promise.all([threads.hash('one', PARAMS, 'prompt'), threads.hash('two', PARAMS, 'bulk')]);
    expect(await threads.verify(bulk!, 'two', 'bulk')).toBe(true);
    expect(await threads.verify(prompt!, 'one', 'prompt')).toBe(true);
    const after = niceByThread();
    expect(BULK_HASHING_NICE).toBeGreaterThan(HASHING_NICE);
    // One thread of each, though one of each size: a prompt hash never waits for a bulk thread to free.
    expect(after.filter((n) => n === BULK_HASHING_NICE).length).toBe(before.filter((n) => n === BULK_HASHING_NICE).length + 1);
    expect(after.filter((n) => n === HASHING_NICE).length).toBe(before.filter((n) => n === HASHING_NICE).length + 1);
  });

  it('starts all its threads ahead of the first hash when told, so no hash waits for a thread to start', async () => {
    const before = niceByThread();
    const threads = new Argon2Threads(2);
    await threads.prestart();
    const started = niceByThread();
    expect(started.filter((n) => n === HASHING_NICE).length).toBe(before.filter((n) => n === HASHING_NICE).length + 2);
    expect(started.filter((n) => n === BULK_HASHING_NICE).length).toBe(before.filter((n) => n === BULK_HASHING_NICE).length + 2);
    // As many hashes at once as it has threads, of both priorities: no thread more.
    const hashes = await Promise.all([
      threads.hash('a', PARAMS, 'prompt'),
      threads.hash('b', PARAMS, 'prompt'),
      threads.hash('c', PARAMS, 'bulk'),
      threads.hash('d', PARAMS, 'bulk'),
    ]);
    expect(await threads.verify(hashes[2]!, 'c', 'bulk')).toBe(true);
    expect(niceByThread().length).toBe(started.length);
    // Once started, it starts nothing more.
    await threads.prestart();
    expect(niceByThread().length).toBe(started.length);
  });

  it('queues jobs beyond its size, and reports a bad hash as an error, not a crash', async () => {
    const threads = new Argon2Threads(1);
    const results = await Promise.all(Array.from({ length: 4 }, (_, i) => threads.hash(`pw${i}`, PARAMS)));
    expect(new Set(results).size).toBe(4);
    await expect(threads.verify('not a hash', 'pw')).rejects.toThrow();
    await expect(threads.verify(results[0]!, 'pw0')).resolves.toBe(true);
  });
});
