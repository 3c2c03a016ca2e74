import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Services } from '../server/services.ts';
import { NODE_SCOPE, tenantScope, type ConfigVersion } from '../config/config-versions.ts';
import { AppError } from '../errors/app-error.ts';

/** A command's refusal: its lines go to standard error, one problem a line. */
export class ConfigRefused extends Error {
  constructor(readonly lines: string[]) {
    super(lines[0] ?? 'refused');
  }
}

/** Reads a configuration (or policy) file: JSON, or YAML when it ends in .yaml or .yml. */
export function readDocument(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigRefused([`cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`]);
  }
  const yaml = /\.ya?ml$/i.test(path);
  try {
    return yaml ? (createRequire(import.meta.url)('yaml') as typeof import('yaml')).parse(text) : JSON.parse(text);
  } catch {
    throw new ConfigRefused([`${path} is not valid ${yaml ? 'YAML' : 'JSON'}`]);
  }
}

async function scopeOf(services: Services, tenantSlug: string | undefined): Promise<string> {
  if (!tenantSlug) return NODE_SCOPE;
  const tenant = await services.tenants.findBySlug(tenantSlug);
  if (!tenant) throw new ConfigRefused([`no tenant "${tenantSlug}"`]);
  return tenantScope(tenant.id);
}

/** A version for the terminal: when, who, the rollout and the diff (secrets read "(sealed)"). */
export function versionSummary(v: ConfigVersion, withDocument = false) {
  return {
    version: v.version,
    state: v.state,
    appliedAt: new Date(v.createdAt).toISOString(),
    by: v.actor,
    ...(v.canaryPercent > 0 ? { canaryPercent: v.canaryPercent, bakeSeconds: v.bakeSeconds } : {}),
    ...(v.decidedAt !== null ? { decidedAt: new Date(v.decidedAt).toISOString() } : {}),
    ...(v.reason ? { reason: v.reason } : {}),
    changes: v.diff.map((c) => `${c.path}: ${c.before ?? '(none)'} → ${c.after ?? '(none)'}`),
    ...(withDocument ? { document: v.document } : {}),
  };
}

/** `config apply FILE`: validate in full, store the version, on a canary or to everyone. */
export async function configApply(services: Services, file: string, opts: { canary?: number; bake?: number; tenant?: string }) {
  const document = readDocument(file);
  try {
    if (opts.tenant) {
      const tenant = await services.tenants.findBySlug(opts.tenant);
      if (!tenant) throw new ConfigRefused([`no tenant "${opts.tenant}"`]);
      return versionSummary(await services.rollouts.applyPolicy(tenant, document, { canaryPercent: opts.canary, bakeSeconds: opts.bake, actor: 'cli' }));
    }
    return versionSummary(await services.rollouts.applyNode(document, { canaryPercent: opts.canary, bakeSeconds: opts.bake, actor: 'cli' }));
  } catch (err) {
    // Every problem on its own line, so a long list stays readable.
    if (err instanceof AppError && (err.code === 'invalid-config' || err.code === 'invalid-policy')) {
      const problems = ((err.extra as { problems?: string[] } | undefined)?.problems ?? [err.message]).map((p) => `  - ${p}`);
      throw new ConfigRefused([
        `${file}: nothing applied; correct the ${problems.length === 1 ? 'problem' : `${problems.length} problems`} above`,
        ...problems,
      ]);
    }
    throw err;
  }
}

export async function configStatus(services: Services, opts: { tenant?: string; history?: number }) {
  const scope = await scopeOf(services, opts.tenant);
  const status = await services.rollouts.status(scope);
  return {
    scope: opts.tenant ? `policy of ${opts.tenant}` : 'node settings',
    lastGood: status.lastGood ? versionSummary(status.lastGood) : { version: 0, note: 'the start-up configuration (file and environment)' },
    canary: status.canary ? versionSummary(status.canary) : null,
    history: status.history.slice(0, opts.history ?? 10).map((v) => versionSummary(v)),
  };
}

export async function configRollback(services: Services, version: number | undefined, opts: { tenant?: string; reason?: string }) {
  const scope = await scopeOf(services, opts.tenant);
  return versionSummary(await services.rollouts.rollback(scope, { version, actor: 'cli', reason: opts.reason ?? 'rolled back by an operator' }));
}

export async function configShow(services: Services, version: number | undefined, opts: { tenant?: string }) {
  const scope = await scopeOf(services, opts.tenant);
  const v = version === undefined ? (await services.rollouts.status(scope)).lastGood : await services.configVersions.get(scope, version);
  if (!v) throw new ConfigRefused([version === undefined ? 'no version was ever applied: the start-up configuration runs' : `there is no version ${version}`]);
  return versionSummary(v, true);
}
