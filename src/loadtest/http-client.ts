import { Agent, request } from 'undici';

export interface JsonAnswer {
  status: number;
  body: any;
  /** Seconds the server asked to wait (429 and 503 carry it). */
  retryAfter?: number;
}

// Setting up and removing the temporary users is not the load being measured: it waits its turn.
const PATIENT_TRIES = 30;
const LONGEST_WAIT_S = 5;

/** A failed step of a journey, named for the summary: `POST /signin 503 unavailable`, `network ECONNREFUSED`. */
export class StepFailed extends Error {
  constructor(readonly label: string) {
    super(label);
  }
}

/** JSON over HTTP with kept-alive connections, as a fleet of browsers and apps would reach a load balancer. */
export class HttpClient {
  private readonly agent: Agent;

  constructor(
    readonly baseUrl: string,
    connections = 256,
    private readonly timeoutMs = 30_000,
  ) {
    // Idle connections are dropped well before a load balancer's keep-alive
    // timeout (HAProxy: 10 s), so a request is never sent on one it just closed.
    this.agent = new Agent({ connections, pipelining: 1, keepAliveTimeout: 4_000, keepAliveMaxTimeout: 4_000 });
  }

  async call(method: string, path: string, body?: unknown, token?: string): Promise<JsonAnswer> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (token) headers.authorization = `Bearer ${token}`;
    try {
      const res = await request(this.baseUrl + path, {
        method: method as 'GET',
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        dispatcher: this.agent,
        headersTimeout: this.timeoutMs,
        bodyTimeout: this.timeoutMs,
      });
      const text = await res.body.text();
      let parsed: unknown = text;
      try {
        parsed = text ? JSON.parse(text) : undefined;
      } catch {
        // not JSON
      }
      const retryAfter = Number(res.headers['retry-after']);
      return { status: res.statusCode, body: parsed, ...(Number.isFinite(retryAfter) ? { retryAfter } : {}) };
    } catch (err) {
      throw new StepFailed(`network ${(err as NodeJS.ErrnoException).code ?? (err as Error).name}`);
    }
  }

  /**
   * `expect` for the load test's own set-up: a deployment that sheds load (the
   * admin class goes first) answers 503 or 429 with Retry-After, and a good
   * client waits as told and asks again.
   */
  async expectPatiently(expectStatus: number, method: string, path: string, body?: unknown, token?: string): Promise<any> {
    for (let tries = 1; ; tries++) {
      const res = await this.call(method, path, body, token);
      if ((res.status === 503 || res.status === 429) && tries < PATIENT_TRIES) {
        await new Promise((resolve) => setTimeout(resolve, Math.min(LONGEST_WAIT_S, Math.max(0.2, res.retryAfter ?? 1)) * 1000));
        continue;
      }
      return this.check(expectStatus, method, path, res);
    }
  }

  /** A call that must answer `expect`; anything else fails the journey with a label. */
  async expect(expectStatus: number, method: string, path: string, body?: unknown, token?: string): Promise<any> {
    return this.check(expectStatus, method, path, await this.call(method, path, body, token));
  }

  private check(expectStatus: number, method: string, path: string, res: JsonAnswer): any {
    if (res.status !== expectStatus) {
      const type = typeof res.body === 'object' && res.body && typeof res.body.type === 'string' ? res.body.type.split('/').pop() : '';
      throw new StepFailed(
        `${method} ${path.replace(/\/signin\/[^/]+\//, '/signin/{flow}/').replace(/\/(users|methods)\/[^/]+/, '/$1/{id}')} ${res.status}${type ? ` ${type}` : ''}`,
      );
    }
    return res.body;
  }

  async close(): Promise<void> {
    await this.agent.close();
  }
}
