import type { Tenant } from '../directory/tenant.ts';
import { html, trustedHtml } from '../http/page/html.ts';
import { alert, layout } from '../http/page/layout.ts';

const SCOPE_WORDS: Record<string, string> = {
  openid: 'Know who you are (your user id)',
  profile: 'See your username',
  email: 'See your email address',
  phone: 'See your phone number',
  offline_access: 'Stay signed in when you are not using it',
};

/** The pages the OpenID Connect provider shows, in Steadfast's layout: consent, errors, sign-out. */
export const oidcPages = {
  consent(tenant: Tenant, clientName: string, scopes: string[], action: string, csrf: string): string {
    return layout({
      title: `Allow ${clientName}?`,
      tenantName: tenant.name,
      body: html`<div class="card">
<h1>Allow ${clientName} to use your ${tenant.name} account?</h1>
<p>${clientName} is not run by ${tenant.name}. It asks to:</p>
<ul>${scopes.map((s) => html`<li>${SCOPE_WORDS[s] ?? s}</li>`)}</ul>
<form method="post" action="${action}">
  <input type="hidden" name="_csrf" value="${csrf}">
  <button type="submit" name="decision" value="allow">Allow</button>
  <button type="submit" name="decision" value="deny" class="secondary">Don't allow</button>
</form>
</div>`,
    });
  },

  error(tenant: Tenant, title: string, detail: string): string {
    return layout({
      title,
      tenantName: tenant.name,
      body: html`<div class="card"><h1>${title}</h1>${alert('error', detail)}<p>Go back to the app and try again.</p></div>`,
    });
  },

  /** `form` is oidc-provider's own hidden form (it carries its CSRF token); the buttons submit it. */
  logout(tenant: Tenant, form: string, clientName: string | undefined): string {
    return layout({
      title: 'Sign out',
      tenantName: tenant.name,
      body: html`<div class="card">
<h1>Sign out${clientName ? ` of ${clientName}` : ''}?</h1>
<p>This also signs you out of ${tenant.name} on this browser.</p>
${trustedHtml(form)}
<button type="submit" form="op.logoutForm" value="yes" name="logout" autofocus>Yes, sign me out</button>
<button type="submit" form="op.logoutForm" class="secondary">No, stay signed in</button>
</div>`,
    });
  },

  loggedOut(tenant: Tenant, clientName: string | undefined, stillSignedIn: boolean): string {
    const app = clientName ?? 'the app';
    return layout({
      title: 'Signed out',
      tenantName: tenant.name,
      body: stillSignedIn
        ? html`<div class="card"><h1>You are signed out of ${app}</h1><p>You are still signed in to ${tenant.name} on this browser.</p></div>`
        : html`<div class="card"><h1>You are signed out</h1><p>You signed out${clientName ? ` of ${clientName}` : ''} and of ${tenant.name} on this browser.</p></div>`,
    });
  },
};
