import type { Services } from '../../src/server/services.ts';

/**
 * The session token of an administrator who just signed in with a second factor: what changes an admin API
 * token may not make (which methods can be used, administrators' accounts) are made with it. A new
 * administrator each call (made by the command line's actor), so sessions never collide.
 */
export async function adminPersonSession(services: Services, tenantSlug: string): Promise<string> {
  const tenant = (await services.tenants.findBySlug(tenantSlug))!;
  const person = await services.admin.createUser(tenant, 'cli', { username: `policy-admin-${Math.random().toString(36).slice(2, 10)}`, admin: true });
  return (await services.sessions.create({ tenantId: tenant.id, userId: person.id, scope: 'full', amr: ['pwd', 'otp', 'mfa'] })).token;
}
