import type { Db } from '../store/durable/database.ts';
import type { KeyRing } from '../crypto/key-ring.ts';
import { secretContext } from './credentials.ts';
import { deploymentKeyContext } from './push/vapid-keys.ts';

export interface RewrapResult {
  examined: number;
  rewrapped: number;
}

/**
 * After a master-key rotation: re-seals every stored secret (method secrets,
 * OIDC signing keys, OIDC client secrets) under the active
 * key, in batches, each value bound to the same context it had. Once it has
 * run (with the contacts and the configuration versions, which `keys rewrap`
 * re-seals beside it), the previous keys can leave STEADFAST_PREVIOUS_MASTER_KEYS.
 * Safe to run again, and while nodes are serving: each row is updated only if
 * its sealed value is still the one that was read.
 */
export async function rewrapSecrets(db: Db, keyRing: KeyRing, batchSize = 500): Promise<RewrapResult> {
  let examined = 0;
  let rewrapped = 0;
  let after = '';
  for (;;) {
    const rows = await db
      .selectFrom('credentials')
      .select(['id', 'tenant_id', 'type', 'secret'])
      .where('secret', 'is not', null)
      .where('id', '>', after)
      .orderBy('id')
      .limit(batchSize)
      .execute();
    if (rows.length === 0) break;
    for (const row of rows) {
      examined++;
      const sealed = row.secret!;
      if (!keyRing.needsRewrap(sealed)) continue;
      const context = secretContext(row.type, row.id);
      const resealed = keyRing.seal(keyRing.open(sealed, context), context);
      const result = await db
        .updateTable('credentials')
        .set({ secret: resealed })
        .where('tenant_id', '=', row.tenant_id)
        .where('id', '=', row.id)
        .where('secret', '=', sealed)
        .executeTakeFirst();
      rewrapped += Number(result.numUpdatedRows);
    }
    after = rows.at(-1)!.id;
  }

  // OpenID Connect signing keys and client secrets are sealed the same way.
  for (const key of await db.selectFrom('oidc_keys').select(['tenant_id', 'kid', 'sealed_jwk']).execute()) {
    examined++;
    if (!keyRing.needsRewrap(key.sealed_jwk)) continue;
    const context = `oidc-signing-key:${key.tenant_id}:${key.kid}`;
    const resealed = keyRing.seal(keyRing.open(key.sealed_jwk, context), context);
    const result = await db
      .updateTable('oidc_keys')
      .set({ sealed_jwk: resealed })
      .where('tenant_id', '=', key.tenant_id)
      .where('kid', '=', key.kid)
      .where('sealed_jwk', '=', key.sealed_jwk)
      .executeTakeFirst();
    rewrapped += Number(result.numUpdatedRows);
  }
  // The deployment's own keys (the Web Push VAPID key).
  for (const key of await db.selectFrom('deployment_keys').select(['name', 'sealed_private_key']).execute()) {
    examined++;
    if (!keyRing.needsRewrap(key.sealed_private_key)) continue;
    const context = deploymentKeyContext(key.name);
    const resealed = keyRing.seal(keyRing.open(key.sealed_private_key, context), context);
    const result = await db
      .updateTable('deployment_keys')
      .set({ sealed_private_key: resealed })
      .where('name', '=', key.name)
      .where('sealed_private_key', '=', key.sealed_private_key)
      .executeTakeFirst();
    rewrapped += Number(result.numUpdatedRows);
  }
  for (const app of await db.selectFrom('apps').select(['id', 'tenant_id', 'settings']).where('kind', '=', 'oidc').execute()) {
    const settings = JSON.parse(app.settings) as { sealedSecret?: string };
    if (!settings.sealedSecret) continue;
    examined++;
    if (!keyRing.needsRewrap(settings.sealedSecret)) continue;
    const context = `app-secret:${app.id}`;
    const next = JSON.stringify({ ...settings, sealedSecret: keyRing.seal(keyRing.open(settings.sealedSecret, context), context) });
    const result = await db
      .updateTable('apps')
      .set({ settings: next })
      .where('tenant_id', '=', app.tenant_id)
      .where('id', '=', app.id)
      .where('settings', '=', app.settings)
      .executeTakeFirst();
    rewrapped += Number(result.numUpdatedRows);
  }
  return { examined, rewrapped };
}
