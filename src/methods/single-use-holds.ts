import type { EphemeralStore } from '../store/ephemeral/ephemeral-store.ts';

/**
 * Holds on single-use things (a TOTP step, a recovery code, a one-time pass,
 * a WebAuthn signature counter's high-water mark)
 * while the node signs in from its local fallback (issue 12). The fallback
 * records a use in this node's snapshot only; the hold, in the ephemeral store
 * (Redis, shared by every node while it is up), makes a second node refuse the
 * same code before the database is back to say so. When Redis is down too the
 * hold falls back with the ephemeral store (to this node's memory), and the
 * guarantee narrows to this node (docs/adr/0004-outage-fallback.md).
 * Outside an outage a claim costs nothing: the database's atomic consume is the rule.
 */
export class SingleUseHolds {
  constructor(
    private readonly active: () => boolean,
    private readonly store: EphemeralStore | undefined,
  ) {}

  /** True when this caller is the first to claim `key` during the outage (always true outside one). */
  async claim(key: string, ttlMs: number): Promise<boolean> {
    if (!this.store || !this.active()) return true;
    return this.store.setIfAbsent(`hold:${key}`, 1, ttlMs);
  }

  /**
   * Raises the high-water mark under `key` to `value` (a WebAuthn signature
   * counter): true when `value` is above every mark held during the outage
   * (always true outside one). Atomic in the ephemeral store, so a cloned
   * authenticator replaying a counter another node has already seen is refused
   * here even though this node's snapshot still holds the older counter.
   */
  async advance(key: string, value: number, ttlMs: number): Promise<boolean> {
    if (!this.store || !this.active()) return true;
    return this.store.raiseTo(`mark:${key}`, value, ttlMs);
  }

  /** Marks `key` as used without asking whether it was (the TOTP steps below the one used). */
  async mark(key: string, ttlMs: number): Promise<void> {
    if (!this.store || !this.active()) return;
    await this.store.setIfAbsent(`hold:${key}`, 1, ttlMs);
  }
}

/** No outage fallback (the embedded store): the database's consume is all there is. */
export const noHolds = new SingleUseHolds(() => false, undefined);
