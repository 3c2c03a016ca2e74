import { describe, expect, it } from 'vitest';
import { NoticeBacklog } from '../../src/activity/notice-backlog.ts';

/** A piece of work the test lets finish when it chooses. */
function held() {
  let finish!: () => void;
  let fail!: (err: Error) => void;
  const done = new Promise<void>((resolve, reject) => {
    finish = resolve;
    fail = reject;
  });
  return { done, finish, fail };
}
const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('notice backlog', () => {
  it('runs a few at a time in arrival order, and refuses beyond its limit without running the work', async () => {
    const backlog = new NoticeBacklog(2, 2);
    const started: number[] = [];
    const works = [0, 1, 2, 3, 4].map(() => held());
    const runs = works.map((w, i) =>
      backlog.run(async () => {
        started.push(i);
        await w.done;
        return i;
      }),
    );
    await settle();
    expect(started).toEqual([0, 1]);
    expect(backlog.size).toBe(2);
    // The fifth found the backlog full.
    expect(await runs[4]).toBeUndefined();

    works[1]!.finish();
    expect(await runs[1]).toBe(1);
    await settle();
    expect(started).toEqual([0, 1, 2]);
    // A failure passes the turn on too.
    works[0]!.fail(new Error('relay down'));
    await expect(runs[0]).rejects.toThrow('relay down');
    await settle();
    expect(started).toEqual([0, 1, 2, 3]);
    expect(backlog.size).toBe(0);
    works[2]!.finish();
    works[3]!.finish();
    expect(await Promise.all(runs.slice(2, 4))).toEqual([2, 3]);

    // With everything done, the next starts at once.
    const next = held();
    const run = backlog.run(async () => {
      started.push(5);
      await next.done;
    });
    await settle();
    expect(started.at(-1)).toBe(5);
    next.finish();
    await run;
  });
});
