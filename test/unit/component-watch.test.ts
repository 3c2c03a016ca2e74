import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.ts';
import { migrateToLatest, openDurableStore, type DurableStore } from '../../src/store/durable/database.ts';
import { Incidents } from '../../src/incidents/incidents.ts';
import { ComponentWatch } from '../../src/incidents/component-watch.ts';

describe('automatic incidents', () => {
  let store: DurableStore;
  const clock = new ManualClock(Date.UTC(2026, 5, 1, 9));
  beforeAll(async () => {
    store = openDurableStore({ sqlitePath: ':memory:' });
    await migrateToLatest(store.db, store.engine);
  });
  afterAll(async () => store.close());

  it('open when a component goes down, once, and close when it is back', async () => {
    const incidents = new Incidents(store.db, clock);
    const watch = new ComponentWatch(incidents, clock);
    expect(await watch.check({ sms: 'up', durable: 'up' })).toEqual({ opened: [], closed: [] });
    expect(await watch.check({ sms: 'down', durable: 'up' })).toEqual({ opened: ['sms'], closed: [] });
    clock.advance(60_000);
    // A second node seeing the same outage joins the open incident.
    expect(await new ComponentWatch(incidents, clock).check({ sms: 'down' })).toEqual({ opened: ['sms'], closed: [] });
    expect(await incidents.current()).toHaveLength(1);
    expect((await incidents.current())[0]).toMatchObject({ component: 'sms', title: 'Text message codes: not working', source: 'auto', endedAt: null });
    clock.advance(60_000);
    expect(await watch.check({ sms: 'degraded' })).toEqual({ opened: [], closed: ['sms'] });
    expect(await incidents.current()).toEqual([]);
    const [past] = await incidents.recent(undefined);
    expect(past).toMatchObject({ startedAt: Date.UTC(2026, 5, 1, 9), endedAt: Date.UTC(2026, 5, 1, 9, 2) });
  });

  it('record an outage of the store that keeps them, with its real start, once the store answers', async () => {
    let reachable = false;
    const real = new Incidents(store.db, clock);
    const flaky = Object.assign(Object.create(real) as Incidents, {
      openAuto: (input: Parameters<Incidents['openAuto']>[0]) => (reachable ? real.openAuto(input) : Promise.reject(new Error('down'))),
    });
    const watch = new ComponentWatch(flaky, clock);
    const down = clock.now();
    expect(await watch.check({ durable: 'down' })).toEqual({ opened: [], closed: [] });
    clock.advance(120_000);
    reachable = true;
    expect(await watch.check({ durable: 'up' })).toEqual({ opened: [], closed: ['durable'] });
    const [incident] = await real.recent(undefined);
    expect(incident).toMatchObject({ component: 'durable', startedAt: down, endedAt: down + 120_000 });
  });
});
