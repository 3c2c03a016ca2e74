import { describe, expect, it } from 'vitest';
import { SecurityNotices, type NoticeOutcome } from '../../src/activity/security-notices.ts';
import type { AuditEntry } from '../../src/activity/audit-log.ts';
import type { OutboundMessage } from '../../src/delivery/channel.ts';

const settle = () => new Promise((resolve) => setImmediate(resolve));

/** Notices told through a relay that takes nothing until let go, for tenants `t1` and `t2`, one user each per entry. */
function noticesWithHeldRelay() {
  const sent: string[] = [];
  let release!: () => void;
  const relay = new Promise<void>((resolve) => (release = resolve));
  const outcomes: NoticeOutcome[] = [];
  const lost: { tenantId: string; entryId: string; action: string }[][] = [];
  const notices = new SecurityNotices({
    users: { get: async (_tenantId: string, id: string) => ({ id, email: `${id}@example.test` }) as never },
    tenants: { findById: async (id: string) => ({ id, name: id }) as never },
    delivery: {
      configured: () => true,
      send: async (message: OutboundMessage) => {
        await relay;
        sent.push(message.to);
        return 'relay';
      },
    },
    ephemeral: { increment: async () => 1 },
    addressKey: (a) => a,
    onOutcome: (outcome) => outcomes.push(outcome),
    onLost: (l) => lost.push(l),
    backlog: { inFlight: 1, waiting: 100, waitingPerTenant: 100 },
  });
  let n = 0;
  const entry = (): AuditEntry => ({ id: `e${++n}`, seq: n, at: 0, actor: 'cli', action: 'tap.issued', targetUserId: `u${n}`, details: {}, hash: '' });
  return { notices, entry, sent, outcomes, lost, release };
}

describe('security notices waiting their turn', () => {
  it('counts and tells each notice still waiting when the node stops, by its audit entry', async () => {
    const { notices, entry, sent, outcomes, lost, release } = noticesWithHeldRelay();
    notices.consider('t1', entry());
    notices.consider('t1', entry());
    notices.consider('t2', entry());
    await settle();
    expect(notices.waiting).toBe(2);
    const closing = notices.close();
    release();
    await closing;
    await settle();
    // The one at the relay went; the two waiting did not, and are said to be lost, once.
    expect(sent).toEqual(['u1@example.test']);
    expect(outcomes.sort()).toEqual(['lost-at-shutdown', 'lost-at-shutdown', 'sent']);
    expect(lost).toEqual([
      [
        { tenantId: 't1', entryId: 'e2', action: 'tap.issued' },
        { tenantId: 't2', entryId: 'e3', action: 'tap.issued' },
      ],
    ]);
    // Nothing after the close goes either.
    notices.consider('t1', entry());
    await settle();
    expect(outcomes.at(-1)).toBe('lost-at-shutdown');
  });
});
