import { readdirSync, readFileSync } from 'node:fs';

/**
 * CPU seconds by where they were spent (Linux /proc): the node's main thread,
 * its other threads (report worker, hashing threads, libuv, V8 helpers) by
 * name, the PostgreSQL server's processes, and any other processes named.
 * Two snapshots' difference says where a piece of work costs CPU.
 */
export type CpuSnapshot = Map<string, number>;

function ticks(statPath: string): number {
  try {
    const fields = readFileSync(statPath, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}

function comm(path: string): string {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return '?';
  }
}

export function cpuSnapshot(nodePid: number, others: Record<string, number> = {}): CpuSnapshot {
  const snapshot: CpuSnapshot = new Map();
  const add = (key: string, seconds: number) => snapshot.set(key, (snapshot.get(key) ?? 0) + seconds);
  let tasks: string[] = [];
  try {
    tasks = readdirSync(`/proc/${nodePid}/task`);
  } catch {
    // gone
  }
  for (const tid of tasks) {
    const seconds = ticks(`/proc/${nodePid}/task/${tid}/stat`);
    add(Number(tid) === nodePid ? 'node main thread' : `node thread ${comm(`/proc/${nodePid}/task/${tid}/comm`)}`, seconds);
  }
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const name = comm(`/proc/${entry}/comm`);
    if (name === 'postgres' || name.startsWith('postgres')) add('postgres (all processes)', ticks(`/proc/${entry}/stat`));
  }
  for (const [name, pid] of Object.entries(others)) add(name, ticks(`/proc/${pid}/stat`));
  return snapshot;
}

/** What each place spent between two snapshots, in cores (CPU seconds per second of wall time), largest first. */
export function cpuSplit(before: CpuSnapshot, after: CpuSnapshot, seconds: number): string {
  const rows: [string, number][] = [];
  for (const [key, value] of after) {
    const spent = value - (before.get(key) ?? 0);
    if (spent > 0.005 * seconds) rows.push([key, spent / seconds]);
  }
  return rows
    .sort((a, b) => b[1] - a[1])
    .map(([key, cores]) => `${key} ${cores.toFixed(2)}`)
    .join(', ');
}
