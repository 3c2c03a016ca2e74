import type { AuditLog } from '../activity/audit-log.ts';
import type { Tenants } from '../directory/tenants.ts';
import { isTokenActor } from '../directory/admin-tokens.ts';
import type { Tenant } from '../directory/tenant.ts';
import type { TenantPolicy } from '../directory/tenant-policy.ts';
import { validatePolicy, parsePolicy } from '../directory/policy.ts';
import { AppError } from '../errors/app-error.ts';
import { diffDocuments } from './config-diff.ts';
import type { ConfigSecrets } from './config-secrets.ts';
import { NODE_SCOPE, canaryInProgress, tenantScope, type ConfigVersion, type ConfigVersions } from './config-versions.ts';
import { parseRuntimeSettings, type RuntimeSettings } from './runtime-settings.ts';

export interface RolloutOptions {
  /** Share of clients (by stable hash of tenant and client) that get the version first; absent or 0: everyone at once. */
  canaryPercent?: number | undefined;
  /** How long the canary is compared with the rest before it is promoted. */
  bakeSeconds?: number | undefined;
  /** Who applies it: `cli`, `admin-token:{id}`, `user:{id}`. */
  actor: string;
}

export interface RolloutStatus {
  lastGood: ConfigVersion | undefined;
  canary: ConfigVersion | undefined;
  history: ConfigVersion[];
}

export const DEFAULT_BAKE_SECONDS = 300;
/** The system audit chain: configuration of every node belongs to no tenant. */
export const SYSTEM_CHAIN = 'system';

/**
 * Applying, promoting and rolling back configuration versions, for the node
 * settings (`config apply FILE`) and for tenant policies (the admin API).
 * Every version is validated in full first (every problem named, nothing
 * stored), its secrets sealed, its diff against the last good version kept,
 * and an audit entry written: the system chain for node settings, the tenant's
 * chain for its policy.
 */
export class ConfigRollouts {
  constructor(private readonly deps: { versions: ConfigVersions; secrets: ConfigSecrets; baseline: RuntimeSettings; tenants: Tenants; audit: AuditLog }) {}

  /** Validates and stores a new version of the node settings; on a canary unless `canaryPercent` is absent or 0. */
  async applyNode(document: unknown, options: RolloutOptions): Promise<ConfigVersion> {
    const { canaryPercent, bakeSeconds } = rollout(options);
    await this.refuseDuringCanary(NODE_SCOPE);
    const lastGood = await this.deps.versions.lastGood(NODE_SCOPE);
    const previousSealed = lastGood ? (JSON.parse(lastGood.document) as unknown) : undefined;
    const { sealed, missing } = this.deps.secrets.seal(document, previousSealed);
    const opened = this.deps.secrets.open(sealed);
    const { problems } = parseRuntimeSettings(opened, this.deps.baseline);
    for (const where of missing) problems.push(`${where} is "(sealed)" but the last good version has no secret there to keep; give the value`);
    if (problems.length > 0)
      throw new AppError('invalid-config', `${problems.length} problem${problems.length === 1 ? '' : 's'}: ${problems.join('; ')}`, { problems });
    const diff = diffDocuments(previousSealed === undefined ? {} : this.deps.secrets.open(previousSealed), opened);
    const version = await this.deps.versions.add(NODE_SCOPE, {
      document: sealed,
      diff,
      actor: options.actor,
      state: canaryPercent > 0 ? 'canary' : 'promoted',
      canaryPercent,
      bakeSeconds,
    });
    await this.deps.audit.append(SYSTEM_CHAIN, {
      actor: options.actor,
      action: 'config.applied',
      details: { scope: NODE_SCOPE, version: version.version, canaryPercent, bakeSeconds, changed: diff.map((c) => c.path) },
    });
    return version;
  }

