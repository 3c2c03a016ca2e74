/** Every audit action told in words (a sentence and its facts), in one table. */
import type { AuditAction } from './audit-log.ts';
import { recordedMethodName } from './recorded-method.ts';

/** An audit entry as a person reads it: who did it and to whom, by name, and the facts it recorded. */
export interface AuditStory {
  /** "Ada", "API token ci-deploy", "The command line". */
  by: string;
  /** The user it was about, by name; null when it was about no user. */
  whom: string | null;
  details: Record<string, unknown>;
}

export interface AuditActionDescriptor {
  /** A sentence: "Methods of Bob reset by Ada". */
  sentence(s: AuditStory): string;
  /** The facts worth reading, as short phrases ("2 methods removed"); never a secret (none is recorded). */
  facts?(details: Record<string, unknown>): string[];
}

const count = (n: unknown, one: string, many: string) => (typeof n === 'number' ? `${n} ${n === 1 ? one : many}` : undefined);
const of = (whom: string | null) => whom ?? 'a user no longer here';
const list = (value: unknown) => (Array.isArray(value) ? value.map(String).join(', ') : '');
const present = (items: (string | undefined | false)[]): string[] => items.filter((x): x is string => typeof x === 'string' && x !== '');

/**
 * What every audit action means in words, in one place: the console's audit
 * log and anything else that shows entries to people read it from here. The
 * action names themselves stay stable (alerting rules match on them); this
 * table is only how they are told. `satisfies` makes a new action without
 * words a type error.
 */
