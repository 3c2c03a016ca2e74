import nodeCluster from 'node:cluster';
import { availableParallelism } from 'node:os';
import type { Logger } from 'pino';
import type { Config } from '../config/config.ts';
import { buildServices, type Services } from './services.ts';
import { buildApp, type App } from './app.ts';
import { seedDemo } from './seed-demo.ts';
import { loadSimpleWebAuthn } from '../methods/webauthn/simplewebauthn-server.ts';
import { warmQrCodes } from '../methods/qr-code-svg.ts';
import { calibrateCapacity } from '../cluster/calibrate.ts';

const COMPONENT_CHECK_MS = 15_000;

export interface RunningNode {
  app: App;
  services: Services;
  url: string;
  stop(): Promise<void>;
}

/**
 * Starts a node: storage migrated, demo tenant on an empty store, HTTP on.
 * SIGTERM and SIGINT drain it: readiness turns 503 so a load balancer stops
 * sending, in-flight requests finish, then the stores close.
 */
export async function startNode(config: Readonly<Config>, logger: Logger, print: (line: string) => void): Promise<RunningNode> {
  const services = await buildServices(config, {
    logger,
    server: true,
    // Workers of one node share its cores for hashing.
    ...(nodeCluster.isWorker ? { hasher: { concurrency: Math.max(1, Math.floor(availableParallelism() / config.workers)) } } : {}),
    onMasterKeyGenerated: (path) =>
      logger.warn(
        { path },
        'STEADFAST_MASTER_KEY is not set: generated a master key in the data dir. Back it up, or set STEADFAST_MASTER_KEY; without it the stored secrets cannot be read.',
      ),
  });
  const readiness = { draining: false };
  // Loaded now rather than in the first passkey sign-in (the CLI leaves it out to start fast).
  await loadSimpleWebAuthn();
  await warmQrCodes();
  await services.hasher.prestartThreads();
  const app = await buildApp(services, { logger, readiness });
  try {
    await seedDemo(services, config, print);
    // Measured before taking traffic, so sign-ins do not skew it (and it does not slow them).
    const capacity = config.cluster.capacityPerSecond ?? (await calibrateCapacity(services.hasher));
    services.cluster.begin(capacity);
    logger.info(
      { capacityPerSecond: Math.round(capacity * 10) / 10, calibrated: config.cluster.capacityPerSecond === undefined },
      'node capacity in password sign-ins per second',
    );
    await app.listen({ port: config.port, host: config.host });
    await services.cluster.beat();
    services.cluster.startTimer();
  } catch (err) {
    await app.close();
    await services.close();
    throw err;
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const url = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;
  logger.info({ url, durable: services.durable.engine, ephemeral: services.ephemeral.kind }, 'steadfast node is up');
  services.sweeper.start(config.sweepIntervalSeconds * 1000);
  // Reads new configuration versions and judges canaries: changes arrive without a restart.
  services.guard.start();
  // Opens an incident on the status page when a component goes down, and closes it when it is back.
  const componentTimer = setInterval(() => void services.checkComponents().catch(() => undefined), COMPONENT_CHECK_MS);
  componentTimer.unref();
  services.reportReader.warm({ lists: services.durable.engine === 'sqlite' });

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      readiness.draining = true;
      clearInterval(componentTimer);
      await services.cluster.announceState('draining').catch(() => {});
      // Downloads in flight end now (without their last chunk, so clients can tell) instead of holding the shutdown.
      await services.reportReader.close();
      await app.close();
      await services.cluster.stop();
      await services.close();
      logger.info('steadfast node stopped');
    })());
  return { app, services, url, stop };
}
