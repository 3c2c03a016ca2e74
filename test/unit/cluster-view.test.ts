import { describe, expect, it } from 'vitest';
import { clusterView } from '../../src/cluster/headroom.ts';
import type { MemberRecord } from '../../src/cluster/membership.ts';

const NOW = Date.UTC(2026, 5, 1);
const member = (name: string, capacity: number, extra: Partial<MemberRecord> = {}): MemberRecord => ({
  name,
  node: name.split('#')[0]!,
  state: 'up',
  capacityPerSecond: capacity,
  loadPerSecond: 0,
  lastSeen: NOW,
  heartbeatMs: 5000,
  ...extra,
});

describe('cluster headroom', () => {
  it('survives when the nodes left after losing the largest carry the peak', () => {
    const view = clusterView([member('a', 40), member('b', 40), member('c', 30)], 70, NOW);
    expect(view).toMatchObject({ capacityPerSecond: 110, capacityAfterLossPerSecond: 70, survivesNodeLoss: true });
    expect(clusterView([member('a', 40), member('b', 40), member('c', 30)], 70.5, NOW).survivesNodeLoss).toBe(false);
  });

  it('adds up the processes of one node, which are lost together', () => {
    const view = clusterView([member('a#1', 20, { loadPerSecond: 3 }), member('a#2', 20, { loadPerSecond: 4 }), member('b', 30)], 25, NOW);
    expect(view.nodes.map((n) => [n.name, n.capacityPerSecond, n.loadPerSecond])).toEqual([
      ['a', 40, 7],
      ['b', 30, 0],
    ]);
    // Losing "a" (40) leaves 30 for a peak of 25.
    expect(view).toMatchObject({ capacityAfterLossPerSecond: 30, survivesNodeLoss: true });
  });

  it('counts neither draining nor silent nodes as capacity, and never calls one node survivable', () => {
    const view = clusterView([member('a', 40), member('b', 40, { state: 'draining' }), member('c', 40, { lastSeen: NOW - 15_001 })], 0, NOW);
    expect(view.nodes.map((n) => n.state)).toEqual(['up', 'draining', 'down']);
    expect(view).toMatchObject({ capacityPerSecond: 40, survivesNodeLoss: false });
    expect(clusterView([member('a', 40), member('c', 40, { lastSeen: NOW - 15_000 })], 0, NOW).survivesNodeLoss).toBe(true);
  });

  it('takes the load of now as the peak when it is above the stored one', () => {
    expect(clusterView([member('a', 10, { loadPerSecond: 8 }), member('b', 10, { loadPerSecond: 7 })], 3, NOW)).toMatchObject({
      peakLoadPerSecond: 15,
      survivesNodeLoss: false,
    });
  });
});
