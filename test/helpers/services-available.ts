import pg from 'pg';
import { Redis } from 'ioredis';

export const PG_URL = process.env.STEADFAST_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
export const REDIS_URL = process.env.STEADFAST_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/**
 * Whether a real PostgreSQL / Redis answers. With STEADFAST_REQUIRE_SERVICES=1
 * (CI) a missing service makes the suite fail instead of skip.
 */
export const requireServices = process.env.STEADFAST_REQUIRE_SERVICES === '1';

export async function postgresAvailable(): Promise<boolean> {
  const client = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    await client.query('select 1');
    return true;
  } catch (err) {
    if (requireServices) throw new Error(`PostgreSQL is required (STEADFAST_REQUIRE_SERVICES=1) but not reachable at ${PG_URL}: ${(err as Error).message}`);
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

export async function redisAvailable(): Promise<boolean> {
  const client = new Redis(REDIS_URL, { lazyConnect: true, connectTimeout: 2000, maxRetriesPerRequest: 0, retryStrategy: () => null });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.ping();
    return true;
  } catch (err) {
    if (requireServices) throw new Error(`Redis is required (STEADFAST_REQUIRE_SERVICES=1) but not reachable at ${REDIS_URL}: ${(err as Error).message}`);
    return false;
  } finally {
    client.disconnect();
  }
}

/** A fresh PostgreSQL schema for one suite, dropped by the returned function. */
export async function createPgSchema(): Promise<{ schema: string; drop: () => Promise<void> }> {
  const schema = `t_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`;
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  await client.query(`create schema ${schema}`);
  await client.end();
  return {
    schema,
    drop: async () => {
      const c = new pg.Client({ connectionString: PG_URL });
      await c.connect();
      try {
        // A connection left inside a transaction on this schema would make the
        // drop wait for ever; name it (the leak is the bug) and end it instead.
        await c.query(`set lock_timeout = '15s'`);
        try {
          await c.query(`drop schema if exists ${schema} cascade`);
        } catch (error) {
          const holders = await c.query(
            `select distinct a.pid, a.state, a.xact_start, left(a.query, 200) as query
               from pg_locks l join pg_class r on r.oid = l.relation join pg_namespace n on n.oid = r.relnamespace
               join pg_stat_activity a on a.pid = l.pid
              where n.nspname = $1 and a.pid <> pg_backend_pid()`,
            [schema],
          );
          process.stderr.write(`[test cleanup] dropping schema ${schema} waited on: ${(error as Error).message} ${JSON.stringify(holders.rows)}\n`);
          for (const row of holders.rows) await c.query('select pg_terminate_backend($1)', [row.pid]);
          await c.query(`set lock_timeout = 0`);
          await c.query(`drop schema if exists ${schema} cascade`);
        }
      } finally {
        await c.end();
      }
    },
  };
}
