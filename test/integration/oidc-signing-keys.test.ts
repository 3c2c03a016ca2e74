import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.ts';
import { sqliteMemory, type Backend } from '../helpers/backends.ts';
import { startTestServer, type TestServer } from '../helpers/test-server.ts';

describe('OpenID Connect signing keys', () => {
  let backend: Backend;
  let server: TestServer;
  const clock = new ManualClock(Date.now());

  beforeAll(async () => {
    backend = await sqliteMemory.create();
    server = await startTestServer(backend, { clock });
    await server.services.tenants.create('acme');
  });
  afterAll(async () => {
    await server?.close();
    await backend?.cleanup();
  });

  const jwks = async () => ((await (await fetch(`${server.url}/t/acme/oidc/jwks`)).json()) as { keys: { kid: string; d?: string; kty: string }[] }).keys;

  it('publishes only public keys and stores the private ones sealed', async () => {
    const keys = await jwks();
    expect(keys).toHaveLength(1);
    expect(keys[0]).toMatchObject({ kty: 'RSA', alg: 'RS256', use: 'sig' });
    expect(keys[0]!.d).toBeUndefined();
    const rows = await server.services.durable.db.selectFrom('oidc_keys').selectAll().execute();
    expect(rows).toHaveLength(1);
    expect(rows[0]!.sealed_jwk).not.toContain('"d"');
  });

  it('rotates: the new key signs, the old one stays published, and every node sees it within 30 seconds', async () => {
    const [before] = await jwks();
    const tenant = (await server.services.tenants.findBySlug('acme'))!;
    const kid = await server.services.signingKeys.rotate(tenant.id);
    clock.advance(31_000);
    const after = await jwks();
    expect(after.map((k) => k.kid)).toEqual([kid, before!.kid]);
  });
});