  /**
   * A tenant's policy as a new version: validated in full on top of the
   * tenant's stored policy, then to everyone at once (`PUT /admin/policy`, the
   * console's policy page: the policy and its version are written in one
   * transaction) or to a canary of the tenant's users first. Refused with
   * `canary-in-progress` while a version of the tenant's policy bakes.
   */
  async applyPolicy(tenant: Tenant, input: unknown, options: RolloutOptions): Promise<ConfigVersion> {
    refuseTokenChangingPolicy(options.actor);
    const { canaryPercent, bakeSeconds } = rollout(options);
    const scope = tenantScope(tenant.id);
    // Before validating: while a canary bakes the answer is the same whatever the input.
    await this.refuseDuringCanary(scope);
    // The stored policy, never the canary view of it the caller's request may have.
    const current = (await this.deps.tenants.storedPolicy(tenant.id)) ?? tenant.policy;
    const policy = validatePolicy(input, current);
    const diff = diffDocuments(current, policy);
    const immediate = canaryPercent === 0;
    const version = await this.deps.versions.add(
      scope,
      { document: policy, diff, actor: options.actor, state: immediate ? 'promoted' : 'canary', canaryPercent, bakeSeconds: immediate ? 0 : bakeSeconds },
      immediate ? async (trx) => void (await this.deps.tenants.setPolicy(tenant, policy, trx)) : undefined,
    );
    // Read again once committed: a request between the write and the commit may have cached the old policy.
    this.deps.tenants.forget(tenant.id);
    if (immediate) {
      // The policy everyone signs in under changed: the same entry the policy page always wrote, with its version.
      const changed = (Object.keys(policy) as (keyof TenantPolicy)[]).filter((k) => JSON.stringify(policy[k]) !== JSON.stringify(current[k]));
      await this.deps.audit.append(tenant.id, {
        actor: options.actor,
        action: 'policy.changed',
        details: { version: version.version, changed, before: pick(current, changed), after: pick(policy, changed), changes: diff.map((c) => c.path) },
      });
    } else {
      await this.deps.audit.append(tenant.id, {
        actor: options.actor,
        action: 'config.applied',
        details: { scope: 'policy', version: version.version, canaryPercent, bakeSeconds, changed: diff.map((c) => c.path) },
      });
    }
    return version;
  }

  /** Promotes a canary that baked without regression; false when another node (or an operator) decided first. */
  async promote(scope: string, version: number, reason: string): Promise<boolean> {
    if (scope.startsWith('tenant:')) {
      const row = await this.deps.versions.raw(scope, version);
      const tenant = row?.state === 'canary' ? await this.deps.tenants.findById(scope.slice('tenant:'.length)) : undefined;
      if (!row || !tenant) return false;
      if (!(await this.deps.versions.decide(scope, version, 'promoted', reason, (trx) => this.deps.tenants.setPolicy(tenant, parsePolicy(row.document), trx))))
        return false;
      this.deps.tenants.forget(tenant.id);
      await this.deps.audit.append(tenant.id, { actor: 'system:canary-guard', action: 'config.promoted', details: { scope: 'policy', version, reason } });
      return true;
    }
    if (!(await this.deps.versions.decide(scope, version, 'promoted', reason))) return false;
    await this.deps.audit.append(SYSTEM_CHAIN, { actor: 'system:canary-guard', action: 'config.promoted', details: { scope, version, reason } });
    return true;
  }

  /**
   * Rolls back. With a canary baking (and no version, or the canary's): the
   * canary ends and its slice is back on the last good version. Otherwise:
   * the document of `version` (default: the good version before the last
   * good one) becomes a new version, promoted at once.
   */
  async rollback(scope: string, options: { version?: number | undefined; actor: string; reason: string }): Promise<ConfigVersion> {
    refuseTokenChangingPolicy(options.actor);
    const tenantId = scope.startsWith('tenant:') ? scope.slice('tenant:'.length) : undefined;
    const chain = tenantId ?? SYSTEM_CHAIN;
    const history = await this.deps.versions.list(scope, 500);
    const canary = history.find((v) => v.state === 'canary');
    if (canary && (options.version === undefined || options.version === canary.version)) {
      if (!(await this.rollBackCanary(scope, canary.version, options)))
        throw new AppError('conflict', `version ${canary.version} was decided meanwhile; see the status`);
      return { ...canary, state: 'rolled-back', reason: options.reason };
    }
    const promoted = history.filter((v) => v.state === 'promoted');
    const target = options.version === undefined ? promoted[1] : history.find((v) => v.version === options.version);
    if (!target)
      throw new AppError(
        'not-found',
        options.version === undefined ? 'there is no earlier good version to go back to' : `there is no version ${options.version}`,
      );
    const row = (await this.deps.versions.raw(scope, target.version))!;
    const lastGood = promoted[0] ? await this.deps.versions.raw(scope, promoted[0].version) : undefined;
    const sealed = JSON.parse(row.document) as unknown;
    const opened = tenantId ? sealed : this.deps.secrets.open(sealed);
    const before = lastGood ? (tenantId ? JSON.parse(lastGood.document) : this.deps.secrets.open(JSON.parse(lastGood.document))) : {};
    const diff = diffDocuments(before, opened);
    const reason = `${options.reason} (back to version ${target.version})`;
    const tenant = tenantId ? await this.deps.tenants.findById(tenantId) : undefined;
    if (tenantId && !tenant) throw new AppError('not-found', 'the tenant is gone');
    const version = await this.deps.versions.add(
      scope,
      { document: sealed, diff, actor: options.actor, state: 'promoted', canaryPercent: 0, bakeSeconds: 0, reason },
      tenant ? async (trx) => void (await this.deps.tenants.setPolicy(tenant, parsePolicy(row.document), trx)) : undefined,
    );
    if (tenant) this.deps.tenants.forget(tenant.id);
    await this.deps.audit.append(chain, {
      actor: options.actor,
      action: 'config.rolled-back',
      details: { scope: tenantId ? 'policy' : scope, version: version.version, to: target.version, reason: options.reason },
    });
    return version;
  }

