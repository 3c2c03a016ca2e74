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
    expect(JSON.parse(run.stdout)).toMatchObject({
      engine: 'sqlite',
      applied: [
        '001-initial',
        '002-credential-external-id',
        '003-administration',
        '004-remembered-devices',
        '005-oidc',
        '006-retention-and-keyed-audit',
        '007-security-review',
        '008-cluster',
        '009-ephemeral-fallback',
        '010-config-versions',
        '011-push',
        '012-canary-tallies',
        '013-signature-counter',
        '014-token-touched',
        '015-token-touches',
        '016-methods-reset-at',
        '017-signin-credential',
      ],
    });
  });

  it('creates a tenant and prints it as JSON', async () => {
    const run = await steadfast(['tenant', 'create', 'acme', '--name', 'Acme Corp']);
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ slug: 'acme', name: 'Acme Corp', policy: { mfaRequired: true } });
  });

  it('creates a user with a password from stdin, never echoing it', async () => {
    const run = await steadfast(
      ['user', 'create', '--tenant', 'acme', '--username', 'Alice', '--email', 'alice@example.com', '--password-stdin'],
      'a long passphrase\n',
    );
    expect(run.code).toBe(0);
    const user = JSON.parse(run.stdout);
    expect(user).toMatchObject({ username: 'alice', email: 'alice@example.com', tenant: 'acme', hasPassword: true });
    expect(run.stdout + run.stderr).not.toContain('a long passphrase');
  });

  it('creates an admin token, shown once, lists it without the secret, and revokes it', async () => {
    const run = await steadfast(['token', 'create', '--tenant', 'acme', '--role', 'admin', '--days', '7', '--name', 'deploy']);
    expect(run.code).toBe(0);
    const created = JSON.parse(run.stdout);
    expect(created.token).toMatch(/^sfa_[A-Za-z0-9_-]{43}$/);
    expect(Date.parse(created.expiresAt) - Date.now()).toBeGreaterThan(6.9 * 86_400_000);
    const list = await steadfast(['token', 'list', '--tenant', 'acme']);
    expect(JSON.parse(list.stdout)).toEqual(
      expect.arrayContaining([expect.objectContaining({ id: created.id, name: 'deploy', createdBy: 'cli', lastUsedAt: null, revokedAt: null })]),
    );
    expect(list.stdout).not.toContain(created.token);
    const revoke = await steadfast(['token', 'revoke', '--tenant', 'acme', created.id]);
    expect(revoke.code).toBe(0);
    const after = JSON.parse((await steadfast(['token', 'list', '--tenant', 'acme'])).stdout) as { id: string; revokedAt: string | null }[];
    expect(after.find((t) => t.id === created.id)!.revokedAt).not.toBeNull();
    const again = await steadfast(['token', 'revoke', '--tenant', 'acme', created.id]);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/no such live token/);
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

    const glass = await steadfast(
      ['user', 'create', '--tenant', 'acme', '--username', 'emergency', '--break-glass', '--password-stdin'],
      'a very long emergency passphrase',
    );
    expect(JSON.parse(glass.stdout)).toMatchObject({ username: 'emergency', breakGlass: true, admin: false });
    const off = await steadfast(['user', 'set', '--tenant', 'acme', '--username', 'emergency', '--no-break-glass', '--admin']);
    expect(JSON.parse(off.stdout)).toMatchObject({ breakGlass: false, admin: true });
  });

  it('verifies the audit chain, and names the first entry someone edited', async () => {
    const intact = await steadfast(['audit', 'verify']);
    expect(intact.code).toBe(0);
    const report = JSON.parse(intact.stdout);
    expect(report).toEqual({ intact: true, entries: 6, heads: [{ tenant: 'acme', seq: 6, hash: expect.stringMatching(/^[0-9a-f]{64}$/) }] });

    // Edit the second entry behind Steadfast's back, as an intruder with database access would.
    const db = new Database(join(dataDir, 'steadfast.db'));
    const second = db.prepare('select id from audit_log where seq = 2').get() as { id: string };
    db.prepare(`update audit_log set actor = 'someone-else' where id = ?`).run(second.id);
    db.close();

    const broken = await steadfast(['audit', 'verify', '--tenant', 'acme']);
    expect(broken.code).toBe(1);
    expect(JSON.parse(broken.stdout)).toMatchObject({
      intact: false,
      tenant: 'acme',
      seq: 2,
      id: second.id,
      reason: 'its contents do not match its hash',
      heads: report.heads,
    });
    expect(broken.stderr.trim()).toBe('steadfast: audit chain of "acme" broken at entry 2: its contents do not match its hash');
  });

  it.each([
    [['tenant', 'create', 'acme'], /already exists/],
    [['tenant', 'create', 'Not A Slug'], /slug/],
    [['user', 'create', '--tenant', 'nope', '--username', 'x'], /no tenant "nope"/],
    [['user', 'create', '--tenant', 'acme'], /--username/],
    [['user', 'create', '--tenant', 'acme', '--username', 'bob', '--phone', '12345'], /E\.164/],
    [['token', 'create', '--tenant', 'acme', '--role', 'root'], /root/],
    [['token', 'create', '--tenant', 'acme', '--role', 'admin', '--days', '400'], /--days/],
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
