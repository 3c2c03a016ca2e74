import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { AdmissionController, type Release } from '../../src/admission/admission-controller.ts';

describe('admission controller', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  const settled = async <T>(p: Promise<T>) => {
    let state: 'pending' | 'admitted' | 'refused' = 'pending';
    p.then(
      () => (state = 'admitted'),
      () => (state = 'refused'),
    );
    await vi.advanceTimersByTimeAsync(0);
    return () => state;
  };

  it('admits up to the limit, queues, and admits the queue as slots free', async () => {
    const shed: string[] = [];
    const ac = new AdmissionController({ limit: 2, queueLimit: 2, maxWaitMs: 1000 }, { shed: (cls, _t, why) => shed.push(`${cls}:${why}`) });
    const a = await ac.admit('start-signin', 't');
    await ac.admit('start-signin', 't');
    const waiting = ac.admit('start-signin', 't');
    const state = await settled(waiting);
    expect(state()).toBe('pending');
    expect(ac.state).toEqual({ inFlight: 2, queued: 1, limit: 2 });
    a();
    a(); // releasing twice gives back one slot only
    await vi.advanceTimersByTimeAsync(0);
    expect(state()).toBe('admitted');
    expect(ac.state).toEqual({ inFlight: 2, queued: 0, limit: 2 });
    expect(shed).toEqual([]);
  });

  it('refuses at once with a 503 and Retry-After when the queue is full', async () => {
    const ac = new AdmissionController({ limit: 1, queueLimit: 1, maxWaitMs: 1000 });
    await ac.admit('self-service', 't');
    void ac.admit('self-service', 't').catch(() => {});
    await expect(ac.admit('self-service', 't')).rejects.toMatchObject({ code: 'unavailable', status: 503, retryAfter: 1 });
  });

  it('makes room for a more important request by refusing the least important waiter', async () => {
    const ac = new AdmissionController({ limit: 1, queueLimit: 2, maxWaitMs: 1000 });
    const held = await ac.admit('admin', 't');
    const report = await settled(ac.admit('admin', 't'));
    const start = await settled(ac.admit('start-signin', 't'));
    const finish = ac.admit('finish-signin', 't');
    await vi.advanceTimersByTimeAsync(0);
    expect(report()).toBe('refused');
    expect(start()).toBe('pending');
    held();
    // The sign-in being finished goes first, ahead of the one that was waiting longer.
    await expect(finish).resolves.toBeTypeOf('function');
    expect(start()).toBe('pending');
  });

  it('never refuses a more important request for a less important one', async () => {
    const ac = new AdmissionController({ limit: 1, queueLimit: 1, maxWaitMs: 1000 });
    await ac.admit('finish-signin', 't');
    void ac.admit('finish-signin', 't').catch(() => {});
    await expect(ac.admit('admin', 't')).rejects.toMatchObject({ status: 503 });
  });

  it('refuses a request that waited too long, and drops one whose client left', async () => {
    const ac = new AdmissionController({ limit: 1, queueLimit: 5, maxWaitMs: 500 });
    const held = await ac.admit('start-signin', 't');
    const late = await settled(ac.admit('start-signin', 't'));
    const gone = new AbortController();
    const left = await settled(ac.admit('start-signin', 't', gone.signal));
    gone.abort();
    await vi.advanceTimersByTimeAsync(0);
    expect(left()).toBe('refused');
    expect(ac.state.queued).toBe(1);
    await vi.advanceTimersByTimeAsync(500);
    expect(late()).toBe('refused');
    expect(ac.state).toEqual({ inFlight: 1, queued: 0, limit: 1 });
    held();
    expect(ac.state.inFlight).toBe(0);
  });

  it('lets tenants take turns within a class, so a surge cannot crowd the others out', async () => {
    const ac = new AdmissionController({ limit: 1, queueLimit: 100, maxWaitMs: 10_000 });
    let held: Release = await ac.admit('start-signin', 'busy');
    const order: string[] = [];
    const queue = (tenant: string) =>
      ac.admit('start-signin', tenant).then((release) => {
        order.push(tenant);
        held = release;
      });
    const all = [...Array.from({ length: 6 }, () => queue('busy')), queue('quiet'), queue('quiet')];
    for (let i = 0; i < 8; i++) {
      held();
      await vi.advanceTimersByTimeAsync(0);
    }
    await Promise.all(all);
    expect(order.slice(0, 4)).toEqual(['busy', 'quiet', 'busy', 'quiet']);
  });

  it('never holds back operations requests', async () => {
    const ac = new AdmissionController({ limit: 1, queueLimit: 0, maxWaitMs: 10 });
    await ac.admit('finish-signin', 't');
    await expect(ac.admit('ops', 't')).resolves.toBeTypeOf('function');
  });
});
