/**
 * `steadfast/client`: a typed client for Steadfast's REST APIs (sign-in,
 * self-service, admin, app, status). Its types come from the route schemas
 * (TypeBox `Static`), so it cannot drift from the server. Works wherever
 * `fetch` does (Node 20+, browsers, workers); ships as TypeScript source for
 * bundlers, tsx or Node's type stripping.
 */
import type { Static } from 'typebox';
import type { AdminUser, DeliveryInfo, IssuedSession, MethodChoice, MethodView, SigninEventView } from '../http/api-schemas.ts';

export type MethodChoiceJson = Static<typeof MethodChoice>;
export type SessionJson = Static<typeof IssuedSession>;
export type MethodJson = Static<typeof MethodView>;
export type DeliveryJson = Static<typeof DeliveryInfo>;
export type AdminUserJson = Static<typeof AdminUser>;

export interface SigninStart {
  flow: string | null;
  state: 'factor_required' | 'registration_required' | 'complete';
  methods: MethodChoiceJson[];
  session?: SessionJson;
}

export interface Challenge {
  method: string;
  type: string;
  delivery?: DeliveryJson;
  webauthn?: Record<string, unknown>;
}

export type SigninEventJson = Static<typeof SigninEventView>;

export interface AuditEntryJson {
  id: string;
  seq: number;
  at: string;
  actor: string;
  action: string;
  targetUserId: string | null;
  details: Record<string, unknown>;
  hash: string;
}

export interface Page<T, C = string> {
  items: T[];
  next: C | null;
}

/** An RFC 9457 problem from the server, as an exception with its fields. */
export class SteadfastError extends Error {
  readonly status: number;
  /** The stable code: the last segment of `type` (`invalid-code`, `method-unavailable`, …). */
  readonly code: string;
  readonly problem: Record<string, unknown>;
  /** Seconds, from Retry-After on 429 and 503. */
  readonly retryAfter: number | undefined;

  constructor(status: number, problem: Record<string, unknown>, retryAfter: number | undefined) {
    super(String(problem.detail ?? problem.title ?? `HTTP ${status}`));
    this.status = status;
    this.code =
      String(problem.type ?? '')
        .split('/')
        .pop() || `http-${status}`;
    this.problem = problem;
    this.retryAfter = retryAfter;
  }
}

export interface ClientOptions {
  /** Where Steadfast answers, e.g. https://id.example.com */
  baseUrl: string;
  /** A session token (sfs_), an admin token (sfa_) or an app API key (sfk_), sent as a bearer token. */
  token?: string | undefined;
  fetch?: typeof fetch;
}

type Query = Record<string, string | number | undefined>;

export class SteadfastClient {
  private readonly baseUrl: string;
  private readonly doFetch: typeof fetch;

  constructor(private readonly options: ClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.doFetch = options.fetch ?? fetch;
  }

  /** The same client, acting with another token (after a sign-in, for instance). */
  withToken(token: string): SteadfastClient {
    return new SteadfastClient({ ...this.options, token });
  }

