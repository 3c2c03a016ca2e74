/** A tenant's policy read and validated field by field: every problem named, a damaged one read as the strict default. */
import { AppError } from '../errors/app-error.ts';
import { METHOD_TYPES } from '../methods/registry.ts';
import type { TenantPolicy } from './tenant-policy.ts';

export type { TenantPolicy } from './tenant-policy.ts';

/** Retention Steadfast allows at all, in days: an audit trail of at least a month, nothing kept beyond ten years. */
export const RETENTION_BOUNDS = { signinEventDays: { min: 1, max: 3650 }, auditDays: { min: 30, max: 3650 } } as const;

// TAP lifetimes Steadfast allows at all: long enough to walk a new hire through set-up, short enough to expire before it is forgotten.
export const TAP_BOUNDS = { minMinutes: 10, maxMinutes: 30 * 24 * 60 } as const;

export const DEFAULT_POLICY: Readonly<TenantPolicy> = Object.freeze({
  mfaRequired: true,
  allowedMethods: [...METHOD_TYPES],
  webauthnAaguids: [],
  tap: { minMinutes: 10, maxMinutes: 8 * 60, defaultMinutes: 60, oneTimeDefault: true },
  rememberedDeviceDays: 0,
  // NIST 800-63B: at most 100 consecutive failures.
  lockout: { accountFailures: 100, blockMinutes: 60 },
  failMode: 'closed',
  retention: { signinEventDays: 90, auditDays: 400 },
});

/** Reads a stored policy. Never throws: a damaged field falls back to the strict default, never to "no MFA". */
export function parsePolicy(json: string): TenantPolicy {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch {
    raw = {};
  }
  const { policy } = checkPolicy(raw, DEFAULT_POLICY);
  return policy;
}

/**
 * Validates a policy an administrator sends, field by field on top of `base`
 * (fields left out keep their value). Throws `invalid-policy` listing every
 * problem.
 */
export function validatePolicy(input: unknown, base: TenantPolicy): TenantPolicy {
  const { policy, problems } = checkPolicy(input, base);
  if (problems.length > 0) throw new AppError('invalid-policy', problems.join('; '), { problems });
  return policy;
}

