import { afterAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { migrateToLatest, openDurableStore } from '../../src/store/durable/database.ts';
import { PG_URL, createPgSchema, postgresAvailable } from '../helpers/services-available.ts';

/**
 * A node migrating its schema while another deployment on the same database
 * drops one of its own: the node must neither notice nor care. (Kysely's own
 * introspection names every schema it sees and failed with `schema "…" does
 * not exist` when one went away mid-query: a CI run lost a test to it.)
 */
describe.runIf(await postgresAvailable())('migrations beside schemas that come and go', () => {
  const drops: Array<() => Promise<void>> = [];
  afterAll(async () => {
    for (const drop of drops) await drop();
  });

  it('migrates a fresh schema while other schemas are created and dropped', async () => {
    const churn = new pg.Client({ connectionString: PG_URL });
    await churn.connect();
    let stop = false;
    let churned = 0;
    // Many small schemas with tables, dropped and made again as fast as the database allows.
    const churning = (async () => {
      while (!stop) {
        const name = `churn_${process.pid}_${churned % 4}`;
        await churn.query(`drop schema if exists ${name} cascade`);
        await churn.query(`create schema ${name}`);
        await churn.query(`create table ${name}.t (a int primary key, b text, c bigserial)`);
        churned++;
      }
    })();
    try {
      for (let i = 0; i < 6; i++) {
        const { schema, drop } = await createPgSchema();
        drops.push(drop);
        const store = openDurableStore({ databaseUrl: PG_URL, sqlitePath: ':memory:', pgSchema: schema, poolSize: 2 });
        try {
          const result = await migrateToLatest(store.db, store.engine);
          expect(result.error).toBeUndefined();
          // A second start finds every migration applied.
          expect((await migrateToLatest(store.db, store.engine)).results).toEqual([]);
        } finally {
          await store.close();
        }
      }
    } finally {
      stop = true;
      await churning;
      for (let i = 0; i < 4; i++) await churn.query(`drop schema if exists churn_${process.pid}_${i} cascade`);
      await churn.end();
    }
    // The churn really ran alongside the migrations.
    expect(churned).toBeGreaterThan(6);
  });
});
