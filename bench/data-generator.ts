import Database from 'better-sqlite3';
import pg from 'pg';
import { randomBytes } from 'node:crypto';

/**
 * Sign-in events in bulk, straight into the database (not through the API),
 * shaped like a real tenant's log: two events per sign-in (password, then a
 * second factor), about one in ten failing, a few methods, many users, spread
 * evenly over `days` up to `until`.
 */
export interface GeneratedLog {
  tenantId: string;
  users: number;
  events: number;
  /** A user id that has events, for the per-user filter. */
  sampleUserId: string;
}

const USER_AGENTS = [
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36',
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15',
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1',
  'Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0',
];
const METHODS = ['totp', 'totp', 'totp', 'webauthn', 'webauthn', 'sms', 'email', 'recovery-codes', 'tap'];

/** Row `i` of the generated log, as column values in schema order. */
function eventRow(i: number, total: number, tenantId: string, users: number, until: number, days: number): unknown[] {
  const signin = Math.floor(i / 2);
  const secondStep = i % 2 === 1;
  const user = (signin * 7919) % users;
  const at = until - Math.floor(((total - i) / total) * days * 86_400_000);
  const failedPassword = signin % 13 === 0;
  const failedCode = signin % 29 === 0;
  const method = secondStep ? METHODS[signin % METHODS.length]! : null;
  const failure = secondStep ? failedCode : failedPassword;
  // Sortable like newSortableId: time first, then something unique.
  const id = at.toString(16).padStart(12, '0') + i.toString(16).padStart(8, '0') + randomBytes(4).toString('hex');
  return [
    id,
    tenantId,
    `bench-user-${user}`,
    `user${user}`,
    at,
    `10.${(user >> 16) & 255}.${(user >> 8) & 255}.${user & 255}`,
    USER_AGENTS[user % USER_AGENTS.length],
    signin % 5 === 0 ? 'payroll' : null,
    secondStep ? 'second-factor' : 'password',
    failure ? 'failure' : 'success',
    failure ? (secondStep ? 'invalid_code' : 'invalid_credentials') : 'ok',
    method,
    'bench-node',
    0,
    null,
  ];
}

const COLUMNS = [
  'id',
  'tenant_id',
  'user_id',
  'username',
  'at',
  'ip',
  'user_agent',
  'app',
  'step',
  'outcome',
  'reason',
  'method',
  'node',
  'degraded',
  'reported_at',
];

export function generateSqlite(
  path: string,
  tenantId: string,
  events: number,
  options: { users?: number; until?: number; days?: number; onProgress?: (done: number) => void } = {},
): GeneratedLog {
  const users = options.users ?? 100_000;
  const until = options.until ?? Date.now();
  const days = options.days ?? 90;
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = OFF');
  // Loading is faster with the secondary indexes built once, afterwards.
  const indexes = db.prepare(`select name, sql from sqlite_master where type = 'index' and tbl_name = 'signin_events' and sql is not null`).all() as {
    name: string;
    sql: string;
  }[];
  for (const index of indexes) db.exec(`drop index ${index.name}`);
  const insert = db.prepare(`insert into signin_events (${COLUMNS.join(', ')}) values (${COLUMNS.map(() => '?').join(', ')})`);
  const batch = db.transaction((from: number, to: number) => {
    for (let i = from; i < to; i++) insert.run(...eventRow(i, events, tenantId, users, until, days));
  });
  for (let from = 0; from < events; from += 20_000) {
    batch(from, Math.min(events, from + 20_000));
    options.onProgress?.(Math.min(events, from + 20_000));
  }
  for (const index of indexes) db.exec(index.sql);
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
  return { tenantId, users, events, sampleUserId: 'bench-user-0' };
}

export async function generatePostgres(
  url: string,
  schema: string,
  tenantId: string,
  events: number,
  options: { users?: number; until?: number; days?: number; onProgress?: (done: number) => void } = {},
): Promise<GeneratedLog> {
  const users = options.users ?? 100_000;
  const until = options.until ?? Date.now();
  const days = options.days ?? 90;
  const client = new pg.Client({ connectionString: url, options: `-c search_path=${schema}` });
  await client.connect();
  try {
    const { rows: indexes } = await client.query<{ indexname: string; indexdef: string }>(
      `select indexname, indexdef from pg_indexes where schemaname = current_schema() and tablename = 'signin_events' and indexname not like '%_pkey'`,
    );
    for (const index of indexes) await client.query(`drop index ${index.indexname}`);
    // One statement per 10,000 rows: each column as an array, unnested into rows.
    const types = ['text', 'text', 'text', 'text', 'int8', 'text', 'text', 'text', 'text', 'text', 'text', 'text', 'text', 'int4', 'int8'];
    const text = `insert into signin_events (${COLUMNS.join(', ')}) select * from unnest(${types.map((t, i) => `$${i + 1}::${t}[]`).join(', ')})`;
    for (let from = 0; from < events; from += 10_000) {
      const to = Math.min(events, from + 10_000);
      const columns: unknown[][] = COLUMNS.map(() => []);
      for (let i = from; i < to; i++) eventRow(i, events, tenantId, users, until, days).forEach((v, c) => columns[c]!.push(v));
      await client.query(text, columns);
      options.onProgress?.(to);
    }
    for (const index of indexes) await client.query(index.indexdef);
    await client.query('analyze signin_events');
  } finally {
    await client.end();
  }
  return { tenantId, users, events, sampleUserId: 'bench-user-0' };
}
