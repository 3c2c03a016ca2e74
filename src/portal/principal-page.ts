import type { FastifyReply } from 'fastify';
import type { Principal } from '../http/authenticate.ts';
import type { Services } from '../server/services.ts';
import type { SafeHtml } from '../http/page/html.ts';
import { principalOr } from '../http/page/principal-or.ts';
import { sendPage } from '../http/page/send-page.ts';
import { shownError } from '../http/page/shown-error.ts';
import { signedInLayout } from '../http/page/signed-in-layout.ts';
import { tenantLookup } from '../http/page/tenant-lookup.ts';

/** Helpers shared by the signed-in pages not yet split into views and routes. */
export function principalPages(services: Services) {
  const page = (reply: FastifyReply, p: Principal, title: string, body: SafeHtml, status = 200, scripts = false) =>
    sendPage(reply, signedInLayout({ title, tenant: p.tenant, username: p.user.username, csrf: reply.generateCsrf(), body, scripts }), status);
  return { principalOr: principalOr({ auth: services.auth, tenants: tenantLookup(services.tenants) }), page, shownError };
}
