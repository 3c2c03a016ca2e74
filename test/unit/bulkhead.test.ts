import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Bulkhead, type Release, type ShedReason } from '../../src/admission/bulkhead.ts';
import type { WorkClass } from '../../src/admission/admission-class.ts';

/** The outcome of an acquire, readable once pending promises have run. */
async function track(p: Promise<Release>) {
  let state: 'pending' | 'admitted' | 'refused' = 'pending';
  let release: Release = () => {};
  p.then(
    (r) => {
      state = 'admitted';
      release = r;
    },
    () => (state = 'refused'),
  );
  await vi.advanceTimersByTimeAsync(0);
  return { state: () => state, release: () => release() };
}

describe('bulkhead (the fair, prioritised queue behind every lane and the hashing pool)', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  const shedLog = () => {
    const shed: string[] = [];
    return { shed, events: { shed: (cls: WorkClass, tenant: string, why: ShedReason) => shed.push(`${cls}/${tenant}:${why}`) } };
  };

  it('runs up to the limit, queues the rest, and starts them as slots free', async () => {
    const bh = new Bulkhead({ limit: 2, queueLimit: 2, maxWaitMs: 1000 });
    const a = await bh.acquire('start-signin', 't');
    await bh.acquire('start-signin', 't');
    const waiting = await track(bh.acquire('start-signin', 't'));
    expect(waiting.state()).toBe('pending');
    expect(bh.state).toEqual({ running: 2, queued: 1, limit: 2 });
    a();
    a(); // giving back twice frees one slot only
    await vi.advanceTimersByTimeAsync(0);
    expect(waiting.state()).toBe('admitted');
    expect(bh.state).toEqual({ running: 2, queued: 0, limit: 2 });
  });

  it('serves the most important class first, and lets tenants of one rank take turns', async () => {
    const bh = new Bulkhead({ limit: 1, queueLimit: 100, maxWaitMs: 60_000 });
    let held = await bh.acquire('start-signin', 'busy');
    const order: string[] = [];
    const queue = (cls: WorkClass, tenant: string) =>
      bh.acquire(cls, tenant).then((release) => {
        order.push(`${cls}/${tenant}`);
        held = release;
      });
    const all = [
      ...Array.from({ length: 4 }, () => queue('start-signin', 'busy')),
      queue('admin', 'quiet'),
      queue('start-signin', 'quiet'),
      queue('start-signin', 'quiet'),
      queue('finish-signin', 'busy'),
      queue('finish-registration', 'quiet'),
    ];
    for (let i = 0; i < all.length; i++) {
      held();
      await vi.advanceTimersByTimeAsync(0);
    }
    await Promise.all(all);
    expect(order).toEqual([
      // Equal rank: the two finishing classes take turns by tenant, in arrival order of the tenants.
      'finish-signin/busy',
      'finish-registration/quiet',
      // The surge tenant gets one turn in two while the quiet one has work.
      'start-signin/busy',
      'start-signin/quiet',
      'start-signin/busy',
      'start-signin/quiet',
      'start-signin/busy',
      'start-signin/busy',
      'admin/quiet',
    ]);
  });

  it('when full, refuses the newest waiter of a lower class to make room, never a more important one', async () => {
    const { shed, events } = shedLog();
    const bh = new Bulkhead({ limit: 1, queueLimit: 2, maxWaitMs: 60_000 }, events);
    const held = await bh.acquire('admin', 't');
    const older = await track(bh.acquire('admin', 't'));
    const newer = await track(bh.acquire('admin', 't'));
    const finish = await track(bh.acquire('finish-signin', 't'));
    expect(newer.state()).toBe('refused');
    expect(older.state()).toBe('pending');
    expect(finish.state()).toBe('pending');
    // Now the queue holds a finish and an admin: another admin finds no one less important.
    const another = await track(bh.acquire('admin', 't'));
    expect(another.state()).toBe('refused');
    expect(shed).toEqual(['admin/t:evicted', 'admin/t:queue-full']);
    held();
    await vi.advanceTimersByTimeAsync(0);
    expect(finish.state()).toBe('admitted');
  });

  it("when full, makes room for a tenant with less waiting by refusing the surging tenant's newest, not the other way round", async () => {
    const { shed, events } = shedLog();
    const bh = new Bulkhead({ limit: 1, queueLimit: 3, maxWaitMs: 60_000 }, events);
    await bh.acquire('start-signin', 'surge');
    const surge = [];
    for (let i = 0; i < 3; i++) surge.push(await track(bh.acquire('start-signin', 'surge')));
    const quiet = await track(bh.acquire('start-signin', 'quiet'));
    expect(quiet.state()).toBe('pending');
    expect(surge.map((s) => s.state())).toEqual(['pending', 'pending', 'refused']);
    // The surge cannot push the quiet tenant out, only itself.
    const more = await track(bh.acquire('start-signin', 'surge'));
    expect(more.state()).toBe('refused');
    expect(quiet.state()).toBe('pending');
    // A second quiet request: the surge still holds more (two waiting, one running) than the quiet tenant would (two).
    const quiet2 = await track(bh.acquire('start-signin', 'quiet'));
    expect(quiet2.state()).toBe('pending');
    expect(surge.map((s) => s.state())).toEqual(['pending', 'refused', 'refused']);
    // Now each holds two: a third quiet request finds no one holding more than its share.
    const quiet3 = await track(bh.acquire('start-signin', 'quiet'));
    expect(quiet3.state()).toBe('refused');
    expect(shed).toEqual(['start-signin/surge:evicted', 'start-signin/surge:queue-full', 'start-signin/surge:evicted', 'start-signin/quiet:queue-full']);
  });

  it('keeps a quarter of the queue from any one tenant, so others get a place without anyone being pushed out', async () => {
    const { shed, events } = shedLog();
    const bh = new Bulkhead({ limit: 1, queueLimit: 8, maxWaitMs: 60_000 }, events);
    await bh.acquire('start-signin', 'surge');
    const surge = [];
    for (let i = 0; i < 7; i++) surge.push(await track(bh.acquire('start-signin', 'surge')));
    // Six places for the surge; its seventh is refused at once although two are free.
    expect(surge.map((s) => s.state()).filter((s) => s === 'refused')).toHaveLength(1);
    const quiet = await track(bh.acquire('start-signin', 'quiet'));
    const recovery = await track(bh.acquire('finish-signin', 'other'));
    expect([quiet.state(), recovery.state()]).toEqual(['pending', 'pending']);
    // The surge's own more important work takes the place of its own newest sign-in.
    const ownRecovery = await track(bh.acquire('finish-signin', 'surge'));
    expect(ownRecovery.state()).toBe('pending');
    expect(shed).toEqual(['start-signin/surge:queue-full', 'start-signin/surge:evicted']);
  });

  it('gives a freed slot to the tenant with the least running, so another tenant waits for one slot, not a turn of the surge', async () => {
    const bh = new Bulkhead({ limit: 2, queueLimit: 100, maxWaitMs: 60_000 });
    const a = await bh.acquire('start-signin', 'surge');
    await bh.acquire('start-signin', 'surge');
    const surge = await track(bh.acquire('start-signin', 'surge'));
    const quiet = await track(bh.acquire('start-signin', 'quiet'));
    a();
    await vi.advanceTimersByTimeAsync(0);
    expect([surge.state(), quiet.state()]).toEqual(['pending', 'admitted']);
  });

  it('lets a tenant with nothing running start at once on a spare slot, and no one else', async () => {
    const bh = new Bulkhead({ limit: 2, spare: 1, queueLimit: 100, maxWaitMs: 60_000 });
    await bh.acquire('start-signin', 'surge');
    await bh.acquire('start-signin', 'surge');
    const surge = await track(bh.acquire('start-signin', 'surge'));
    const quiet = await track(bh.acquire('start-signin', 'quiet'));
    const quiet2 = await track(bh.acquire('start-signin', 'quiet'));
    const third = await track(bh.acquire('start-signin', 'third'));
    expect([surge.state(), quiet.state(), quiet2.state(), third.state()]).toEqual(['pending', 'admitted', 'pending', 'pending']);
    expect(bh.state).toEqual({ running: 3, queued: 3, limit: 2 });
    // The spare given back goes to a waiting tenant with nothing running (in turn), never to the surge.
    quiet.release();
    await vi.advanceTimersByTimeAsync(0);
    expect([surge.state(), quiet2.state(), third.state()]).toEqual(['pending', 'admitted', 'pending']);
  });

  it('never calls a tenant alone on the node a surge, however much of its own waits', async () => {
    const bh = new Bulkhead({ limit: 1, queueLimit: 100, maxWaitMs: 60_000 });
    const told: string[] = [];
    const take = (name: string) =>
      track(bh.acquire('start-signin', 'only', { onStart: (backlogged) => told.push(`${name}:${backlogged ? 'backlogged' : 'alone'}`) }));
    const first = await take('a');
    const second = await take('b');
    await take('c');
    first.release();
    await vi.advanceTimersByTimeAsync(0);
    second.release();
    await vi.advanceTimersByTimeAsync(0);
    expect(told).toEqual(['a:alone', 'b:alone', 'c:alone']);
  });

  it('says, as each starts, whether its tenant still has more of its own waiting (a surge), and of no one else', async () => {
    const bh = new Bulkhead({ limit: 1, spare: 1, queueLimit: 100, maxWaitMs: 60_000 });
    const told: string[] = [];
    const take = (tenant: string, name: string) =>
      track(bh.acquire('start-signin', tenant, { onStart: (backlogged) => told.push(`${name}:${backlogged ? 'backlogged' : 'alone'}`) }));
    const s0 = await take('surge', 's0');
    const s1 = await take('surge', 's1');
    await take('surge', 's2');
    // The quiet tenant takes the spare slot; the surge's waiters are not its own.
    const q0 = await take('quiet', 'q0');
    expect(told).toEqual(['s0:alone', 'q0:alone']);
    s0.release();
    await vi.advanceTimersByTimeAsync(0);
    // s1 starts with s2 still waiting behind it; s2 starts with nothing of its tenant left waiting.
    q0.release();
    s1.release();
    await vi.advanceTimersByTimeAsync(0);
    expect(told).toEqual(['s0:alone', 'q0:alone', 's1:backlogged', 's2:alone']);
  });

  it("counts as a surge only while another tenant has work running or waiting, or started some in the last five seconds; never the tenant's own", async () => {
    const told: string[] = [];
    const take = (bh: Bulkhead, tenant: string, name: string, cls: WorkClass = 'start-signin') =>
      track(bh.acquire(cls, tenant, { onStart: (backlogged) => told.push(`${name}:${backlogged ? 'backlogged' : 'alone'}`) }));

    // Alone, with two of its own running and more waiting: still alone.
    const own = new Bulkhead({ limit: 2, queueLimit: 100, maxWaitMs: 600_000 });
    const a = await take(own, 'only', 'a');
    await take(own, 'only', 'b');
    await take(own, 'only', 'c');
    await take(own, 'only', 'd');
    a.release();
    await vi.advanceTimersByTimeAsync(0);
    expect(told.splice(0)).toEqual(['a:alone', 'b:alone', 'c:alone']);

    // Another tenant's start counts for five seconds, to the millisecond.
    const recent = new Bulkhead({ limit: 1, queueLimit: 100, maxWaitMs: 600_000 });
    (await take(recent, 'quiet', 'q')).release();
    const s0 = await take(recent, 'surge', 's0');
    const s1 = await take(recent, 'surge', 's1');
    const s2 = await take(recent, 'surge', 's2');
    await take(recent, 'surge', 's3');
    await take(recent, 'surge', 's4');
    await vi.advanceTimersByTimeAsync(4_999);
    s0.release();
    await vi.advanceTimersByTimeAsync(1);
    s1.release();
    await vi.advanceTimersByTimeAsync(1);
    s2.release();
    await vi.advanceTimersByTimeAsync(0);
    expect(told.splice(0)).toEqual(['q:alone', 's0:alone', 's1:backlogged', 's2:backlogged', 's3:alone']);

    // Another tenant's work still running, started long ago.
    const running = new Bulkhead({ limit: 2, queueLimit: 100, maxWaitMs: 600_000 });
    await take(running, 'quiet', 'q');
    await vi.advanceTimersByTimeAsync(6_000);
    const r0 = await take(running, 'surge', 'r0');
    await take(running, 'surge', 'r1');
    await take(running, 'surge', 'r2');
    r0.release();
    await vi.advanceTimersByTimeAsync(0);
    expect(told.splice(0)).toEqual(['q:alone', 'r0:alone', 'r1:backlogged']);

    // Another tenant's work waiting (behind more important work), never started.
    const waiting = new Bulkhead({ limit: 1, queueLimit: 100, maxWaitMs: 600_000 });
    const w0 = await take(waiting, 'surge', 'w0', 'finish-signin');
    await take(waiting, 'quiet', 'q', 'self-service');
    await take(waiting, 'surge', 'w1', 'finish-signin');
    await take(waiting, 'surge', 'w2', 'finish-signin');
    await vi.advanceTimersByTimeAsync(6_000);
    w0.release();
    await vi.advanceTimersByTimeAsync(0);
    expect(told.splice(0)).toEqual(['w0:alone', 'w1:backlogged']);
  });

  it('refuses at once a newcomer whose predicted wait, counted for its class and tenant, is too long', async () => {
    const { shed, events } = shedLog();
    const bh = new Bulkhead({ limit: 1, queueLimit: 100, maxWaitMs: 100 }, events);
    // Teach it that work holds a slot for 20 ms.
    const first = await bh.acquire('start-signin', 'surge');
    await vi.advanceTimersByTimeAsync(20);
    first();
    await bh.acquire('start-signin', 'surge');
    // Each waiter adds 20 ms: the third in line would wait 60 ms, over half the maximum.
    const waiting = [await track(bh.acquire('start-signin', 'surge')), await track(bh.acquire('start-signin', 'surge'))];
    expect(bh.predictedWaitMs('start-signin', 'surge')).toBe(60);
    const third = await track(bh.acquire('start-signin', 'surge'));
    expect(third.state()).toBe('refused');
    // Another tenant, with nothing running, goes at the next free slot, not after the surge's queue.
    expect(bh.predictedWaitMs('start-signin', 'quiet')).toBe(20);
    const quiet = await track(bh.acquire('start-signin', 'quiet'));
    expect(quiet.state()).toBe('pending');
    // And a second factor waits only for the work already running.
    expect(bh.predictedWaitMs('finish-signin', 'surge')).toBe(20);
    expect(waiting.map((w) => w.state())).toEqual(['pending', 'pending']);
    expect(shed).toEqual(['start-signin/surge:queue-full']);
  });

  it('learns how long work holds a slot as a weighted mean, and refuses by predicted wait only past half the maximum, never whoever is next in line', async () => {
    const holdFor = async (bh: Bulkhead, ms: number) => {
      const release = await bh.acquire('start-signin', 'teacher');
      await vi.advanceTimersByTimeAsync(ms);
      release();
    };
    // The first hold is the mean; each later one moves it a fifth of the way.
    const mean = new Bulkhead({ limit: 2, queueLimit: 100, maxWaitMs: 100 });
    await holdFor(mean, 50);
    await holdFor(mean, 100);
    expect(mean.predictedWaitMs('start-signin', 't')).toBe(30);

    // Work holds a slot 50 ms, two slots: the second in line would wait exactly half the maximum, and is let wait.
    const edge = new Bulkhead({ limit: 2, queueLimit: 100, maxWaitMs: 100 });
    await holdFor(edge, 50);
    await edge.acquire('start-signin', 't');
    await edge.acquire('start-signin', 't');
    const firstInLine = await track(edge.acquire('start-signin', 't'));
    const second = await track(edge.acquire('start-signin', 't'));
    const third = await track(edge.acquire('start-signin', 't'));
    expect([firstInLine, second, third].map((w) => w.state())).toEqual(['pending', 'pending', 'refused']);

    // Work holds a slot 300 ms: the next in line waits although that is over the maximum, for one slot's turn (300 ms here).
    const slow = new Bulkhead({ limit: 2, queueLimit: 100, maxWaitMs: 100 });
    await holdFor(slow, 300);
    await slow.acquire('start-signin', 't');
    await slow.acquire('start-signin', 't');
    const next = await track(slow.acquire('start-signin', 't'));
    expect(next.state()).toBe('pending');
    await vi.advanceTimersByTimeAsync(299);
    expect(next.state()).toBe('pending');
    await vi.advanceTimersByTimeAsync(2);
    expect(next.state()).toBe('refused');
  });

  it('counts every waiter of a more important class as ahead of a newcomer, however few its tenant has running', async () => {
    const bh = new Bulkhead({ limit: 1, queueLimit: 100, maxWaitMs: 600_000 });
    const first = await bh.acquire('start-signin', 'busy');
    await vi.advanceTimersByTimeAsync(10);
    first();
    await bh.acquire('start-signin', 'busy');
    for (let i = 0; i < 3; i++) await track(bh.acquire('finish-signin', 'busy'));
    // Three second factors go first, then the newcomer's own turn: (3 + 1) x 10 ms.
    expect(bh.predictedWaitMs('start-signin', 'quiet')).toBe(40);
  });

  it('never makes room for a newcomer by refusing more important work, and makes room by refusing less important work of anyone', async () => {
    const { shed, events } = shedLog();
    const bh = new Bulkhead({ limit: 1, queueLimit: 4, maxWaitMs: 600_000 }, events);
    await bh.acquire('start-signin', 'a');
    const important = [];
    for (let i = 0; i < 3; i++) important.push(await track(bh.acquire('finish-signin', 'a')));
    important.push(await track(bh.acquire('finish-signin', 'b')));
    const newcomer = await track(bh.acquire('start-signin', 'c'));
    expect(newcomer.state()).toBe('refused');
    expect(important.map((w) => w.state())).toEqual(['pending', 'pending', 'pending', 'pending']);
    expect(shed).toEqual(['start-signin/c:queue-full']);

    // A queue full of sign-ins starting, one from each tenant: a second factor takes the place of the first of them.
    const { shed: shed2, events: events2 } = shedLog();
    const spread = new Bulkhead({ limit: 1, queueLimit: 4, maxWaitMs: 600_000 }, events2);
    await spread.acquire('start-signin', 'x');
    const starting = [];
    for (const tenant of ['b', 'c', 'd', 'e']) starting.push(await track(spread.acquire('start-signin', tenant)));
    const second = await track(spread.acquire('finish-signin', 'a'));
    expect(second.state()).toBe('pending');
    expect(starting.map((w) => w.state())).toEqual(['refused', 'pending', 'pending', 'pending']);
    expect(shed2).toEqual(['start-signin/b:evicted']);
  });

  it('works without anyone listening to its events, and tells a listener how long each admitted waiter waited', async () => {
    const quiet = new Bulkhead({ limit: 1, queueLimit: 1, maxWaitMs: 100 });
    await quiet.acquire('start-signin', 'a');
    const lower = await track(quiet.acquire('start-signin', 'a'));
    const higher = await track(quiet.acquire('finish-signin', 'b'));
    const full = await track(quiet.acquire('start-signin', 'c'));
    expect([lower.state(), higher.state(), full.state()]).toEqual(['refused', 'pending', 'refused']);
    await vi.advanceTimersByTimeAsync(101);
    expect(higher.state()).toBe('refused');

    const waited: number[] = [];
    const bh = new Bulkhead({ limit: 1, queueLimit: 10, maxWaitMs: 60_000 }, { admitted: (_cls, ms) => waited.push(ms) });
    const first = await bh.acquire('start-signin', 'a');
    await track(bh.acquire('start-signin', 'a'));
    await vi.advanceTimersByTimeAsync(30);
    first();
    await vi.advanceTimersByTimeAsync(0);
    expect(waited).toEqual([0, 30]);
  });

  it('says at the door, without queueing, whether it would refuse, and counts that refusal', async () => {
    const { shed, events } = shedLog();
    const bh = new Bulkhead({ limit: 1, queueLimit: 2, maxWaitMs: 60_000 }, events);
    expect(bh.refusesAtOnce('start-signin', 'surge')).toBe(false);
    await bh.acquire('start-signin', 'surge');
    void bh.acquire('start-signin', 'surge').catch(() => {});
    void bh.acquire('start-signin', 'surge').catch(() => {});
    expect(bh.refusesAtOnce('start-signin', 'surge')).toBe(true);
    expect(bh.refusesAtOnce('start-signin', 'quiet')).toBe(false);
    expect(bh.refusesAtOnce('finish-signin', 'surge')).toBe(false);
    expect(bh.state.queued).toBe(2);
    expect(shed).toEqual(['start-signin/surge:queue-full']);
  });

  it('never refuses committed work, but lets it wait its turn', async () => {
    const bh = new Bulkhead({ limit: 1, queueLimit: 0, maxWaitMs: 10 });
    let held = await bh.acquire('self-service', 't');
    await expect(bh.acquire('self-service', 't')).rejects.toMatchObject({ status: 503 });
    const follow = Array.from({ length: 5 }, () => track(bh.acquire('self-service', 't', { committed: true })));
    const tracked = await Promise.all(follow);
    await vi.advanceTimersByTimeAsync(1000);
    expect(tracked.map((t) => t.state())).toEqual(['pending', 'pending', 'pending', 'pending', 'pending']);
    for (const t of tracked) {
      held();
      await vi.advanceTimersByTimeAsync(0);
      expect(t.state()).toBe('admitted');
      held = t.release;
    }
  });

  it('refuses a waiter after the maximum wait, drops one whose client left, and answers 503 with Retry-After', async () => {
    const { shed, events } = shedLog();
    const bh = new Bulkhead({ limit: 1, queueLimit: 5, maxWaitMs: 500 }, events);
    const held = await bh.acquire('start-signin', 't');
    const late = bh.acquire('start-signin', 't');
    late.catch(() => {});
    const gone = new AbortController();
    const left = bh.acquire('start-signin', 't', { signal: gone.signal });
    left.catch(() => {});
    gone.abort();
    await expect(left).rejects.toMatchObject({ status: 503 });
    expect(bh.state.queued).toBe(1);
    await vi.advanceTimersByTimeAsync(500);
    await expect(late).rejects.toMatchObject({ code: 'unavailable', status: 503, retryAfter: 1 });
    expect(bh.state).toEqual({ running: 1, queued: 0, limit: 1 });
    expect(shed).toEqual(['start-signin/t:timed-out']);
    held();
    expect(bh.state.running).toBe(0);
    await expect(bh.acquire('start-signin', 't', { signal: AbortSignal.abort() })).rejects.toMatchObject({ status: 503 });
  });
});

describe('how long a bulkhead has been idle', () => {
  afterEach(() => vi.useRealTimers());

  it('is 0 while work holds a slot, then counts from the last release', async () => {
    vi.useFakeTimers({ now: Date.UTC(2026, 10, 30, 18) });
    const bh = new Bulkhead({ limit: 1, queueLimit: 1, maxWaitMs: 1000 });
    expect(bh.idleForMs).toBeGreaterThan(1_000_000);
    const release = await bh.acquire('start-signin', 't');
    vi.advanceTimersByTime(500);
    expect(bh.idleForMs).toBe(0);
    release();
    vi.advanceTimersByTime(200);
    expect(bh.idleForMs).toBe(200);
  });
});
