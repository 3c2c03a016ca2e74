import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { Secret } from 'otpauth';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.ts';
import { loadConfig } from '../../src/config/config.ts';
import { secretContext } from '../../src/methods/credentials.ts';
import { testMasterKey, type Backend } from '../helpers/backends.ts';
import { PrivatePostgres } from '../helpers/private-postgres.ts';
import { PrivateRedis } from '../helpers/private-redis.ts';
import { api, startTestServer, type TestServer } from '../helpers/test-server.ts';
import { totpCode } from '../helpers/totp.ts';

/**
 * Issue 12, the journal's replay: sign-ins made while the node drains its
 * journal succeed and read what the node itself journaled (codes used during
 * the outage stay used), every entry is applied exactly once, in groups (one
 * transaction per group, not per entry: that cost is what starved sign-ins
 * while a journal drained), and an entry the database refuses is set aside
 * alone. The replay is held at its first claim by a gate in the database, so
 * the sign-ins are made during it for certain, not by timing.
 */
const PASSWORD = 'a returning user passphrase';
const USERS = 80;

async function eventually(probe: () => Promise<boolean> | boolean, what: string): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if (await probe()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`never happened: ${what}`);
}

describe.runIf(PrivatePostgres.available() && PrivateRedis.available())('replaying the outage journal', () => {
  let postgres: PrivatePostgres;
  let redis: PrivateRedis;
  let server: TestServer;
  const dir = mkdtempSync(join(tmpdir(), 'steadfast-replay-'));
  const clock = new ManualClock(Date.UTC(2026, 10, 30, 9, 0, 0));
  const secrets: string[] = [];
  let recoveryCodes: string[] = [];
  let next = 1;

  const call = (method: string, path: string, body?: unknown, token?: string) => api(server.url, method, path, body, token);
  const signIn = async (i: number, factor: { method: string; code: string } = { method: 'totp', code: totpCode(secrets[i]!, clock.now()) }) => {
    const start = await call('POST', '/api/v1/t/acme/signin', { username: `user${i}`, password: PASSWORD });
    if (start.status !== 200) return start;
    return call('POST', `/api/v1/t/acme/signin/${start.body.flow}/verify`, factor);
  };
  const withDatabase = async <T>(work: (client: pg.Client) => Promise<T>): Promise<T> => {
    const client = new pg.Client({ connectionString: postgres.url });
    await client.connect();
    try {
      return await work(client);
    } finally {
      await client.end();
    }
  };

  beforeAll(async () => {
    [postgres, redis] = await Promise.all([PrivatePostgres.start(), PrivateRedis.start()]);
    const config = loadConfig({
      STEADFAST_DATA_DIR: dir,
      STEADFAST_MASTER_KEY: testMasterKey(),
      STEADFAST_DATABASE_URL: postgres.url,
      STEADFAST_REDIS_URL: redis.url,
      PORT: '0',
      STEADFAST_LOG_LEVEL: 'silent',
    });
    const backend: Backend = { name: 'private postgres+redis', config, cleanup: async () => {} };
    server = await startTestServer(backend, { clock, logLevel: 'silent' });
    const services = server.services;
    const tenant = await services.tenants.create('acme', 'Acme');
    const passwordHash = await services.hasher.hash(PASSWORD);
    for (let i = 0; i < USERS; i++) {
      const secret = new Secret({ size: 20 }).base32;
      secrets.push(secret);
      const user = await services.users.create(tenant.id, { username: `user${i}`, passwordHash });
      const id = `cred-${i}`;
      const sealed = services.keyRing.seal(secret, secretContext('totp', id));
      await services.credentials.insert({ id, tenantId: tenant.id, userId: user.id, type: 'totp', label: 'phone', state: 'active', secret: sealed });
    }
    clock.advance(30_000);
    const full = await signIn(0);
    expect(full.status).toBe(200);
    const codes = await call('POST', '/api/v1/me/methods', { type: 'recovery-codes' }, full.body.session.token);
    expect(codes.status).toBe(201);
    recoveryCodes = codes.body.codes;
    // The gate: the replay's claims wait in the database until the test opens it (a row in replay_gate).
    await withDatabase(async (client) => {
      await client.query('create table replay_gate (open boolean)');
      await client.query(`create function replay_gate_wait() returns trigger language plpgsql as $$
        begin
          while not exists (select 1 from replay_gate) loop perform pg_sleep(0.01); end loop;
          return null;
        end $$`);
      await client.query('create trigger replay_gate before insert on outage_replays for each statement execute function replay_gate_wait()');
    });
    await services.fallback!.fullCopy();
  }, 180_000);

  const openGate = () => withDatabase((client) => client.query('insert into replay_gate values (true)'));

  afterAll(async () => {
    // A failed test may leave the replay held at the gate, and the node waits for it when it closes.
    await openGate().catch(() => {});
    await server?.close();
    await Promise.all([postgres?.destroy(), redis?.down()]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps signing in during the replay, with used codes still used, and applies each entry once, a group per transaction', async () => {
    const failover = server.services.fallback!;
    clock.advance(30_000);
    const since = clock.now();
    await postgres.down();
    const totpUsed = { method: 'totp', code: totpCode(secrets[next]!, clock.now()) };
    const reused = next;
    for (const end = next + 50; next < end; next++) expect((await signIn(next)).status).toBe(200);
    expect((await signIn(0, { method: 'recovery-codes', code: recoveryCodes[0]! })).status).toBe(200);
    const journaled = failover.journal.head(100_000).map((entry) => entry.id);
    expect(journaled.length).toBeGreaterThanOrEqual(200);
    const replayedBefore = failover.replayed;

    await postgres.up();
    await eventually(() => failover.mode === 'replaying', 'the replay starts');
    // Held at its first claim: every sign-in below is made while the journal drains.
    clock.advance(30_000);
    // One after another: a burst of ten password checks at once is the hashing pool's to shed, replay or not.
    const during: number[] = [];
    for (let i = 0; i < 10; i++) during.push((await signIn(next++)).status);
    expect(during).toEqual(Array(10).fill(200));
    // What the node journaled holds while the database does not have it yet: the codes used during the outage stay used.
    expect((await signIn(0, { method: 'recovery-codes', code: recoveryCodes[0]! })).status).toBe(401);
    expect((await signIn(reused, totpUsed)).status).toBe(401);
    expect(failover.mode).toBe('replaying');
    expect(failover.journal.depth).toBeGreaterThan(journaled.length);

    await openGate();
    await eventually(() => failover.mode === 'primary', 'the journal is replayed');
    expect(failover.journal.depth).toBe(0);
    expect(failover.rejected).toBe(0);

    await withDatabase(async (client) => {
      const applied = await client.query<{ n: string; transactions: string }>(
        'select count(*) as n, count(distinct xmin::text) as transactions from outage_replays where id = any($1)',
        [journaled],
      );
      // Each entry once, and the entries journaled during the outage in groups: a transaction per hundred, not per entry.
      expect(Number(applied.rows[0]!.n)).toBe(journaled.length);
      expect(Number(applied.rows[0]!.transactions)).toBeLessThanOrEqual(Math.ceil(journaled.length / 100));
      const events = await client.query<{ n: string }>(
        `select count(*) as n from signin_events where step = 'second-factor' and outcome = 'success' and at >= $1`,
        [since],
      );
      // The outage's 50 TOTP sign-ins and the recovery code, and the 10 during the replay: each recorded once.
      expect(Number(events.rows[0]!.n)).toBe(61);
    });
    expect(failover.replayed - replayedBefore).toBeGreaterThanOrEqual(journaled.length);
    // Back on the database, the codes used during the outage are used there too.
    expect((await signIn(0, { method: 'recovery-codes', code: recoveryCodes[0]! })).status).toBe(401);
    expect((await signIn(reused, totpUsed)).status).toBe(401);
  }, 180_000);

  it('sets a refused entry aside alone and applies the rest of its group', async () => {
    const failover = server.services.fallback!;
    const refused: string[] = [];
    await postgres.down();
    clock.advance(30_000);
    const first = next;
    for (const end = next + 5; next < end; next++) expect((await signIn(next)).status).toBe(200);
    // A write the database will not take (as a user deleted meanwhile would be), in the middle of a group.
    await failover.journalWrites([{ kind: 'sql', sql: 'insert into no_such_table (id) values ($1)', parameters: ['x'] }]);
    for (const end = next + 5; next < end; next++) expect((await signIn(next)).status).toBe(200);
    const journaled = failover.journal.head(100_000);
    const bad = journaled.find((entry) => entry.payload.kind === 'sql' && entry.payload.sql.includes('no_such_table'))!;
    const rejectedBefore = failover.rejected;
    const original = server.services.fallback!['options'].onReplayRejected;
    server.services.fallback!['options'].onReplayRejected = (entry, error) => {
      refused.push(entry.id);
      original?.(entry, error);
    };

    await postgres.up();
    await eventually(() => failover.mode === 'primary', 'the journal is replayed');
    expect(failover.rejected - rejectedBefore).toBe(1);
    expect(refused).toEqual([bad.id]);
    await withDatabase(async (client) => {
      const applied = await client.query<{ id: string }>('select id from outage_replays where id = any($1)', [journaled.map((entry) => entry.id)]);
      expect(applied.rows.map((row) => row.id).sort()).toEqual(
        journaled
          .filter((entry) => entry !== bad)
          .map((entry) => entry.id)
          .sort(),
      );
      const events = await client.query<{ n: string }>(
        `select count(*) as n from signin_events where step = 'second-factor' and outcome = 'success' and username = any($1)`,
        [Array.from({ length: 10 }, (_, i) => `user${first + i}`)],
      );
      expect(Number(events.rows[0]!.n)).toBe(10);
    });
  }, 180_000);

  it('tries a write that deadlocked again instead of setting it aside', async () => {
    const failover = server.services.fallback!;
    // A write that meets a deadlock twice (as two nodes replaying the same rows can), then goes through.
    await withDatabase(async (client) => {
      await client.query('create sequence flaky_calls');
      await client.query('create table flaky_done (id text primary key)');
      await client.query(`create function flaky_write(key text) returns void language plpgsql as $$
        begin
          if nextval('flaky_calls') <= 2 then raise exception 'deadlock detected' using errcode = '40P01'; end if;
          insert into flaky_done (id) values (key);
        end $$`);
    });
    await postgres.down();
    clock.advance(30_000);
    expect((await signIn(next++)).status).toBe(200);
    await failover.journalWrites([{ kind: 'sql', sql: 'select flaky_write($1)', parameters: ['k1'] }]);
    expect((await signIn(next++)).status).toBe(200);
    const rejectedBefore = failover.rejected;

    await postgres.up();
    await eventually(() => failover.mode === 'primary', 'the journal is replayed');
    expect(failover.rejected - rejectedBefore).toBe(0);
    await withDatabase(async (client) => {
      expect((await client.query('select id from flaky_done')).rows).toEqual([{ id: 'k1' }]);
    });
  }, 180_000);
});
