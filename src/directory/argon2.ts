import type { Options } from '@node-rs/argon2';

/** Argon2id cost parameters (RFC 9106): memory in KiB, passes, lanes. */
export type Argon2Params = { memoryCost: number; timeCost: number; parallelism: number };

/** What the password hasher needs of an Argon2 implementation (the threads in argon2-threads.ts, or a test double). */
export interface Argon2 {
  hash(secret: string, options: Argon2Params & { algorithm: NonNullable<Options['algorithm']> }): Promise<string>;
  verify(storedHash: string, secret: string): Promise<boolean>;
}
