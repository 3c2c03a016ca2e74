import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { KeyRing } from '../../src/crypto/key-ring.ts';

// Every flush of the journal's write-ahead log, held until the test lets it finish.
const flushes = vi.hoisted(() => [] as { done: (error: Error | null) => void }[]);
vi.mock('node:fs', async (original) => {
  const fs = await original<typeof import('node:fs')>();
  return {
    ...fs,
    fdatasync: (fd: number, callback: (error: Error | null) => void) =>
      flushes.push({
        done: (error) => {
          fs.fdatasyncSync(fd);
          callback(error);
        },
      }),
  };
});
const { OutageJournal } = await import('../../src/store/fallback/outage-journal.ts');

const dir = mkdtempSync(join(tmpdir(), 'steadfast-journal-'));
const ring = new KeyRing(randomBytes(32));
const entry = (n: number) => ({ kind: 'sql' as const, sql: 'insert into t (n) values ($1)', parameters: [n] });
const settled = async (promise: Promise<void>) => {
  let done = false;
  void promise.then(() => (done = true));
  await new Promise((resolve) => setImmediate(resolve));
  return done;
};

describe('the outage journal', () => {
  beforeEach(() => void flushes.splice(0));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('answers an append only after a flush that began after it, and flushes once for every append made during a flush', async () => {
    const journal = new OutageJournal(join(dir, 'group.db'), ring, 'node-a');
    const first = journal.append(1, [entry(1)]);
    expect(flushes).toHaveLength(1);
    // Made while the first flush is under way: it may not cover them.
    const during = Array.from({ length: 20 }, (_, i) => journal.append(2, [entry(i + 2)]));
    expect(flushes).toHaveLength(1);
    expect(await settled(first)).toBe(false);

    flushes[0]!.done(null);
    expect(await settled(first)).toBe(true);
    expect(await settled(during[0]!)).toBe(false);
    // One more flush for all twenty.
    expect(flushes).toHaveLength(2);
    flushes[1]!.done(null);
    for (const append of during) expect(await settled(append)).toBe(true);
    expect(flushes).toHaveLength(2);
    await journal.close();

    // All there, in order, after the file is opened again.
    const reopened = new OutageJournal(join(dir, 'group.db'), ring, 'node-a');
    expect(reopened.head(100).map((e) => e.payload)).toEqual(Array.from({ length: 21 }, (_, i) => entry(i + 1)));
    await reopened.close();
  });

  it('fails the appends a failed flush was to carry', async () => {
    const journal = new OutageJournal(join(dir, 'failed.db'), ring, 'node-a');
    const append = journal.append(1, [entry(1)]);
    const outcome = append.then(
      () => 'on disk',
      (error: Error) => error.message,
    );
    flushes[0]!.done(new Error('EIO: i/o error'));
    expect(await outcome).toBe('EIO: i/o error');
    // The next append is flushed afresh.
    const next = journal.append(2, [entry(2)]);
    flushes[1]!.done(null);
    await next;
    await journal.close();
  });
});
