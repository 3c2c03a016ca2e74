/** Every session token starts so. */
export const SESSION_TOKEN_PREFIX = 'sfs_';

/**
 * A registration-scoped session's token is marked after the prefix ('.' never
 * occurs in the base64url random part), so admission control can rank
 * "a new user finishing set-up" first from the token alone, before any
 * lookup. The mark grants nothing: the session's scope in the store decides
 * what it may do, and a forged mark only buys a quick 401 in a bounded lane.
 */
export const REGISTRATION_TOKEN_PREFIX = `${SESSION_TOKEN_PREFIX}reg.`;

export function isRegistrationToken(token: string | undefined): boolean {
  return token !== undefined && token.startsWith(REGISTRATION_TOKEN_PREFIX);
}
