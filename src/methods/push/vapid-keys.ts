import webpush from 'web-push';
import type { Clock } from '../../clock.ts';
import type { KeyRing } from '../../crypto/key-ring.ts';
import type { Db } from '../../store/durable/database.ts';

export interface VapidKeyPair {
  /** base64url, uncompressed P-256 point: the `applicationServerKey` browsers subscribe with. */
  publicKey: string;
  privateKey: string;
}

const NAME = 'vapid';

/** What a deployment key's sealed value is bound to: it opens only for that row. */
export const deploymentKeyContext = (name: string) => `deployment-key:${name}`;

/**
 * The deployment's VAPID key pair (RFC 8292), made on first use and kept in
 * the durable store with its private part sealed by the key ring. Every node
 * uses the same pair: the first to need it inserts it, a racing node's insert
 * is ignored and both read the row that won.
 */
export class VapidKeys {
  private cached: Promise<VapidKeyPair> | undefined;

  constructor(
    private readonly db: Db,
    private readonly keyRing: KeyRing,
    private readonly clock: Clock,
  ) {}

  get(): Promise<VapidKeyPair> {
    this.cached ??= this.load().catch((err: unknown) => {
      // A store that was down must not leave the failure cached for ever.
      this.cached = undefined;
      throw err;
    });
    return this.cached;
  }

  private async load(): Promise<VapidKeyPair> {
    let row = await this.row();
    if (!row) {
      const made = webpush.generateVAPIDKeys();
      await this.db
        .insertInto('deployment_keys')
        .values({
          name: NAME,
          public_key: made.publicKey,
          sealed_private_key: this.keyRing.seal(made.privateKey, deploymentKeyContext(NAME)),
          created_at: this.clock.now(),
        })
        .onConflict((oc) => oc.column('name').doNothing())
        .execute();
      row = await this.row();
      if (!row) throw new Error('the VAPID key could not be stored');
    }
    return { publicKey: row.public_key, privateKey: this.keyRing.open(row.sealed_private_key, deploymentKeyContext(NAME)).toString('utf8') };
  }

  private row() {
    return this.db.selectFrom('deployment_keys').selectAll().where('name', '=', NAME).executeTakeFirst();
  }
}
