import { migrations } from '../../src/store/durable/migrations/index.ts';
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { loadConfig } from '../../src/config/config.ts';
import { buildServices } from '../../src/server/services.ts';
import { backupCreate, backupRestore, backupVerify } from '../../src/cli/backup-commands.ts';
import { sqliteMemory, postgresRedis, type Backend } from '../helpers/backends.ts';
import { api, startTestServer, type TestServer } from '../helpers/test-server.ts';
import { totpCode } from '../helpers/totp.ts';
import { PG_URL } from '../helpers/services-available.ts';

const BIN = new URL('../../bin/steadfast.js', import.meta.url).pathname;
const PASSWORD = 'backup test passphrase';

function steadfast(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env: { ...process.env, STEADFAST_LOG_LEVEL: 'silent', ...env }, timeout: 60_000 }, (error, stdout, stderr) =>
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr }),
    );
  });
}

/** Back up the embedded store while it serves sign-ins, restore it into a new data dir, sign in there. */
describe('backup and restore of the embedded store', () => {
  let backend: Backend;
  let server: TestServer;
  const masterKey = randomBytes(32).toString('base64');
  const work = mkdtempSync(join(tmpdir(), 'steadfast-backup-'));
  const file = join(work, 'steadfast.backup');
  let secret = '';

  beforeAll(async () => {
    backend = await sqliteMemory.create({ STEADFAST_MASTER_KEY: masterKey });
    server = await startTestServer(backend);
    const tenant = await server.services.tenants.create('kept');
    await server.services.admin.createUser(tenant, 'cli', { username: 'bea', password: PASSWORD });
    const first = await api(server.url, 'POST', '/api/v1/t/kept/signin', { username: 'bea', password: PASSWORD });
    const enrol = await api(server.url, 'POST', '/api/v1/me/methods', { type: 'totp' }, first.body.session.token);
    secret = enrol.body.secret;
    const confirmed = await api(
      server.url,
      'POST',
      `/api/v1/me/methods/${enrol.body.id}/confirm`,
      { code: totpCode(secret, Date.now()) },
      first.body.session.token,
    );
    expect(confirmed.status).toBe(200);
  });
  afterAll(async () => {
    await server?.close();
    await backend?.cleanup();
    rmSync(work, { recursive: true, force: true });
  });

  it('backs up while sign-ins and admin changes go on, without the master key in it', async () => {
    let done = false;
    let signins = 0;
    const load = (async () => {
      while (!done) {
        const start = await api(server.url, 'POST', '/api/v1/t/kept/signin', { username: 'bea', password: signins % 2 ? PASSWORD : 'wrong passphrase' });
        expect([200, 401]).toContain(start.status);
        await server.services.audit.append((await server.services.tenants.findBySlug('kept'))!.id, {
          actor: 'cli',
          action: 'policy.changed',
          details: { n: signins },
        });
        signins++;
      }
    })();
    const run = await steadfast(['backup', 'create', file], { STEADFAST_DATA_DIR: backend.config.dataDir, STEADFAST_MASTER_KEY: masterKey });
    done = true;
    await load;
    expect(run.code).toBe(0);
    expect(signins).toBeGreaterThan(0);
    const report = JSON.parse(run.stdout);
    expect(report).toMatchObject({
      file,
      schema: Object.keys(migrations).at(-1),
      counts: { tenants: 1, users: 1, credentials: 1 },
      masterKeys: { needed: [server.services.keyRing.active.id], missing: [] },
    });
    expect(run.stderr).toMatch(/does not contain the master key/);
    expect(existsSync(`${file}.partial`)).toBe(false);

    const bytes = readFileSync(file);
    const raw = Buffer.from(masterKey, 'base64');
    for (const form of [raw, Buffer.from(masterKey), Buffer.from(raw.toString('hex')), Buffer.from(raw.toString('base64url'))])
      expect(bytes.includes(form)).toBe(false);

    const again = await backupCreate(backend.config, file).catch((err: Error) => err);
    expect(again).toBeInstanceOf(Error);
    expect((again as Error).message).toMatch(/already exists/);
  });

  it('verifies a backup: whole, the right keys, an intact audit chain; a damaged or foreign file fails', async () => {
    const run = await steadfast(['backup', 'verify', file], { STEADFAST_DATA_DIR: backend.config.dataDir, STEADFAST_MASTER_KEY: masterKey });
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ ok: true, auditChain: { intact: true }, masterKeys: { missing: [] } });

    const otherKey = loadConfig({ STEADFAST_DATA_DIR: work, STEADFAST_MASTER_KEY: randomBytes(32).toString('base64') });
    expect(await backupVerify(otherKey, file)).toMatchObject({ ok: false, problem: expect.stringMatching(/needs master keys/) });
    expect(await backupVerify(loadConfig({ STEADFAST_DATA_DIR: work }), file)).toMatchObject({
      ok: true,
      warnings: [expect.stringMatching(/no master key is configured here/)],
    });

    const damaged = join(work, 'damaged.backup');
    copyFileSync(file, damaged);
    const bytes = readFileSync(damaged);
    // Whole pages overwritten: damage confined to a page's unused space harms no data, and integrity_check rightly lets it pass.
    for (let i = 4096 * 2; i < bytes.length; i += 4096 * 2) bytes.fill(0x55, i, i + 4096);
    writeFileSync(damaged, bytes);
    await expect(backupVerify(backend.config, damaged)).rejects.toThrow(/damaged|not an SQLite database|malformed/);

    const foreign = join(work, 'foreign.db');
    new Database(foreign).exec('create table t (x)');
    await expect(backupVerify(loadConfig({ STEADFAST_DATA_DIR: work }), foreign)).rejects.toThrow(/not a Steadfast backup/);
  });

  it('restores only into an empty data dir and only with the master key, then signs in with the restored methods', async () => {
    const restoredDir = join(work, 'restored');
    const noKey = await backupRestore(loadConfig({ STEADFAST_DATA_DIR: restoredDir }), file).catch((err: Error) => err);
    expect((noKey as Error).message).toMatch(/supply the master key the backup needs/);
    const wrongKey = await backupRestore(loadConfig({ STEADFAST_DATA_DIR: restoredDir, STEADFAST_MASTER_KEY: randomBytes(32).toString('base64') }), file).catch(
      (err: Error) => err,
    );
    expect((wrongKey as Error).message).toMatch(/needs master keys/);
    expect(existsSync(join(restoredDir, 'steadfast.db'))).toBe(false);

    const run = await steadfast(['backup', 'restore', file], { STEADFAST_DATA_DIR: restoredDir, STEADFAST_MASTER_KEY: masterKey });
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ restored: join(restoredDir, 'steadfast.db'), auditChain: { intact: true } });
    await expect(backupRestore(loadConfig({ STEADFAST_DATA_DIR: restoredDir, STEADFAST_MASTER_KEY: masterKey }), file)).rejects.toThrow(
      /restore goes into an empty data dir/,
    );

    const restored = await startTestServer({
      ...backend,
      config: loadConfig({ STEADFAST_DATA_DIR: restoredDir, STEADFAST_MASTER_KEY: masterKey, PORT: '0', STEADFAST_LOG_LEVEL: 'silent' }),
    });
    try {
      const start = await api(restored.url, 'POST', '/api/v1/t/kept/signin', { username: 'bea', password: PASSWORD });
      expect(start.body.state).toBe('factor_required');
      const verify = await api(restored.url, 'POST', `/api/v1/t/kept/signin/${start.body.flow}/verify`, {
        method: 'totp',
        code: totpCode(secret, Date.now() + 30_000),
      });
      expect(verify.status).toBe(200);
      expect(verify.body.state).toBe('complete');
    } finally {
      await restored.close();
    }
  });
});

