/** Configuration from `STEADFAST_*` variables and an optional file, validated whole at start (every problem named), then frozen. */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { availableParallelism } from 'node:os';
import { createRequire } from 'node:module';
import { decodeMasterKey } from '../crypto/master-key-file.ts';
import { parseDeliveryConfig, type DeliveryConfig } from '../delivery/delivery-config.ts';
import { DEFAULT_PUSH_SERVICES } from '../methods/push/web-push-sender.ts';

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
  /**
   * Which proxies in front may name the client (X-Forwarded-For): none
   * (`false`), the nearest N hops, or these addresses and networks.
   */
  trustProxy: false | number | string[];
  sessions: { lifetimeMinutes: number; idleMinutes: number };
  /** Per class: each class has a lane of this many slots, queue places and this maximum wait. */
  admission: { limit: number; queueLimit: number; maxWaitMs: number };
  /** The hashing pool: Argon2id hashes at once, waiting at most, and the longest wait. */
  hashing: { concurrency: number; queueLimit: number; maxWaitMs: number };
  nodeName: string;
  /** Bearer token for /metrics and the detailed status from other hosts (loopback callers need none). */
  opsToken?: string;
  /** How often the node removes expired records (0: never; another node or a command does it). */
  sweepIntervalSeconds: number;
  /** Cluster membership: heartbeat (and load bucket) length, the peak-load window, a capacity that skips calibration. */
  cluster: { heartbeatMs: number; peakWindowMs: number; capacityPerSecond?: number };
  /** Processes serving HTTP on this node (node:cluster); more than one needs Redis. */
  workers: number;
  /** Out-of-band code delivery: providers per channel, code settings, send limits (config file only). */
  delivery: DeliveryConfig;
  /**
   * Web Push to the Steadfast Authenticator: the push services (hosts and their
   * subdomains) the server may send to, and the operator contact (VAPID `sub`).
   */
  push: { services: readonly string[]; contact: string };
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

  const trustProxy = parseTrustProxy(pick('STEADFAST_TRUST_PROXY', 'trustProxy') ?? 'false', problems);

  const lifetimeMinutes = int('STEADFAST_SESSION_LIFETIME_MINUTES', 'sessionLifetimeMinutes', 12 * 60, 5, 60 * 24 * 30);
  const idleMinutes = int('STEADFAST_SESSION_IDLE_MINUTES', 'sessionIdleMinutes', 60, 1, 60 * 24 * 30);
  if (idleMinutes > lifetimeMinutes) problems.push('STEADFAST_SESSION_IDLE_MINUTES must not exceed STEADFAST_SESSION_LIFETIME_MINUTES');

  // Enough requests in flight to keep every core and the hashing threads busy,
  // few enough that each is answered well inside a client's patience.
  const admissionLimit = int('STEADFAST_ADMISSION_LIMIT', 'admissionLimit', 8 * availableParallelism(), 1, 1_000_000);
  const admissionQueue = int('STEADFAST_ADMISSION_QUEUE', 'admissionQueue', 4 * admissionLimit, 0, 1_000_000);
  const admissionMaxWaitMs = int('STEADFAST_ADMISSION_MAX_WAIT_MS', 'admissionMaxWaitMs', 30, 1, 60_000);
  // One hash per core; a short queue keeps the cores busy between arrivals. The
  // maximum wait is long next to a hash (tens of ms) so that a slow, loaded
  // machine still lets a tenant's next turn in; the queue limit bounds the work.
  // Every sign-in waiting here also holds a slot of its lane, so the lane
  // (STEADFAST_ADMISSION_LIMIT) should stay larger than running + queued.
  const hashingConcurrency = int('STEADFAST_HASHING_CONCURRENCY', 'hashingConcurrency', availableParallelism(), 1, 1024);
  const hashingQueue = int('STEADFAST_HASHING_QUEUE', 'hashingQueue', 4 * hashingConcurrency, 0, 1_000_000);
  const hashingMaxWaitMs = int('STEADFAST_HASHING_MAX_WAIT_MS', 'hashingMaxWaitMs', 1000, 1, 60_000);

  const opsToken = env.STEADFAST_OPS_TOKEN;
  if (opsToken !== undefined && opsToken !== '' && opsToken.length < 32)
    problems.push('STEADFAST_OPS_TOKEN must be at least 32 characters (e.g. openssl rand -base64 32)');
  const sweepIntervalSeconds = int('STEADFAST_SWEEP_INTERVAL_SECONDS', 'sweepIntervalSeconds', 60, 0, 86_400);

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
  if (workers > 1 && !redisUrl)
    problems.push('STEADFAST_WORKERS above 1 needs STEADFAST_REDIS_URL: the processes must share sign-in flows, codes and counters');

  const delivery = parseDeliveryConfig(file.delivery, problems);

  // The browsers' push services by default; STEADFAST_PUSH_SERVICES replaces the list (a closed network's own, or a test's).
  const pushServicesRaw = pick('STEADFAST_PUSH_SERVICES', 'pushServices');
  const pushServices =
    pushServicesRaw === undefined
      ? [...DEFAULT_PUSH_SERVICES]
      : pushServicesRaw
          .split(',')
          .map((h) => h.trim().toLowerCase())
          .filter(Boolean);
  for (const host of pushServices)
    if (!/^[a-z0-9.-]+$/.test(host) && host !== '[::1]') problems.push(`STEADFAST_PUSH_SERVICES must list host names, not "${host}"`);
  const pushContact = pick('STEADFAST_PUSH_CONTACT', 'pushContact') ?? (publicUrl.startsWith('https:') ? publicUrl : 'mailto:operator@localhost');
  if (!/^(mailto:|https:)/.test(pushContact)) problems.push(`STEADFAST_PUSH_CONTACT must be a mailto: or https: URL, not "${pushContact}"`);

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
    ...(opsToken ? { opsToken } : {}),
    previousMasterKeys,
    publicUrl,
    logLevel,
    trustProxy,
    sessions: Object.freeze({ lifetimeMinutes, idleMinutes }),
    admission: Object.freeze({ limit: admissionLimit, queueLimit: admissionQueue, maxWaitMs: admissionMaxWaitMs }),
    hashing: Object.freeze({ concurrency: hashingConcurrency, queueLimit: hashingQueue, maxWaitMs: hashingMaxWaitMs }),
    nodeName: env.STEADFAST_NODE_NAME || `${process.env.HOSTNAME ?? 'node'}:${process.pid}`,
    sweepIntervalSeconds,
    cluster: Object.freeze({
      heartbeatMs: heartbeatSeconds * 1000,
      peakWindowMs: peakWindowHours * 3_600_000,
      ...(capacityPerSecond !== undefined ? { capacityPerSecond } : {}),
    }),
    workers,
    delivery,
    push: Object.freeze({ services: Object.freeze(pushServices), contact: pushContact }),
  });
}

