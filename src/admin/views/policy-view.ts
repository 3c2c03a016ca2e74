import { html, type SafeHtml } from '../../http/page/html.ts';
import { csrfField } from '../../http/page/parts/hidden-fields.ts';
import { notice as noticeView } from '../../http/page/parts/error-summary.ts';
import { RETENTION_BOUNDS, type TenantPolicy } from '../../directory/policy.ts';
import { METHOD_TYPES, methodName } from '../../methods/registry.ts';
import { consoleBase, consolePage, type ConsoleViewer, type Notice } from './console-layout.ts';
import { fieldError } from '../../http/page/parts/field-error.ts';
import type { PlacedProblem } from './policy-problems.ts';

// The fields of the editor in the order the form shows them: the first in error takes the focus.
const FORM_ORDER = [
  'mfa-required',
  'methods',
  'tap-min',
  'tap-max',
  'tap-default',
  'lock-failures',
  'lock-minutes',
  'remember',
  'keep-signins',
  'keep-audit',
  'fail-closed',
];

/**
 * The policy editor, with what was wrong with the last attempt when there was
 * something: each problem listed at the top (a link to its field) and at its
 * field (`aria-invalid`, `aria-describedby`), the first field in error
 * focused, and every field as it was typed (`values`, by field name), never
 * silently put back to the saved value.
 */
