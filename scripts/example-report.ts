// Regenerates docs/loadtest-example.html: a local three-node cluster (this
// machine's PostgreSQL and Redis, HAProxy with deploy/haproxy/haproxy.cfg, three
// `steadfast start` processes), then `steadfast loadtest` through HAProxy with a
// failover drill that kills node2 with SIGKILL a third of the way in.
//   npx tsx scripts/example-report.ts [rate] [seconds]
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PG_URL, REDIS_URL, createPgSchema } from '../test/helpers/services-available.ts';
import { eventually, removeDir, startHaproxy, startNodeProcess } from '../test/cluster/cluster-harness.ts';
import { freePort } from '../test/helpers/free-port.ts';
import { Redis } from 'ioredis';

const rate = process.argv[2] ?? '15';
const seconds = process.argv[3] ?? '60';
const BIN = new URL('../bin/steadfast.js', import.meta.url).pathname;
const { schema, drop } = await createPgSchema();
const dir = mkdtempSync(join(tmpdir(), 'steadfast-example-'));
const webhookPort = await freePort();
const secret = randomBytes(16).toString('hex');
const config = join(dir, 'steadfast.json');
writeFileSync(config, JSON.stringify({ delivery: { sms: [{ name: 'loadtest', type: 'webhook', url: `http://127.0.0.1:${webhookPort}/sms`, secret }] } }));
const haproxyPort = await freePort();
const env: Record<string, string> = {
  STEADFAST_DATABASE_URL: `${PG_URL}?options=${encodeURIComponent(`-c search_path=${schema}`)}`,
  STEADFAST_REDIS_URL: REDIS_URL,
  STEADFAST_REDIS_NAMESPACE: `example-${schema}`,
  STEADFAST_MASTER_KEY: randomBytes(32).toString('base64'),
  STEADFAST_TRUST_PROXY: 'true',
  STEADFAST_LOG_LEVEL: 'warn',
  STEADFAST_CONFIG: config,
  // Passkeys are bound to the name users reach: the load balancer.
  STEADFAST_PUBLIC_URL: `http://localhost:${haproxyPort}`,
};
const nodes = await Promise.all(['node1', 'node2', 'node3'].map((name) => startNodeProcess(name, env)));
const haproxy = await startHaproxy(nodes, haproxyPort);
try {
  for (const node of nodes) await eventually(`${node.name} ready`, async () => (await fetch(`${node.url}/readyz`)).ok);
  await eventually('HAProxy', async () => (await fetch(`${haproxy.url}/readyz`)).ok);
  const cli = (args: string[], extra: Record<string, string> = {}) =>
    execFileSync(process.execPath, [BIN, ...args], { env: { ...process.env, ...env, ...extra }, encoding: 'utf8' });
  cli(['tenant', 'create', 'example', '--name', 'Example']);
  const { token } = JSON.parse(cli(['token', 'create', '--tenant', 'example', '--role', 'admin'])) as { token: string };
  const node2 = nodes[1]!;
  const loadtest = spawn(
    process.execPath,
    [
      BIN,
      'loadtest',
      '--url',
      haproxy.url,
      '--origin',
      `http://localhost:${haproxyPort}`,
      '--tenant',
      'example',
      '--rate',
      rate,
      '--duration',
      seconds,
      '--sms-webhook',
      `127.0.0.1:${webhookPort}`,
      '--drill',
      '--kill-cmd',
      `kill -KILL ${node2.child.pid}`,
      '--report',
      new URL('../docs/loadtest-example.html', import.meta.url).pathname,
    ],
    { env: { ...process.env, STEADFAST_ADMIN_TOKEN: token, STEADFAST_LOADTEST_WEBHOOK_SECRET: secret }, stdio: 'inherit' },
  );
  await new Promise((resolve) => loadtest.once('exit', resolve));
} finally {
  for (const node of nodes) {
    node.child.kill('SIGTERM');
    await node.exited;
    removeDir(node.dataDir);
  }
  haproxy.child.kill('SIGTERM');
  await haproxy.exited;
  await drop();
  removeDir(dir);
  const redis = new Redis(REDIS_URL);
  const keys = await redis.keys(`${env.STEADFAST_REDIS_NAMESPACE}:*`);
  if (keys.length > 0) await redis.unlink(...keys);
  redis.disconnect();
}
