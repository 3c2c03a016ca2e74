import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sqliteMemory, type Backend } from '../helpers/backends.ts';
import { freePort } from '../helpers/free-port.ts';
import { api, startTestServer, type TestServer } from '../helpers/test-server.ts';

const BIN = new URL('../../bin/steadfast.js', import.meta.url).pathname;
const SECRET = 'a webhook secret for the loadtest';

function steadfast(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, timeout: 120_000 }, (error, stdout, stderr) =>
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr }),
    );
  });
}

/**
 * `steadfast loadtest` against a real node: its own users created and set up
 * through the API (app, passkey, phone), every kind of journey driven, SMS codes
 * taken from the stand-in gateway the node's webhook provider posts to, the
 * users removed at the end.
 */
describe('steadfast loadtest', () => {
  let backend: Backend;
  let server: TestServer;
  let adminToken = '';
  let webhookPort = 0;
  const dir = mkdtempSync(join(tmpdir(), 'steadfast-loadtest-'));

  beforeAll(async () => {
    const port = await freePort();
    webhookPort = await freePort();
    const configFile = join(dir, 'steadfast.json');
    writeFileSync(
      configFile,
      JSON.stringify({ delivery: { sms: [{ name: 'standin', type: 'webhook', url: `http://127.0.0.1:${webhookPort}/sms`, secret: SECRET }] } }),
    );
    backend = await sqliteMemory.create({ PORT: String(port), STEADFAST_PUBLIC_URL: `http://localhost:${port}`, STEADFAST_CONFIG: configFile });
    server = await startTestServer(backend, { logLevel: 'warn' });
    const tenant = await server.services.tenants.create('lt', 'Load test');
    adminToken = (await server.services.adminTokens.create(tenant.id, 'admin')).token;
  });
  afterAll(async () => {
    await server?.close();
    await backend?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs the mix, prints one JSON object, writes the report page and removes its users', async () => {
    const report = join(dir, 'report.html');
    const marker = join(dir, 'drilled');
    const run = await steadfast(
      [
        'loadtest',
        '--url',
        server.url,
        '--origin',
        `http://localhost:${new URL(server.url).port}`,
        '--tenant',
        'lt',
        '--rate',
        '5',
        '--duration',
        '4',
        '--users',
        '20',
        '--mix',
        'totp=2,passkey=1,sms=1,setup=1',
        '--sms-webhook',
        `127.0.0.1:${webhookPort}`,
        '--json',
        '--report',
        report,
        '--drill',
        '--drill-at',
        '2',
        '--kill-cmd',
        `touch ${marker}`,
      ],
      { STEADFAST_ADMIN_TOKEN: adminToken, STEADFAST_LOADTEST_WEBHOOK_SECRET: SECRET },
    );
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const result = JSON.parse(run.stdout);
    expect(result).toMatchObject({ failed: 0, errors: {} });
    expect(result.offered).toBe(result.succeeded);
    expect(result.offered + result.skipped).toBe(20);
    expect(Object.keys(result.byKind).sort()).toEqual(['passkey', 'setup', 'sms', 'totp']);
    for (const kind of ['passkey', 'sms', 'totp', 'setup']) expect(result.byKind[kind].succeeded).toBeGreaterThan(0);
    expect(result.p99Ms).toBeGreaterThanOrEqual(result.p50Ms);
    // The drill ran the command and found nothing failing.
    expect(existsSync(marker)).toBe(true);
    expect(result.drill).toMatchObject({ atSecond: expect.any(Number), failedAfter: 0, windowMs: 0 });

    const page = readFileSync(report, 'utf8');
    expect(page).toMatch(/^<!doctype html>/);
    expect(page.match(/<svg /g)).toHaveLength(3);
    // Self-contained: nothing is fetched from anywhere.
    expect(page).not.toMatch(/<script|<link|src=|@import|url\(/i);

    const left = await api(server.url, 'GET', '/api/v1/admin/users?q=loadtest-&limit=200', undefined, adminToken);
    expect(left.body.items).toEqual([]);
    // The sign-ins really happened, each recorded by the node.
    const signins = await api(server.url, 'GET', '/api/v1/admin/signins?outcome=success&limit=500', undefined, adminToken);
    expect(signins.status).toBe(200);
  });

  it('refuses to start without an admin token, or with a mix it does not know', async () => {
    const noToken = await steadfast(['loadtest', '--url', server.url, '--tenant', 'lt'], { STEADFAST_ADMIN_TOKEN: '' });
    expect(noToken.code).toBe(2);
    expect(noToken.stderr).toMatch(/STEADFAST_ADMIN_TOKEN/);
    const badMix = await steadfast(['loadtest', '--url', server.url, '--tenant', 'lt', '--mix', 'totp=1,fax=2'], { STEADFAST_ADMIN_TOKEN: adminToken });
    expect(badMix.code).toBe(2);
    expect(badMix.stderr).toMatch(/unknown journey "fax"/);
  });
});
