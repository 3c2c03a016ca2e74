import { html, type SafeHtml } from '../../../http/page/html.ts';
import { hiddenFields } from '../../../http/page/parts/hidden-fields.ts';
import type { NextPage } from '../../../http/page/landing.ts';
import type { MethodChoice } from '../../../signin/method-choices.ts';

/**
 * "Lost your phone?" on the second step: the way in without it. It comes after
 * the password, so it may name the user's own choices (as the list of other
 * methods does): their recovery codes, or a pass they already hold, as a
 * button; and always how to get a Temporary Access Pass, with the page where
 * it is used.
 */
export function lostPhone(v: {
  tenant: { slug: string };
  csrf: string;
  context: { flow: string; next: NextPage | undefined };
  methods: MethodChoice[];
  chosenType: string;
}): SafeHtml {
  const codes = v.methods.find((m) => m.type === 'recovery-codes' && m.available);
  const pass = v.methods.find((m) => m.type === 'tap' && m.available);
  const use = (m: MethodChoice, label: string) => html`<form method="post" action="/t/${v.tenant.slug}/signin/method" class="inline">
  ${hiddenFields(v.csrf, { ...v.context, method: m.id })}
  <button type="submit" class="secondary">${label}</button>
</form>`;
  const tapPage = `/t/${v.tenant.slug}/signin/tap${v.context.next ? `?next=${v.context.next}` : ''}`;
  return html`<section class="lost-phone" aria-labelledby="lost-phone">
<h2 id="lost-phone">Lost your phone?</h2>
${
  codes && v.chosenType !== 'recovery-codes'
    ? html`<p>Sign in with one of the recovery codes you saved when you set up your account. Each code works once.</p>${use(codes, 'Sign in with a recovery code')}`
    : ''
}
${
  // Worded as a condition: under the tenant's tap-only fail mode a pass is offered whether or not one was issued.
  pass && v.chosenType !== 'tap'
    ? html`<p>If your administrator has given you a Temporary Access Pass, sign in with it.</p>${use(pass, 'Sign in with your pass')}`
    : ''
}
<p>${codes ? 'No codes at hand? ' : ''}Ask your administrator for a Temporary Access Pass, then <a href="${tapPage}">sign in with the pass</a> and add a sign-in method on your new phone.</p>
</section>`;
}
