import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PasswordHasher, ARGON2_PARAMS } from '../../src/directory/password-hasher.ts';
import { KeyedHasher } from '../../src/crypto/keyed-hash.ts';
import { sqliteMemory, type Backend } from '../helpers/backends.ts';
import { api, startTestServer, type TestServer } from '../helpers/test-server.ts';

describe('password hashes upgrade themselves at sign-in', () => {
  let backend: Backend;
  let server: TestServer;
  let tenantId = '';

  beforeAll(async () => {
    backend = await sqliteMemory.create();
    server = await startTestServer(backend);
    tenantId = (await server.services.tenants.create('rehash')).id;
    // A hash made with weaker, older parameters.
    const old = await new PasswordHasher({ params: { memoryCost: 4096, timeCost: 1, parallelism: 1 } }).hash('rehash password');
    await server.services.users.create(tenantId, { username: 'rita', passwordHash: old });
  });
  afterAll(async () => {
    await server.close();
    await backend.cleanup();
  });

  it('rehashes with the current parameters after a correct password, and the new hash works', async () => {
    const res = await api(server.url, 'POST', '/api/v1/t/rehash/signin', { username: 'rita', password: 'rehash password' });
    expect(res.status).toBe(200);
    let hash = '';
    // The rehash runs after the answer; wait for it, bounded.
    for (let i = 0; i < 200; i++) {
      hash = (await server.services.users.findByUsername(tenantId, 'rita'))!.passwordHash!;
      if (hash.includes(`m=${ARGON2_PARAMS.memoryCost},`)) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(hash).toMatch(new RegExp(`^\\$argon2id\\$v=19\\$m=${ARGON2_PARAMS.memoryCost},t=${ARGON2_PARAMS.timeCost},p=1\\$`));
    expect((await api(server.url, 'POST', '/api/v1/t/rehash/signin', { username: 'rita', password: 'rehash password' })).status).toBe(200);
    expect((await api(server.url, 'POST', '/api/v1/t/rehash/signin', { username: 'rita', password: 'wrong' })).status).toBe(401);
  });
});

describe('keyed hashes for short codes', () => {
  it('depend on the key, so a database copy alone cannot test guesses', () => {
    const a = new KeyedHasher(Buffer.alloc(32, 1));
    const b = new KeyedHasher(Buffer.alloc(32, 2));
    expect(a.hash('123456')).toBe(a.hash('123456'));
    expect(a.hash('123456')).not.toBe(b.hash('123456'));
    expect(a.hash('123456')).not.toBe(a.hash('123457'));
  });
});
