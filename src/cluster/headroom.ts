/** The cluster as an operator needs to see it, from member records and the observed peak (pure). */
import type { MemberRecord, MemberState } from './membership.ts';

export interface NodeView {
  name: string;
  state: MemberState;
  capacityPerSecond: number;
  loadPerSecond: number;
  /** ISO time of the node's latest heartbeat. */
  lastSeen: string;
}

export interface ClusterView {
  nodes: NodeView[];
  /** Password sign-ins per second the nodes that are up can carry together. */
  capacityPerSecond: number;
  /** The busiest interval of the window (or now, if busier), in password checks per second. */
  peakLoadPerSecond: number;
  /** Whether the nodes left after losing the largest one still carry the peak. */
  survivesNodeLoss: boolean;
  /** The capacity left after losing the largest node. */
  capacityAfterLossPerSecond: number;
}

/** Heartbeats missed before a member counts as down. */
export const MISSED_BEATS_FOR_DOWN = 3;

const round = (n: number) => Math.round(n * 10) / 10;

function stateOf(record: MemberRecord, now: number): MemberState {
  if (now - record.lastSeen > MISSED_BEATS_FOR_DOWN * record.heartbeatMs) return 'down';
  return record.state;
}

/**
 * The cluster as an operator needs to see it: each node (its processes added
 * up), what the nodes that are up can carry, the peak they must carry, and
 * whether that still holds after losing the largest node. One node alone
 * never survives losing a node, whatever its load.
 */
export function clusterView(members: MemberRecord[], peakPerSecond: number, now: number): ClusterView {
  const byNode = new Map<string, MemberRecord[]>();
  for (const m of members) byNode.set(m.node, [...(byNode.get(m.node) ?? []), m]);
  const nodes: NodeView[] = [...byNode.entries()]
    .map(([name, processes]) => {
      const states = processes.map((p) => stateOf(p, now));
      const live = processes.filter((_, i) => states[i] !== 'down');
      const state: MemberState = states.includes('up') ? 'up' : states.includes('draining') ? 'draining' : 'down';
      return {
        name,
        state,
        capacityPerSecond: round(live.reduce((n, p) => n + p.capacityPerSecond, 0)),
        loadPerSecond: round(live.reduce((n, p) => n + p.loadPerSecond, 0)),
        lastSeen: new Date(Math.max(...processes.map((p) => p.lastSeen))).toISOString(),
      };
    })
    .sort((a, b) => a.name.localeCompare(b.name));
  const up = nodes.filter((n) => n.state === 'up');
  const capacity = up.reduce((n, node) => n + node.capacityPerSecond, 0);
  const largest = Math.max(0, ...up.map((n) => n.capacityPerSecond));
  const loadNow = nodes.reduce((n, node) => n + node.loadPerSecond, 0);
  const peak = Math.max(peakPerSecond, loadNow);
  const afterLoss = capacity - largest;
  return {
    nodes,
    capacityPerSecond: round(capacity),
    peakLoadPerSecond: round(peak),
    survivesNodeLoss: up.length >= 2 && afterLoss >= peak,
    capacityAfterLossPerSecond: round(afterLoss),
  };
}