const IPV4_CIDR = /^(\d{1,3})(\.\d{1,3}){3}(\/(\d|[12]\d|3[0-2]))?$/;
const IPV6_CIDR = /^[0-9a-f:]*:[0-9a-f:.]*(\/(\d{1,2}|1[01]\d|12[0-8]))?$/i;

/**
 * STEADFAST_TRUST_PROXY: `false`, a number of proxy hops, or a comma-separated
 * list of proxy addresses and networks (CIDR). `true`, "every hop", is refused:
 * it lets any client write its own address into X-Forwarded-For and so slip
 * every per-source limit.
 */
function parseTrustProxy(raw: string, problems: string[]): false | number | string[] {
  const text = raw.trim();
  if (text === 'false' || text === '' || text === '0') return false;
  if (text === 'true') {
    problems.push(
      'STEADFAST_TRUST_PROXY=true would trust every hop, so any client could choose its own address; give the number of proxies in front (e.g. 1) or their addresses and networks (e.g. 10.0.0.0/8,192.168.1.10)',
    );
    return false;
  }
  if (/^\d+$/.test(text)) {
    const hops = Number(text);
    if (hops > 10) problems.push(`STEADFAST_TRUST_PROXY: ${hops} proxy hops is more than any deployment has; give the number of proxies in front of Steadfast`);
    return hops;
  }
  const entries = text
    .split(',')
    .map((e) => e.trim())
    .filter(Boolean);
  const bad = entries.filter((e) => !IPV4_CIDR.test(e) && !IPV6_CIDR.test(e) && !['loopback', 'linklocal', 'uniquelocal'].includes(e));
  if (bad.length > 0)
    problems.push(`STEADFAST_TRUST_PROXY must be false, a number of hops, or addresses and networks (CIDR); these are not: ${bad.join(', ')}`);
  return entries;
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