describe.runIf(await postgresRedis.available())('backup create on PostgreSQL', () => {
  it("says to use the database's own tools, and which master key to keep with them", async () => {
    const backend = await postgresRedis.create();
    try {
      const s = await buildServices(backend.config, { pgSchema: backend.pgSchema!, redisNamespace: backend.redisNamespace! });
      const t = await s.tenants.create('pg');
      await s.audit.append(t.id, { actor: 'cli', action: 'policy.changed' });
      const keyId = s.keyRing.active.id;
      await s.close();
      const url = `${PG_URL}?options=${encodeURIComponent(`-c search_path=${backend.pgSchema}`)}`;
      const config = loadConfig({
        STEADFAST_DATA_DIR: backend.config.dataDir,
        STEADFAST_DATABASE_URL: url,
        STEADFAST_MASTER_KEY: backend.config.masterKey!.toString('base64'),
      });
      const refused = (await backupCreate(config, join(tmpdir(), 'never-written.backup')).catch((err: unknown) => err)) as Error & { report?: unknown };
      expect(refused.message).toMatch(/pg_dump/);
      expect(refused.message).toContain(keyId);
      expect(refused.report).toEqual({ engine: 'postgres', backup: false, masterKeys: { needed: [keyId], configured: [keyId], missing: [] } });
    } finally {
      await backend.cleanup();
    }
  });
});
