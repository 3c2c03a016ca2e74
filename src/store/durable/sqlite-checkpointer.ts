import { Worker } from 'node:worker_threads';
import { createRequire } from 'node:module';
import type SqliteDatabase from 'better-sqlite3';

// Runs in a worker thread with its own connection: PASSIVE checkpoints never
// block writers, and the fsync they end with happens off the event loop.
const WORKER_SOURCE = `
const { workerData, parentPort } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.path);
db.pragma('busy_timeout = 1000');
const timer = setInterval(() => {
  try { db.pragma('wal_checkpoint(PASSIVE)'); } catch (err) { parentPort.postMessage(String(err && err.message)); }
}, workerData.everyMs);
parentPort.on('message', () => { clearInterval(timer); db.close(); parentPort.close(); });
`;

export interface Checkpointer {
  stop(): Promise<void>;
}

/**
 * Moves SQLite's WAL checkpoints off the request path. With automatic
 * checkpoints, the write that crosses the WAL threshold copies pages back into
 * the database and fsyncs it, inside some unlucky request. Here a worker thread
 * checkpoints every `everyMs` instead. Should the worker fail, automatic
 * checkpoints come back on, so the WAL can never grow without bound.
 */
export function startCheckpointer(sqlite: SqliteDatabase.Database, path: string, everyMs = 1000): Checkpointer {
  const restoreAutomatic = () => sqlite.pragma('wal_autocheckpoint = 1000');
  sqlite.pragma('wal_autocheckpoint = 0');
  const driver = createRequire(import.meta.url).resolve('better-sqlite3');
  const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { path, everyMs, driver } });
  worker.unref();
  let stopping = false;
  worker.on('error', () => restoreAutomatic());
  worker.on('exit', () => {
    if (!stopping) restoreAutomatic();
  });
  return {
    async stop() {
      stopping = true;
      // Keep the process alive until the worker has closed its connection.
      worker.ref();
      const exited = new Promise((resolve) => worker.once('exit', resolve));
      worker.postMessage('stop');
      await exited;
      restoreAutomatic();
      sqlite.pragma('wal_checkpoint(TRUNCATE)');
    },
  };
}
