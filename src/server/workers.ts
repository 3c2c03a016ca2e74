/** Several worker processes per node sharing one port (`STEADFAST_WORKERS`), restarted when one dies. */
import nodeCluster, { type Worker } from 'node:cluster';
import type { Logger } from 'pino';
import type { Config } from '../config/config.ts';
import { buildServices } from './services.ts';
import { seedDemo } from './seed-demo.ts';
import { calibrateCapacity } from '../cluster/calibrate.ts';

/** A worker that dies is started again after this long, so a crash loop does not spin. */
const RESTART_AFTER_MS = 1000;

/**
 * STEADFAST_WORKERS > 1: this process becomes the node's primary. It migrates,
 * seeds, measures the node's capacity once, then forks the workers, which all
 * listen on the same port (node:cluster hands out connections in turn). Each
 * worker is a full node process on the shared stores (Redis is required, see
 * config); it announces itself as `{node}#{n}` with its share of the capacity.
 * SIGTERM/SIGINT drain every worker; a worker that dies otherwise is restarted.
 */
export async function startPrimary(config: Readonly<Config>, logger: Logger, print: (line: string) => void): Promise<void> {
  const services = await buildServices(config, {
    logger,
    onMasterKeyGenerated: (path) => logger.warn({ path }, 'STEADFAST_MASTER_KEY is not set: generated a master key in the data dir. Back it up.'),
  });
  let capacity: number;
  try {
    await seedDemo(services, config, print);
    capacity = config.cluster.capacityPerSecond ?? (await calibrateCapacity(services.hasher));
  } finally {
    await services.close();
  }
  logger.info({ workers: config.workers, capacityPerSecond: Math.round(capacity * 10) / 10 }, 'starting worker processes');

  const env = {
    // One name for the node, whatever each worker's pid.
    STEADFAST_NODE_NAME: config.nodeName,
    STEADFAST_CAPACITY_PER_SECOND: String(capacity / config.workers),
  };
  let stopping = false;
  const fork = () => nodeCluster.fork(env);
  nodeCluster.on('exit', (worker: Worker, code, signal) => {
    if (stopping) return;
    logger.error({ worker: worker.id, code, signal }, 'worker process died; starting another');
    setTimeout(() => {
      if (!stopping) fork();
    }, RESTART_AFTER_MS).unref();
  });
  for (let i = 0; i < config.workers; i++) fork();

  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'draining worker processes');
    const workers = Object.values(nodeCluster.workers ?? {}).filter((w): w is Worker => Boolean(w));
    let left = workers.length;
    if (left === 0) process.exit(0);
    let failed = false;
    for (const worker of workers) {
      worker.once('exit', (code) => {
        failed ||= code !== 0;
        if (--left === 0) process.exit(failed ? 1 : 0);
      });
      worker.process.kill('SIGTERM');
    }
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}

/** In a worker: the primary going away (killed) takes the worker with it, as it would take a single-process node. */
export function exitWithPrimary(): void {
  process.once('disconnect', () => process.exit(1));
}