type Raw = Record<string, unknown>;
const isObject = (v: unknown): v is Raw => typeof v === 'object' && v !== null && !Array.isArray(v);
const AAGUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The policy as far as `input` is valid (wrong fields keep their `base` value) and every problem found. */
export function checkPolicy(input: unknown, base: Readonly<TenantPolicy>): { policy: TenantPolicy; problems: string[] } {
  const problems: string[] = [];
  const raw = isObject(input) ? input : {};
  if (!isObject(input)) problems.push('the policy must be a JSON object');
  const known = ['mfaRequired', 'allowedMethods', 'webauthnAaguids', 'tap', 'rememberedDeviceDays', 'lockout', 'failMode', 'retention'];
  for (const key of Object.keys(raw)) if (!known.includes(key)) problems.push(`"${key}" is not a policy setting`);

  const bool = (value: unknown, name: string, fallback: boolean) => {
    if (value === undefined) return fallback;
    if (typeof value === 'boolean') return value;
    problems.push(`${name} must be true or false`);
    return fallback;
  };
  const int = (value: unknown, name: string, fallback: number, min: number, max: number) => {
    if (value === undefined) return fallback;
    if (typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max) return value;
    problems.push(`${name} must be a whole number from ${min} to ${max}`);
    return fallback;
  };
  const list = (value: unknown, name: string, fallback: string[], valid: (s: string) => boolean, what: string) => {
    if (value === undefined) return [...fallback];
    if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) {
      problems.push(`${name} must be a list of ${what}`);
      return [...fallback];
    }
    const wrong = value.filter((v) => !valid(v));
    if (wrong.length > 0)
      problems.push(
        `${name}: ${wrong
          .slice(0, 5)
          .map((w) => JSON.stringify(w))
          .join(', ')} ${wrong.length === 1 ? 'is' : 'are'} not ${what}`,
      );
    return [...new Set(value.filter(valid))];
  };

  const mfaRequired = bool(raw.mfaRequired, 'mfaRequired', base.mfaRequired);
  const allowedMethods = list(
    raw.allowedMethods,
    'allowedMethods',
    base.allowedMethods,
    (m) => (METHOD_TYPES as readonly string[]).includes(m),
    `method types (${METHOD_TYPES.join(', ')})`,
  );
  if (mfaRequired && raw.allowedMethods !== undefined && !allowedMethods.some((m) => m !== 'recovery-codes' && m !== 'tap')) {
    problems.push('with mfaRequired, allowedMethods needs at least one method users can register for daily use (not only recovery codes or TAP)');
  }
  const webauthnAaguids = list(raw.webauthnAaguids, 'webauthnAaguids', base.webauthnAaguids, (a) => AAGUID.test(a), 'AAGUIDs (lower-case UUIDs)');

  const tapRaw = raw.tap === undefined ? {} : raw.tap;
  if (!isObject(tapRaw)) problems.push('tap must be an object');
  const t = isObject(tapRaw) ? tapRaw : {};
  const { minMinutes: lo, maxMinutes: hi } = TAP_BOUNDS;
  const tap = {
    minMinutes: int(t.minMinutes, 'tap.minMinutes', base.tap.minMinutes, lo, hi),
    maxMinutes: int(t.maxMinutes, 'tap.maxMinutes', base.tap.maxMinutes, lo, hi),
    defaultMinutes: int(t.defaultMinutes, 'tap.defaultMinutes', base.tap.defaultMinutes, lo, hi),
    oneTimeDefault: bool(t.oneTimeDefault, 'tap.oneTimeDefault', base.tap.oneTimeDefault),
  };
  if (tap.minMinutes > tap.maxMinutes) problems.push('tap.minMinutes must not exceed tap.maxMinutes');
  else if (tap.defaultMinutes < tap.minMinutes || tap.defaultMinutes > tap.maxMinutes)
    problems.push('tap.defaultMinutes must lie between tap.minMinutes and tap.maxMinutes');

  const lockRaw = raw.lockout === undefined ? {} : raw.lockout;
  if (!isObject(lockRaw)) problems.push('lockout must be an object');
  const l = isObject(lockRaw) ? lockRaw : {};
  const lockout = {
    accountFailures: int(l.accountFailures, 'lockout.accountFailures', base.lockout.accountFailures, 5, 100),
    blockMinutes: int(l.blockMinutes, 'lockout.blockMinutes', base.lockout.blockMinutes, 1, 24 * 60),
  };

  const retentionRaw = raw.retention === undefined ? {} : raw.retention;
  if (!isObject(retentionRaw)) problems.push('retention must be an object');
  const r = isObject(retentionRaw) ? retentionRaw : {};
  for (const key of Object.keys(r)) if (!(key in RETENTION_BOUNDS)) problems.push(`"retention.${key}" is not a policy setting`);
  const { signinEventDays: ev, auditDays: au } = RETENTION_BOUNDS;
  const retention = {
    signinEventDays: int(r.signinEventDays, 'retention.signinEventDays', base.retention.signinEventDays, ev.min, ev.max),
    auditDays: int(r.auditDays, 'retention.auditDays', base.retention.auditDays, au.min, au.max),
  };

  let failMode = base.failMode;
  if (raw.failMode !== undefined) {
    if (raw.failMode === 'closed' || raw.failMode === 'tap-only') failMode = raw.failMode;
    else problems.push('failMode must be "closed" or "tap-only" (there is no open mode: a password alone never signs anyone in while MFA is required)');
  }

  return {
    policy: {
      mfaRequired,
      allowedMethods,
      webauthnAaguids,
      tap,
      rememberedDeviceDays: int(raw.rememberedDeviceDays, 'rememberedDeviceDays', base.rememberedDeviceDays, 0, 90),
      lockout,
      failMode,
      retention,
    },
    problems,
  };
}
