import type { KeyRing } from '../crypto/key-ring.ts';

/** Keys whose values are secrets wherever they appear in a configuration document (provider tokens and passwords). */
export const SECRET_KEYS: readonly string[] = ['authToken', 'apiSecret', 'secret', 'password'];

/** What a secret reads as when shown back; applying a document with it keeps the previous version's secret. */
export const SEALED_PLACEHOLDER = '(sealed)';

const CONTEXT = 'config-secret';
type Sealed = { $sealed: string };
const isSealed = (v: unknown): v is Sealed => typeof v === 'object' && v !== null && typeof (v as Sealed).$sealed === 'string';

/**
 * Seals the secrets of configuration documents with the key ring before they
 * are stored, opens them for the node that uses them, and hides them from
 * everything that shows a document (the CLI, the API, the history's diff):
 * a database dump or a screenshot of `config status` holds no provider token.
 */
export class ConfigSecrets {
  constructor(private readonly keyRing: KeyRing) {}

  /**
   * The document with every secret sealed. A secret given as "(sealed)" takes
   * the sealed value at the same place in `previous` (the version it replaces),
   * so a document read back with `config show` can be edited and applied again.
   * Returns the places where a "(sealed)" had nothing to keep.
   */
  seal(doc: unknown, previous: unknown): { sealed: unknown; missing: string[] } {
    const missing: string[] = [];
    const walk = (value: unknown, prev: unknown, path: string): unknown => {
      if (Array.isArray(value)) return value.map((v, i) => walk(v, matchingEntry(prev, v, i), `${path}[${i}]`));
      if (typeof value !== 'object' || value === null) return value;
      const out: Record<string, unknown> = {};
      for (const [key, inner] of Object.entries(value)) {
        const before = typeof prev === 'object' && prev !== null ? (prev as Record<string, unknown>)[key] : undefined;
        const where = path ? `${path}.${key}` : key;
        if (SECRET_KEYS.includes(key) && typeof inner === 'string') {
          if (inner === SEALED_PLACEHOLDER) {
            if (isSealed(before)) out[key] = before;
            else missing.push(where);
          } else out[key] = { $sealed: this.keyRing.seal(inner, CONTEXT) } satisfies Sealed;
        } else out[key] = walk(inner, before, where);
      }
      return out;
    };
    return { sealed: walk(doc, previous, ''), missing };
  }

  /** The document with its secrets in the clear, for the node that runs it; never shown or logged. */
  open(doc: unknown): unknown {
    return mapSealed(doc, (s) => this.keyRing.open(s.$sealed, CONTEXT).toString('utf8'));
  }

  /**
   * The document with every secret sealed under an older master key sealed
   * again under the active one (same context), for `steadfast keys rewrap`;
   * how many were.
   */
  rewrap(doc: unknown): { doc: unknown; rewrapped: number } {
    let rewrapped = 0;
    const out = mapSealed(doc, (s) => {
      if (!this.keyRing.needsRewrap(s.$sealed)) return s;
      rewrapped++;
      return { $sealed: this.keyRing.seal(this.keyRing.open(s.$sealed, CONTEXT), CONTEXT) } satisfies Sealed;
    });
    return { doc: out, rewrapped };
  }

  /** The document as anyone may see it: every secret reads "(sealed)". */
  static redact(doc: unknown): unknown {
    return mapSealed(doc, () => SEALED_PLACEHOLDER);
  }
}

function mapSealed(value: unknown, fn: (s: Sealed) => unknown): unknown {
  if (isSealed(value)) return fn(value);
  if (Array.isArray(value)) return value.map((v) => mapSealed(v, fn));
  if (typeof value !== 'object' || value === null) return value;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, mapSealed(v, fn)]));
}

/** A provider list entry of the previous version: the one of the same name, else the one at the same place. */
function matchingEntry(prev: unknown, entry: unknown, i: number): unknown {
  if (!Array.isArray(prev)) return undefined;
  const name = typeof entry === 'object' && entry !== null ? (entry as { name?: unknown }).name : undefined;
  return (name !== undefined && prev.find((p) => typeof p === 'object' && p !== null && (p as { name?: unknown }).name === name)) || prev[i];
}
