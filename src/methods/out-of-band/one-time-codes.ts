/** One-time codes sent by text, call or email: keyed hashes in the ephemeral store, limited attempts, taken atomically when right. */
import { timingSafeEqual } from 'node:crypto';
import type { Clock } from '../../clock.ts';
import type { KeyedHasher } from '../../crypto/keyed-hash.ts';
import { randomDigits } from '../../crypto/random.ts';
import type { EphemeralStore } from '../../store/ephemeral/ephemeral-store.ts';
import { parseRecord } from '../../store/parse-record.ts';
import { Type, type Static } from 'typebox';

export interface CodeSettings {
  digits: number;
  lifetimeMs: number;
  maxAttempts: number;
}

const StoredCode = Type.Object({
  /** Keyed hash of scope and code: a copy of the store alone cannot test guesses. */
  hash: Type.String(),
  expiresAt: Type.Number(),
});
type StoredCode = Static<typeof StoredCode>;

export interface IssuedCode {
  code: string;
  expiresAt: number;
}

const codeKey = (scope: string) => `otc:${scope}`;
const triesKey = (scope: string) => `otc:${scope}:tries`;

/**
 * One-time codes sent out of band. A scope names what a code is for (one
 * credential in one sign-in, or one enrolment); a new code replaces the last
 * of its scope. Each code is single use, expires, and allows a few attempts.
 */
export class OneTimeCodes {
  constructor(
    private readonly store: EphemeralStore,
    private readonly hasher: KeyedHasher,
    private readonly clock: Clock,
    readonly settings: CodeSettings,
  ) {}

  async issue(scope: string): Promise<IssuedCode> {
    const code = randomDigits(this.settings.digits);
    const expiresAt = this.clock.now() + this.settings.lifetimeMs;
    await this.store.delete(triesKey(scope));
    await this.store.set(codeKey(scope), { hash: this.hash(scope, code), expiresAt } satisfies StoredCode, this.settings.lifetimeMs);
    return { code, expiresAt };
  }

  /**
   * True once for the right code. A wrong guess uses one of the code's attempts
   * and the last one destroys it; the right code is taken atomically, so two
   * racing requests with it cannot both pass.
   */
  async check(scope: string, input: string): Promise<boolean> {
    const stored = parseRecord(StoredCode, await this.store.get(codeKey(scope)));
    if (!stored || stored.expiresAt <= this.clock.now()) return false;
    const tries = await this.store.increment(triesKey(scope), this.settings.lifetimeMs);
    if (tries > this.settings.maxAttempts) {
      await this.revoke(scope);
      return false;
    }
    const candidate = Buffer.from(this.hash(scope, input.trim()));
    const expected = Buffer.from(stored.hash);
    if (candidate.length !== expected.length || !timingSafeEqual(candidate, expected)) {
      if (tries === this.settings.maxAttempts) await this.revoke(scope);
      return false;
    }
    const taken = parseRecord(StoredCode, await this.store.take(codeKey(scope)));
    await this.store.delete(triesKey(scope));
    return taken?.hash === stored.hash;
  }

  async revoke(scope: string): Promise<void> {
    await Promise.all([this.store.delete(codeKey(scope)), this.store.delete(triesKey(scope))]);
  }

  private hash(scope: string, code: string): string {
    return this.hasher.hash(`${scope}\n${code}`);
  }
}
