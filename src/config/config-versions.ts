import type { Db } from '../store/durable/database.ts';
import type { ConfigVersionTable } from '../store/durable/schema.ts';
import type { Clock } from '../clock.ts';
import { AppError } from '../errors/app-error.ts';
import type { ConfigChange } from './config-diff.ts';
import { ConfigSecrets } from './config-secrets.ts';

export type RolloutState = ConfigVersionTable['state'];

/** One version of a scope as anyone may see it: secrets read "(sealed)". */
export interface ConfigVersion {
  scope: string;
  version: number;
  document: unknown;
  diff: ConfigChange[];
  actor: string;
  createdAt: number;
  state: RolloutState;
  canaryPercent: number;
  bakeSeconds: number;
  decidedAt: number | null;
  reason: string | null;
}

/** The scope of every node's runtime settings; a tenant's policy is `tenant:{id}`. */
export const NODE_SCOPE = 'node';
export const tenantScope = (tenantId: string) => `tenant:${tenantId}`;

export interface NewVersion {
  /** Secrets already sealed. */
  document: unknown;
  diff: ConfigChange[];
  actor: string;
  state: 'canary' | 'promoted';
  canaryPercent: number;
  bakeSeconds: number;
  reason?: string;
}

/**
 * The history of configuration versions in the durable store: what every node
 * reads to know what to run, and what `config status` and the console show.
 * Decisions are conditional updates (`decide`), so when several nodes judge
 * the same canary, exactly one of them rolls it back or promotes it, and only
 * that one writes the audit entry and raises the alert.
 */
export class ConfigVersions {
  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
  ) {}

  /**
   * Adds the next version of the scope. A canary already baking must be
   * decided (or rolled back) first. `alongside` runs in the same transaction
   * (a tenant's policy written with its version): the version is recorded
   * exactly when it took effect.
   */
  async add(scope: string, input: NewVersion, alongside?: (trx: Db) => Promise<void>): Promise<ConfigVersion> {
    const row = await this.db.transaction().execute(async (trx) => {
      const baking = await trx.selectFrom('config_versions').selectAll().where('scope', '=', scope).where('state', '=', 'canary').executeTakeFirst();
      if (baking) throw canaryInProgress(baking);
      const last = await trx
        .selectFrom('config_versions')
        .select((eb) => eb.fn.max('version').as('v'))
        .where('scope', '=', scope)
        .executeTakeFirst();
      const now = this.clock.now();
      const row: ConfigVersionTable = {
        scope,
        version: Number(last?.v ?? 0) + 1,
        document: JSON.stringify(input.document),
        diff: JSON.stringify(input.diff),
        actor: input.actor.slice(0, 300),
        created_at: now,
        state: input.state,
        canary_percent: input.canaryPercent,
        bake_seconds: input.bakeSeconds,
        decided_at: input.state === 'promoted' ? now : null,
        reason: input.reason ?? null,
      };
      // The primary key (scope, version) turns two applies racing for the same number into one refusal.
      await trx.insertInto('config_versions').values(row).execute();
      await alongside?.(trx);
      return row;
    });
    return toVersion(row);
  }

  /**
   * Moves a canary to `promoted` or `rolled-back`; false when it was not (or no
   * longer) on its canary, i.e. another node or an operator decided first.
   */
  async decide(scope: string, version: number, to: 'promoted' | 'rolled-back', reason: string, alongside?: (trx: Db) => Promise<unknown>): Promise<boolean> {
    const change = async (trx: Db) => {
      const result = await trx
        .updateTable('config_versions')
        .set({ state: to, decided_at: this.clock.now(), reason: reason.slice(0, 2000) })
        .where('scope', '=', scope)
        .where('version', '=', version)
        .where('state', '=', 'canary')
        .executeTakeFirst();
      if (Number(result.numUpdatedRows) !== 1) return false;
      // Only the decision that won writes what goes with it (a promoted policy).
      await alongside?.(trx);
      return true;
    };
    // One conditional statement needs no transaction; with something alongside, both or neither.
    return alongside ? this.db.transaction().execute(change) : change(this.db);
  }

  /** The canary baking in a scope, if any. */
  async canary(scope: string): Promise<ConfigVersionTable | undefined> {
    return this.db.selectFrom('config_versions').selectAll().where('scope', '=', scope).where('state', '=', 'canary').executeTakeFirst();
  }

  /** The canary baking in every scope: what each node reads on every refresh (a small indexed query). */
  async canaries(): Promise<ConfigVersionTable[]> {
    return this.db.selectFrom('config_versions').selectAll().where('state', '=', 'canary').execute();
  }

  /** The last good version of a scope (secrets sealed), if any version was ever promoted. */
  async lastGood(scope: string): Promise<ConfigVersionTable | undefined> {
    return this.db
      .selectFrom('config_versions')
      .selectAll()
      .where('scope', '=', scope)
      .where('state', '=', 'promoted')
      .orderBy('version', 'desc')
      .limit(1)
      .executeTakeFirst();
  }

  async raw(scope: string, version: number): Promise<ConfigVersionTable | undefined> {
    return this.db.selectFrom('config_versions').selectAll().where('scope', '=', scope).where('version', '=', version).executeTakeFirst();
  }

  async get(scope: string, version: number): Promise<ConfigVersion | undefined> {
    const row = await this.raw(scope, version);
    return row ? toVersion(row) : undefined;
  }

  /**
   * After a master-key rotation: every stored version's secrets (provider
   * tokens) sealed again under the active key, so the old key can leave the
   * ring and every version, rolled back to or not, still opens. Each row is
   * updated only if its document is still the one read (safe while nodes serve).
   */
  async rewrapSecrets(secrets: ConfigSecrets, batchSize = 200): Promise<{ examined: number; rewrapped: number }> {
    let examined = 0;
    let rewrapped = 0;
    let after = { scope: '', version: 0 };
    for (;;) {
      const rows = await this.db
        .selectFrom('config_versions')
        .select(['scope', 'version', 'document'])
        .where((eb) => eb.or([eb('scope', '>', after.scope), eb.and([eb('scope', '=', after.scope), eb('version', '>', after.version)])]))
        .orderBy('scope')
        .orderBy('version')
        .limit(batchSize)
        .execute();
      if (rows.length === 0) break;
      for (const row of rows) {
        examined++;
        const { doc, rewrapped: secretsResealed } = secrets.rewrap(JSON.parse(row.document));
        if (secretsResealed === 0) continue;
        const result = await this.db
          .updateTable('config_versions')
          .set({ document: JSON.stringify(doc) })
          .where('scope', '=', row.scope)
          .where('version', '=', row.version)
          .where('document', '=', row.document)
          .executeTakeFirst();
        rewrapped += Number(result.numUpdatedRows);
      }
      const last = rows.at(-1)!;
      after = { scope: last.scope, version: Number(last.version) };
    }
    return { examined, rewrapped };
  }

  /** The newest versions first. */
  async list(scope: string, limit = 50): Promise<ConfigVersion[]> {
    const rows = await this.db.selectFrom('config_versions').selectAll().where('scope', '=', scope).orderBy('version', 'desc').limit(limit).execute();
    return rows.map(toVersion);
  }
}

