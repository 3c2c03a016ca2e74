import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { loadConfig } from '../config/config.ts';
import { createLogger } from '../http/logger.ts';
import { buildServices } from './services.ts';
import { buildApp } from './app.ts';

/** The OpenAPI document, generated from the route schemas of a throwaway in-memory app. */
export async function renderOpenApi(): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'steadfast-openapi-'));
  const config = loadConfig({ STEADFAST_DATA_DIR: dir, STEADFAST_MASTER_KEY: randomBytes(32).toString('base64') });
  const services = await buildServices(config);
  try {
    const app = await buildApp(services, { logger: createLogger('silent') });
    await app.ready();
    const doc = JSON.stringify(app.swagger(), null, 2) + '\n';
    await app.close();
    return doc;
  } finally {
    await services.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
