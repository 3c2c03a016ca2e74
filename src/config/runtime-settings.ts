import { parseDeliveryConfig, type DeliveryConfig } from '../delivery/delivery-config.ts';
import type { AdmissionOptions } from '../admission/admission-controller.ts';

/**
 * The settings a node can change while it runs, without a restart: delivery
 * providers, code settings and send limits, admission limits and cache times.
 * They come in versions (`ConfigVersions`); the start-up configuration (file
 * and environment) is version 0, the baseline every section left out of a
 * version falls back to.
 */
export interface RuntimeSettings {
  delivery: DeliveryConfig;
  admission: AdmissionOptions;
  cache: {
    /** How long a node keeps a tenant (and its policy) before reading it again. */
    tenantSeconds: number;
  };
}

/** The sections a runtime configuration document may hold. */
export const RUNTIME_SECTIONS = ['delivery', 'admission', 'cache'] as const;

type Raw = Record<string, unknown>;
const isObject = (v: unknown): v is Raw => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The start-up configuration's runtime part: version 0. */
export function baselineSettings(config: { delivery: DeliveryConfig; admission: AdmissionOptions }): RuntimeSettings {
  return { delivery: config.delivery, admission: { ...config.admission }, cache: { tenantSeconds: DEFAULT_TENANT_CACHE_SECONDS } };
}

export const DEFAULT_TENANT_CACHE_SECONDS = 5;

/**
 * Validates a whole runtime configuration document (secrets already opened)
 * and names every problem, each in one sentence saying where it is. A section
 * left out keeps the baseline's value; inside a section, the document is
 * complete (a delivery section replaces the whole delivery configuration), so
 * what a version holds is what runs.
 */
export function parseRuntimeSettings(raw: unknown, baseline: RuntimeSettings): { settings: RuntimeSettings; problems: string[] } {
  const problems: string[] = [];
  if (!isObject(raw)) return { settings: baseline, problems: ['the configuration must be a JSON (or YAML) object with delivery, admission or cache'] };
  for (const key of Object.keys(raw)) {
    if (!(RUNTIME_SECTIONS as readonly string[]).includes(key))
      problems.push(
        `${key} is not a runtime setting (expected ${RUNTIME_SECTIONS.join(', ')}; start-up settings such as ports and store URLs stay in the environment)`,
      );
  }
  const delivery = raw.delivery === undefined ? baseline.delivery : parseDeliveryConfig(raw.delivery, problems);
  const admission = { ...baseline.admission };
  if (raw.admission !== undefined) {
    const a = section(raw.admission, 'admission', ['limit', 'queueLimit', 'maxWaitMs'], problems);
    admission.limit = int(a, 'admission.limit', admission.limit, 1, 1_000_000, problems);
    admission.queueLimit = int(a, 'admission.queueLimit', a.limit === undefined ? admission.queueLimit : 4 * admission.limit, 0, 1_000_000, problems);
    admission.maxWaitMs = int(a, 'admission.maxWaitMs', admission.maxWaitMs, 1, 60_000, problems);
  }
  const cache = { ...baseline.cache };
  if (raw.cache !== undefined) {
    const c = section(raw.cache, 'cache', ['tenantSeconds'], problems);
    // Longer than a minute and a policy change takes that long to reach a node; zero reads the database on every request.
    cache.tenantSeconds = int(c, 'cache.tenantSeconds', cache.tenantSeconds, 1, 60, problems);
  }
  return { settings: { delivery, admission, cache }, problems };
}

function section(value: unknown, name: string, keys: string[], problems: string[]): Raw {
  if (!isObject(value)) {
    problems.push(`${name} must be an object with ${keys.join(', ')}`);
    return {};
  }
  for (const key of Object.keys(value)) if (!keys.includes(key)) problems.push(`${name}.${key} is not a setting (expected ${keys.join(', ')})`);
  return value;
}

function int(obj: Raw, name: string, fallback: number, min: number, max: number, problems: string[]): number {
  const value = obj[name.slice(name.indexOf('.') + 1)];
  if (value === undefined) return fallback;
  if (typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max) return value;
  problems.push(`${name} must be a whole number from ${min} to ${max}, not ${JSON.stringify(value)}`);
  return fallback;
}
