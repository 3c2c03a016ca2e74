import type { Principal } from '../authenticate.ts';

/**
 * Whether a signed-in person's own pages link to the admin console: an
 * administrator of the tenant in a full session. The console itself still
 * decides access (`requireAdministrator`); this only decides the link.
 */
export const isAdmin = (p: Principal): boolean => p.user.isAdmin && p.session.scope === 'full';
