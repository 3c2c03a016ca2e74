import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Users } from '../../directory/users.ts';
import { Nullable } from '../../http/api-schemas.ts';
import { sendSigninExport } from '../csv.ts';
import { signinFilter } from '../signin-filter.ts';
import { bearer, config, tags, type AdminRouteDeps } from './route-options.ts';
import { SigninRow, signinRow } from './signin-row.ts';

const SigninQuery = Type.Object({
  user: Type.Optional(Type.String({ maxLength: 256, description: 'a user id or username' })),
  outcome: Type.Optional(Type.Union([Type.Literal('success'), Type.Literal('failure')])),
  method: Type.Optional(Type.String({ maxLength: 32 })),
  since: Type.Optional(Type.String({ format: 'date-time' })),
  until: Type.Optional(Type.String({ format: 'date-time' })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500 })),
  cursor: Type.Optional(Type.String({ maxLength: 200 })),
  format: Type.Optional(Type.Union([Type.Literal('json'), Type.Literal('csv'), Type.Literal('ndjson')])),
});

// The export format an Accept header asks for, if any.
const exportFormatAccepted = (accept: string | undefined) =>
  /\btext\/csv\b/.test(accept ?? '') ? 'csv' : /\bapplication\/x-ndjson\b/.test(accept ?? '') ? 'ndjson' : undefined;

export interface SigninLogApiDeps extends AdminRouteDeps<'signins' | 'exportSignins'> {
  // To find the user a sign-in log filter names.
  users: Pick<Users, 'get' | 'findByUsername'>;
}

/** The admin API's sign-in log: filtered pages as JSON, or every match streamed as CSV or NDJSON. */
export function signinLogApi(deps: SigninLogApiDeps): FastifyPluginAsyncTypebox {
  const { admin } = deps;
  return async (app) => {
    app.get(
      '/api/v1/admin/signins',
      {
        schema: {
          tags,
          security: bearer,
          summary:
            'The sign-in log, newest first, filtered by user (id or username), outcome, method and time, in pages (`next` is the `cursor` of the next page); `format=csv` or `format=ndjson` (or Accept: text/csv, application/x-ndjson) streams every match, with no cap',
          querystring: SigninQuery,
          response: { 200: Type.Object({ items: Type.Array(SigninRow), next: Nullable(Type.String()) }) },
        },
        config,
      },
      async (request, reply) => {
        const { tenant } = await deps.auth.requireAdmin(request);
        const filter = await signinFilter(deps.users, tenant, request.query);
        const format = request.query.format ?? exportFormatAccepted(request.headers.accept);
        if (format === 'csv' || format === 'ndjson') return sendSigninExport(reply, admin, tenant, filter, format);
        const page = await admin.signins(tenant, filter, request.query.limit ?? 100, request.query.cursor);
        return { items: page.items.map(signinRow), next: page.next };
      },
    );
  };
}
