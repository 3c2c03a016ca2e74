import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { AdmissionController } from '../../src/admission/admission-controller.ts';
import { SHEDDABLE_CLASSES } from '../../src/admission/admission-class.ts';

describe('admission controller (one lane per class)', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('keeps a full lane to itself: second factors, set-ups and emergency actions get in while password sign-ins are refused', async () => {
    const shed: string[] = [];
    const ac = new AdmissionController({ limit: 2, queueLimit: 1, maxWaitMs: 1000 }, { shed: (cls, tenant, why) => shed.push(`${cls}/${tenant}:${why}`) });
    await ac.admit('start-signin', 'surge');
    await ac.admit('start-signin', 'surge');
    void ac.admit('start-signin', 'surge').catch(() => {});
    await expect(ac.admit('start-signin', 'surge')).rejects.toMatchObject({ status: 503, retryAfter: 1 });
    for (const cls of ['finish-signin', 'finish-registration', 'admin-emergency', 'self-service', 'admin'] as const) {
      await expect(ac.admit(cls, 'surge')).resolves.toBeTypeOf('function');
    }
    expect(shed).toEqual(['start-signin/surge:queue-full']);
    expect(ac.state).toMatchObject({ inFlight: 7, queued: 1, limit: 2 });
    expect(ac.state.classes['start-signin']).toEqual({ inFlight: 2, queued: 1 });
    expect(ac.state.classes['finish-signin']).toEqual({ inFlight: 1, queued: 0 });
    expect(Object.keys(ac.state.classes).sort()).toEqual([...SHEDDABLE_CLASSES].sort());
  });

  it("predicts each lane's wait from its own hold times, not from an average the slow class dominates", async () => {
    const ac = new AdmissionController({ limit: 1, queueLimit: 10, maxWaitMs: 100 });
    // Password sign-ins hold their lane for 200 ms each.
    const slow = await ac.admit('start-signin', 's');
    await vi.advanceTimersByTimeAsync(200);
    slow();
    await ac.admit('start-signin', 's');
    // The next in line waits its turn; the one after it would wait 400 ms, and is refused at once.
    ac.admit('start-signin', 's').catch(() => {});
    await expect(ac.admit('start-signin', 's')).rejects.toMatchObject({ status: 503 });
    // Second factors hold theirs for 2 ms: one waiting behind a running one is fine.
    const quick = await ac.admit('finish-signin', 's');
    await vi.advanceTimersByTimeAsync(2);
    quick();
    const running = await ac.admit('finish-signin', 's');
    const waiting = ac.admit('finish-signin', 's');
    running();
    await expect(waiting).resolves.toBeTypeOf('function');
  });

  it('keeps a quarter of each lane for other tenants: a surge of slow requests cannot make them queue', async () => {
    const ac = new AdmissionController({ limit: 4, queueLimit: 10, maxWaitMs: 10_000 });
    const surge = await Promise.all([ac.admit('start-signin', 'surge'), ac.admit('start-signin', 'surge'), ac.admit('start-signin', 'surge')]);
    let fourth = false;
    const waiting = ac.admit('start-signin', 'surge').then((release) => {
      fourth = true;
      return release;
    });
    await vi.advanceTimersByTimeAsync(0);
    expect(fourth).toBe(false);
    // The quiet tenant's request takes the free slot at once.
    const quiet = await ac.admit('start-signin', 'quiet');
    expect(ac.state.classes['start-signin']).toEqual({ inFlight: 4, queued: 1 });
    quiet();
    await vi.advanceTimersByTimeAsync(0);
    // A free slot is not the surge's while it holds its share...
    expect(fourth).toBe(false);
    // ...only once one of its own is given back.
    surge[0]!();
    await vi.advanceTimersByTimeAsync(0);
    expect(fourth).toBe(true);
    (await waiting)();
  });

  it('starts another tenant at once on a reserved slot, however long the surge says a wait would be', async () => {
    const ac = new AdmissionController({ limit: 4, queueLimit: 10, maxWaitMs: 100 });
    // Sign-ins holding their slot for a second each: any wait is predicted too long.
    const slow = await ac.admit('start-signin', 'surge');
    await vi.advanceTimersByTimeAsync(1000);
    slow();
    await Promise.all([ac.admit('start-signin', 'surge'), ac.admit('start-signin', 'surge'), ac.admit('start-signin', 'surge')]);
    // The surge's next waits for one of its own slots; the one after it is refused at once.
    ac.admit('start-signin', 'surge').catch(() => {});
    await expect(ac.admit('start-signin', 'surge')).rejects.toMatchObject({ status: 503 });
    await expect(ac.admit('start-signin', 'quiet')).resolves.toBeTypeOf('function');
  });

  it('lets tenants take turns within a lane, so a surge cannot crowd the others out', async () => {
    const ac = new AdmissionController({ limit: 1, queueLimit: 100, maxWaitMs: 10_000 });
    let held = await ac.admit('start-signin', 'busy');
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

  it('drops a waiter whose client left, and never holds back operations requests', async () => {
    const ac = new AdmissionController({ limit: 1, queueLimit: 5, maxWaitMs: 500 });
    const held = await ac.admit('self-service', 't');
    const gone = new AbortController();
    const left = ac.admit('self-service', 't', gone.signal);
    gone.abort();
    await expect(left).rejects.toMatchObject({ status: 503 });
    expect(ac.state.queued).toBe(0);
    await expect(ac.admit('ops', 't')).resolves.toBeTypeOf('function');
    held();
    expect(ac.state.inFlight).toBe(0);
  });
});
