import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Secret } from 'otpauth';
import { loadConfig } from '../src/config/config.ts';
import { buildServices } from '../src/server/services.ts';
import { buildApp } from '../src/server/app.ts';
import { createLogger } from '../src/http/logger.ts';
import { totpCode } from '../test/helpers/totp.ts';
const dir = mkdtempSync(join(tmpdir(), 'micro-'));
const s = await buildServices(loadConfig({ STEADFAST_DATA_DIR: dir, STEADFAST_MASTER_KEY: randomBytes(32).toString('base64') }), { hasher: { params: { memoryCost: 1024, timeCost: 1, parallelism: 1 } } });
const app = await buildApp(s, { logger: createLogger('warn') });
const t = await s.tenants.create('m');
const ph = await s.hasher.hash('pw');
const N = Number(process.env.N ?? 3000);
const secrets: string[] = [];
for (let i = 0; i < N; i++) {
  const u = await s.users.create(t.id, { username: 'u' + i, passwordHash: ph });
  const sec = new Secret({ size: 20 }).base32; secrets.push(sec);
  await s.credentials.insert({ id: 'c' + i, tenantId: t.id, userId: u.id, type: 'totp', label: 'x', state: 'active', secret: s.keyRing.seal(sec, 'totp-secret:c' + i) });
}
const flows: string[] = [];
for (let i = 0; i < N; i++) {
  const r = await app.inject({ method: 'POST', url: '/api/v1/t/m/signin', payload: { username: 'u' + i, password: 'pw' } });
  flows.push(r.json().flow);
}
import { Session } from 'node:inspector/promises';
const session = new Session(); session.connect();
await session.post('Profiler.enable'); await session.post('Profiler.start');
const t0 = performance.now(); let bad = 0;
for (let i = 0; i < N; i += 10) {
  await Promise.all(Array.from({ length: 10 }, async (_, k) => {
  const r = await app.inject({ method: 'POST', url: `/api/v1/t/m/signin/${flows[i + k]}/verify`, payload: { method: 'totp', code: totpCode(secrets[i + k]!, Date.now()) } });
  if (r.statusCode !== 200) bad++;
  }));
}
const el = performance.now() - t0;
const { profile } = await session.post('Profiler.stop');
(await import('node:fs')).writeFileSync('/tmp/verify.cpuprofile', JSON.stringify(profile));
console.log(`verify: ${(el * 1000 / N).toFixed(0)} µs each, ${(N / el * 1000).toFixed(0)}/s sequential in-process, bad ${bad}`);
const t1 = performance.now();
for (let i = 0; i < N; i++) await app.inject({ method: 'GET', url: '/healthz' });
console.log(`healthz: ${((performance.now() - t1) * 1000 / N).toFixed(0)} µs each`);
await app.close(); await s.close();
