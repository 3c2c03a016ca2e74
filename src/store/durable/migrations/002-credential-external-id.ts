/** The WebAuthn credential id, unique per tenant, so a passkey finds its user without a username. */
import type { Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('credentials').addColumn('external_id', 'varchar(1024)').execute();
  // A passkey sign-in finds the credential by the id the authenticator sends.
  await db.schema.createIndex('credentials_external_id').on('credentials').columns(['tenant_id', 'external_id']).unique().execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('credentials_external_id').execute();
  await db.schema.alterTable('credentials').dropColumn('external_id').execute();
}
