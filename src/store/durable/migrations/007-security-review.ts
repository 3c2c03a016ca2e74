/** What the security review's fixes store. */
import type { Kysely } from 'kysely';

// Long-lived OpenID Connect records of these models name the user they were issued to.
const ACCOUNT_MODELS = ['Session', 'Grant', 'AccessToken', 'RefreshToken', 'AuthorizationCode', 'BackchannelAuthenticationRequest', 'DeviceCode'];
// Admin tokens created before tokens expired get this long from the upgrade.
const LEGACY_TOKEN_DAYS = 90;

/**
 * What the security review's fixes store:
 * - `oidc_records.account_id`, so everything the provider issued to a user can
 *   be ended when the user's sessions are (sign-out, revoke, reset, disable);
 * - admin token expiry and a name, for `token list` and `token revoke`;
 * - users' email and phone sealed (the values move to `*_sealed` when the node
 *   starts with its key ring), with a keyed index for looking a user up by
 *   exact email address.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('oidc_records').addColumn('account_id', 'varchar(64)').execute();
  await db.schema.createIndex('oidc_records_account').on('oidc_records').columns(['tenant_id', 'account_id']).execute();
  const rows = await db.selectFrom('oidc_records').select(['tenant_id', 'model', 'id', 'payload']).where('model', 'in', ACCOUNT_MODELS).execute();
  for (const row of rows as { tenant_id: string; model: string; id: string; payload: string }[]) {
    let accountId: unknown;
    try {
      accountId = (JSON.parse(row.payload) as { accountId?: unknown }).accountId;
    } catch {
      continue;
    }
    if (typeof accountId !== 'string') continue;
    await db
      .updateTable('oidc_records')
      .set({ account_id: accountId })
      .where('tenant_id', '=', row.tenant_id)
      .where('model', '=', row.model)
      .where('id', '=', row.id)
      .execute();
  }

  await db.schema.alterTable('admin_tokens').addColumn('expires_at', 'bigint').execute();
  await db.schema.alterTable('admin_tokens').addColumn('name', 'varchar(200)').execute();
  await db.schema.alterTable('admin_tokens').addColumn('created_by', 'varchar(300)').execute();
  await db
    .updateTable('admin_tokens')
    .set({ expires_at: Date.now() + LEGACY_TOKEN_DAYS * 86_400_000 })
    .where('expires_at', 'is', null)
    .execute();

  await db.schema.alterTable('users').addColumn('email_sealed', 'text').execute();
  await db.schema.alterTable('users').addColumn('phone_sealed', 'text').execute();
  await db.schema.alterTable('users').addColumn('email_index', 'varchar(64)').execute();
  await db.schema.createIndex('users_email_index').on('users').columns(['tenant_id', 'email_index']).execute();
  // Known-browser marks issued before this time no longer count (the user's sessions were all ended).
  await db.schema.alterTable('users').addColumn('known_browsers_reset_at', 'bigint').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('users').dropColumn('known_browsers_reset_at').execute();
  await db.schema.dropIndex('users_email_index').execute();
  await db.schema.alterTable('users').dropColumn('email_index').execute();
  await db.schema.alterTable('users').dropColumn('phone_sealed').execute();
  await db.schema.alterTable('users').dropColumn('email_sealed').execute();
  await db.schema.alterTable('admin_tokens').dropColumn('created_by').execute();
  await db.schema.alterTable('admin_tokens').dropColumn('name').execute();
  await db.schema.alterTable('admin_tokens').dropColumn('expires_at').execute();
  await db.schema.dropIndex('oidc_records_account').execute();
  await db.schema.alterTable('oidc_records').dropColumn('account_id').execute();
}
