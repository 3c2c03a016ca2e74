/** Security notices: a user is told by email of every change to their way in, whoever made it. */
import type { Users } from '../directory/users.ts';
import type { Tenants } from '../directory/tenants.ts';
import type { DeliveryPort } from '../delivery/delivery.ts';
import type { EphemeralStore } from '../store/ephemeral/ephemeral-store.ts';
import type { AuditEntry } from './audit-log.ts';
import { NOTICED_CHANGES, renderSecurityNotice } from './security-notice-message.ts';
import { NoticeBacklog } from './notice-backlog.ts';

/**
 * The most notices one user, and one address of a tenant, is sent in NOTICE_WINDOW_MS: whoever changes methods in
 * a loop cannot flood the owner's inbox, nor a leaked admin token anyone's, through many accounts given one address;
 * and another tenant's accounts given the same address cannot use up this tenant's notices to it.
 */
export const NOTICES_PER_WINDOW = 10;
export const NOTICE_WINDOW_MS = 60 * 60_000;

/**
 * Notices one node sends at once. The SMTP provider keeps four connections:
 * one for notices leaves three for codes, so a code never waits behind a
 * batch of notices. One at a time over a relay that takes 100 ms is still
 * 36,000 notices an hour.
 */
export const NOTICES_IN_FLIGHT = 1;
/**
 * Notices that may wait for their turn on one node, and of them one tenant's; beyond either a notice is dropped,
 * counted and logged. A tenant filling its part leaves the rest for the others.
 */
export const NOTICE_BACKLOG = { waiting: 10_000, waitingPerTenant: 2_500 };

export type NoticeOutcome = 'sent' | 'not-noticed' | 'no-address' | 'no-channel' | 'capped' | 'failed' | 'backlog-full' | 'lost-at-shutdown';

/**
 * Tells a user of each change to their way in (a method added or removed, a
 * password set or changed, a reset, a Temporary Access Pass issued, a sign-in
 * reported), by email, to the address on their account, through the email
 * channel's providers. NIST SP 800-63B asks for this when an authenticator is
 * bound: whoever took over a session or an admin token and added a method of
 * their own is then seen by the owner, over a channel that session cannot
 * silence. Told from the audit log's entries, so every surface (API, pages,
 * console, command line) is covered by one list (security-notice-message.ts).
 *
 * Sent after the change is kept and never holding it up: a notice that cannot
 * go (no address, no email provider, every provider down) is counted and
 * logged, not retried; the change itself stands, and the audit log keeps it.
 *
 * Notices wait their turn, NOTICES_IN_FLIGHT at a time and tenants in turns
 * (notice-backlog.ts): a batch of them never delays a sign-in code on the
 * same channel, nor one tenant's flood another tenant's notices for long. A
 * notice still waiting when the node stops is not sent: `close` counts and
 * logs each (its audit entry's id), so an operator can tell the users.
 */
export class SecurityNotices {
  private readonly backlog: NoticeBacklog;

  constructor(
    private readonly deps: {
      users: Pick<Users, 'get'>;
      tenants: Pick<Tenants, 'findById'>;
      delivery: Pick<DeliveryPort, 'configured' | 'send'>;
      ephemeral: Pick<EphemeralStore, 'increment'>;
      /** A keyed hash of an address, as a counter's key (no address in clear in the ephemeral store). */
      addressKey: (address: string) => string;
      onOutcome?: (outcome: NoticeOutcome, action: string) => void;
      /** Told of a notice not sent, with its audit entry, so whoever runs the node can tell that user another way. */
      onError?: (err: unknown, what: string, notice: { tenantId: string; entryId: string; action: string }) => void;
      /** Told of the notices abandoned at `close`: their audit entries, by tenant. */
      onLost?: (lost: { tenantId: string; entryId: string; action: string }[]) => void;
      /** Defaults to NOTICES_IN_FLIGHT and NOTICE_BACKLOG. */
      backlog?: { inFlight: number; waiting: number; waitingPerTenant: number };
    },
  ) {
    this.backlog = new NoticeBacklog(deps.backlog ?? { inFlight: NOTICES_IN_FLIGHT, ...NOTICE_BACKLOG });
  }

