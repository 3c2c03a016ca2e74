import type { Db } from '../store/durable/database.ts';

// The model name of a link from a provider session to the Steadfast session it stands on.
const PROVIDER_SESSION_LINK = 'SteadfastSessionLink';
// The model name of a link from a grant to a Steadfast session a code of it was issued in.
const GRANT_LINK = 'SteadfastGrantLink';
// As long as a grant lives (the provider's Grant TTL), so that the link is there for as long as what it ends.
const GRANT_LINK_TTL_MS = 30 * 24 * 3600 * 1000;

/**
 * Ends what the OpenID Connect provider issued, when Steadfast ends a user's
 * access: otherwise the provider's own session (and the refresh tokens of the
 * apps) would outlive a sign-out, a revoke, a reset or a disabled account.
 */
export class OidcRevocation {
  constructor(private readonly db: Db) {}

  /**
   * Notes that a provider session stands on a Steadfast session (the provider's
   * interaction policy saw it there). Kept beside the provider's records, under
   * a model of its own the provider never reads: the row's `uid` holds the
   * Steadfast session id (indexed for the look-up at sign-out), `account_id` the
   * user (so ending all of a user's access removes it too), and it expires with
   * the Steadfast session. A later sign-in in the same browser moves the link.
   */
  async linkProviderSession(tenantId: string, providerSessionId: string, steadfast: { id: string; userId: string; expiresAt: number }): Promise<void> {
    const row = {
      tenant_id: tenantId,
      model: PROVIDER_SESSION_LINK,
      id: providerSessionId,
      payload: '{}',
      grant_id: null,
      uid: steadfast.id,
      user_code: null,
      expires_at: steadfast.expiresAt,
      consumed_at: null,
      account_id: steadfast.userId,
    };
    await this.db
      .insertInto('oidc_records')
      .values(row)
      .onConflict((oc) => oc.columns(['tenant_id', 'model', 'id']).doUpdateSet({ uid: row.uid, expires_at: row.expires_at, account_id: row.account_id }))
      .execute();
  }

  /** The Steadfast session the provider's session (its id) stands on, if linked. */
  async linkedSteadfastSession(tenantId: string, providerSessionId: string): Promise<string | undefined> {
    const row = await this.db
      .selectFrom('oidc_records')
      .select('uid')
      .where('tenant_id', '=', tenantId)
      .where('model', '=', PROVIDER_SESSION_LINK)
      .where('id', '=', providerSessionId)
      .executeTakeFirst();
    return row?.uid ?? undefined;
  }

  /**
   * Notes that a code of this grant was issued in this Steadfast session. The
   * provider's session is no record of that: it forgets an app it signed out
   * of while keeping the app's offline grant ("No, stay signed in"), and its
   * own sign-out keeps offline grants too. The row's `grant_id` is the grant
   * (so revoking the grant removes the link), `uid` the Steadfast session.
   */
  async linkGrant(tenantId: string, grantId: string, steadfast: { id: string; userId: string }, now: number): Promise<void> {
    await this.db
      .insertInto('oidc_records')
      .values({
        tenant_id: tenantId,
        model: GRANT_LINK,
        id: `${grantId}:${steadfast.id}`,
        payload: '{}',
        grant_id: grantId,
        uid: steadfast.id,
        user_code: null,
        expires_at: now + GRANT_LINK_TTL_MS,
        consumed_at: null,
        account_id: steadfast.userId,
      })
      .onConflict((oc) => oc.columns(['tenant_id', 'model', 'id']).doUpdateSet({ expires_at: now + GRANT_LINK_TTL_MS }))
      .execute();
  }

  /**
   * What the provider issued on the strength of one Steadfast session: the
   * grants a code was issued for in it, with their tokens, and the provider
   * sessions that stood on it with the grants made in them, as signing out on
   * the pages ends them. Signing out through the API has no provider cookie
   * to go by, so it goes by the links.
   */
  async endSteadfastSession(tenantId: string, steadfastSessionId: string, accountId: string): Promise<void> {
    const grants = await this.db
      .selectFrom('oidc_records')
      .select('grant_id')
      .where('tenant_id', '=', tenantId)
      .where('model', '=', GRANT_LINK)
      .where('uid', '=', steadfastSessionId)
      .where('account_id', '=', accountId)
      .where('grant_id', 'is not', null)
      .$narrowType<{ grant_id: string }>()
      .execute();
    await this.endGrants(
      this.db,
      tenantId,
      grants.map((g) => g.grant_id),
    );
    const links = await this.db
      .selectFrom('oidc_records')
      .select('id')
      .where('tenant_id', '=', tenantId)
      .where('model', '=', PROVIDER_SESSION_LINK)
      .where('uid', '=', steadfastSessionId)
      .where('account_id', '=', accountId)
      .execute();
    for (const link of links) await this.endBrowserSession(tenantId, link.id, accountId);
  }

  /** The grants and everything that names them (tokens, links). */
  private async endGrants(db: Db, tenantId: string, grantIds: string[]): Promise<void> {
    // Stryker disable next-line ConditionalExpression: equivalent on SQLite, where `in ()` matches nothing; PostgreSQL refuses an empty list, as its suites show
    if (grantIds.length === 0) return;
    // The grants' tokens name them (grant_id); a grant itself is the record of model Grant with that id.
    await db
      .deleteFrom('oidc_records')
      .where('tenant_id', '=', tenantId)
      .where((eb) => eb.or([eb('grant_id', 'in', grantIds), eb.and([eb('model', '=', 'Grant'), eb('id', 'in', grantIds)])]))
      .execute();
  }

  /**
   * Everything issued to the user in this tenant: provider sessions, grants,
   * access and refresh tokens. Codes not yet redeemed die with their grant
   * (redeeming one loads the grant). Returns how many records ended.
   */
  async endForAccount(tenantId: string, accountId: string): Promise<number> {
    const result = await this.db.deleteFrom('oidc_records').where('tenant_id', '=', tenantId).where('account_id', '=', accountId).executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  /**
   * One browser's provider session (signing out of Steadfast's pages), and the
   * grants made in it, with their tokens: an app in that browser (a single-page
   * app keeps its refresh token there) loses them too. Only a session of this
   * user is touched, whatever id the browser sent.
   */
  async endBrowserSession(tenantId: string, sessionId: string, accountId: string): Promise<void> {
    const row = await this.db
      .selectFrom('oidc_records')
      .select(['payload'])
      .where('tenant_id', '=', tenantId)
      .where('model', '=', 'Session')
      .where('id', '=', sessionId)
      .where('account_id', '=', accountId)
      .executeTakeFirst();
    if (!row) {
      await this.db
        .deleteFrom('oidc_records')
        .where('tenant_id', '=', tenantId)
        .where('model', '=', PROVIDER_SESSION_LINK)
        .where('id', '=', sessionId)
        .execute();
      return;
    }
    const authorizations = (JSON.parse(row.payload) as { authorizations?: Record<string, { grantId?: unknown }> }).authorizations ?? {};
    const grantIds = Object.values(authorizations)
      .map((a) => a.grantId)
      .filter((g): g is string => typeof g === 'string');
    await this.db.transaction().execute(async (trx) => {
      await this.endGrants(trx, tenantId, grantIds);
      await trx
        .deleteFrom('oidc_records')
        .where('tenant_id', '=', tenantId)
        .where('model', 'in', ['Session', PROVIDER_SESSION_LINK])
        .where('id', '=', sessionId)
        .execute();
    });
  }
}
