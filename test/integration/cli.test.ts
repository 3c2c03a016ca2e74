import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { testMasterKey } from '../helpers/backends.ts';

const BIN = new URL('../../bin/steadfast.js', import.meta.url).pathname;
const dataDir = mkdtempSync(join(tmpdir(), 'steadfast-cli-'));
const env = { ...process.env, STEADFAST_DATA_DIR: dataDir, STEADFAST_MASTER_KEY: testMasterKey(), STEADFAST_LOG_LEVEL: 'silent' };

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function steadfast(args: string[], input?: string, extraEnv: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [BIN, ...args], { env: { ...env, ...extraEnv }, timeout: 30_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
    if (input !== undefined) child.stdin!.end(input);
    else child.stdin!.end();
  });
}

afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

describe('steadfast command line', () => {
  it('migrates', async () => {
    const run = await steadfast(['migrate']);
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ engine: 'sqlite', applied: ['001-initial', '002-credential-external-id', '003-administration', '004-remembered-devices', '005-oidc', '006-cluster'] });
  });

  it('creates a tenant and prints it as JSON', async () => {
    const run = await steadfast(['tenant', 'create', 'acme', '--name', 'Acme Corp']);
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ slug: 'acme', name: 'Acme Corp', policy: { mfaRequired: true } });
  });

  it('creates a user with a password from stdin, never echoing it', async () => {
    const run = await steadfast(['user', 'create', '--tenant', 'acme', '--username', 'Alice', '--email', 'alice@example.com', '--password-stdin'], 'a long passphrase\n');
    expect(run.code).toBe(0);
    const user = JSON.parse(run.stdout);
    expect(user).toMatchObject({ username: 'alice', email: 'alice@example.com', tenant: 'acme', hasPassword: true });
    expect(run.stdout + run.stderr).not.toContain('a long passphrase');
  });

  it('creates an admin token, shown once', async () => {
    const run = await steadfast(['token', 'create', '--tenant', 'acme', '--role', 'admin']);
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout).token).toMatch(/^sfa_[A-Za-z0-9_-]{43}$/);
  });

  it('issues a Temporary Access Pass within the policy bounds, and marks break-glass accounts', async () => {
    const run = await steadfast(['tap', 'issue', '--tenant', 'acme', '--username', 'alice', '--minutes', '30', '--one-time']);
    expect(run.code).toBe(0);
    const issued = JSON.parse(run.stdout);
    expect(issued).toMatchObject({ code: expect.stringMatching(/^[0-9A-Z]{4}(-[0-9A-Z]{4}){3}$/), oneTime: true });
    expect(Date.parse(issued.expiresAt) - Date.now()).toBeGreaterThan(29 * 60_000);

    const tooLong = await steadfast(['tap', 'issue', '--tenant', 'acme', '--username', 'alice', '--minutes', '100000']);
    expect(tooLong.code).toBe(2);
    expect(tooLong.stderr).toMatch(/from 10 to 480 minutes/);

    const glass = await steadfast(['user', 'create', '--tenant', 'acme', '--username', 'emergency', '--break-glass', '--password-stdin'], 'a very long emergency passphrase');
    expect(JSON.parse(glass.stdout)).toMatchObject({ username: 'emergency', breakGlass: true, admin: false });
    const off = await steadfast(['user', 'set', '--tenant', 'acme', '--username', 'emergency', '--no-break-glass', '--admin']);
    expect(JSON.parse(off.stdout)).toMatchObject({ breakGlass: false, admin: true });
  });

  it('verifies the audit chain, and names the first entry someone edited', async () => {
    const intact = await steadfast(['audit', 'verify']);
    expect(intact.code).toBe(0);
    expect(JSON.parse(intact.stdout)).toEqual({ intact: true, entries: 4 });

    // Edit the second entry behind Steadfast's back, as an intruder with database access would.
    const db = new Database(join(dataDir, 'steadfast.db'));
    const second = db.prepare('select id from audit_log where seq = 2').get() as { id: string };
    db.prepare(`update audit_log set actor = 'someone-else' where id = ?`).run(second.id);
    db.close();

    const broken = await steadfast(['audit', 'verify', '--tenant', 'acme']);
    expect(broken.code).toBe(1);
    expect(JSON.parse(broken.stdout)).toMatchObject({ intact: false, tenant: 'acme', seq: 2, id: second.id, reason: 'its contents do not match its hash' });
    expect(broken.stderr.trim()).toBe('steadfast: audit chain of "acme" broken at entry 2: its contents do not match its hash');
  });

  it.each([
    [['tenant', 'create', 'acme'], /already exists/],
    [['tenant', 'create', 'Not A Slug'], /slug/],
    [['user', 'create', '--tenant', 'nope', '--username', 'x'], /no tenant "nope"/],
    [['user', 'create', '--tenant', 'acme'], /--username/],
    [['user', 'create', '--tenant', 'acme', '--username', 'bob', '--phone', '12345'], /E\.164/],
    [['token', 'create', '--tenant', 'acme', '--role', 'root'], /root/],
    [['frobnicate'], /unknown command/],
  ])('refuses %j with one line and a non-zero exit', async (args, message) => {
    const run = await steadfast(args);
    expect(run.code).not.toBe(0);
    expect(run.stderr.trim().split('\n')).toHaveLength(1);
    expect(run.stderr).toMatch(message);
    expect(run.stderr).not.toMatch(/\n\s+at /);
  });

  it('refuses bad configuration with every problem on one line', async () => {
    const run = await steadfast(['migrate'], undefined, { STEADFAST_DATABASE_URL: 'mysql://x', PORT: 'x' });
    expect(run.code).not.toBe(0);
    expect(run.stderr.trim().split('\n')).toHaveLength(1);
    expect(run.stderr).toMatch(/STEADFAST_DATABASE_URL.*PORT|PORT.*STEADFAST_DATABASE_URL/);
  });

  it('refuses a too-short password from stdin', async () => {
    const run = await steadfast(['user', 'create', '--tenant', 'acme', '--username', 'carl', '--password-stdin'], 'short');
    expect(run.code).not.toBe(0);
    expect(run.stderr).toMatch(/8 to 1024/);
  });
});
