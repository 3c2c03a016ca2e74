import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
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
    expect(JSON.parse(run.stdout)).toMatchObject({ engine: 'sqlite', applied: ['001-initial', '002-credential-external-id', '003-administration'] });
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
