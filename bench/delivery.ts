/**
 * `npm run bench -- delivery`
 *
 * Reference: challenge latency with a healthy primary SMS provider, measured
 * in the same run.
 * Measured: the same challenge (password already checked; the request sends
 * an SMS code) with the primary hung: first before its breaker opens (each
 * send waits out the primary's timeout, then the backup delivers), then after
 * it opens (the primary is skipped without a call). Target: after the breaker
 * opens, p99 within 50 ms of the healthy p99.
 *
 * The vendors are local stand-ins (Twilio API primary, signed webhook backup)
 * that answer at once, so the figures are Steadfast's own cost; a real
 * vendor adds its own latency to every case alike.
 */
import { availableParallelism, tmpdir } from 'node:os';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../src/config/config.ts';
import { buildServices } from '../src/server/services.ts';
import { secretContext } from '../src/methods/credentials.ts';
import { startTwilioStandIn, startWebhookReceiver } from '../test/helpers/vendor-standins.ts';
import { fmt, runPrepared, startServerProcess, type LoadResult } from './harness.ts';

const PER_PHASE = Number(process.env.BENCH_CHALLENGES ?? 600);
const CONCURRENCY = 10;
const PRIMARY_TIMEOUT_MS = 1500;
const PASSWORD = 'bench password 1';
const TWILIO = { accountSid: 'ACbench', authToken: 'bench-token' };
const HOOK_SECRET = 'bench-webhook-secret-0123';
const out = (line = '') => process.stdout.write(line + '\n');

const primary = await startTwilioStandIn(TWILIO);
const backup = await startWebhookReceiver(HOOK_SECRET);
const dataDir = mkdtempSync(join(tmpdir(), 'steadfast-bench-'));
const configFile = join(dataDir, 'steadfast.json');
writeFileSync(
  configFile,
  JSON.stringify({
    delivery: {
      // Breaker settings are the defaults but for the primary's timeout, the example.
      sms: [
        { name: 'primary', type: 'twilio', baseUrl: primary.url, ...TWILIO, from: '+15005550006', timeoutMs: PRIMARY_TIMEOUT_MS },
        { name: 'backup', type: 'webhook', url: backup.url, secret: HOOK_SECRET },
      ],
      limits: { perTenantPerHour: 1_000_000 },
    },
  }),
);
const env = {
  STEADFAST_DATA_DIR: dataDir,
  STEADFAST_MASTER_KEY: randomBytes(32).toString('base64'),
  STEADFAST_LOG_LEVEL: 'error',
  STEADFAST_CONFIG: configFile,
};
out(`Steadfast delivery benchmark: ${availableParallelism()} cores, Node ${process.version}, SQLite + in-process state, vendor stand-ins on loopback`);

const USERS = 2 * PER_PHASE + 40;
{
  const services = await buildServices(loadConfig(env));
  const tenant = await services.tenants.create('bench');
  const passwordHash = await services.hasher.hash(PASSWORD);
  for (let i = 0; i < USERS; i++) {
    const user = await services.users.create(tenant.id, { username: `user${i}`, passwordHash });
    const id = `sms-${i}`;
    const phone = `+4477009${String(i).padStart(5, '0')}`;
    await services.credentials.insert({
      id,
      tenantId: tenant.id,
      userId: user.id,
      type: 'sms',
      label: 'Phone',
      state: 'active',
      secret: services.keyRing.seal(phone, secretContext('sms', id)),
      publicData: { to: 'masked' },
    });
  }
  await services.close();
}

const server = await startServerProcess(env);
let next = 0;
/** Password steps for `count` users, done before the clock starts: they are not what is measured. */
async function flows(count: number): Promise<{ path: string; body: string }[]> {
  const prepared: { path: string; body: string }[] = [];
  const one = async () => {
    const res = await fetch(`${server.url}/api/v1/t/bench/signin`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: `user${next++}`, password: PASSWORD }),
    });
    const { flow } = (await res.json()) as { flow: string };
    prepared.push({ path: `/api/v1/t/bench/signin/${flow}/challenge`, body: '{"method":"sms"}' });
  };
  for (let i = 0; i < count; i += 4) await Promise.all(Array.from({ length: Math.min(4, count - i) }, one));
  return prepared;
}
const primaryState = async () => ((await (await fetch(`${server.url}/readyz`)).json()) as any).components.delivery.sms.providers[0].state as string;
const line = (name: string, r: LoadResult & { failures: number }) =>
  `${name.padEnd(34)} ${fmt(r.requests).padStart(5)} challenges  p50 ${fmt(r.p50, 1).padStart(7)} ms  p99 ${fmt(r.p99, 1).padStart(7)} ms  failed ${r.failures}`;

try {
  await runPrepared(server.url, await flows(20), CONCURRENCY);

  const healthyBatch = await flows(PER_PHASE);
  const healthy = await runPrepared(server.url, healthyBatch, CONCURRENCY);
  out(`reference  ${line('healthy primary', healthy)}`);

  // Hung primary, before its breaker opens: one challenge at a time until it opens.
  primary.behave({ kind: 'hang' });
  const before: number[] = [];
  let beforeFailures = 0;
  for (const request of await flows(10)) {
    if ((await primaryState()) !== 'closed') break;
    const started = performance.now();
    const res = await fetch(server.url + request.path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: request.body });
    await res.arrayBuffer();
    if (res.status !== 200) beforeFailures++;
    before.push(performance.now() - started);
  }
  before.sort((a, b) => a - b);
  out(
    `measured   ${'hung primary, breaker closed'.padEnd(34)} ${fmt(before.length).padStart(5)} challenges  p50 ${fmt(before[Math.floor(before.length / 2)]!, 1).padStart(7)} ms  max ${fmt(before.at(-1)!, 1).padStart(7)} ms  failed ${beforeFailures}  (primary timeout ${PRIMARY_TIMEOUT_MS} ms; breaker ${await primaryState()} after these)`,
  );

  const deliveredBefore = backup.received.length;
  const primaryCalls = primary.requests;
  const after = await runPrepared(server.url, await flows(PER_PHASE), CONCURRENCY);
  out(`measured   ${line('hung primary, breaker open', after)}`);
  out(
    `           backup delivered ${backup.received.length - deliveredBefore} of ${after.requests}; calls to the hung primary while open: ${primary.requests - primaryCalls}`,
  );
  const gap = after.p99 - healthy.p99;
  out(
    `result     p99 after the breaker opened is ${fmt(gap, 1)} ms ${gap >= 0 ? 'above' : 'below'} the healthy p99 (target: within 50 ms) -> ${gap <= 50 ? 'met' : 'NOT met'}`,
  );
} finally {
  await server.stop();
  await Promise.all([primary.close(), backup.close()]);
  rmSync(dataDir, { recursive: true, force: true });
}
