import { afterEach, describe, expect, it, vi } from 'vitest';
import { PasswordHasher, ARGON2_PARAMS, type Argon2 } from '../../src/directory/password-hasher.ts';
import type { HashPriority } from '../../src/directory/argon2.ts';
import { runWithTicket, type WorkTicket } from '../../src/admission/work-ticket.ts';
import type { SheddableClass } from '../../src/admission/admission-class.ts';

/**
 * An Argon2 stand-in that counts the hashes really running (called and not yet
 * finished) and finishes them only when the test says: what is measured is
 * the work in flight, not the hasher's own bookkeeping.
 */
function heldArgon2() {
  const running: { secret: string; finish: () => void }[] = [];
  const started: string[] = [];
  const priorities: Record<string, HashPriority | undefined> = {};
  let maxRunning = 0;
  const run = (secret: string, result: () => unknown, priority?: HashPriority) =>
    new Promise<any>((resolve) => {
      started.push(secret);
      priorities[secret] = priority;
      running.push({ secret, finish: () => resolve(result()) });
      maxRunning = Math.max(maxRunning, running.length);
    });
  const argon2: Argon2 = {
    hash: (secret, _options, priority) => run(secret, () => `$argon2id$v=19$m=1,t=1,p=1$${secret}`, priority),
    verify: (stored, secret, priority) => run(secret, () => stored.endsWith(`$${secret}`), priority),
  };
  return {
    argon2,
    started,
    priorities,
    get running() {
      return running.length;
    },
    get maxRunning() {
      return maxRunning;
    },
    /** Finishes the oldest running hash and lets the pool start the next. */
    async finishOne() {
      running.shift()?.finish();
      await vi.advanceTimersByTimeAsync(0);
    },
  };
}

const ticket = (cls: SheddableClass, tenant: string, extra: Partial<WorkTicket> = {}): WorkTicket => ({ cls, tenant, hashed: false, ...extra });

