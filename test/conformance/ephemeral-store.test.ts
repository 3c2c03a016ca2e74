import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.ts';
import type { EphemeralStore } from '../../src/store/ephemeral/ephemeral-store.ts';
import { MemoryEphemeralStore } from '../../src/store/ephemeral/memory-store.ts';
import { RedisEphemeralStore } from '../../src/store/ephemeral/redis-store.ts';
import { DurableEphemeralStore } from '../../src/store/ephemeral/durable-ephemeral-store.ts';
import { FailoverEphemeralStore } from '../../src/store/ephemeral/failover-store.ts';
import { openDurableStore, migrateToLatest } from '../../src/store/durable/database.ts';
import { PG_URL, REDIS_URL, createPgSchema, postgresAvailable, redisAvailable } from '../helpers/services-available.ts';

interface Subject {
  name: string;
  available: () => Promise<boolean>;
  open: () => Promise<{ store: EphemeralStore; expire: (key: string) => Promise<void> }>;
}

const memoryClock = new ManualClock();
const subjects: Subject[] = [
  {
    name: 'memory',
    available: async () => true,
    open: async () => {
      const store = new MemoryEphemeralStore(memoryClock);
      // Moving the clock past any TTL used below expires the key without sleeping.
      return { store, expire: async () => memoryClock.advance(3_600_000) };
    },
  },
  {
    name: 'redis',
    available: redisAvailable,
    open: async () => {
      const store = await RedisEphemeralStore.connect({ url: REDIS_URL, namespace: `conf:${Date.now()}:${Math.random()}` });
      // Redis keeps real time; expiring a key by hand is what its TTL would do.
      return { store, expire: async (key) => void (await store.client.pexpire(key, 1)) };
    },
  },
  {
    name: 'durable fallback on sqlite',
    available: async () => true,
    open: async () => {
      const clock = new ManualClock();
      const durable = openDurableStore({ sqlitePath: ':memory:' });
      await migrateToLatest(durable.db, durable.engine);
      const store = new DurableEphemeralStore(durable.db, clock);
      return { store: withClose(store, () => durable.close()), expire: async () => clock.advance(3_600_000) };
    },
  },
  {
    name: 'durable fallback on postgres',
    available: postgresAvailable,
    open: async () => {
      const clock = new ManualClock();
      const { schema, drop } = await createPgSchema();
      const durable = openDurableStore({ sqlitePath: ':memory:', databaseUrl: PG_URL, pgSchema: schema });
      await migrateToLatest(durable.db, durable.engine);
      const store = new DurableEphemeralStore(durable.db, clock);
      return {
        store: withClose(store, async () => {
          await durable.close();
          await drop();
        }),
        expire: async () => clock.advance(3_600_000),
      };
    },
  },
  {
    // Redis is configured but never answers (nothing listens there): every call goes to the durable tier.
    name: 'failover with Redis away',
    available: async () => true,
    open: async () => {
      const clock = new ManualClock();
      const durable = openDurableStore({ sqlitePath: ':memory:' });
      await migrateToLatest(durable.db, durable.engine);
      const redis = await RedisEphemeralStore.connect({ url: 'redis://127.0.0.1:1', startWithoutRedis: true });
      const store = new FailoverEphemeralStore(
        redis,
        { durable: new DurableEphemeralStore(durable.db, clock), memory: new MemoryEphemeralStore(clock) },
        clock,
      );
      // ping reports Redis itself (down); the conformance check of ping is for the tiers that serve.
      const served = Object.assign(Object.create(store) as FailoverEphemeralStore, {
        ping: async () => {},
        close: async () => {
          await store.close();
          await durable.close();
        },
      });
      return { store: served, expire: async () => clock.advance(3_600_000) };
    },
  },
];

/** The store, closing what it runs on as well. */
function withClose<S extends EphemeralStore>(store: S, after: () => Promise<void>): S {
  const close = store.close.bind(store);
  return Object.assign(store, {
    close: async () => {
      await close();
      await after();
    },
  });
}

