import type { FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../errors/app-error.ts';
import { problemCatalog } from '../errors/catalog.ts';
import type { Principal } from '../http/authenticate.ts';
import type { Services } from '../server/services.ts';
import type { SafeHtml } from './html.ts';
import { layout } from './layout.ts';
import type { NextPage } from './landing.ts';

/** Helpers shared by the signed-in pages (security info, my sign-ins). */
export function principalPages(services: Services) {
  /** The signed-in user of this tenant, or undefined after a redirect to its sign-in page. */
  const principalOr = async (request: FastifyRequest, reply: FastifyReply, next: NextPage): Promise<Principal | undefined> => {
    const slug = (request.params as { tenant: string }).tenant;
    const principal = await services.auth.findPrincipal(request);
    if (principal && principal.tenant.slug === slug) return principal;
    const tenant = await services.tenants.findBySlug(slug);
    if (!tenant) throw new AppError('not-found', 'no such tenant');
    void reply.redirect(`/t/${tenant.slug}/signin?next=${next}`, 303);
    return undefined;
  };

  const page = (reply: FastifyReply, p: Principal, title: string, body: SafeHtml, status = 200, scripts = false) =>
    reply
      .code(status)
      .type('text/html; charset=utf-8')
      .header('cache-control', 'no-store')
      .send(layout({ title, tenantName: p.tenant.name, body, scripts, signedInAs: p.user.username, signOut: { action: `/t/${p.tenant.slug}/signout`, csrf: reply.generateCsrf() } }));

  /** The message a page shows for an expected failure; anything else propagates to the error handler. */
  const shownError = (err: unknown): { text: string; status: number } => {
    if (!(err instanceof AppError)) throw err;
    const text = err.detail ?? problemCatalog[err.code].title;
    const wait = err.retryAfter && err.status === 429 ? ` Try again in ${err.retryAfter} seconds.` : '';
    return { text: `${text[0]!.toUpperCase()}${text.slice(1)}${/[.!?]$/.test(text) ? '' : '.'}${wait}`, status: err.status };
  };

  return { principalOr, page, shownError };
}