  /** Sends nothing more: notices still waiting are abandoned, each counted as `lost-at-shutdown` and all told to `onLost`. */
  async close(): Promise<void> {
    this.backlog.close();
    // Each abandoned notice settles its outcome in the microtasks that follow.
    await new Promise((resolve) => setImmediate(resolve));
    if (this.lost.length > 0) this.deps.onLost?.(this.lost.splice(0));
  }

  private readonly lost: { tenantId: string; entryId: string; action: string }[] = [];

  /** Notices waiting for their turn on this node. */
  get waiting(): number {
    return this.backlog.size;
  }

  /** For the audit log's listener: starts telling, without waiting. */
  consider(tenantId: string, entry: AuditEntry): void {
    if (!entry.targetUserId || !NOTICED_CHANGES[entry.action]?.(entry.details)) return;
    void this.tell(tenantId, entry).catch((err: unknown) => this.deps.onError?.(err, 'security notice', noticeOf(tenantId, entry)));
  }

  /** The address an account's email was changed from: told of the change, without waiting. */
  considerFormerAddress(tenantId: string, former: string, entry: AuditEntry): void {
    void this.tell(tenantId, entry, former).catch((err: unknown) => this.deps.onError?.(err, 'security notice', noticeOf(tenantId, entry)));
  }

  /** Tells the entry's user of it (at `to`, or the address on their account), if it is a change they are told of; what became of it. */
  async tell(tenantId: string, entry: AuditEntry, to?: string): Promise<NoticeOutcome> {
    const outcome = await this.outcomeOf(tenantId, entry, to);
    this.deps.onOutcome?.(outcome, entry.action);
    return outcome;
  }

  private async outcomeOf(tenantId: string, entry: AuditEntry, to: string | undefined): Promise<NoticeOutcome> {
    const userId = entry.targetUserId;
    // Decided from the entry alone, before anything is read: most of an administrator's edits are told to no one.
    if (!userId || !NOTICED_CHANGES[entry.action]?.(entry.details)) return 'not-noticed';
    if (!this.deps.delivery.configured('email')) return 'no-channel';
    const [user, tenant] = await Promise.all([this.deps.users.get(tenantId, userId), this.deps.tenants.findById(tenantId)]);
    const address = to ?? user?.email;
    if (!user || !address || !tenant) return 'no-address';
    const [toUser, toAddress] = await Promise.all([
      this.deps.ephemeral.increment(`security-notices:${tenantId}:${userId}`, NOTICE_WINDOW_MS),
      // Per tenant: another tenant's accounts given this address cannot use up this tenant's notices to it.
      this.deps.ephemeral.increment(`security-notices-to:${tenantId}:${this.deps.addressKey(sameInbox(address))}`, NOTICE_WINDOW_MS),
    ]);
    const sent = Math.max(toUser, toAddress);
    if (sent > NOTICES_PER_WINDOW) return 'capped';
    const message = renderSecurityNotice({ entry, to: address, userId, tenantName: tenant.name, last: sent === NOTICES_PER_WINDOW })!;
    try {
      // In the background: a notice to an address whose server stalls must not count against the provider's breaker.
      const turn = await this.backlog.run(tenantId, () => this.deps.delivery.send(message, { background: true }));
      if (turn.ran) return 'sent';
      if (turn.why === 'closed') {
        this.lost.push(noticeOf(tenantId, entry));
        return 'lost-at-shutdown';
      }
      this.deps.onError?.(new Error('too many notices are waiting on this node'), 'security notice', noticeOf(tenantId, entry));
      return 'backlog-full';
    } catch (err) {
      this.deps.onError?.(err, 'security notice', noticeOf(tenantId, entry));
      return 'failed';
    }
  }
}

/** A notice as the log names it: its tenant and audit entry (never the address or the text). */
const noticeOf = (tenantId: string, entry: AuditEntry) => ({ tenantId, entryId: entry.id, action: entry.action });

/** An address as the inbox it reaches: case and a `+tag` of the local part make no other inbox. */
export function sameInbox(address: string): string {
  const at = address.lastIndexOf('@');
  const local = address.slice(0, at).split('+')[0]!;
  return `${local}${address.slice(at)}`.toLowerCase();
}
