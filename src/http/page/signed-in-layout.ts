import { html, type SafeHtml } from './html.ts';
import { layout } from './layout.ts';

/**
 * The layout of a page for someone signed in: their name and a sign-out
 * button in the header; for an administrator of the tenant (`admin`), a link
 * to the admin console above the page, so they find it from their own pages.
 */
export function signedInLayout(v: {
  title: string;
  tenant: { slug: string; name: string };
  username: string;
  csrf: string;
  body: SafeHtml;
  scripts?: boolean;
  wide?: boolean;
  admin?: boolean;
}): string {
  return layout({
    title: v.title,
    tenantName: v.tenant.name,
    body: v.admin ? html`<p class="console-link"><a href="/t/${v.tenant.slug}/admin/overview">Admin console</a></p>${v.body}` : v.body,
    scripts: v.scripts,
    wide: v.wide,
    signedInAs: v.username,
    links: [
      { href: `/t/${v.tenant.slug}/my/security-info`, text: 'Security info' },
      { href: `/t/${v.tenant.slug}/my/signins`, text: 'My sign-ins' },
    ],
    signOut: { action: `/t/${v.tenant.slug}/signout`, csrf: v.csrf },
  });
}