  /**
   * Ends the canary `version` of a scope: its slice goes back to the last good
   * version. A conditional state change, so of the nodes (and operators) that
   * decide it at the same time exactly one gets true, and only that one writes
   * the audit entry; the others get false and record nothing. Never re-applies
   * anything (a canary decided meanwhile stays decided).
   */
  async rollBackCanary(scope: string, version: number, options: { actor: string; reason: string }): Promise<boolean> {
    const tenantId = scope.startsWith('tenant:') ? scope.slice('tenant:'.length) : undefined;
    if (!(await this.deps.versions.decide(scope, version, 'rolled-back', options.reason))) return false;
    await this.deps.audit.append(tenantId ?? SYSTEM_CHAIN, {
      actor: options.actor,
      action: 'config.rolled-back',
      details: { scope: tenantId ? 'policy' : scope, version, reason: options.reason },
    });
    return true;
  }

  private async refuseDuringCanary(scope: string): Promise<void> {
    const baking = await this.deps.versions.canary(scope);
    if (baking) throw canaryInProgress(baking);
  }

  async status(scope: string): Promise<RolloutStatus> {
    const history = await this.deps.versions.list(scope, 50);
    return { lastGood: history.find((v) => v.state === 'promoted'), canary: history.find((v) => v.state === 'canary'), history };
  }
}

function pick(policy: TenantPolicy, keys: (keyof TenantPolicy)[]): Partial<TenantPolicy> {
  return Object.fromEntries(keys.map((k) => [k, policy[k]])) as Partial<TenantPolicy>;
}

function rollout(options: RolloutOptions): { canaryPercent: number; bakeSeconds: number } {
  const problems: string[] = [];
  const canaryPercent = options.canaryPercent ?? 0;
  const bakeSeconds = options.bakeSeconds ?? DEFAULT_BAKE_SECONDS;
  // Half the users is no longer a canary: the comparison needs a rest to compare with.
  if (!Number.isFinite(canaryPercent) || canaryPercent < 0 || canaryPercent > 50) problems.push('the canary must be 0 (everyone at once) to 50 percent');
  if (!Number.isInteger(bakeSeconds) || bakeSeconds < 10 || bakeSeconds > 86_400)
    problems.push('the bake time must be a whole number of seconds from 10 to 86400');
  if (problems.length > 0) throw new AppError('invalid-config', problems.join('; '), { problems });
  return { canaryPercent, bakeSeconds };
}

/**
 * The tenant's policy is a person's to change (or the command line's), never an admin API token's, nor to
 * roll back or end a canary of: every administrator signs in under it too. Each of its settings could lock
 * them out or open the door: the methods allowed (no usable one left), the lockout (three guesses from
 * strangers block an administrator for a day), `mfaRequired`, `failMode`, remembered browsers, the longest
 * pass, and the retention that keeps the evidence. A token reads it.
 */
function refuseTokenChangingPolicy(actor: string): void {
  if (isTokenActor(actor)) throw new AppError('forbidden', 'changing the policy needs an administrator signed in with a second factor, not a token');
}
