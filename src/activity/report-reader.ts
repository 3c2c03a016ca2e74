/** Reads the sign-in log in worker threads, so reports and exports never hold the event loop. */
import { Worker } from 'node:worker_threads';
import { createRequire } from 'node:module';
import type { CompiledQuery } from 'kysely';
import type { Engine } from '../store/durable/database.ts';
import { AppError } from '../errors/app-error.ts';
import type { AdminSigninEvent } from './signin-event.ts';
import type { ExportFormat } from './signin-export-format.ts';
import { NO_PACING, type ExportPacing } from './export-pacing.ts';

export interface ReportWorkerData {
  engine: Engine;
  sqlitePath: string;
  databaseUrl?: string;
  pgSchema?: string;
}

/** What a worker thread is started with: the store, and the thread's OS priority. */
interface ThreadData extends ReportWorkerData {
  /** Linux nice value of the thread (see `lowerThisThreadsPriority` in report-worker.ts). */
  nice: number;
  /** tsx's ESM API, when `module` is TypeScript (run from the sources). */
  tsx?: string | undefined;
  module: string;
}

export interface ReportRequest {
  id: number;
  sql: string;
  parameters: readonly unknown[];
  /** `rows`: the events; `csv`/`ndjson`: the events formatted as UTF-8 text; `counts`: an aggregate's rows as they come (a few dozen). */
  shape: 'rows' | 'counts' | ExportFormat;
}

export type ReportResponse =
  | { id: number; rows?: AdminSigninEvent[]; counts?: Record<string, unknown>[]; bytes?: Uint8Array; count: number; last: { at: number; id: string } | null }
  | { id: number; error: string };

export interface ReportPage {
  rows?: AdminSigninEvent[];
  counts?: Record<string, unknown>[];
  /** An export page's lines, UTF-8 encoded in the worker and transferred (not copied) to this thread. */
  bytes?: Uint8Array;
  count: number;
  /** The last row's keys: the cursor of the next page. */
  last: { at: number; id: string } | null;
}

// The worker runs TypeScript like the node does: through tsx, loaded in the thread.
const BOOTSTRAP = `
const { workerData } = require('node:worker_threads');
const loaded = workerData.tsx
  ? import(workerData.tsx).then((tsx) => tsx.tsImport(workerData.module, workerData.module))
  : import(workerData.module);
loaded.catch((err) => {
  require('node:worker_threads').parentPort.postMessage({ failed: String(err && err.message) });
});
`;

/**
 * The worker's module, and tsx to load it when it is TypeScript: from the
 * sources (tests, a checkout being edited) report-worker.ts beside this file;
 * from the build, its own entry point dist/activity/report-worker.js
 * (scripts/build.js), one folder up from the chunk or entry this code was
 * bundled into.
 */
function workerModule(): Pick<ThreadData, 'module' | 'tsx'> {
  if (!import.meta.url.endsWith('.ts')) return { module: new URL('../activity/report-worker.js', import.meta.url).href };
  const req = createRequire(import.meta.url);
  return {
    module: new URL('./report-worker.ts', import.meta.url).href,
    tsx: new URL(`file://${req.resolve('tsx/esm/api').replace(/\.cjs$/, '.mjs')}`).href,
  };
}

type Waiting = { resolve: (page: ReportPage) => void; reject: (err: Error) => void };

/** One worker thread and the requests waiting on it. */
interface Thread {
  worker: Worker;
  started: Promise<void>;
  isReady: boolean;
  pending: Map<number, Waiting>;
}

/** Exports a node streams at once; more wait their turn (503 with Retry-After). */
export const MAX_EXPORTS = 4;

/**
 * Which thread a request goes to: admin log pages (`rows`) never queue behind
 * an export's pages (`text`), each in a thread of its own.
 */
type Lane = 'rows' | 'text';

/**
 * The worker threads' priorities (Linux nice, per thread; the event loop is at
 * 0, the hashing threads at 5). An admin log page is a request someone waits
 * for; an export is background work that uses the CPU nobody else wants.
 */
const LANE_NICE: Record<Lane, number> = { rows: 10, text: 19 };

/**
 * The main thread's side of the report workers (report-worker.ts): sends them
 * compiled page queries and gets back rows or formatted text. Two threads, each
 * started on first use (or on `warm`) and again after a failure: one for the
 * admin log's pages, one for exports, so a page of the log never waits behind
 * an export's.
 */