for (const subject of subjects) {
  describe.runIf(await subject.available())(`ephemeral store conformance: ${subject.name}`, () => {
    let store: EphemeralStore;
    let expire: (key: string) => Promise<void>;
    beforeAll(async () => {
      ({ store, expire } = await subject.open());
    });
    afterAll(async () => store.close());

    it('stores JSON values with a time to live', async () => {
      await store.set('a', { x: 1, y: ['z'] }, 60_000);
      expect(await store.get('a')).toEqual({ x: 1, y: ['z'] });
      expect(await store.get('missing')).toBeUndefined();
      await expire('a');
      await waitUntilGone(store, 'a');
      expect(await store.get('a')).toBeUndefined();
    });

    it('setIfAbsent stores only once', async () => {
      expect(await store.setIfAbsent('nonce', 1, 60_000)).toBe(true);
      expect(await store.setIfAbsent('nonce', 2, 60_000)).toBe(false);
      expect(await store.get('nonce')).toBe(1);
    });

    it('take hands the value to exactly one of many racing callers', async () => {
      await store.set('flow', { id: 'f' }, 60_000);
      const results = await Promise.all(Array.from({ length: 20 }, () => store.take('flow')));
      expect(results.filter((r) => r !== undefined)).toEqual([{ id: 'f' }]);
      expect(await store.get('flow')).toBeUndefined();
    });

    it('increment counts atomically and keeps the first expiry', async () => {
      const counts = await Promise.all(Array.from({ length: 25 }, () => store.increment('counter', 60_000)));
      expect(counts.sort((a, b) => a - b)).toEqual(Array.from({ length: 25 }, (_, i) => i + 1));
      await store.delete('counter');
      expect(await store.increment('counter', 60_000)).toBe(1);
    });

    it('giveBack takes one from a live counter, never below zero, and brings back no counter that is gone', async () => {
      await store.delete('given');
      await store.giveBack('given');
      expect(await store.get('given')).toBeUndefined();
      await store.increment('given', 60_000);
      await store.increment('given', 60_000);
      await store.giveBack('given');
      expect(await store.increment('given', 60_000)).toBe(2);
      await Promise.all(Array.from({ length: 5 }, () => store.giveBack('given')));
      expect(Number(await store.get('given'))).toBe(0);
      expect(await store.increment('given', 60_000)).toBe(1);
    });

    it('raiseTo keeps the highest number, and of racing callers with one value exactly one raises it', async () => {
      expect(await store.raiseTo('mark', 5, 60_000)).toBe(true);
      expect(await store.raiseTo('mark', 5, 60_000)).toBe(false);
      expect(await store.raiseTo('mark', 3, 60_000)).toBe(false);
      expect(await store.get('mark')).toBe(5);
      const raced = await Promise.all(Array.from({ length: 20 }, () => store.raiseTo('mark', 9, 60_000)));
      expect(raced.filter(Boolean)).toHaveLength(1);
      expect(await store.raiseTo('mark', 4_294_967_295, 60_000)).toBe(true);
      expect(await store.get('mark')).toBe(4_294_967_295);
      await expire('mark');
      await waitUntilGone(store, 'mark');
      expect(await store.raiseTo('mark', 1, 60_000)).toBe(true);
    });

    it('rate limiters block after their points and can be reset', async () => {
      const limiter = store.rateLimiter({ keyPrefix: 'conf', points: 3, durationSeconds: 60, blockSeconds: 60 });
      for (let i = 0; i < 3; i++) await limiter.consume('k');
      await expect(limiter.consume('k')).rejects.toMatchObject({ msBeforeNext: expect.any(Number) });
      await limiter.delete('k');
      await expect(limiter.consume('k')).resolves.toMatchObject({ remainingPoints: 2 });
    });

    it('answers ping', async () => {
      await expect(store.ping()).resolves.toBeUndefined();
    });
  });
}

/** Redis expires a 1 ms key on its next access; memory expired it already. Bounded, no sleeping on the memory store. */
async function waitUntilGone(store: EphemeralStore, key: string): Promise<void> {
  for (let i = 0; i < 100 && (await store.get(key)) !== undefined; i++) await new Promise((r) => setTimeout(r, 2));
}
