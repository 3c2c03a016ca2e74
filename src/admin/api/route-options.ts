/** What every admin API route shares: its tag and bearer security in the docs, its admission class, and what it is given. */
import type { RequestAuth } from '../../http/authenticate.ts';
import type { Administration } from '../administration.ts';

export const tags = ['admin'];
export const bearer = [{ bearerAuth: [] }];
export const config = { admissionClass: 'admin' as const };
// Getting locked-out people back in and shutting a compromised account: never starved by a sign-in surge.
export const emergency = { admissionClass: 'admin-emergency' as const };

/** An admin API module's dependencies: the administrator check, and the administration operations it calls. */
export interface AdminRouteDeps<Operations extends keyof Administration> {
  auth: Pick<RequestAuth, 'requireAdmin'>;
  admin: Pick<Administration, Operations>;
}
