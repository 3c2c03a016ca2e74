/** Which master keys a store needs, so a backup says what must be kept with it. */
import type { Db } from '../store/durable/database.ts';
import { sealedAppSecret } from '../directory/apps.ts';

/** The key id inside a sealed value (`v1.<keyId>.…`), if it is one. */
const sealedKeyId = (sealed: string | null | undefined) => (sealed?.startsWith('v1.') ? sealed.split('.')[1] : undefined);

/**
 * The ids of the master keys a store's data needs: every key that sealed a
 * stored secret (method secrets, OIDC signing keys, app secrets) and every
 * key that keyed an audit entry or checkpoint. A backup restored without them
 * loses those secrets and cannot prove its audit chain.
 */
export async function masterKeysNeeded(db: Db): Promise<string[]> {
  const ids = new Set<string>();
  const add = (id: string | null | undefined) => {
    if (id) ids.add(id);
  };
  // The key id is the 12 characters after "v1.": counted in the database, not row by row here.
  const secrets = await db
    .selectFrom('credentials')
    .select((eb) => eb.fn<string>('substr', ['secret', eb.val(4), eb.val(12)]).as('key_id'))
    .where('secret', 'like', 'v1.%')
    .distinct()
    .execute();
  for (const row of secrets) add(row.key_id);
  for (const row of await db.selectFrom('oidc_keys').select('sealed_jwk').execute()) add(sealedKeyId(row.sealed_jwk));
  for (const row of await db.selectFrom('deployment_keys').select('sealed_private_key').execute()) add(sealedKeyId(row.sealed_private_key));
  for (const row of await db.selectFrom('apps').select('settings').where('kind', '=', 'oidc').execute()) {
    add(sealedKeyId(sealedAppSecret(row.settings)));
  }
  for (const row of await db.selectFrom('audit_log').select('key_id').where('key_id', 'is not', null).distinct().execute()) add(row.key_id);
  for (const row of await db.selectFrom('audit_checkpoints').select('key_id').distinct().execute()) add(row.key_id);
  return [...ids].sort();
}
