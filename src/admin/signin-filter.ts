import { AppError } from '../errors/app-error.ts';
import type { Tenant } from '../directory/tenant.ts';
import type { Users } from '../directory/users.ts';
import type { SigninFilter } from '../activity/signin-events.ts';

/** What the sign-in log is filtered by, as the API's query and the console's form give it. */
export interface SigninQuery {
  user?: string | undefined;
  outcome?: 'success' | 'failure' | undefined;
  method?: string | undefined;
  since?: string | undefined;
  until?: string | undefined;
}

/** The sign-in log filter from query parameters; a `user` (id or username) that names nobody matches nothing. */
export async function signinFilter(users: Pick<Users, 'get' | 'findByUsername'>, tenant: Tenant, q: SigninQuery): Promise<SigninFilter> {
  let userId: string | undefined;
  if (q.user) {
    const user = (await users.get(tenant.id, q.user)) ?? (await users.findByUsername(tenant.id, q.user));
    // No user of that name or id: an id no user has, so nothing matches.
    userId = user?.id ?? '';
  }
  const time = (value: string | undefined, name: string) => {
    if (!value) return undefined;
    const ms = Date.parse(value);
    if (Number.isNaN(ms)) throw new AppError('invalid-request', `${name} is not a date-time`);
    return ms;
  };
  return { userId, outcome: q.outcome, method: q.method || undefined, since: time(q.since, 'since'), until: time(q.until, 'until') };
}
