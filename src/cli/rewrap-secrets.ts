/** `steadfast keys rewrap`: every sealed secret of the durable store sealed again under the active master key. */
import type { Db } from '../store/durable/database.ts';
import type { KeyRing } from '../crypto/key-ring.ts';
import { secretContext } from '../methods/credentials.ts';
import { deploymentKeyContext } from '../methods/push/vapid-keys.ts';
import { signingKeyContext } from '../oidc/signing-keys.ts';
import { appSecretContext, sealedAppSecret, withSealedAppSecret } from '../directory/apps.ts';

export interface RewrapResult {
  examined: number;
  rewrapped: number;
}

/**
 * One kind of sealed value: where it is in a row, what it is bound to, and how
 * a row is written back. `store` must update only while the stored value is
 * still the one read (a node may have changed it since), and say how many
 * rows it changed.
 */
interface SealedValues<Row> {
  sealed(row: Row): string | undefined;
  context(row: Row): string;
  store(row: Row, resealed: string): Promise<{ numUpdatedRows: bigint }>;
}

/**
 * After a master-key rotation: re-seals every stored secret (method secrets,
 * OIDC signing keys, the Web Push key, OIDC client secrets) under the active
 * key, each value bound to the same context it had. Once it has run (with the
 * contacts and the configuration versions, which `keys rewrap` re-seals beside
 * it), the previous keys can leave STEADFAST_PREVIOUS_MASTER_KEYS. Safe to run
 * again, and while nodes are serving: a row is updated only if its sealed
 * value is still the one that was read.
 */
export async function rewrapSecrets(db: Db, keyRing: KeyRing, batchSize = 500): Promise<RewrapResult> {
  const result: RewrapResult = { examined: 0, rewrapped: 0 };
  const rewrap = async <Row>(rows: Row[], values: SealedValues<Row>) => {
    for (const row of rows) {
      const sealed = values.sealed(row);
      if (sealed === undefined) continue;
      result.examined++;
      if (!keyRing.needsRewrap(sealed)) continue;
      const context = values.context(row);
      const stored = await values.store(row, keyRing.seal(keyRing.open(sealed, context), context));
      result.rewrapped += Number(stored.numUpdatedRows);
    }
  };

  // Method secrets are the many: read in pages.
  for (let after = ''; ;) {
    const rows = await db
      .selectFrom('credentials')
      .select(['id', 'tenant_id', 'type', 'secret'])
      .where('secret', 'is not', null)
      .where('id', '>', after)
      .orderBy('id')
      .limit(batchSize)
      .execute();
    if (rows.length === 0) break;
    await rewrap(rows, {
      sealed: (row) => row.secret ?? undefined,
      context: (row) => secretContext(row.type, row.id),
      store: (row, resealed) =>
        db
          .updateTable('credentials')
          .set({ secret: resealed })
          .where('tenant_id', '=', row.tenant_id)
          .where('id', '=', row.id)
          .where('secret', '=', row.secret)
          .executeTakeFirst(),
    });
    after = rows.at(-1)!.id;
  }

  await rewrap(await db.selectFrom('oidc_keys').select(['tenant_id', 'kid', 'sealed_jwk']).execute(), {
    sealed: (key) => key.sealed_jwk,
    context: (key) => signingKeyContext(key.tenant_id, key.kid),
    store: (key, resealed) =>
      db
        .updateTable('oidc_keys')
        .set({ sealed_jwk: resealed })
        .where('tenant_id', '=', key.tenant_id)
        .where('kid', '=', key.kid)
        .where('sealed_jwk', '=', key.sealed_jwk)
        .executeTakeFirst(),
  });

  await rewrap(await db.selectFrom('deployment_keys').select(['name', 'sealed_private_key']).execute(), {
    sealed: (key) => key.sealed_private_key,
    context: (key) => deploymentKeyContext(key.name),
    store: (key, resealed) =>
      db
        .updateTable('deployment_keys')
        .set({ sealed_private_key: resealed })
        .where('name', '=', key.name)
        .where('sealed_private_key', '=', key.sealed_private_key)
        .executeTakeFirst(),
  });

  await rewrap(await db.selectFrom('apps').select(['id', 'tenant_id', 'settings']).where('kind', '=', 'oidc').execute(), {
    sealed: (app) => sealedAppSecret(app.settings),
    context: (app) => appSecretContext(app.id),
    store: (app, resealed) =>
      db
        .updateTable('apps')
        .set({ settings: withSealedAppSecret(app.settings, resealed) })
        .where('tenant_id', '=', app.tenant_id)
        .where('id', '=', app.id)
        .where('settings', '=', app.settings)
        .executeTakeFirst(),
  });

  return result;
}
