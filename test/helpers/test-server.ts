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
  await app.listen({ port: backend.config.port, host: '127.0.0.1' });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    app,
    services,
    logs,
    async close() {
      await app.close();
      await services.close();
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
