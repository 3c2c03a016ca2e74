import type { Db } from '../store/durable/database.ts';

/**
 * Ends what the OpenID Connect provider issued, when Steadfast ends a user's
 * access: otherwise the provider's own session (and the refresh tokens of the
 * apps) would outlive a sign-out, a revoke, a reset or a disabled account.
 */
export class OidcRevocation {
  constructor(private readonly db: Db) {}

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
    if (!row) return;
    const authorizations = (JSON.parse(row.payload) as { authorizations?: Record<string, { grantId?: unknown }> }).authorizations ?? {};
    const grantIds = Object.values(authorizations)
      .map((a) => a.grantId)
      .filter((g): g is string => typeof g === 'string');
    await this.db.transaction().execute(async (trx) => {
      if (grantIds.length > 0) await trx.deleteFrom('oidc_records').where('tenant_id', '=', tenantId).where('grant_id', 'in', grantIds).execute();
      await trx.deleteFrom('oidc_records').where('tenant_id', '=', tenantId).where('model', '=', 'Session').where('id', '=', sessionId).execute();
    });
  }
}
