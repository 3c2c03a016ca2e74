import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { loadConfig, type Config } from '../../src/config/config.ts';
import { PG_URL, REDIS_URL, createPgSchema, postgresAvailable, redisAvailable } from './services-available.ts';

/**
 * The storage combinations every integration suite runs on: the embedded
 * default, and the cluster setup on a real PostgreSQL and Redis.
 */
export interface Backend {
  name: string;
  config: Readonly<Config>;
  pgSchema?: string;
  redisNamespace?: string;
  cleanup(): Promise<void>;
}

export interface BackendSpec {
  name: 'sqlite+memory' | 'postgres+redis';
  available(): Promise<boolean>;
  create(env?: Record<string, string>): Promise<Backend>;
}

export const testMasterKey = () => randomBytes(32).toString('base64');

export const sqliteMemory: BackendSpec = {
  name: 'sqlite+memory',
  available: async () => true,
  async create(env = {}) {
    const dir = mkdtempSync(join(tmpdir(), 'steadfast-test-'));
    const config = loadConfig({ STEADFAST_DATA_DIR: dir, STEADFAST_MASTER_KEY: testMasterKey(), PORT: '0', STEADFAST_LOG_LEVEL: 'silent', ...env });
    return { name: 'sqlite+memory', config, cleanup: async () => rmSync(dir, { recursive: true, force: true }) };
  },
};

export const postgresRedis: BackendSpec = {
  name: 'postgres+redis',
  available: async () => (await postgresAvailable()) && (await redisAvailable()),
  async create(env = {}) {
    const dir = mkdtempSync(join(tmpdir(), 'steadfast-test-'));
    const { schema, drop } = await createPgSchema();
    const config = loadConfig({
      STEADFAST_DATA_DIR: dir,
      STEADFAST_MASTER_KEY: testMasterKey(),
      STEADFAST_DATABASE_URL: PG_URL,
      STEADFAST_REDIS_URL: REDIS_URL,
      PORT: '0',
      STEADFAST_LOG_LEVEL: 'silent',
      ...env,
    });
    return {
      name: 'postgres+redis',
      config,
      pgSchema: schema,
      redisNamespace: `test:${schema}`,
      cleanup: async () => {
        await drop();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  },
};

export const backends: BackendSpec[] = [sqliteMemory, postgresRedis];
