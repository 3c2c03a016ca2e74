/** What every admin API route shares: its tag and bearer security in the docs, and its admission class. */
export const tags = ['admin'];
export const bearer = [{ bearerAuth: [] }];
export const config = { admissionClass: 'admin' as const };
// Getting locked-out people back in and shutting a compromised account: never starved by a sign-in surge.
export const emergency = { admissionClass: 'admin-emergency' as const };
