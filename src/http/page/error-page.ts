/** Error answers as real pages (title, language, a way on) for a person in a browser at a page address. */
import type { FastifyRequest } from 'fastify';
import { html } from './html.ts';
import { layout } from './layout.ts';

/**
 * Whether an error answer should be a page: a browser navigating to one of the
 * tenant pages (it asks for HTML), not an API client, a form's fetch or the
 * OpenID Connect endpoints (which answer apps).
 */
export function wantsPage(request: Pick<FastifyRequest, 'url' | 'headers'>): boolean {
  const path = request.url.split('?')[0] ?? '';
  if (!/^\/t\/[^/]+\/(signin|signout|my|admin)(\/|$)/.test(path)) return false;
  return (request.headers.accept ?? '').includes('text/html');
}

/** A real page for an error (title, language, a way on), in place of JSON a person cannot read. */
export function errorPageView(v: { status: number; title: string; detail?: string | undefined; tenantSlug?: string | undefined }): string {
  const home = v.tenantSlug ? `/t/${v.tenantSlug}/signin` : undefined;
  return layout({
    title: v.title,
    tenantName: 'Steadfast',
    body: html`<div class="card">
<h1>${v.title}</h1>
${v.detail ? html`<p>${v.detail[0]!.toUpperCase()}${v.detail.slice(1)}${/[.!?]$/.test(v.detail) ? '' : '.'}</p>` : ''}
<p class="hint">Error ${v.status}.${home ? html` <a href="${home}">Go to the sign-in page</a>` : ''}</p>
</div>`,
  });
}
