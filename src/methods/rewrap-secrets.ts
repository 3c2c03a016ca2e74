import type { Db } from '../store/durable/database.ts';
import type { KeyRing } from '../crypto/key-ring.ts';
import { secretContext } from './credentials.ts';

export interface RewrapResult {
  examined: number;
  rewrapped: number;
}

/**
 * After a master-key rotation: re-seals every stored secret under the active
 * key, in batches, each value bound to the same context it had. Once it has
 * run, the previous keys can leave STEADFAST_PREVIOUS_MASTER_KEYS.
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
  return { examined, rewrapped };
}
