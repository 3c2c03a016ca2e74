import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import type { ManualClock } from '../../src/clock.ts';
import { loadConfig } from '../../src/config/config.ts';
import { buildServices, type Services } from '../../src/server/services.ts';
import type { NewUser, User } from '../../src/directory/users.ts';
import type { Tenant } from '../../src/directory/tenants.ts';
import type { TenantPolicy } from '../../src/directory/policy.ts';
import { AppError } from '../../src/errors/app-error.ts';
import type { RequestContext } from '../../src/signin/signin-service.ts';
import { testMasterKey } from '../helpers/backends.ts';

export interface CoreServices {
  services: Services;
  /** The master key the services were started with (base64), for tests that build a key ring of their own. */
  masterKey: string;
  /** Closes the services and removes their data folder. */
  stop(): Promise<void>;
}

/**
 * The services the core tests run against: SQLite in a fresh temporary folder,
 * a new master key, no logs and an Argon2id cheap enough for `npm run mutate`
 * to run the tests once a mutant. `env` adds or overrides settings.
 */
export async function startCoreServices(clock: ManualClock, env: Record<string, string> = {}): Promise<CoreServices> {
  const dir = mkdtempSync(join(tmpdir(), 'steadfast-core-'));
  const masterKey = testMasterKey();
  const config = loadConfig({ STEADFAST_DATA_DIR: dir, STEADFAST_MASTER_KEY: masterKey, PORT: '0', STEADFAST_LOG_LEVEL: 'silent', ...env });
  const services = await buildServices(config, { clock, hasher: { params: { memoryCost: 1024, timeCost: 1, parallelism: 1 } } }).catch((error: unknown) => {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  });
  return {
    services,
    masterKey,
    async stop() {
      await services.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

let created = 0;

/** A new user of the tenant, named `user-N` (N counts up in each test file), created straight in the directory. */
export async function createUser(s: Services, tenant: Tenant, fields: Partial<NewUser> = {}): Promise<User> {
  const user = await s.users.create(tenant.id, { username: `user-${++created}`, ...fields });
  expect(user.id).toEqual(expect.any(String));
  return user;
}

/** A live session of the user, its token: what a browser is remembered with (RememberedDevices.remember). */
export async function liveSessionToken(s: Services, tenantId: string, userId: string): Promise<string> {
  return (await s.sessions.create({ tenantId, userId, scope: 'full', amr: ['pwd', 'otp', 'mfa'] })).token;
}

/** What a promise was refused with, as data to compare: an AppError's code, retry hint, detail and extras, or anything else thrown. */
export const rejection = async (promise: Promise<unknown>) =>
  promise.then(
    () => undefined,
    (err: unknown) =>
      err instanceof AppError ? { code: err.code, retryAfter: err.retryAfter, detail: err.detail, extra: err.extra } : { code: 'not-an-app-error', err },
  );

/** The tenant with some of its policy changed, as a request would see it (nothing is stored). */
export const withPolicy = (t: Tenant, over: Partial<TenantPolicy>): Tenant => ({ ...t, policy: { ...t.policy, ...over } });

/**
 * Request contexts from a fresh source address each call (in `prefix`, e.g.
 * `198.18`), so the per-source limits stay out of tests that are not about them.
 */
export function freshSources(prefix: string, userAgent: string): (over?: Partial<RequestContext>) => RequestContext {
  let n = 0;
  return (over = {}) => ({ ip: `${prefix}.${Math.floor(++n / 250)}.${(n % 250) + 1}`, userAgent, ...over });
}