export const AUDIT_ACTIONS = {
  'tap.issued': {
    sentence: (s) => `Temporary Access Pass for ${of(s.whom)} issued by ${s.by}`,
    facts: (d) =>
      present([
        d.oneTime === true ? 'usable once' : d.oneTime === false ? 'usable until it expires' : undefined,
        typeof d.expiresAt === 'string' ? `valid until ${d.expiresAt.slice(0, 16).replace('T', ' ')} UTC` : undefined,
      ]),
  },
  'tap.used': {
    sentence: (s) => `${of(s.whom)} signed in with a Temporary Access Pass`,
    facts: (d) =>
      present([
        d.as === 'second-factor' ? 'as the second step' : d.as === 'password' ? 'instead of a password' : undefined,
        count(d.uses, 'use so far', 'uses so far'),
      ]),
  },
  'tap.revoked': {
    sentence: (s) => `Temporary Access Pass of ${of(s.whom)} revoked by ${s.by}`,
    facts: (d) => present([count(d.sessionsEnded, 'session it opened ended', 'sessions it opened ended')]),
  },
  'methods.reset': {
    sentence: (s) => `Methods of ${of(s.whom)} reset by ${s.by}`,
    facts: (d) => present([count(d.removed, 'method removed', 'methods removed'), count(d.sessionsEnded, 'session ended', 'sessions ended')]),
  },
  'sessions.revoked': {
    sentence: (s) => `Sessions of ${of(s.whom)} ended by ${s.by}`,
    facts: (d) => present([count(d.sessionsEnded, 'session ended', 'sessions ended')]),
  },
  'policy.changed': {
    sentence: (s) => `Sign-in policy changed by ${s.by}${typeof s.details.version === 'number' ? ` (version ${s.details.version}, for everyone at once)` : ''}`,
    facts: (d) => present([Array.isArray(d.changed) && d.changed.length > 0 ? `changed: ${list(d.changed)}` : 'nothing changed']),
  },
  'signin.reported': {
    sentence: (s) => `${of(s.whom)} reported a sign-in as not theirs`,
    facts: (d) => present([count(d.sessionsEnded, 'other session ended', 'other sessions ended')]),
  },
  'user.created': {
    sentence: (s) => `User ${s.whom ?? (typeof s.details.username === 'string' ? s.details.username : 'unknown')} added by ${s.by}`,
    facts: (d) =>
      present([
        d.withPassword === true ? 'with a password' : d.withPassword === false ? 'without a password' : undefined,
        d.admin === true && 'administrator',
        d.breakGlass === true && 'break-glass account',
      ]),
  },
  'user.updated': {
    sentence: (s) =>
      s.details.status === 'disabled'
        ? `${of(s.whom)} disabled by ${s.by}`
        : s.details.status === 'active'
          ? `${of(s.whom)} enabled by ${s.by}`
          : `${of(s.whom)} changed by ${s.by}`,
    facts: (d) =>
      present([
        Array.isArray(d.fields) && d.fields.length > 0 ? `changed: ${list(d.fields)}` : undefined,
        count(d.tokensRevoked, 'API token revoked', 'API tokens revoked'),
      ]),
  },
  'user.deleted': {
    sentence: (s) => `User ${typeof s.details.username === 'string' ? s.details.username : of(s.whom)} deleted by ${s.by}`,
    facts: (d) => present([count(d.tokensRevoked, 'API token revoked', 'API tokens revoked')]),
  },
  'app.created': {
    sentence: (s) => `App ${typeof s.details.name === 'string' ? s.details.name : ''} registered by ${s.by}`.replace('App  ', 'An app '),
    facts: (d) => present([d.kind === 'oidc' ? 'OpenID Connect' : d.kind === 'api' ? 'API key' : undefined]),
  },
  'app.deleted': { sentence: (s) => `An app revoked by ${s.by}` },
  'token.created': {
    sentence: (s) => `Admin API token ${typeof s.details.name === 'string' ? `"${s.details.name}" ` : ''}created by ${s.by}`,
    facts: (d) => present([typeof d.expiresAt === 'string' ? `expires ${d.expiresAt.slice(0, 10)}` : undefined]),
  },
  'token.revoked': {
    sentence: (s) =>
      s.details.reason === 'sessions-ended' ? `Admin API tokens made by ${of(s.whom)} revoked with their sessions` : `Admin API token revoked by ${s.by}`,
    facts: (d) =>
      present([
        count(d.tokensRevoked, 'token revoked', 'tokens revoked'),
        count(d.passesRevoked, 'pass it issued revoked', 'passes it issued revoked'),
        count(d.accountsTakenBack, 'account it touched taken back', 'accounts it touched taken back'),
      ]),
  },
  'access.taken-back': {
    sentence: (s) => `What was set up on ${of(s.whom)} since a revoked admin API token touched the account taken back`,
    facts: (d) =>
      present([
        count(d.sessionsEnded, 'session ended', 'sessions ended'),
        count(d.methodsRemoved, 'method removed', 'methods removed'),
        d.passwordCleared === true ? 'password cleared' : undefined,
        Array.isArray(d.contactCleared) && d.contactCleared.length > 0 ? `${d.contactCleared.join(' and ')} cleared` : undefined,
      ]),
  },
  'break-glass.signin': {
    sentence: (s) => `Break-glass account ${of(s.whom)} signed in`,
    facts: (d) => present([typeof d.method === 'string' ? `with ${recordedMethodName(d.method).toLowerCase()}` : undefined]),
  },
  'audit.chain-keyed': {
    sentence: () => 'Audit log sealed with the master key',
    facts: (d) => present([typeof d.keyId === 'string' ? `key ${d.keyId}` : undefined]),
  },
  'config.applied': {
    sentence: (s) => `${s.details.scope === 'policy' ? 'Sign-in policy' : 'Node settings'} version ${String(s.details.version ?? '')} applied by ${s.by}`,
    facts: (d) =>
      present([
        typeof d.canaryPercent === 'number' && d.canaryPercent < 100 ? `canary ${d.canaryPercent}%, bake ${String(d.bakeSeconds ?? '')} s` : undefined,
        Array.isArray(d.changed) && d.changed.length > 0 ? `changed: ${list(d.changed)}` : undefined,
      ]),
  },
  'config.promoted': {
    sentence: (s) => `${s.details.scope === 'policy' ? 'Sign-in policy' : 'Settings'} version ${String(s.details.version ?? '')} promoted to everyone`,
    facts: (d) => present([typeof d.reason === 'string' ? d.reason : undefined]),
  },
  'config.rolled-back': {
    sentence: (s) => `${s.details.scope === 'policy' ? 'Sign-in policy' : 'Settings'} version ${String(s.details.version ?? '')} rolled back by ${s.by}`,
    facts: (d) => present([typeof d.reason === 'string' ? d.reason : undefined]),
  },
  'incident.posted': { sentence: (s) => `Incident "${typeof s.details.title === 'string' ? s.details.title : ''}" posted by ${s.by}` },
  'incident.updated': { sentence: (s) => `Incident ${s.details.resolved === true ? 'resolved' : 'updated'} by ${s.by}` },
  'password.set-first': { sentence: (s) => `${of(s.whom)} set a first password` },
  'password.changed': {
    sentence: (s) => `${of(s.whom)} changed their password`,
    facts: (d) => present([count(d.sessionsEnded, 'other session ended', 'other sessions ended')]),
  },
  'method.added': {
    sentence: (s) => `${of(s.whom)} added a sign-in method`,
    facts: (d) => present([typeof d.type === 'string' ? recordedMethodName(d.type) : undefined, typeof d.label === 'string' ? `"${d.label}"` : undefined]),
  },
  'method.removed': {
    sentence: (s) => `${of(s.whom)} removed a sign-in method`,
    facts: (d) => present([typeof d.type === 'string' ? recordedMethodName(d.type) : undefined, typeof d.label === 'string' ? `"${d.label}"` : undefined]),
  },
} satisfies Record<AuditAction, AuditActionDescriptor>;

/** An entry in words; an action this release does not know (from a newer node) is shown by its name. */
export function tellAuditEntry(action: string, story: AuditStory): { sentence: string; facts: string[] } {
  const descriptor: AuditActionDescriptor | undefined = (AUDIT_ACTIONS as Record<string, AuditActionDescriptor>)[action];
  if (!descriptor) return { sentence: `${action} by ${story.by}`, facts: [] };
  return { sentence: descriptor.sentence(story), facts: descriptor.facts?.(story.details) ?? [] };
}
