import { Writable } from 'node:stream';
import { createLogger } from '../../src/http/logger.ts';
import { buildServices, type Services, type BuildOptions } from '../../src/server/services.ts';
import { buildApp, type App } from '../../src/server/app.ts';
import type { Backend } from './backends.ts';

/** Every log line the server wrote, for the redaction test and for debugging. */
export class LogCapture extends Writable {
  readonly lines: string[] = [];
  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    this.lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
    done();
  }
  get text(): string {
    return this.lines.join('\n');
  }
}

export interface TestServer {
  url: string;
  app: App;
  services: Services;
  logs: LogCapture;
  close(): Promise<void>;
}

/** A real node on an ephemeral loopback port, on the given backend. */
export async function startTestServer(
  backend: Backend,
  options: Omit<BuildOptions, 'pgSchema' | 'redisNamespace' | 'logger'> & { logLevel?: string } = {},
): Promise<TestServer> {
  const logs = new LogCapture();
  const logger = createLogger(options.logLevel ?? 'info', logs);
  const services = await buildServices(backend.config, {
    ...options,
    logger,
    ...(backend.pgSchema ? { pgSchema: backend.pgSchema } : {}),
    ...(backend.redisNamespace ? { redisNamespace: backend.redisNamespace } : {}),
  });
  const app = await buildApp(services, { logger });
  // Requests not yet answered, so a close that hangs can say which one it waits for.
  const inFlight = new Map<string, string>();
  app.addHook('onRequest', async (request) => {
    inFlight.set(request.id, `${request.method} ${request.url.replace(/[?].*/, '')}`);
  });
  app.addHook('onResponse', async (request) => {
    inFlight.delete(request.id);
  });
  await app.listen({ port: backend.config.port, host: '127.0.0.1' });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    app,
    services,
    logs,
    async close() {
      await reportIfSlow('closing the HTTP server', app.close(), () => [...inFlight.values()].join(', ') + '; ' + busyConnections(app.server));
      await reportIfSlow('closing the services', services.close());
    },
  };
}

export interface JsonResponse<T = any> {
  status: number;
  headers: Headers;
  body: T;
  contentType: string;
}

/** A small JSON client for the API under test. */
export async function api<T = any>(base: string, method: string, path: string, body?: unknown, token?: string): Promise<JsonResponse<T>> {
  const headers: Record<string, string> = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(base + path, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    // not JSON; keep the text
  }
  return { status: res.status, headers: res.headers, body: parsed as T, contentType: res.headers.get('content-type') ?? '' };
}

/** Awaits a shutdown step and, when it takes longer than a test hook should, says which one on stderr (a hang diagnosis, not a limit). */
async function reportIfSlow<T>(step: string, work: Promise<T>, waitingFor: () => string = () => ''): Promise<T> {
  const started = Date.now();
  const timer = setTimeout(
    () => process.stderr.write(`[test server] still ${step} after ${Math.round((Date.now() - started) / 1000)} s; unanswered: ${waitingFor() || 'none'}\n`),
    10_000,
  );
  timer.unref();
  try {
    return await work;
  } finally {
    clearTimeout(timer);
  }
}

/** The connections Node counts as busy (it waits for them on close): how much each has sent. An internal, read only for a hang report. */
function busyConnections(server: object): string {
  const key = Object.getOwnPropertySymbols(server).find((symbol) => symbol.description === 'http.server.connections');
  const list = key ? (server as Record<symbol, { active(): { socket?: { remotePort?: number; bytesRead: number } }[] }>)[key] : undefined;
  if (!list) return '';
  const busy = list.active().map(({ socket }) => `port ${socket?.remotePort} (${socket?.bytesRead} bytes received)`);
  return `busy connections: ${busy.join(', ') || 'none'}`;
}
