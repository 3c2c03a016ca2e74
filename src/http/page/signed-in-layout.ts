import type { SafeHtml } from './html.ts';
import { layout } from './layout.ts';

/** The layout of a page for someone signed in: their name and a sign-out button in the header. */
export function signedInLayout(v: { title: string; tenant: { slug: string; name: string }; username: string; csrf: string; body: SafeHtml; scripts?: boolean; wide?: boolean }): string {
  return layout({
    title: v.title,
    tenantName: v.tenant.name,
    body: v.body,
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