describe('password hasher', () => {
  afterEach(() => vi.useRealTimers());
  const hasher = new PasswordHasher();

  it('hashes with Argon2id at the configured parameters and verifies', async () => {
    const hash = await hasher.hash('correct horse');
    expect(hash).toMatch(new RegExp(`^\\$argon2id\\$v=19\\$m=${ARGON2_PARAMS.memoryCost},t=${ARGON2_PARAMS.timeCost},p=${ARGON2_PARAMS.parallelism}\\$`));
    expect(await hasher.verify(hash, 'correct horse')).toBe(true);
    expect(await hasher.verify(hash, 'correct horsE')).toBe(false);
    expect(hasher.needsRehash(hash)).toBe(false);
  });

  it("starts its Argon2's threads when told (a node about to take traffic), and does without an Argon2 that has none to start", async () => {
    const held = heldArgon2();
    let prestarted = 0;
    const withThreads = new PasswordHasher({ argon2: { ...held.argon2, prestart: async () => void prestarted++ } });
    await withThreads.prestartThreads();
    expect(prestarted).toBe(1);
    // A stand-in without threads (tests, another implementation): nothing to start, no error.
    await expect(new PasswordHasher({ argon2: held.argon2 }).prestartThreads()).resolves.toBeUndefined();
  });

  it('asks for a rehash when the parameters changed, and treats garbage as a mismatch', async () => {
    const weak = new PasswordHasher({ params: { memoryCost: 4096, timeCost: 1, parallelism: 1 } });
    const old = await weak.hash('pw');
    expect(hasher.needsRehash(old)).toBe(true);
    expect(await hasher.verify(old, 'pw')).toBe(true);
    expect(await hasher.verify('not a hash', 'pw')).toBe(false);
    expect(hasher.needsRehash('$2b$10$bcrypt')).toBe(true);
  });

  it('asks for a rehash when any one parameter differs, and for anything that is not a whole Argon2id hash', () => {
    const { memoryCost: m, timeCost: t, parallelism: p } = ARGON2_PARAMS;
    expect(hasher.needsRehash(`$argon2id$v=19$m=${m},t=${t},p=${p}$c2FsdA$aGFzaA`)).toBe(false);
    for (const other of [`m=${m + 1},t=${t},p=${p}`, `m=${m},t=${t + 10},p=${p}`, `m=${m},t=${t},p=${p + 10}`])
      expect(hasher.needsRehash(`$argon2id$v=19$${other}$c2FsdA$aGFzaA`), other).toBe(true);
    expect(hasher.needsRehash(`x$argon2id$v=19$m=${m},t=${t},p=${p}$c2FsdA$aGFzaA`)).toBe(true);
    expect(hasher.needsRehash(`$argon2i$v=19$m=${m},t=${t},p=${p}$c2FsdA$aGFzaA`)).toBe(true);
  });

  it('makes the dummy hash for unknown users with the same parameters as a real one, so it costs the same', async () => {
    const seen: unknown[] = [];
    const argon2: Argon2 = {
      hash: async (_secret, options) => {
        seen.push(options);
        return '$argon2id$dummy';
      },
      verify: async () => false,
    };
    const params = { memoryCost: 2048, timeCost: 3, parallelism: 1 };
    const limited = new PasswordHasher({ concurrency: 1, argon2, params });
    await limited.verifyNothing('x');
    await limited.hash('y');
    expect(seen).toEqual([
      { ...params, algorithm: 2 },
      { ...params, algorithm: 2 },
    ]);
    expect(limited.checksDone).toBe(1);
  });

  it('counts hashes waiting as well as running in pending', async () => {
    vi.useFakeTimers();
    const held = heldArgon2();
    const limited = new PasswordHasher({ concurrency: 1, queueLimit: 10, maxWaitMs: 60_000, argon2: held.argon2 });
    const all = [limited.hash('a'), limited.hash('b'), limited.hash('c')];
    await vi.advanceTimersByTimeAsync(0);
    expect(held.running).toBe(1);
    expect(limited.pending).toBe(3);
    for (let i = 0; i < 3; i++) await held.finishOne();
    await Promise.all(all);
    expect(limited.pending).toBe(0);
  });

  it('never runs more hashes at once than its concurrency, however many are asked for', async () => {
    vi.useFakeTimers();
    const held = heldArgon2();
    const limited = new PasswordHasher({ concurrency: 2, argon2: held.argon2 });
    // Work from no request (the command line) is never refused, so all 12 wait their turn.
    const work = [
      ...Array.from({ length: 8 }, (_, i) => limited.hash(`pw${i}`)),
      ...Array.from({ length: 4 }, (_, i) => limited.verify(`$argon2id$x$v${i}`, `v${i}`)),
    ];
    await vi.advanceTimersByTimeAsync(0);
    expect(held.running).toBe(2);
    while (held.started.length < 12 || held.running > 0) await held.finishOne();
    await Promise.all(work);
    expect(held.started).toHaveLength(12);
    expect(held.maxRunning).toBe(2);
    expect(limited.pending).toBe(0);
  });

  it('runs at most one more than its concurrency, and that one only for a tenant with nothing running', async () => {
    vi.useFakeTimers();
    const held = heldArgon2();
    const limited = new PasswordHasher({ concurrency: 2, queueLimit: 100, maxWaitMs: 60_000, argon2: held.argon2 });
    // Twelve tenants each send three sign-ins at once.
    const work = Array.from({ length: 36 }, (_, i) =>
      runWithTicket(ticket('start-signin', `t${i % 12}`), () => limited.verify(`$argon2id$x$p${i}`, `p${i}`)).catch(() => false),
    );
    await vi.advanceTimersByTimeAsync(0);
    expect(held.running).toBe(3);
    while (held.running > 0) await held.finishOne();
    await Promise.all(work);
    expect(held.maxRunning).toBe(3);
  });

  it("lets a request's hashes in by its class and tenant: a finishing sign-in first, tenants taking turns, a surge refused at once", async () => {
    vi.useFakeTimers();
    const held = heldArgon2();
    const shed: string[] = [];
    const limited = new PasswordHasher({
      concurrency: 1,
      queueLimit: 3,
      maxWaitMs: 60_000,
      argon2: held.argon2,
      events: { shed: (cls, tenant, why) => shed.push(`${cls}/${tenant}:${why}`) },
    });
    const as = (t: WorkTicket, secret: string) => runWithTicket(t, () => limited.verify(`$argon2id$x$${secret}`, secret));
    const outcomes: Record<string, string> = {};
    const sent = [
      ['s0', ticket('start-signin', 'surge')],
      ['s1', ticket('start-signin', 'surge')],
      ['s2', ticket('start-signin', 'surge')],
      ['s3', ticket('start-signin', 'surge')],
      ['s4', ticket('start-signin', 'surge')],
      ['q0', ticket('start-signin', 'quiet')],
      ['r0', ticket('finish-signin', 'surge')],
    ] as const;
    const all = sent.map(([name, t]) =>
      as(t, name).then(
        () => (outcomes[name] = 'ok'),
        () => (outcomes[name] = 'refused'),
      ),
    );
    await vi.advanceTimersByTimeAsync(0);
    while (held.running > 0) await held.finishOne();
    await Promise.all(all);
    // s0 ran at once; s1..s3 filled the queue; s4 found it full; the quiet tenant,
    // with nothing running, started at once on the spare slot; the recovery code
    // took the place of the surge's newest waiter and went first.
    expect(outcomes).toEqual({ s0: 'ok', s1: 'ok', s2: 'ok', s3: 'refused', s4: 'refused', q0: 'ok', r0: 'ok' });
    expect(held.started).toEqual(['s0', 'q0', 'r0', 's1', 's2']);
    expect(held.maxRunning).toBe(2);
    expect(shed).toEqual(['start-signin/surge:queue-full', 'start-signin/surge:evicted']);
  });

  it("runs a surging tenant's hashes below everyone else's: another tenant's sign-in and the surge's own recovery code stay prompt", async () => {
    vi.useFakeTimers();
    const held = heldArgon2();
    const limited = new PasswordHasher({ concurrency: 2, queueLimit: 100, maxWaitMs: 60_000, argon2: held.argon2 });
    const as = (t: WorkTicket, secret: string) => runWithTicket(t, () => limited.verify(`$argon2id$x$${secret}`, secret));
    const all = ['s0', 's1', 's2', 's3', 's4', 's5'].map((name) => as(ticket('start-signin', 'surge'), name));
    await vi.advanceTimersByTimeAsync(0);
    all.push(as(ticket('start-signin', 'quiet'), 'q0'), as(ticket('finish-signin', 'surge'), 'r0'));
    await vi.advanceTimersByTimeAsync(0);
    while (held.running > 0) await held.finishOne();
    await Promise.all(all);
    expect(held.started).toEqual(['s0', 's1', 'q0', 'r0', 's2', 's3', 's4', 's5']);
    // The surge's first two started before any more of its own waited, and its last with none left
    // behind it; the others started with more of the surge waiting, so below the quiet tenant's hash
    // (on the spare slot) and the surge's own recovery code, which went first.
    expect(held.priorities).toEqual({ s0: 'prompt', s1: 'prompt', q0: 'prompt', r0: 'prompt', s2: 'bulk', s3: 'bulk', s4: 'bulk', s5: 'prompt' });
    // Work from no request (the command line) runs prompt when nothing of its own waits.
    const cli = limited.hash('cli');
    await vi.advanceTimersByTimeAsync(0);
    await held.finishOne();
    await cli;
    expect(held.priorities.cli).toBe('prompt');
  });

  it("never refuses a request's later hashes once its first was let in (ten recovery codes are one piece of work)", async () => {
    vi.useFakeTimers();
    const held = heldArgon2();
    const limited = new PasswordHasher({ concurrency: 1, queueLimit: 0, maxWaitMs: 10, argon2: held.argon2 });
    const enrol = ticket('finish-registration', 'quiet');
    const codes = runWithTicket(enrol, () => Promise.all(Array.from({ length: 10 }, (_, i) => limited.hash(`code${i}`))));
    // Another tenant's request takes the spare slot; a third finds the queue full (its limit is 0) and is refused at once.
    const other = runWithTicket(ticket('finish-registration', 'other'), () => limited.hash('x'));
    const third = runWithTicket(ticket('finish-registration', 'third'), () => limited.hash('y'));
    await expect(third).rejects.toMatchObject({ status: 503 });
    await vi.advanceTimersByTimeAsync(1000);
    while (held.running > 0) await held.finishOne();
    await expect(codes).resolves.toHaveLength(10);
    await expect(other).resolves.toBeTypeOf('string');
    expect(held.maxRunning).toBe(2);
  });

  it('drops work whose client has gone or whose deadline passed before it started, from the window or the ticket', async () => {
    vi.useFakeTimers();
    const held = heldArgon2();
    const limited = new PasswordHasher({ concurrency: 1, queueLimit: 10, maxWaitMs: 60_000, argon2: held.argon2 });
    const hash = '$argon2id$x$pw';
    const outcome = (p: Promise<boolean>) => p.then(String, (err: { code: string; retryAfter: number }) => `${err.code}, retry after ${err.retryAfter}`);
    const first = outcome(limited.verify(hash, 'pw'));
    // Another tenant takes the spare slot, so everything below has to wait.
    const spare = outcome(runWithTicket(ticket('start-signin', 'other'), () => limited.verify(hash, 'pw')));
    const gone = new AbortController();
    const abandoned = outcome(limited.verify(hash, 'pw', { signal: gone.signal }));
    const late = outcome(limited.verify(hash, 'pw', { deadline: Date.now() + 50 }));
    const lateTicket = outcome(runWithTicket(ticket('start-signin', 't', { deadline: Date.now() + 50 }), () => limited.verify(hash, 'pw')));
    gone.abort();
    const lateTicketTenant = outcome(runWithTicket(ticket('start-signin', 'other', { deadline: Date.now() + 50 }), () => limited.verify(hash, 'pw')));
    await vi.advanceTimersByTimeAsync(100);
    await held.finishOne();
    await held.finishOne();
    expect(await Promise.all([first, spare, abandoned, late, lateTicket, lateTicketTenant])).toEqual([
      'true',
      'true',
      'unavailable, retry after 1',
      'unavailable, retry after 1',
      'unavailable, retry after 1',
      'unavailable, retry after 1',
    ]);
    // Only the first two were ever hashed.
    expect(held.started).toEqual(['pw', 'pw']);
  });

  it('makes the dummy hash for unknown users outside the pool, and again after a failure', async () => {
    let fail = true;
    const argon2: Argon2 = {
      hash: async () => {
        if (fail) throw new Error('out of memory');
        return '$argon2id$dummy';
      },
      verify: async () => false,
    };
    const limited = new PasswordHasher({ concurrency: 1, argon2 });
    await expect(limited.verifyNothing('x')).rejects.toThrow('out of memory');
    fail = false;
    await expect(limited.verifyNothing('x')).resolves.toBe(false);
  });
});
