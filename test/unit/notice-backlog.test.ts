import { describe, expect, it } from 'vitest';
import { NoticeBacklog, type Turn } from '../../src/activity/notice-backlog.ts';

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
  it('runs a few at a time, each tenant in arrival order, and passes the turn on after a failure', async () => {
    const backlog = new NoticeBacklog({ inFlight: 2, waiting: 10, waitingPerTenant: 10 });
    const started: string[] = [];
    const works = new Map<string, ReturnType<typeof held>>();
    const run = (tenant: string, name: string) => {
      works.set(name, held());
      return backlog.run(tenant, async () => {
        started.push(name);
        await works.get(name)!.done;
        return name;
      });
    };
    const runs = [run('a', 'a1'), run('a', 'a2'), run('a', 'a3'), run('a', 'a4')];
    await settle();
    expect(started).toEqual(['a1', 'a2']);
    expect(backlog.size).toBe(2);
    works.get('a1')!.fail(new Error('relay down'));
    await expect(runs[0]).rejects.toThrow('relay down');
    await settle();
    expect(started).toEqual(['a1', 'a2', 'a3']);
    works.get('a2')!.finish();
    expect(await runs[1]).toEqual({ ran: true, value: 'a2' });
    await settle();
    expect(started).toEqual(['a1', 'a2', 'a3', 'a4']);
    works.get('a3')!.finish();
    works.get('a4')!.finish();
    await Promise.all(runs.slice(2));
    expect(backlog.size).toBe(0);
    // With nothing running, the next starts at once.
    const next = run('b', 'b1');
    await settle();
    expect(started.at(-1)).toBe('b1');
    works.get('b1')!.finish();
    await next;
  });

  it("lets tenants take turns: another tenant's flood puts one tenant's notice back one turn, not behind the flood", async () => {
    const backlog = new NoticeBacklog({ inFlight: 1, waiting: 100, waitingPerTenant: 100 });
    const order: string[] = [];
    const gate = held();
    const first = backlog.run('flood', async () => {
      await gate.done;
      order.push('flood0');
    });
    const runs: Promise<unknown>[] = [first];
    for (let i = 1; i <= 5; i++) runs.push(backlog.run('flood', async () => void order.push(`flood${i}`)));
    runs.push(backlog.run('quiet', async () => void order.push('quiet')));
    runs.push(backlog.run('flood', async () => void order.push('flood6')));
    gate.finish();
    await Promise.all(runs);
    expect(order).toEqual(['flood0', 'quiet', 'flood1', 'flood2', 'flood3', 'flood4', 'flood5', 'flood6']);
  });

  it("refuses beyond a tenant's part or the whole, without running the work, and leaves room for the others", async () => {
    const backlog = new NoticeBacklog({ inFlight: 1, waiting: 4, waitingPerTenant: 2 });
    const gate = held();
    const ran: string[] = [];
    const job = (name: string) => async () => {
      await gate.done;
      ran.push(name);
    };
    const turns: Promise<Turn<void>>[] = [
      backlog.run('a', job('a0')),
      backlog.run('a', job('a1')),
      backlog.run('a', job('a2')),
      backlog.run('a', job('a3')),
      backlog.run('b', job('b1')),
      backlog.run('b', job('b2')),
      backlog.run('c', job('c1')),
    ];
    await settle();
    gate.finish();
    const outcomes = await Promise.all(turns);
    // a3 found its tenant's part full; c1 found the whole full (a1, a2, b1, b2 waiting).
    expect(outcomes.map((t) => (t.ran ? 'ran' : t.why))).toEqual(['ran', 'ran', 'ran', 'full', 'ran', 'ran', 'full']);
    expect(ran.sort()).toEqual(['a0', 'a1', 'a2', 'b1', 'b2']);
  });

  it('abandons what still waits when closed, says how many, and takes nothing after', async () => {
    const backlog = new NoticeBacklog({ inFlight: 1, waiting: 10, waitingPerTenant: 10 });
    const gate = held();
    const ran: string[] = [];
    const running = backlog.run('a', async () => {
      await gate.done;
      ran.push('running');
    });
    const waiting = [backlog.run('a', async () => void ran.push('w1')), backlog.run('b', async () => void ran.push('w2'))];
    await settle();
    expect(backlog.close()).toBe(2);
    expect(await Promise.all(waiting)).toEqual([
      { ran: false, why: 'closed' },
      { ran: false, why: 'closed' },
    ]);
    expect(await backlog.run('c', async () => void ran.push('late'))).toEqual({ ran: false, why: 'closed' });
    // The one running when it closed finishes.
    gate.finish();
    expect(await running).toEqual({ ran: true, value: undefined });
    expect(ran).toEqual(['running']);
    expect(backlog.size).toBe(0);
  });
});