  private async request<T>(method: string, path: string, body?: unknown, query?: Query, accept = 'application/json'): Promise<T> {
    const url = new URL(this.baseUrl + path);
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    const headers: Record<string, string> = { accept };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (this.options.token) headers.authorization = `Bearer ${this.options.token}`;
    const res = await this.doFetch(url, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
    if (res.status === 204) return undefined as T;
    const text = await res.text();
    if (!res.ok) {
      let problem: Record<string, unknown> = { title: text.slice(0, 200) };
      try {
        problem = JSON.parse(text) as Record<string, unknown>;
      } catch {
        // not a problem document; keep the text
      }
      const retry = res.headers.get('retry-after');
      throw new SteadfastError(res.status, problem, retry === null ? undefined : Number(retry));
    }
    return (accept === 'application/json' ? JSON.parse(text) : text) as T;
  }

  private t = (tenant: string) => `/api/v1/t/${encodeURIComponent(tenant)}`;
  private id = (id: string) => encodeURIComponent(id);

  /** The public sign-in API. */
  readonly signin = {
    start: (tenant: string, credentials: { username: string; password: string } | { username: string; tap: string }) =>
      this.request<SigninStart>('POST', `${this.t(tenant)}/signin`, credentials),
    challenge: (tenant: string, flow: string, method: string) =>
      this.request<Challenge>('POST', `${this.t(tenant)}/signin/${this.id(flow)}/challenge`, { method }),
    verify: (tenant: string, flow: string, proof: { method: string; code?: string; assertion?: unknown }) =>
      this.request<{ state: 'complete'; session: SessionJson }>('POST', `${this.t(tenant)}/signin/${this.id(flow)}/verify`, proof),
    passkey: (tenant: string) => this.request<{ flow: string; webauthn: Record<string, unknown> }>('POST', `${this.t(tenant)}/signin/passkey`),
  };

  /** Self-service, with a session token. */
  readonly me = {
    get: () =>
      this.request<{
        id: string;
        tenant: string;
        username: string;
        email: string | null;
        phone: string | null;
        session: { scope: string; amr: string[]; expiresAt: string };
      }>('GET', '/api/v1/me'),
    methods: () => this.request<MethodJson[]>('GET', '/api/v1/me/methods'),
    addMethod: (body: { type: string; label?: string; to?: string; attestation?: unknown }) =>
      this.request<{ id: string; state: string } & Record<string, unknown>>('POST', '/api/v1/me/methods', body),
    webauthnOptions: (kind: 'passkey' | 'security-key' = 'passkey') =>
      this.request<Record<string, unknown>>('POST', '/api/v1/me/methods/webauthn/options', { kind }),
    confirm: (id: string, code: string) => this.request<{ id: string; state: 'active' }>('POST', `/api/v1/me/methods/${this.id(id)}/confirm`, { code }),
    resend: (id: string) => this.request<{ id: string; delivery: DeliveryJson }>('POST', `/api/v1/me/methods/${this.id(id)}/resend`),
    update: (id: string, changes: { label?: string; default?: boolean }) => this.request<MethodJson>('PATCH', `/api/v1/me/methods/${this.id(id)}`, changes),
    remove: (id: string) => this.request<void>('DELETE', `/api/v1/me/methods/${this.id(id)}`),
    signins: (options: { limit?: number; cursor?: string } = {}) => this.request<Page<SigninEventJson>>('GET', '/api/v1/me/signins', undefined, options),
    report: (eventId: string) => this.request<{ reported: true; sessionsEnded: number }>('POST', `/api/v1/me/signins/${this.id(eventId)}/report`),
    changePassword: (currentPassword: string, newPassword: string) =>
      this.request<{ changed: true; sessionsEnded: number }>('POST', '/api/v1/me/password', { currentPassword, newPassword }),
    signOut: () => this.request<void>('DELETE', '/api/v1/me/session'),
  };

  /** The admin API, with an admin token or an administrator's session. */
  readonly admin = {
    createUser: (body: { username: string; password?: string; email?: string; phone?: string; admin?: boolean; breakGlass?: boolean }) =>
      this.request<AdminUserJson>('POST', '/api/v1/admin/users', body),
    users: (options: { q?: string; limit?: number; after?: string } = {}) =>
      this.request<Page<AdminUserJson>>('GET', '/api/v1/admin/users', undefined, options),
    user: (id: string) =>
      this.request<{
        user: AdminUserJson;
        hasPassword: boolean;
        methods: MethodJson[];
        sessions: unknown[];
        accessPass: { oneTime: boolean; expiresAt: string; uses: number; createdBy: string } | null;
        recentSignins: SigninEventJson[];
      }>('GET', `/api/v1/admin/users/${this.id(id)}`),
    updateUser: (
      id: string,
      changes: { email?: string | null; phone?: string | null; status?: 'active' | 'disabled'; admin?: boolean; breakGlass?: boolean; password?: string },
    ) => this.request<AdminUserJson>('PATCH', `/api/v1/admin/users/${this.id(id)}`, changes),
    deleteUser: (id: string) => this.request<void>('DELETE', `/api/v1/admin/users/${this.id(id)}`),
    /** With `pass`, a Temporary Access Pass to register with is issued once the reset is done: the old password registers nothing. */
    resetMethods: (id: string, options: { pass?: { minutes?: number; oneTime?: boolean } } = {}) =>
      this.request<{ removed: number; sessionsEnded: number; pass?: { code: string; expiresAt: string; oneTime: boolean } }>(
        'POST',
        `/api/v1/admin/users/${this.id(id)}/reset-methods`,
        options,
      ),
    revokeSessions: (id: string) => this.request<{ sessionsEnded: number }>('POST', `/api/v1/admin/users/${this.id(id)}/revoke-sessions`),
    issueTap: (id: string, options: { minutes?: number; oneTime?: boolean } = {}) =>
      this.request<{ code: string; expiresAt: string; oneTime: boolean }>('POST', `/api/v1/admin/users/${this.id(id)}/tap`, options),
    revokeTap: (id: string) => this.request<void>('DELETE', `/api/v1/admin/users/${this.id(id)}/tap`),
    signins: (
      filter: { user?: string; outcome?: 'success' | 'failure'; method?: string; since?: string; until?: string; limit?: number; cursor?: string } = {},
    ) => this.request<Page<SigninEventJson & { userId: string | null; username: string }>>('GET', '/api/v1/admin/signins', undefined, filter),
    signinsCsv: (filter: { user?: string; outcome?: 'success' | 'failure'; method?: string; since?: string; until?: string } = {}) =>
      this.request<string>('GET', '/api/v1/admin/signins', undefined, { ...filter, format: 'csv' }, 'text/csv'),
    audit: (options: { limit?: number; before?: number; user?: string; action?: string } = {}) =>
      this.request<Page<AuditEntryJson, number>>('GET', '/api/v1/admin/audit', undefined, options),
    policy: () => this.request<Record<string, unknown>>('GET', '/api/v1/admin/policy'),
    setPolicy: (changes: Record<string, unknown>) => this.request<Record<string, unknown>>('PUT', '/api/v1/admin/policy', changes),
    /** Users left with no usable method by the policy now, or by one allowing only `allowedMethods` (asked before saving it). */
    strandedByPolicy: (allowedMethods?: string[]) =>
      this.request<{ allowedMethods: string[]; count: number; users: { id: string; username: string }[] }>(
        'GET',
        '/api/v1/admin/policy/stranded',
        undefined,
        allowedMethods ? { allowedMethods: allowedMethods.join(',') } : {},
      ),
    createApp: (body: { name: string; kind: 'oidc'; redirectUris: string[]; firstParty?: boolean; public?: boolean } | { name: string; kind: 'api' }) =>
      this.request<{ id: string; clientId?: string; clientSecret?: string; apiKey?: string }>('POST', '/api/v1/admin/apps', body),
    apps: () =>
      this.request<
        {
          id: string;
          name: string;
          kind: 'oidc' | 'api';
          clientId: string | null;
          redirectUris: string[];
          firstParty: boolean;
          public: boolean;
          createdAt: string;
        }[]
      >('GET', '/api/v1/admin/apps'),
    deleteApp: (id: string) => this.request<void>('DELETE', `/api/v1/admin/apps/${this.id(id)}`),
  };

  /** The app API, with an app API key: for apps that check passwords themselves. */
  readonly app = {
    preauth: (username: string) =>
      this.request<{ result: 'auth' | 'enroll' | 'allow' | 'deny'; methods: MethodChoiceJson[]; enrollUrl?: string; reason?: string }>(
        'POST',
        '/api/v1/app/preauth',
        { username },
      ),
    auth: (body: { username: string; method: string; code?: string; txid?: string }) =>
      this.request<{ result: 'allow' | 'challenge'; amr?: string[]; txid?: string; delivery?: DeliveryJson; push?: { number: string; expiresAt: string } }>(
        'POST',
        '/api/v1/app/auth',
        body,
      ),
    status: (txid: string) => this.request<{ state: 'pending' | 'allow' | 'deny' | 'expired'; amr?: string[] }>('GET', `/api/v1/app/auth/${this.id(txid)}`),
  };

  /** Health, for status pages and monitors. */
  readonly ops = {
    status: () => this.request<{ status: 'operational' | 'degraded' | 'draining'; components: Record<string, unknown> }>('GET', '/api/v1/status'),
  };
}
