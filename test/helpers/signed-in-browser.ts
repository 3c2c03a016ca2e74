import type { ManualClock } from '../../src/clock.ts';
import { PageClient } from './page-client.ts';
import { api } from './test-server.ts';
import { totpCode } from './totp.ts';

export interface NewUserSite {
  /** The test server's base URL. */
  base: string;
  /** The slug of the tenant the admin token belongs to. */
  tenant: string;
  adminToken: string;
  /** The server's clock: moved on 30 s so the authenticator app shows a fresh code. */
  clock: ManualClock;
}

/** A new user with a password and an authenticator app, signed in over the API, and a fresh browser holding that session. */
export async function signedInBrowser(site: NewUserSite, username: string, password: string) {
  const { base, adminToken, clock } = site;
  await api(base, 'POST', '/api/v1/admin/users', { username, password }, adminToken);
  const first = await api(base, 'POST', `/api/v1/t/${site.tenant}/signin`, { username, password });
  const session = first.body.session.token as string;
  const added = await api(base, 'POST', '/api/v1/me/methods', { type: 'totp' }, session);
  clock.advance(30_000);
  await api(base, 'POST', `/api/v1/me/methods/${added.body.id}/confirm`, { code: totpCode(added.body.secret, clock.now()) }, session);
  const browser = new PageClient(base);
  browser.cookies.set('sf_session', session);
  const user = (await api(base, 'GET', '/api/v1/me', undefined, session)).body;
  return { browser, token: session, userId: user.id as string, secret: added.body.secret as string };
}
