import { html, type SafeHtml } from '../../http/page/html.ts';
import { layout } from '../../http/page/layout.ts';
import { hiddenFields } from '../../http/page/parts/hidden-fields.ts';

/** Why a signed-in user may not use the console now. */
export type ConsoleRefusal = 'reauthentication-required' | 'second-factor-required' | 'not-administrator';

/**
 * The page for a signed-in user the console turns away: what is missing and,
 * when a fresh sign-in would do, the button for it (which comes back here).
 */
export function refusalView(v: { tenant: { slug: string; name: string }; username: string; csrf: string; refusal: ConsoleRefusal }): string {
  const page = (title: string, body: SafeHtml) =>
    layout({ title, tenantName: v.tenant.name, signedInAs: v.username, body: html`<div class="card"><h1>${title}</h1>${body}</div>` });
  const signInAgain = html`<form method="post" action="/t/${v.tenant.slug}/signout">${hiddenFields(v.csrf, { next: 'admin' })}<button type="submit">Sign in again</button></form>`;
  switch (v.refusal) {
    case 'reauthentication-required':
      return page("Confirm it's you", html`<p>Changes in the admin console need a sign-in within the last 10 minutes. Nothing was changed.</p>${signInAgain}`);
    case 'second-factor-required':
      return page(
        'Sign in with a second factor',
        html`<p>The admin console needs a sign-in with a second factor (your passkey, authenticator app or another method), even where your organisation does not require one for everyone.</p>${signInAgain}`,
      );
    case 'not-administrator':
      return page('Not an administrator', html`<p>Your account cannot use the admin console of ${v.tenant.name}. Ask an administrator if you need access.</p>`);
  }
}
