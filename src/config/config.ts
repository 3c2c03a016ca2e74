import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { availableParallelism } from 'node:os';
import { createRequire } from 'node:module';
import { decodeMasterKey } from '../crypto/master-key-file.ts';
import { parseDeliveryConfig, type DeliveryConfig } from '../delivery/delivery-config.ts';

export interface Config {
  port: number;
  host: string;
  dataDir: string;
  databaseUrl?: string;
  redisUrl?: string;
  /** Prefix of every Redis key, so several deployments can share one Redis. */
  redisNamespace: string;
  configFile?: string;
  /** Base64 master key from the environment; absent means "use the data dir's key file". */
  masterKey?: Buffer;
  previousMasterKeys: Buffer[];
  publicUrl: string;
  logLevel: string;
  trustProxy: boolean;
  sessions: { lifetimeMinutes: number; idleMinutes: number };
  admission: { limit: number; queueLimit: number; maxWaitMs: number };
  nodeName: string;
  /** Cluster membership: heartbeat (and load bucket) length, the peak-load window, a capacity that skips calibration. */
  cluster: { heartbeatMs: number; peakWindowMs: number; capacityPerSecond?: number };
  /** Processes serving HTTP on this node (node:cluster); more than one needs Redis. */
  workers: number;
  /** Out-of-band code delivery: providers per channel, code settings, send limits (config file only). */
  delivery: DeliveryConfig;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration: ${problems.join('; ')}`);
  }
}

type Env = Record<string, string | undefined>;

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/**
 * Reads the configuration from the environment and the optional config file,
 * validates all of it and reports every problem at once, then freezes it.
 * The file (JSON, or YAML when it ends in .yaml or .yml) holds the same
 * settings as the environment, in camelCase, plus `delivery`; the environment
 * wins where both are set.
 */
export function loadConfig(env: Env = process.env): Readonly<Config> {
  const problems: string[] = [];
  const file = readConfigFile(env.STEADFAST_CONFIG, problems);
  const pick = (envName: string, fileKey: string): string | undefined => {
    const fromEnv = env[envName];
    if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
    const fromFile = file[fileKey];
    return fromFile === undefined || fromFile === null ? undefined : String(fromFile);
  };

  const int = (name: string, fileKey: string, fallback: number, min: number, max: number): number => {
    const raw = pick(name, fileKey);
    if (raw === undefined) return fallback;
    const value = Number(raw);
    if (!Number.isInteger(value) || value < min || value > max) {
      problems.push(`${name} must be a whole number from ${min} to ${max}, not "${raw}"`);
      return fallback;
    }
    return value;
  };

  const port = int('PORT', 'port', 8080, 0, 65535);
  const host = pick('HOST', 'host') ?? '127.0.0.1';
  const dataDir = resolve(pick('STEADFAST_DATA_DIR', 'dataDir') ?? './data');

  const databaseUrl = pick('STEADFAST_DATABASE_URL', 'databaseUrl');
  if (databaseUrl && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    problems.push('STEADFAST_DATABASE_URL must be a postgres:// URL (leave it unset for the embedded SQLite store)');
  }
  const redisUrl = pick('STEADFAST_REDIS_URL', 'redisUrl');
  if (redisUrl && !/^rediss?:\/\//.test(redisUrl)) problems.push('STEADFAST_REDIS_URL must be a redis:// or rediss:// URL');
  const redisNamespace = pick('STEADFAST_REDIS_NAMESPACE', 'redisNamespace') ?? 'sf';
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(redisNamespace)) problems.push('STEADFAST_REDIS_NAMESPACE must be 1 to 64 letters, digits, dots, dashes or underscores');

  let masterKey: Buffer | undefined;
  const masterKeyText = env.STEADFAST_MASTER_KEY;
  if (masterKeyText) {
    try {
      masterKey = decodeMasterKey(masterKeyText, 'STEADFAST_MASTER_KEY');
    } catch (err) {
      problems.push((err as Error).message);
    }
  }
  const previousMasterKeys: Buffer[] = [];
  for (const [i, part] of (env.STEADFAST_PREVIOUS_MASTER_KEYS ?? '').split(',').filter(Boolean).entries()) {
    try {
      previousMasterKeys.push(decodeMasterKey(part, `STEADFAST_PREVIOUS_MASTER_KEYS entry ${i + 1}`));
    } catch (err) {
      problems.push((err as Error).message);
    }
  }

  const publicUrlRaw = pick('STEADFAST_PUBLIC_URL', 'publicUrl') ?? `http://localhost:${port}`;
  let publicUrl = publicUrlRaw.replace(/\/+$/, '');
  try {
    const url = new URL(publicUrlRaw);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('scheme');
    publicUrl = url.origin + url.pathname.replace(/\/+$/, '');
  } catch {
    problems.push(`STEADFAST_PUBLIC_URL must be an http(s) URL, not "${publicUrlRaw}"`);
  }

