/**
 * Where a benchmark's CPU went (Linux /proc): the server's event loop, its
 * hashing threads (told apart by their lower priority), its other threads, the
 * load generator, and everything else on the machine, in cores over a window.
 * For reading a run, not a target: on a shared machine it shows how much of
 * the two cores the server really had.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';

const TICKS_PER_SECOND = 100;

interface Sample {
  at: number;
  eventLoop: number;
  hashing: number;
  otherThreads: number;
  generator: number;
  machine: number;
}

export interface CpuUse {
  /** Cores busy on average over the window. */
  eventLoop: number;
  hashing: number;
  otherThreads: number;
  generator: number;
  /** Everything else on the machine (other work, the bench's own orchestration). */
  elsewhere: number;
  cores: number;
}

/** utime + stime of one /proc stat line, and its nice value. */
function ticksAndNice(stat: string): { ticks: number; nice: number } {
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { ticks: Number(fields[11]) + Number(fields[12]), nice: Number(fields[16]) };
}

function read(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

function sample(serverPid: number, generatorPid: number): Sample {
  let eventLoop = 0;
  let hashing = 0;
  let otherThreads = 0;
  let tids: string[] = [];
  try {
    tids = readdirSync(`/proc/${serverPid}/task`);
  } catch {
    tids = [];
  }
  for (const tid of tids) {
    const stat = read(`/proc/${serverPid}/task/${tid}/stat`);
    if (!stat) continue;
    const { ticks, nice } = ticksAndNice(stat);
    if (Number(tid) === serverPid) eventLoop += ticks;
    else if (nice > 0) hashing += ticks;
    else otherThreads += ticks;
  }
  const generatorStat = read(`/proc/${generatorPid}/stat`);
  const generator = generatorStat ? ticksAndNice(generatorStat).ticks : 0;
  // The first line of /proc/stat: user nice system idle iowait irq softirq steal...
  const cpuLine = (read('/proc/stat') ?? '').split('\n')[0]!.split(/\s+/).slice(1).map(Number);
  const machine = cpuLine.reduce((sum, n, i) => (i === 3 || i === 4 ? sum : sum + n), 0);
  return { at: performance.now(), eventLoop, hashing, otherThreads, generator, machine };
}

/** Starts measuring; `stop()` gives the cores used by each part since. */
export function measureCpu(serverPid: number, generatorPid: number): { stop(): CpuUse } {
  const start = sample(serverPid, generatorPid);
  return {
    stop() {
      const end = sample(serverPid, generatorPid);
      const seconds = (end.at - start.at) / 1000;
      const cores = (key: keyof Omit<Sample, 'at'>) => (end[key] - start[key]) / TICKS_PER_SECOND / seconds;
      const known = cores('eventLoop') + cores('hashing') + cores('otherThreads') + cores('generator');
      return {
        eventLoop: cores('eventLoop'),
        hashing: cores('hashing'),
        otherThreads: cores('otherThreads'),
        generator: cores('generator'),
        elsewhere: Math.max(0, cores('machine') - known),
        cores: cpus().length,
      };
    },
  };
}