export function policyView(
  v: ConsoleViewer & {
    policy: TenantPolicy;
    notice?: Notice | undefined;
    problems?: PlacedProblem[];
    values?: Record<string, string> | undefined;
    historyLink?: boolean;
    /** Users the saved policy leaves with no usable method: how many, and the first few, to issue passes to. */
    stranded?: { count: number; users: { id: string; username: string }[] } | undefined;
  },
): string {
  const { policy } = v;
  const problems = v.problems ?? [];
  const errors = new Map<string, string>();
  for (const p of problems) if (p.field) errors.set(p.field, errors.has(p.field) ? `${errors.get(p.field)} ${p.text}` : p.text);
  const first = FORM_ORDER.find((id) => errors.has(id));
  const at = (id: string, hint?: string) => fieldError(id, errors.get(id), { first: id === first, hint });
  const checked = (on: boolean) => (on ? html` checked` : '');
  const number = (id: string, name: string, label: string, value: number, min: number, max: number) => {
    const e = at(id);
    // Text with a numeric keyboard, not type=number: a browser empties a number field holding a word, and what was typed must stay.
    return html`<label for="${id}">${label}</label>${e.message}<input type="text" inputmode="numeric" id="${id}" name="${name}" value="${v.values?.[name] ?? String(value)}" data-min="${min}" data-max="${max}" required${e.attrs}>`;
  };
  const methods = at('methods');
  const failMode = at('fail-closed');
  const mfa = at('mfa-required');
  return consolePage(
    v,
    'policy',
    'Policy',
    html`<h1>Sign-in policy</h1>
${noticeView(v.notice)}
<p>${v.historyLink ? html`<a href="${consoleBase(v)}/policy/history">Go to the policy history to roll the canary back</a>` : html`Every change is kept as a version: see the <a href="${consoleBase(v)}/policy/history">policy history</a>, and roll back to an earlier one there.`}</p>
${strandedSection(v)}
${problems.length > 0 ? html`<ul class="problems">${problems.map((x) => html`<li>${x.field ? html`<a href="#${x.field}">${x.text}</a>` : x.text}</li>`)}</ul>` : ''}
<form method="post" action="${consoleBase(v)}/policy" novalidate>
  ${csrfField(v.csrf)}
  ${mfa.message}<label class="check"><input type="checkbox" id="mfa-required" name="mfaRequired" value="on"${checked(policy.mfaRequired)}${mfa.attrs}> Require a second factor at every sign-in</label>
  <fieldset><legend>Methods users may use</legend>
  ${methods.message}
  ${METHOD_TYPES.map(
    (m, i) =>
      html`<label class="check"><input type="checkbox"${i === 0 ? html` id="methods"` : ''} name="allowedMethods" value="${m}"${checked(policy.allowedMethods.includes(m))}${i === 0 ? methods.attrs : errors.has('methods') ? html` aria-invalid="true" aria-describedby="methods-error"` : ''}> ${methodName(m)}</label>`,
  )}
  </fieldset>
  <fieldset><legend>Temporary Access Passes</legend>
  ${number('tap-min', 'tapMinMinutes', 'Shortest lifetime (minutes)', policy.tap.minMinutes, 10, 43200)}
  ${number('tap-max', 'tapMaxMinutes', 'Longest lifetime (minutes)', policy.tap.maxMinutes, 10, 43200)}
  ${number('tap-default', 'tapDefaultMinutes', 'Offered lifetime (minutes)', policy.tap.defaultMinutes, 10, 43200)}
  <label class="check"><input type="checkbox" name="tapOneTimeDefault" value="on"${checked(policy.tap.oneTimeDefault)}> Passes are usable once unless chosen otherwise</label>
  </fieldset>
  <fieldset><legend>Guessing limits</legend>
  ${number('lock-failures', 'accountFailures', 'Failures in a row before an account is held back (5 to 100)', policy.lockout.accountFailures, 5, 100)}
  ${number('lock-minutes', 'blockMinutes', 'How long it is held back (minutes)', policy.lockout.blockMinutes, 1, 1440)}
  </fieldset>
  ${number('remember', 'rememberedDeviceDays', 'Days a browser may skip the second factor after one (0: never)', policy.rememberedDeviceDays, 0, 90)}
  <fieldset><legend>How long records are kept</legend>
  ${number('keep-signins', 'signinEventDays', `Sign-in log (days, ${RETENTION_BOUNDS.signinEventDays.min} to ${RETENTION_BOUNDS.signinEventDays.max})`, policy.retention.signinEventDays, RETENTION_BOUNDS.signinEventDays.min, RETENTION_BOUNDS.signinEventDays.max)}
  ${number('keep-audit', 'auditDays', `Audit log (days, ${RETENTION_BOUNDS.auditDays.min} to ${RETENTION_BOUNDS.auditDays.max})`, policy.retention.auditDays, RETENTION_BOUNDS.auditDays.min, RETENTION_BOUNDS.auditDays.max)}
  </fieldset>
  <fieldset><legend>When none of a user's methods can be used (every channel they use is down)</legend>
  ${failMode.message}
  <label class="check"><input type="radio" id="fail-closed" name="failMode" value="closed"${checked(policy.failMode === 'closed')}${failMode.attrs}> Refuse the sign-in and tell them to ask for a Temporary Access Pass</label>
  <label class="check"><input type="radio" name="failMode" value="tap-only"${checked(policy.failMode === 'tap-only')}${errors.has('fail-closed') ? html` aria-invalid="true" aria-describedby="fail-closed-error"` : ''}> Go on to the second step and accept only a Temporary Access Pass</label>
  </fieldset>
  <button type="submit">Save policy</button>
</form>`,
  );
}

/** Who the saved policy strands, each a link to their page (where a pass is issued), while it strands anyone. */
function strandedSection(v: ConsoleViewer & { stranded?: { count: number; users: { id: string; username: string }[] } | undefined }): SafeHtml | '' {
  const s = v.stranded;
  if (!s || s.count === 0) return '';
  const more = s.count - s.users.length;
  return html`<section aria-labelledby="stranded-heading"><h2 id="stranded-heading">${s.count} ${s.count === 1 ? 'user has' : 'users have'} no method this policy allows</h2>
<p>They sign in with a Temporary Access Pass only, until you issue one (on their page) and they add a method this policy allows, or you allow their method again.</p>
<ul>${s.users.map((u) => html`<li><a href="${consoleBase(v)}/users/${u.id}">${u.username}</a></li>`)}</ul>
${more > 0 ? html`<p>And ${more} more: <code>GET /api/v1/admin/policy/stranded</code> lists up to 500.</p>` : ''}</section>`;
}