export class ReportReader {
  private readonly threads = new Map<Lane, Thread>();
  private nextId = 1;
  private closed = false;
  private exports = 0;

  /** How exports pause between pages while the node is serving requests. */
  readonly pacing: ExportPacing;

  constructor(
    private readonly data: ReportWorkerData,
    options: { pacing?: ExportPacing } = {},
  ) {
    this.pacing = options.pacing ?? NO_PACING;
  }

  /**
   * One of the node's export slots, or `unavailable` when all are taken: each
   * export holds its client's socket and a share of the worker for as long as
   * the client reads. The returned function gives the slot back (once).
   */
  takeExportSlot(): () => void {
    if (this.closed) throw new AppError('unavailable', 'this node is shutting down; retry and another node will answer', {}, 1);
    if (this.exports >= MAX_EXPORTS)
      throw new AppError(
        'unavailable',
        `${MAX_EXPORTS} exports are running on this node; try again when one has finished, or narrow the filter to make yours shorter`,
        {},
        10,
      );
    this.exports++;
    let given = false;
    return () => {
      if (given) return;
      given = true;
      this.exports--;
    };
  }

  /** Starts the worker threads now (`lists`: the admin log's too), so the first report does not wait for them. */
  warm(options: { lists: boolean }): void {
    void this.current('text').started.catch(() => {});
    if (options.lists) void this.current('rows').started.catch(() => {});
  }

  async page(query: CompiledQuery, shape: ReportRequest['shape']): Promise<ReportPage> {
    if (this.closed) throw new AppError('unavailable', 'this node is shutting down; retry and another node will answer', {}, 1);
    const thread = this.current(shape === 'rows' || shape === 'counts' ? 'rows' : 'text');
    await thread.started;
    const id = this.nextId++;
    return new Promise<ReportPage>((resolve, reject) => {
      thread.pending.set(id, { resolve, reject });
      // Keep the process alive while a report waits on the worker, and only then.
      thread.worker.ref();
      thread.worker.postMessage({ id, sql: query.sql, parameters: query.parameters, shape } satisfies ReportRequest);
    });
  }

  /** Stops the workers; reports in flight fail (a download ends without its last chunk) and no new ones start. */
  async close(): Promise<void> {
    this.closed = true;
    const threads = [...this.threads.values()];
    this.threads.clear();
    await Promise.all(threads.map((thread) => stop(thread)));
  }

  private current(lane: Lane): Thread {
    const existing = this.threads.get(lane);
    if (existing) return existing;
    const worker = new Worker(BOOTSTRAP, {
      eval: true,
      workerData: { ...this.data, nice: LANE_NICE[lane], ...workerModule() } satisfies ThreadData,
    });
    worker.unref();
    let ready!: () => void;
    let failed!: (err: Error) => void;
    const thread: Thread = {
      worker,
      isReady: false,
      pending: new Map(),
      started: new Promise<void>((resolve, reject) => ((ready = resolve), (failed = reject))),
    };
    // A failed or stopped worker fails what waits on it; the next report starts another.
    const fail = (err: Error) => {
      if (this.threads.get(lane) === thread) this.threads.delete(lane);
      failed(err);
      for (const waiting of thread.pending.values()) waiting.reject(err);
      thread.pending.clear();
    };
    worker.on('message', (message: ReportResponse | { ready: true } | { failed: string }) => {
      if ('ready' in message) {
        thread.isReady = true;
        return ready();
      }
      if ('failed' in message) return fail(new Error(`the report worker did not start: ${message.failed}`));
      const waiting = thread.pending.get(message.id);
      if (!waiting) return;
      thread.pending.delete(message.id);
      if (thread.pending.size === 0) worker.unref();
      if ('error' in message) waiting.reject(new Error(message.error));
      else waiting.resolve(message);
    });
    worker.on('error', fail);
    worker.on('exit', () => fail(new Error('the report worker stopped')));
    this.threads.set(lane, thread);
    return thread;
  }
}

async function stop(thread: Thread): Promise<void> {
  const exited = new Promise<void>((resolve) => thread.worker.once('exit', () => resolve()));
  // A worker still starting has nothing to close and does not listen yet: stop it outright.
  if (!thread.isReady) {
    await thread.worker.terminate();
    return;
  }
  thread.worker.postMessage({ close: true });
  const timer = setTimeout(() => void thread.worker.terminate(), 2000);
  await exited;
  clearTimeout(timer);
}
