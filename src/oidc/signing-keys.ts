import { generateKeyPairSync, createHash } from 'node:crypto';
import type { Db } from '../store/durable/database.ts';
import type { Clock } from '../clock.ts';
import type { KeyRing } from '../crypto/key-ring.ts';

export interface SigningJwk {
  kid: string;
  kty: string;
  alg: 'RS256';
  use: 'sig';
  [field: string]: unknown;
}

/** What a tenant's signing key is sealed to (a key re-sealed after a master-key rotation keeps it). */
export const signingKeyContext = (tenantId: string, kid: string) => `oidc-signing-key:${tenantId}:${kid}`;
// Retired keys stay published this long, so tokens they signed still verify until they expire.
const RETIRED_PUBLISHED_MS = 30 * 24 * 3600_000;

/**
 * Each tenant's ID token signing keys: RSA 2048 (RS256, what every relying
 * party accepts), private parts sealed with the key ring. Rotating adds a new
 * key that signs from then on; the old one stays published while tokens it
 * signed may still be in use.
 */
export class SigningKeys {
  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    private readonly keyRing: KeyRing,
  ) {}

  /** The keys to publish, newest (the one that signs) first; makes the first key when there is none. */
  async forTenant(tenantId: string): Promise<SigningJwk[]> {
    let rows = await this.rows(tenantId);
    if (rows.length === 0) {
      await this.rotate(tenantId);
      rows = await this.rows(tenantId);
    }
    return rows.map((r) => JSON.parse(this.keyRing.open(r.sealed_jwk, signingKeyContext(tenantId, r.kid)).toString('utf8')) as SigningJwk);
  }

  /** A version string that changes whenever the key set does (nodes rebuild their provider on change). */
  async version(tenantId: string): Promise<string> {
    return (await this.rows(tenantId)).map((r) => r.kid).join(',');
  }

  /** Adds a new signing key; the previous ones are retired (still published for verification). Returns the new kid. */
  async rotate(tenantId: string): Promise<string> {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const jwk = privateKey.export({ format: 'jwk' }) as Record<string, string>;
    const kid = createHash('sha256').update(jwk.n!).digest('base64url').slice(0, 16);
    const now = this.clock.now();
    await this.db.transaction().execute(async (trx) => {
      await trx.updateTable('oidc_keys').set({ retired_at: now }).where('tenant_id', '=', tenantId).where('retired_at', 'is', null).execute();
      const sealed = this.keyRing.seal(JSON.stringify({ ...jwk, kid, alg: 'RS256', use: 'sig' }), signingKeyContext(tenantId, kid));
      await trx.insertInto('oidc_keys').values({ tenant_id: tenantId, kid, sealed_jwk: sealed, created_at: now, retired_at: null }).execute();
    });
    return kid;
  }

  /** The active key first (it signs), then the retired ones newest first. */
  private async rows(tenantId: string) {
    const rows = await this.db
      .selectFrom('oidc_keys')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .where((eb) => eb.or([eb('retired_at', 'is', null), eb('retired_at', '>', this.clock.now() - RETIRED_PUBLISHED_MS)]))
      .orderBy('created_at', 'desc')
      .execute();
    return rows.sort((a, b) => Number(a.retired_at !== null) - Number(b.retired_at !== null));
  }
}
