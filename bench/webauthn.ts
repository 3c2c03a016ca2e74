/**
 * `npm run bench -- webauthn`
 *
 * Reference: the ECDSA P-256 verify ceiling of one thread (node:crypto), the
 * signature check at the heart of every passkey sign-in.
 * Measured: passkey sign-in verifications per second and p50/p99 at
 * concurrency 10 against a real node (`steadfast start`, SQLite, in-process
 * state). Each verification has its own flow (challenge) and its own
 * passkey, prepared before the clock starts, so the figure is the server's.
 */
import { availableParallelism, tmpdir } from 'node:os';
import { createSign, createVerify, generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../src/config/config.ts';
import { buildServices } from '../src/server/services.ts';
import { SoftAuthenticator } from '../test/helpers/soft-authenticator.ts';
import { cpuSeconds, fmt, runPrepared, startServerProcess } from './harness.ts';

const SIGNINS = Number(process.env.BENCH_SIGNINS ?? 4000);
const CONCURRENCY = 10;
const ORIGIN = 'https://login.example.com';
const out = (line = '') => process.stdout.write(line + '\n');

function p256VerifyCeiling(seconds: number): number {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const data = randomBytes(69);
  const signature = createSign('SHA256').update(data).sign(privateKey);
  let done = 0;
  const started = performance.now();
  while (performance.now() - started < seconds * 1000) {
    for (let i = 0; i < 100; i++) createVerify('SHA256').update(data).verify(publicKey, signature);
    done += 100;
  }
  return done / ((performance.now() - started) / 1000);
}

const dataDir = mkdtempSync(join(tmpdir(), 'steadfast-bench-'));
const env = {
  STEADFAST_DATA_DIR: dataDir,
  STEADFAST_MASTER_KEY: randomBytes(32).toString('base64'),
  STEADFAST_LOG_LEVEL: 'warn',
  STEADFAST_PUBLIC_URL: ORIGIN,
};
out(`Steadfast passkey benchmark: ${availableParallelism()} cores, Node ${process.version}, SQLite + in-process state`);

const authenticators: SoftAuthenticator[] = [];
{
  const services = await buildServices(loadConfig(env));
  const tenant = await services.tenants.create('bench');
  for (let i = 0; i < SIGNINS; i++) {
    const user = await services.users.create(tenant.id, { username: `user${i}` });
    const authenticator = new SoftAuthenticator(ORIGIN);
    authenticator.bindUser(Buffer.from(user.id).toString('base64url'));
    await services.credentials.insert({
      tenantId: tenant.id,
      userId: user.id,
      type: 'webauthn',
      label: 'Passkey',
      state: 'active',
      externalId: authenticator.id,
      publicData: {
        kind: 'passkey',
        publicKey: authenticator.coseKey().toString('base64url'),
        counter: 0,
        transports: ['internal'],
        aaguid: '00000000-0000-0000-0000-000000000000',
        backupEligible: false,
        backedUp: false,
      },
    });
    authenticators.push(authenticator);
  }
  await services.close();
}

const ceiling = p256VerifyCeiling(3);
out(`reference  ECDSA P-256 verify ceiling (node:crypto, one thread): ${fmt(ceiling)} verifications/s`);

const server = await startServerProcess(env);
try {
  // Flows and assertions are made before timing: the client's work is not the server's.
  const prepared: { path: string; body: string }[] = [];
  for (const authenticator of authenticators) {
    const start = await fetch(`${server.url}/api/v1/t/bench/signin/passkey`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    const { flow, webauthn } = (await start.json()) as { flow: string; webauthn: { challenge: string } };
    prepared.push({
      path: `/api/v1/t/bench/signin/${flow}/verify`,
      body: JSON.stringify({ method: 'passkey', assertion: authenticator.assert(webauthn.challenge) }),
    });
  }
  const warm = prepared.splice(0, Math.min(300, Math.floor(prepared.length / 5)));

  const run = (batch: typeof prepared) => runPrepared(server.url, batch, CONCURRENCY);
  await run(warm);
  const before = cpuSeconds(server.child.pid!);
  const wallStart = performance.now();
  const measured = await run(prepared);
  const busy = (cpuSeconds(server.child.pid!) - before) / ((performance.now() - wallStart) / 1000);
  out(
    `passkey sign-in verify (c=${CONCURRENCY}, ${prepared.length} sign-ins): ${fmt(measured.perSecond)}/s = ${fmt((100 * measured.perSecond) / ceiling)}% of the P-256 verify ceiling; p50 ${fmt(measured.p50, 1)} ms, p99 ${fmt(measured.p99, 1)} ms; failed ${measured.failures}; server busy ${fmt(100 * busy)}% of a core`,
  );
} finally {
  await server.stop();
  rmSync(dataDir, { recursive: true, force: true });
}
