import type { KeyRing } from '../crypto/key-ring.ts';
import { randomToken } from '../crypto/random.ts';
import type { EphemeralStore } from '../store/ephemeral/ephemeral-store.ts';

/** A Temporary Access Pass as issued, waiting for the one page view that shows it. */
export interface HeldPass {
  code: string;
  expiresAt: string;
  oneTime: boolean;
}

/** Who holds which pass for whom: the administrator, the user the pass is for, and the view's key. */
export interface PassHolding {
  tenantId: string;
  adminId: string;
  userId: string;
}

const HOLD_MS = 120_000;
const KEY = /^[A-Za-z0-9_-]{10,40}$/;

/**
 * A new pass is shown on a page of its own, reached by a redirect: a refresh
 * of the page after the post would issue another. The code waits for that
 * one view, sealed with the key ring (bound to the administrator, the user
 * and the view's key) in the ephemeral store, and is taken when shown, so a
 * second view, another administrator or another node's replay finds nothing.
 */
export class IssuedPassHolder {
  constructor(private readonly deps: { ephemeral: Pick<EphemeralStore, 'set' | 'take'>; keyRing: Pick<KeyRing, 'seal' | 'open'> }) {}

  /** Holds the pass; the answer is the key the view's URL carries. */
  async hold(at: PassHolding, pass: HeldPass): Promise<string> {
    const key = randomToken(16);
    const name = storeKey(at, key);
    await this.deps.ephemeral.set(name, this.deps.keyRing.seal(JSON.stringify(pass), name), HOLD_MS);
    return key;
  }

  /** The held pass, once; undefined for a key that is malformed, already taken, expired or someone else's. */
  async take(at: PassHolding, key: string | undefined): Promise<HeldPass | undefined> {
    if (!key || !KEY.test(key)) return undefined;
    const name = storeKey(at, key);
    const sealed = await this.deps.ephemeral.take(name);
    if (typeof sealed !== 'string') return undefined;
    const value: unknown = JSON.parse(this.deps.keyRing.open(sealed, name).toString('utf8'));
    return isHeldPass(value) ? value : undefined;
  }
}

const storeKey = (at: PassHolding, key: string) => `tap-view:${at.tenantId}:${at.adminId}:${at.userId}:${key}`;

function isHeldPass(value: unknown): value is HeldPass {
  const v = value as Partial<HeldPass> | null;
  return typeof v === 'object' && v !== null && typeof v.code === 'string' && typeof v.expiresAt === 'string' && typeof v.oneTime === 'boolean';
}
