import { html, type SafeHtml } from '../../http/page/html.ts';
import { signedInLayout } from '../../http/page/signed-in-layout.ts';
import { clusterWarning, type HeadroomShortfall } from './cluster-warning.ts';

/** Who is looking at a console page, and what every console page shows besides its own content. */
export interface ConsoleViewer {
  tenant: { slug: string; name: string };
  username: string;
  csrf: string;
  /** Set when the cluster would not survive losing its largest node (as of the latest heartbeat). */
  shortfall?: HeadroomShortfall | undefined;
}

export type Notice = { kind: 'error' | 'info'; text: string };

export type ConsoleSection = 'overview' | 'users' | 'signins' | 'audit' | 'policy';

/** Where the console of the viewer's tenant lives. */
export const consoleBase = (v: { tenant: { slug: string } }) => `/t/${v.tenant.slug}/admin`;

/** A console page: the console's navigation (the current section marked), the cluster warning, and the page's card. */
export function consolePage(v: ConsoleViewer, section: ConsoleSection, title: string, body: SafeHtml): string {
  const link = (s: ConsoleSection, path: string, label: string) =>
    html`<a href="${consoleBase(v)}${path}"${s === section ? html` aria-current="page"` : ''}>${label}</a>`;
  return signedInLayout({
    title,
    tenant: v.tenant,
    username: v.username,
    csrf: v.csrf,
    wide: true,
    scripts: true,
    body: html`<nav class="admin" aria-label="Admin console">${link('overview', '/overview', 'Overview')}${link('users', '', 'Users')}${link('signins', '/signins', 'Sign-in log')}${link('audit', '/audit', 'Audit log')}${link('policy', '/policy', 'Policy')}</nav>
${clusterWarning(v.shortfall)}<div class="card">${body}</div>`,
  });
}
