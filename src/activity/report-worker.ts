/**
 * The report worker thread: runs the sign-in log's page queries on its own
 * read-only connection and formats the rows, so the node's main thread, which
 * serves sign-ins, never runs a report query (better-sqlite3 is synchronous:
 * on the main thread a slow page would hold every request behind it) and
 * never formats thousands of rows. Started by ReportReader.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { createRequire } from 'node:module';
import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';
import type SqliteDatabase from 'better-sqlite3';
import type pg from 'pg';
import { toAdminEvent } from './signin-events.ts';
import { signinLines, type ExportFormat } from './signin-export-format.ts';
import type { SigninEventTable } from '../store/durable/schema.ts';
import type { ReportRequest, ReportResponse, ReportWorkerData } from './report-reader.ts';

const require = createRequire(import.meta.url);
const data = workerData as ReportWorkerData;
const port = parentPort!;

// Report pages may take longer than the pool's 5 s for requests; not forever.
const STATEMENT_TIMEOUT_MS = 60_000;
const INT8_OID = 20;

type Run = (sql: string, parameters: readonly unknown[]) => Promise<SigninEventTable[]>;

function sqliteRunner(path: string): { run: Run; close: () => Promise<void> } {
  const Database = require('better-sqlite3') as typeof SqliteDatabase;
  const db = new Database(path, { readonly: true, fileMustExist: true });
  db.pragma('busy_timeout = 5000');
  const statements = new Map<string, SqliteDatabase.Statement>();
  return {
    run: async (sql, parameters) => {
      let statement = statements.get(sql);
      if (!statement) {
        if (statements.size >= 64) statements.clear();
        statement = db.prepare(sql);
        statements.set(sql, statement);
      }
      return statement.all(...parameters) as SigninEventTable[];
    },
    close: async () => {
      db.close();
    },
  };
}

function postgresRunner(url: string, schema: string | undefined): { run: Run; close: () => Promise<void> } {
  const { Client, types } = require('pg') as typeof pg;
  const connect = () => {
    const client = new Client({
      connectionString: url,
      statement_timeout: STATEMENT_TIMEOUT_MS,
      ...(schema ? { options: `-c search_path=${schema}` } : {}),
      types: {
        getTypeParser: ((oid: number, format?: string) =>
          oid === INT8_OID ? (v: string) => Number(v) : types.getTypeParser(oid, format as 'text')) as typeof types.getTypeParser,
      },
    });
    // A lost connection is replaced at the next page, not left to fail every report until a restart.
    client.on('error', () => {
      if (current?.client === client) current = undefined;
    });
    return { client, connected: client.connect() };
  };
  let current: ReturnType<typeof connect> | undefined;
  return {
    run: async (sql, parameters) => {
      const { client, connected } = (current ??= connect());
      try {
        await connected;
        return (await client.query<SigninEventTable>(sql, parameters as unknown[])).rows;
      } catch (err) {
        if (current?.client === client) current = undefined;
        void client.end().catch(() => {});
        throw err;
      }
    },
    close: async () => {
      await current?.client.end().catch(() => {});
    },
  };
}

/**
 * Reports yield the CPU to sign-ins: on Linux the nice value belongs to each
 * thread, so this thread alone runs at a lower priority (10 for admin log
 * pages, 19 for exports: ReportReader's lanes) and the main thread and the
 * password-hashing threads go first when the cores are busy.
 * Elsewhere it runs at the node's priority.
 */
function lowerThisThreadsPriority(nice: number): void {
  try {
    const threadId = Number(readlinkSync('/proc/thread-self').split('/').pop());
    if (Number.isInteger(threadId) && threadId > 0) setPriority(threadId, nice);
  } catch {
    // not Linux, or not allowed: same priority as the node
  }
}
lowerThisThreadsPriority((workerData as { nice?: number }).nice ?? 10);

const runner = data.engine === 'sqlite' ? sqliteRunner(data.sqlitePath) : postgresRunner(data.databaseUrl!, data.pgSchema);

port.on('message', (message: ReportRequest | { close: true }) => {
  if ('close' in message) {
    void runner.close().finally(() => port.close());
    return;
  }
  void answer(message).then(send);
});

async function answer(request: ReportRequest): Promise<ReportResponse> {
  try {
    if (request.shape === 'counts') {
      const counts = (await runner.run(request.sql, request.parameters)) as unknown as Record<string, unknown>[];
      return { id: request.id, counts, count: counts.length, last: null };
    }
    const rows = (await runner.run(request.sql, request.parameters)).map(toAdminEvent);
    const lastRow = rows.at(-1);
    const last = lastRow ? { at: lastRow.at, id: lastRow.id } : null;
    if (request.shape === 'rows') return { id: request.id, rows, count: rows.length, last };
    // Encoded here, not on the main thread, and handed over without a copy (see `send`).
    return { id: request.id, bytes: encoder.encode(signinLines(rows, request.shape satisfies ExportFormat)), count: rows.length, last };
  } catch (err) {
    return { id: request.id, error: (err as Error).message ?? String(err) };
  }
}

const encoder = new TextEncoder();

/**
 * An export page's bytes are transferred, not copied: the main thread gets
 * the very buffer and writes it to the socket as it is, so the only work
 * left to it per page is the write itself.
 */
function send(response: ReportResponse): void {
  if ('bytes' in response && response.bytes) port.postMessage(response, [response.bytes.buffer as ArrayBuffer]);
  else port.postMessage(response);
}

port.postMessage({ ready: true });
