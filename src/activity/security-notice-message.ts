/** The words of a security notice: an email telling a user that something changed on their account. */
import type { OutboundMessage } from '../delivery/channel.ts';
import type { AuditEntry } from './audit-log.ts';
import { recordedMethodName } from './recorded-method.ts';

/** The account changes a user is told of, each in the words the notice uses ("A sign-in method was added"). */
export const NOTICED_CHANGES: Partial<Record<string, (details: Record<string, unknown>) => string | undefined>> = {
  'method.added': (d) => `A sign-in method was added to your account${methodOf(d)}.`,
  'method.removed': (d) => `A sign-in method was removed from your account${methodOf(d)}.`,
  'password.changed': () => 'The password of your account was changed.',
  'password.set-first': () => 'A password was set for your account.',
  // An administrator's change is told only when it touches the way in: a new password, or the address notices go to
  // (told to the address it had too: Administration's onAddressChanged).
  'user.updated': (d) => {
    const fields = Array.isArray(d.fields) ? d.fields : [];
    const told = [
      ...(fields.includes('password') ? ['An administrator set a new password for your account.'] : []),
      ...(fields.includes('email') ? ['The email address of your account was changed; notices like this one go to the new address.'] : []),
    ];
    return told.length > 0 ? told.join(' ') : undefined;
  },
  'methods.reset': () => 'Your sign-in methods were reset: every one was removed, and every session signed out.',
  'tap.issued': (d) =>
    `A Temporary Access Pass was issued for your account${typeof d.expiresAt === 'string' ? `, valid until ${utc(d.expiresAt)}` : ''}. It signs in in place of your password and second step.`,
  'signin.reported': () => 'A sign-in to your account was reported as not yours; your other sessions were signed out.',
  'access.taken-back': () => 'Changes an administrator’s API token made to your account were undone after the token was revoked.',
};

/** Who did it, as the person reading the notice would put it. */
function byWhom(actor: string, userId: string): string {
  if (actor === `user:${userId}`) return 'you, or someone signed in as you';
  if (actor.startsWith('user:')) return 'an administrator';
  if (actor.startsWith('admin-token:')) return 'an administrator’s API token';
  if (actor === 'cli') return 'the service’s operator';
  return 'Steadfast';
}

/**
 * The method by its kind only. Never its label: whoever holds a session names the method, and a label such as
 * "added by IT, no action needed, see https://…" would speak in the notice's voice, with a link in it.
 */
function methodOf(d: Record<string, unknown>): string {
  return typeof d.type === 'string' ? `: ${recordedMethodName(d.type)}` : '';
}

const utc = (iso: string | number) => `${new Date(iso).toISOString().slice(0, 16).replace('T', ' ')} UTC`;
const escapeHtml = (text: string) => text.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);

/**
 * The email for one change, or undefined if it is not one a user is told of.
 * It says what changed, when and by whom, and where to look; it never holds a
 * secret (the audit entry holds none) nor a link to sign in with: a notice
 * that asks for a click is what a phisher would send.
 */
export function renderSecurityNotice(n: {
  entry: AuditEntry;
  to: string;
  userId: string;
  tenantName: string;
  /** The last this address is sent in the hour: it says so, so a flood of changes cannot hide the next one. */
  last?: boolean | undefined;
}): OutboundMessage | undefined {
  const what = NOTICED_CHANGES[n.entry.action]?.(n.entry.details);
  if (!what) return undefined;
  const when = `${utc(n.entry.at)}, by ${byWhom(n.entry.actor, n.userId)}`;
  const advice = `If this was not you or your administrator, tell your administrator now, or sign in to ${n.tenantName} yourself (at the address you always use, never from a link in an email) and look at your recent sign-ins.`;
  const paragraphs = [
    what,
    `When: ${when}.`,
    ...(n.last ? ['This is the last notice we send you this hour: further changes to your account within the hour are not emailed.'] : []),
    advice,
  ];
  return {
    channel: 'email',
    to: n.to,
    subject: `${n.tenantName}: a change to your sign-in`,
    text: paragraphs.join('\n\n'),
    html: paragraphs.map((p) => `<p>${escapeHtml(p)}</p>`).join(''),
  };
}
