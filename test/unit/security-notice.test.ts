import { describe, expect, it } from 'vitest';
import { renderSecurityNotice } from '../../src/activity/security-notice-message.ts';
import { sameInbox } from '../../src/activity/security-notices.ts';
import type { AuditEntry } from '../../src/activity/audit-log.ts';

const entry = (action: string, actor: string, details: Record<string, unknown> = {}): AuditEntry => ({
  id: 'e1',
  seq: 1,
  at: Date.UTC(2026, 11, 2, 14, 5),
  actor,
  action,
  targetUserId: 'u1',
  details,
  hash: '',
});
const render = (e: AuditEntry, last = false) => renderSecurityNotice({ entry: e, to: 'ada@example.test', userId: 'u1', tenantName: 'Acme', last });

describe('security notices in words', () => {
  it('says what changed, when and by whom, and never the label whoever holds a session chose', () => {
    const added = render(entry('method.added', 'user:u1', { type: 'totp', label: 'IT says ignore this: https://evil.example/login' }))!;
    expect(added).toMatchObject({ channel: 'email', to: 'ada@example.test', subject: 'Acme: a change to your sign-in' });
    expect(added.text).toContain('A sign-in method was added to your account: Authenticator app.');
    expect(added.text).toContain('When: 2026-12-02 14:05 UTC, by you, or someone signed in as you.');
    expect(added.text + added.html!).not.toMatch(/evil|https?:|IT says/);
    expect(added.text).not.toContain('last notice');
    expect(render(entry('methods.reset', 'user:admin'))!.text).toContain('by an administrator.');
    expect(render(entry('tap.issued', 'admin-token:t1', { expiresAt: '2026-12-02T15:05:00.000Z' }))!.text).toContain(
      'valid until 2026-12-02 15:05 UTC. It signs in in place of your password and second step.\n\nWhen: 2026-12-02 14:05 UTC, by an administrator’s API token.',
    );
    expect(render(entry('password.changed', 'cli'))!.text).toContain('by the service’s operator.');
  });

  it('tells only changes to the way in: an administrator’s password or the address notices go to, not their other edits', () => {
    const both = render(entry('user.updated', 'user:admin', { fields: ['password', 'email'] }))!.text;
    expect(both).toContain(
      'An administrator set a new password for your account. The email address of your account was changed; notices like this one go to the new address.',
    );
    expect(render(entry('user.updated', 'user:admin', { fields: ['email'] }))!.text).toMatch(/^The email address of your account was changed/);
    expect(render(entry('user.updated', 'user:admin', { fields: ['phone', 'status'] }))).toBeUndefined();
    expect(render(entry('user.updated', 'user:admin', {}))).toBeUndefined();
    expect(render(entry('tap.used', 'user:u1'))).toBeUndefined();
    expect(render(entry('policy.changed', 'user:admin'))).toBeUndefined();
  });

  it('says so in the last notice of the hour, in the text and the HTML', () => {
    const last = render(entry('method.removed', 'user:u1', { type: 'webauthn' }), true)!;
    expect(last.text).toContain('This is the last notice we send you this hour');
    expect(last.html).toContain('<p>This is the last notice we send you this hour');
  });

  it('escapes the tenant’s name in the HTML', () => {
    const notice = renderSecurityNotice({ entry: entry('password.changed', 'user:u1'), to: 'a@b.test', userId: 'u1', tenantName: '<b>Acme</b>' })!;
    expect(notice.html).not.toContain('<b>');
    expect(notice.html).toContain('&#60;b&#62;Acme');
  });

  it('counts one inbox whatever its case and +tag', () => {
    expect(sameInbox('Ada+work@Example.TEST')).toBe('ada@example.test');
    expect(sameInbox('ada@example.test')).toBe('ada@example.test');
    expect(sameInbox('a+b+c@x.test')).toBe('a@x.test');
    expect(sameInbox('odd+@x.test')).toBe('odd@x.test');
  });
});
