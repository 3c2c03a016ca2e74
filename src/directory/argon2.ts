import type { Options } from '@node-rs/argon2';

/** Argon2id cost parameters (RFC 9106): memory in KiB, passes, lanes. */
export type Argon2Params = { memoryCost: number; timeCost: number; parallelism: number };

/**
 * How soon a hash should get a core when several run at once: `prompt` for
 * a tenant's hash while nothing else of its tenant waits, `bulk` for a tenant
 * that has more waiting (a surge), so another tenant's hash started alongside
 * is not slowed down by it (argon2-threads.ts).
 */
export type HashPriority = 'prompt' | 'bulk';

/** What the password hasher needs of an Argon2 implementation (the threads in argon2-threads.ts, or a test double). */
export interface Argon2 {
  hash(secret: string, options: Argon2Params & { algorithm: NonNullable<Options['algorithm']> }, priority?: HashPriority): Promise<string>;
  verify(storedHash: string, secret: string, priority?: HashPriority): Promise<boolean>;
  /** Starts its threads ahead of the first hash (optional: a test double has none). */
  prestart?(): Promise<void>;
}
