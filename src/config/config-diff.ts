import { SECRET_KEYS, SEALED_PLACEHOLDER } from './config-secrets.ts';

export interface ConfigChange {
  /** Where, e.g. `delivery.sms[0].timeoutMs` or `admission.limit`. */
  path: string;
  /** JSON of the value before and after; absent when there was none. Secrets never appear: "(sealed)". */
  before?: string;
  after?: string;
}

/**
 * What changed between two documents (secrets in the clear, as only the
 * applying process holds them), leaf by leaf, with secret values replaced by
 * "(sealed)": the history says that a token changed, never what it is.
 */
export function diffDocuments(before: unknown, after: unknown): ConfigChange[] {
  const flatBefore = flatten(before);
  const flatAfter = flatten(after);
  const changes: ConfigChange[] = [];
  for (const path of [...new Set([...flatBefore.keys(), ...flatAfter.keys()])].sort()) {
    const b = flatBefore.get(path);
    const a = flatAfter.get(path);
    if (b === a) continue;
    const secret = SECRET_KEYS.includes(path.slice(path.lastIndexOf('.') + 1));
    const show = (v: string | undefined) => (v === undefined ? undefined : secret ? JSON.stringify(SEALED_PLACEHOLDER) : v);
    const change: ConfigChange = { path };
    const shownBefore = show(b);
    const shownAfter = show(a);
    if (shownBefore !== undefined) change.before = shownBefore;
    if (shownAfter !== undefined) change.after = shownAfter;
    changes.push(change);
  }
  return changes;
}

function flatten(value: unknown, path = '', out = new Map<string, string>()): Map<string, string> {
  if (Array.isArray(value)) {
    if (value.length === 0) out.set(path, '[]');
    value.forEach((v, i) => flatten(v, `${path}[${i}]`, out));
  } else if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value);
    if (entries.length === 0 && path) out.set(path, '{}');
    for (const [k, v] of entries) flatten(v, path ? `${path}.${k}` : k, out);
  } else if (value !== undefined) out.set(path, JSON.stringify(value));
  return out;
}
