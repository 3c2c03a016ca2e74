import { describe, expect, it } from 'vitest';
import { overviewView } from '../../src/admin/views/overview-view.ts';
import { policyRollbackConfirmView } from '../../src/admin/views/policy-rollback-view.ts';
import { signedInLayout } from '../../src/http/page/signed-in-layout.ts';
import { html } from '../../src/http/page/html.ts';
import { AUDIT_ACTIONS, tellAuditEntry } from '../../src/activity/audit-actions.ts';
import { SIGNIN_REASONS, signinReasonWords } from '../../src/activity/signin-reasons.ts';
import { recordedMethodName } from '../../src/activity/recorded-method.ts';
import { METHOD_MODULES } from '../../src/methods/registry.ts';

const viewer = { tenant: { slug: 'corp', name: 'Corp' }, username: 'ada', csrf: 'c' };
const HOUR = 3_600_000;
const emptyDay = {
  from: 0,
  until: 24 * HOUR,
  hours: Array.from({ length: 24 }, (_, i) => ({ start: i * HOUR, succeeded: 0, failed: 0 })),
  failures: [],
  methods: [],
};
const noUsers = { users: 0, phishingResistant: 0, otherMethods: 0, phoneOnly: 0, noMethod: 0 };

describe('console overview view', () => {
  it('says plainly when there is nothing to draw, and draws nothing', () => {
    const page = overviewView({ ...viewer, day: emptyDay, coverage: noUsers, providers: [] });
    expect(page).toContain('No sign-ins in the last 24 hours.');
    expect(page).toContain('No failed sign-ins in the last 24 hours.');
    expect(page).toContain('No completed sign-ins in the last 24 hours.');
    expect(page).toContain('No active users yet.');
    expect(page).toContain('No delivery providers are configured');
    expect(page).not.toContain('<svg');
  });

  it('says when configured providers sent nothing, and still tells their state now', () => {
    const idle = Array.from({ length: 24 }, (_, i) => ({ start: i * HOUR, delivered: 0, failed: 0 }));
    const page = overviewView({
      ...viewer,
      day: emptyDay,
      coverage: noUsers,
      providers: [{ channel: 'sms', provider: 'primary', state: 'open', hours: idle }],
    });
    expect(page).toContain('No codes were sent in the last 24 hours.');
    expect(page).toMatch(/primary: not used now \(failing\)/);
  });

  it('draws every chart as an image named by its title and described in words, escaping what it shows', () => {
    const day = {
      ...emptyDay,
      hours: emptyDay.hours.map((h, i) => (i === 5 ? { ...h, succeeded: 7, failed: 2 } : h)),
      failures: [{ reason: '<script>', count: 2 }],
      methods: [{ method: 'totp', count: 7 }],
    };
    const page = overviewView({ ...viewer, day, coverage: { users: 4, phishingResistant: 1, otherMethods: 1, phoneOnly: 1, noMethod: 1 }, providers: [] });
    expect(page.match(/<svg [^>]*role="img"/g)).toHaveLength(4);
    for (const id of ['chart-hours', 'chart-failures', 'chart-methods', 'chart-coverage']) {
      expect(page).toContain(`aria-labelledby="${id}-title ${id}-desc"`);
      expect(page).toMatch(new RegExp(`<title id="${id}-title">[^<]+</title>`));
      expect(page).toMatch(new RegExp(`<desc id="${id}-desc">[^<]+</desc>`));
    }
    expect(page).toContain('7 signed in and 2 failed');
    expect(page).not.toContain('<script>');
    expect(page).toContain('Authenticator app');
  });
});

describe('the signed-in layout', () => {
  it('links an administrator to the console, and nobody else', () => {
    const base = { title: 'Security info', tenant: viewer.tenant, username: 'ada', csrf: 'c', body: html`<p>hi</p>` };
    expect(signedInLayout({ ...base, admin: true })).toContain('<a href="/t/corp/admin/overview">Admin console</a>');
    expect(signedInLayout(base)).not.toContain('/admin');
  });
});

describe('logs in words', () => {
  it('tells every audit action as a sentence naming the people, never its machine name', () => {
    for (const action of Object.keys(AUDIT_ACTIONS)) {
      const told = tellAuditEntry(action, {
        by: 'Ada',
        whom: 'Bob',
        details: { removed: 2, sessionsEnded: 1, changed: ['mfaRequired'], oneTime: true, uses: 1 },
      });
      expect(told.sentence, action).not.toContain(action);
      expect(told.sentence, action).not.toMatch(/undefined|null|\[object/);
      for (const fact of told.facts) expect(fact, action).not.toMatch(/undefined|null|\[object/);
    }
    expect(tellAuditEntry('methods.reset', { by: 'Ada', whom: 'Bob', details: { removed: 2, sessionsEnded: 1 } })).toEqual({
      sentence: 'Methods of Bob reset by Ada',
      facts: ['2 methods removed', '1 session ended'],
    });
    expect(tellAuditEntry('some.future-action', { by: 'Ada', whom: null, details: {} }).sentence).toBe('some.future-action by Ada');
  });

  it('names reasons and methods in words, the methods from their descriptors', () => {
    for (const reason of Object.keys(SIGNIN_REASONS)) expect(signinReasonWords(reason)).not.toContain('_');
    expect(signinReasonWords('some_new_reason')).toBe('some new reason');
    for (const m of METHOD_MODULES) expect(recordedMethodName(m.descriptor.type)).toBe(m.descriptor.name);
    expect(recordedMethodName('password')).toBe('Password');
  });
});

describe('policy rollback confirmation', () => {
  const version = (state: 'rolled-back' | 'promoted', reason: string | null) => ({
    scope: 'tenant:t',
    version: 3,
    document: {},
    diff: [],
    actor: 'cli',
    createdAt: 0,
    state,
    canaryPercent: 10,
    bakeSeconds: 600,
    decidedAt: 1,
    reason,
  });

  it('warns that a version once rolled back goes to everyone at once, with why it was stopped', () => {
    const page = policyRollbackConfirmView({ ...viewer, version: version('rolled-back', 'p99 900 ms on the canary'), changes: [] });
    expect(page).toContain('Version 3 was rolled back (p99 900 ms on the canary)');
    expect(page).toContain('without a canary');
    expect(policyRollbackConfirmView({ ...viewer, version: version('promoted', null), changes: [] })).not.toContain('was rolled back');
  });
});
