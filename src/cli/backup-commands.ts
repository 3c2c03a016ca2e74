/** The `steadfast backup` commands: create, verify, restore. */
import { resolve } from 'node:path';
import type { Config } from '../config/config.ts';
import { sqlitePath } from '../config/config.ts';
import { systemClock } from '../clock.ts';
import { KeyRing } from '../crypto/key-ring.ts';
import { readMasterKeyFile } from '../crypto/master-key-file.ts';
import { AuditLog } from '../activity/audit-log.ts';
import { openDurableStore } from '../store/durable/database.ts';
import { buildServices } from '../server/services.ts';
import { masterKeysNeeded } from '../backup/master-keys-needed.ts';
import { BackupError, createSqliteBackup, inspectBackup, restoreSqliteBackup, withBackup, type BackupContents } from '../backup/sqlite-backup.ts';

/** What a command prints, and a warning for standard error. */
export interface CommandResult {
  report: Record<string, unknown>;
  warnings: string[];
}

/** The master keys this machine is configured with, without generating one: restoring must never invent a key. */
function configuredKeyRing(config: Readonly<Config>): { ring: KeyRing; from: 'environment' | 'data-dir file' } | undefined {
  if (config.masterKey) return { ring: new KeyRing(config.masterKey, config.previousMasterKeys), from: 'environment' };
  const fromFile = readMasterKeyFile(config.dataDir);
  return fromFile ? { ring: new KeyRing(fromFile, config.previousMasterKeys), from: 'data-dir file' } : undefined;
}

function keyReport(needed: string[], configured: ReturnType<typeof configuredKeyRing>) {
  return {
    needed,
    configured: configured ? configured.ring.keyIds : [],
    missing: configured ? needed.filter((id) => !configured.ring.keyIds.includes(id)) : needed,
  };
}

const summary = (file: string, c: BackupContents) => ({
  file,
  bytes: c.bytes,
  createdAt: c.manifest.createdAt,
  steadfastVersion: c.manifest.steadfastVersion,
  schema: c.manifest.schema,
  counts: c.counts,
});

/** `steadfast backup create FILE`. */
export async function backupCreate(config: Readonly<Config>, file: string): Promise<CommandResult> {
  const configured = configuredKeyRing(config);
  const warnings: string[] = [];
  if (config.databaseUrl) {
    // Steadfast does not copy a PostgreSQL database: its own tools do it better (and point-in-time).
    const store = openDurableStore({ databaseUrl: config.databaseUrl, sqlitePath: sqlitePath(config) });
    let keys;
    try {
      keys = keyReport(await masterKeysNeeded(store.db), configured);
    } finally {
      await store.close();
    }
    const report = { engine: 'postgres', backup: false, masterKeys: keys };
    throw Object.assign(
      new BackupError(
        `on PostgreSQL, back up the database with its own tools (pg_dump, or base backups with WAL archiving) and keep the master key (id ${keys.needed.join(', ') || configured?.ring.active.id || 'unknown'}) apart from them${keys.missing.length > 0 ? `; the configured keys lack ${keys.missing.join(', ')}, which the data needs` : ''}`,
      ),
      { report },
    );
  }
  const target = resolve(file);
  const contents = await createSqliteBackup(sqlitePath(config), target);
  const keys = keyReport(contents.manifest.masterKeysNeeded, configured);
  warnings.push(
    `the backup does not contain the master key; keep the key (id ${configured?.ring.active.id ?? keys.needed.join(', ')}) safe and apart from it: without it the secrets in the backup cannot be read`,
  );
  if (configured?.from === 'data-dir file') warnings.push(`the master key exists only in ${config.dataDir}/master.key: copy it somewhere safe now`);
  if (keys.missing.length > 0) warnings.push(`the data needs master keys that are not configured here: ${keys.missing.join(', ')}`);
  return { report: { ...summary(target, contents), masterKeys: keys }, warnings };
}

/**
 * `steadfast backup verify FILE`: the file is whole (integrity check, manifest,
 * a schema this Steadfast knows); with the master keys configured here, they
 * are the ones it needs and its audit chain verifies.
 */
export async function backupVerify(config: Readonly<Config>, file: string): Promise<CommandResult & { ok: boolean; problem?: string }> {
  const path = resolve(file);
  const contents = await inspectBackup(path);
  const configured = configuredKeyRing(config);
  const keys = keyReport(contents.manifest.masterKeysNeeded, configured);
  const report: Record<string, unknown> = { ...summary(path, contents), masterKeys: keys };
  if (!configured) return { ok: true, report, warnings: ['no master key is configured here, so the keys and the audit chain were not checked'] };
  if (keys.missing.length > 0)
    return { ok: false, report, warnings: [], problem: `the backup needs master keys ${keys.missing.join(', ')}, which are not configured here` };
  const chain = await withBackup(path, (db) => new AuditLog(db, 'sqlite', systemClock, configured.ring).verify());
  report.auditChain = chain.intact ? { intact: true, entries: chain.entries } : { intact: false, seq: chain.seq, reason: chain.reason };
  if (!chain.intact) return { ok: false, report, warnings: [], problem: `the audit chain in the backup is broken at entry ${chain.seq}: ${chain.reason}` };
  return { ok: true, report, warnings: [] };
}

/** `steadfast backup restore FILE`: into an empty data dir, with the master key supplied as usual. */
export async function backupRestore(config: Readonly<Config>, file: string): Promise<CommandResult> {
  if (config.databaseUrl)
    throw new BackupError(
      'STEADFAST_DATABASE_URL is set: restore a PostgreSQL database with its own tools (pg_restore); this command restores the embedded store',
    );
  const path = resolve(file);
  const contents = await inspectBackup(path);
  const configured = configuredKeyRing(config);
  const keys = keyReport(contents.manifest.masterKeysNeeded, configured);
  if (!configured) {
    throw new BackupError(
      `supply the master key the backup needs (id ${keys.needed.join(', ') || 'any'}) as STEADFAST_MASTER_KEY or in ${config.dataDir}/master.key; restore never makes a new one`,
    );
  }
  if (keys.missing.length > 0)
    throw new BackupError(`the backup needs master keys ${keys.missing.join(', ')}; the configured ones are ${keys.configured.join(', ')}`);
  const target = sqlitePath(config);
  await restoreSqliteBackup(path, target);
  // Brings a backup from an older version up to date, as a start would.
  const services = await buildServices(config);
  try {
    const chain = await services.audit.verify();
    return {
      report: {
        restored: target,
        from: path,
        schema: contents.manifest.schema,
        counts: contents.counts,
        masterKeys: keys,
        auditChain: chain.intact ? { intact: true, entries: chain.entries } : { intact: false, seq: chain.seq, reason: chain.reason },
      },
      warnings: chain.intact ? [] : [`the restored audit chain is broken at entry ${chain.seq}: ${chain.reason}`],
    };
  } finally {
    await services.close();
  }
}