/**
 * The refusal of a change while a canary bakes in the same scope: which
 * version, on what share, when its bake ends, and the ways to finish it.
 * Two versions on a canary at once would leave nobody able to say which one
 * a regression came from.
 */
export function canaryInProgress(row: ConfigVersionTable): AppError {
  const version = Number(row.version);
  const percent = Number(row.canary_percent);
  const bakeEndsAt = new Date(Number(row.created_at) + Number(row.bake_seconds) * 1000).toISOString();
  const how = row.scope.startsWith('tenant:')
    ? `wait for it to be promoted (its bake ends at ${bakeEndsAt}) or roll it back: POST /api/v1/admin/policy/rollback, the console's policy history, or steadfast config rollback --tenant SLUG`
    : `wait for it to be promoted (its bake ends at ${bakeEndsAt}) or roll it back with steadfast config rollback`;
  return new AppError('canary-in-progress', `version ${version} is on its canary (${percent}% of users); ${how}; then apply the change again`, {
    canary: { version, percent, bakeEndsAt },
  });
}

function toVersion(row: ConfigVersionTable): ConfigVersion {
  return {
    scope: row.scope,
    version: Number(row.version),
    document: ConfigSecrets.redact(JSON.parse(row.document)),
    diff: JSON.parse(row.diff) as ConfigChange[],
    actor: row.actor,
    createdAt: Number(row.created_at),
    state: row.state,
    canaryPercent: Number(row.canary_percent),
    bakeSeconds: Number(row.bake_seconds),
    decidedAt: row.decided_at === null ? null : Number(row.decided_at),
    reason: row.reason,
  };
}
