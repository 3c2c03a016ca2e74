/**
 * `npm run bench -- hash-priority`
 *
 * What the bulk hashing priority buys, on the hashing threads alone: the time
 * of one hash (the quiet tenant's, `prompt`) while two others hash without a
 * pause (a surge), when those run at the same priority (as before the bulk
 * threads) and when they run `bulk`, against the same hash alone, in the same
 * run. Median and 90th percentile of 15 hashes each, three rounds.
 */
import { Argon2Threads } from '../src/directory/argon2-threads.ts';
import { ARGON2_PARAMS } from '../src/directory/password-hasher.ts';
import type { HashPriority } from '../src/directory/argon2.ts';
import { fmt } from './harness.ts';

const OPTIONS = { ...ARGON2_PARAMS, algorithm: 2 as const };
const threads = new Argon2Threads(3);
const at = (values: number[], p: number) => [...values].sort((a, b) => a - b)[Math.floor(values.length * p)]!;

async function loneHashes(n: number): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const started = performance.now();
    await threads.hash(`quiet ${i}`, OPTIONS, 'prompt');
    times.push(performance.now() - started);
    await new Promise((r) => setTimeout(r, 20));
  }
  return times;
}

async function beside(background: HashPriority | undefined, n: number): Promise<number[]> {
  let stop = false;
  const surge = async (priority: HashPriority) => {
    while (!stop) await threads.hash('surge', OPTIONS, priority);
  };
  const running = background ? [surge(background), surge(background)] : [];
  const times = await loneHashes(n);
  stop = true;
  await Promise.all(running);
  return times;
}

const show = (times: number[]) => `${fmt(at(times, 0.5))}/${fmt(at(times, 0.9))}`;
await loneHashes(3);
process.stdout.write('one hash, median/p90 ms: alone; beside two at the same priority; beside two bulk\n');
for (let round = 0; round < 3; round++) {
  const alone = await beside(undefined, 15);
  const same = await beside('prompt', 15);
  const bulk = await beside('bulk', 15);
  process.stdout.write(`round ${round + 1}: ${show(alone)}; ${show(same)}; ${show(bulk)}\n`);
}
process.exit(0);