  const logLevel = pick('STEADFAST_LOG_LEVEL', 'logLevel') ?? 'info';
  if (!LOG_LEVELS.includes(logLevel)) problems.push(`STEADFAST_LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}`);

  const trustProxyRaw = pick('STEADFAST_TRUST_PROXY', 'trustProxy') ?? 'false';
  if (!['true', 'false'].includes(trustProxyRaw)) problems.push('STEADFAST_TRUST_PROXY must be true or false');

  const lifetimeMinutes = int('STEADFAST_SESSION_LIFETIME_MINUTES', 'sessionLifetimeMinutes', 12 * 60, 5, 60 * 24 * 30);
  const idleMinutes = int('STEADFAST_SESSION_IDLE_MINUTES', 'sessionIdleMinutes', 60, 1, 60 * 24 * 30);
  if (idleMinutes > lifetimeMinutes) problems.push('STEADFAST_SESSION_IDLE_MINUTES must not exceed STEADFAST_SESSION_LIFETIME_MINUTES');

  // Enough requests in flight to keep every core and the hashing threads busy,
  // few enough that each is answered well inside a client's patience.
  const admissionLimit = int('STEADFAST_ADMISSION_LIMIT', 'admissionLimit', 8 * availableParallelism(), 1, 1_000_000);
  const admissionQueue = int('STEADFAST_ADMISSION_QUEUE', 'admissionQueue', 4 * admissionLimit, 0, 1_000_000);
  const admissionMaxWaitMs = int('STEADFAST_ADMISSION_MAX_WAIT_MS', 'admissionMaxWaitMs', 30, 1, 60_000);

  const heartbeatSeconds = int('STEADFAST_HEARTBEAT_SECONDS', 'heartbeatSeconds', 5, 1, 60);
  const peakWindowHours = int('STEADFAST_PEAK_WINDOW_HOURS', 'peakWindowHours', 7 * 24, 1, 366 * 24);
  const capacityRaw = pick('STEADFAST_CAPACITY_PER_SECOND', 'capacityPerSecond');
  const capacityPerSecond = capacityRaw === undefined ? undefined : Number(capacityRaw);
  if (capacityPerSecond !== undefined && !(Number.isFinite(capacityPerSecond) && capacityPerSecond > 0 && capacityPerSecond <= 1_000_000)) {
    problems.push(`STEADFAST_CAPACITY_PER_SECOND must be a number of password sign-ins per second above 0, not "${capacityRaw}"`);
  }
  const workers = int('STEADFAST_WORKERS', 'workers', 1, 1, 64);
  // Several processes must share flows, one-time codes and counters: in-process
  // state would let a flow started in one process be unknown to the next.
  if (workers > 1 && !redisUrl) problems.push('STEADFAST_WORKERS above 1 needs STEADFAST_REDIS_URL: the processes must share sign-in flows, codes and counters');

  const delivery = parseDeliveryConfig(file.delivery, problems);

  if (problems.length > 0) throw new ConfigError(problems);
  return Object.freeze({
    port,
    host,
    dataDir,
    ...(databaseUrl ? { databaseUrl } : {}),
    ...(redisUrl ? { redisUrl } : {}),
    redisNamespace,
    ...(env.STEADFAST_CONFIG ? { configFile: env.STEADFAST_CONFIG } : {}),
    ...(masterKey ? { masterKey } : {}),
    previousMasterKeys,
    publicUrl,
    logLevel,
    trustProxy: trustProxyRaw === 'true',
    sessions: Object.freeze({ lifetimeMinutes, idleMinutes }),
    admission: Object.freeze({ limit: admissionLimit, queueLimit: admissionQueue, maxWaitMs: admissionMaxWaitMs }),
    nodeName: env.STEADFAST_NODE_NAME || `${process.env.HOSTNAME ?? 'node'}:${process.pid}`,
    cluster: Object.freeze({ heartbeatMs: heartbeatSeconds * 1000, peakWindowMs: peakWindowHours * 3_600_000, ...(capacityPerSecond !== undefined ? { capacityPerSecond } : {}) }),
    workers,
    delivery,
  });
}

export function sqlitePath(config: Pick<Config, 'dataDir'>): string {
  return join(config.dataDir, 'steadfast.db');
}

function readConfigFile(path: string | undefined, problems: string[]): Record<string, unknown> {
  if (!path) return {};
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    problems.push(`STEADFAST_CONFIG: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    return {};
  }
  const yaml = /\.ya?ml$/i.test(path);
  try {
    // The YAML parser loads only for a YAML file: every CLI command reads the configuration.
    const parsed: unknown = yaml ? (createRequire(import.meta.url)('yaml') as typeof import('yaml')).parse(text) : JSON.parse(text);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
    return parsed as Record<string, unknown>;
  } catch {
    problems.push(`STEADFAST_CONFIG: ${path} is not a ${yaml ? 'YAML mapping' : 'JSON object'}`);
    return {};
  }
}
