import type { Db } from '../store/durable/database.ts';
import type { Clock } from '../clock.ts';
import type { Tenant } from '../directory/tenant.ts';
import { hashToken } from '../crypto/keyed-hash.ts';
import { newId, randomToken } from '../crypto/random.ts';

const PREFIX = 'sfd_';

/**
 * Browsers a user chose to remember after proving a second factor there: for
 * as many days as the tenant's policy allows (`rememberedDeviceDays`), the
 * password alone signs in from that browser. The token is a random 256-bit
 * cookie value kept as SHA-256; ending a user's sessions (password change,
 * methods reset, "this wasn't me", the admin) forgets every browser too.
 */
export class RememberedDevices {
  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
  ) {}

  /**
   * A new token for this browser, signed in with the session `sessionToken` names, or undefined when the policy
   * remembers nothing or that session has ended meanwhile. Ending a user's sessions ends the sessions first and
   * forgets the browsers after (Sessions.revokeAllForUser): a browser written before the forgetting is forgotten
   * with the rest, and one written after finds its session ended here and is forgotten at once. Without this, a
   * sign-in finishing as the owner reported it ("this wasn't me") kept a browser that skips the second factor.
   */
  async remember(
    tenant: Tenant,
    userId: string,
    userAgent: string | undefined,
    sessionToken: string,
  ): Promise<{ token: string; expiresAt: number } | undefined> {
    const days = tenant.policy.rememberedDeviceDays;
    if (days <= 0) return undefined;
    const token = PREFIX + randomToken(32);
    const now = this.clock.now();
    const id = newId();
    await this.db
      .insertInto('remembered_devices')
      .values({
        id,
        tenant_id: tenant.id,
        user_id: userId,
        token_hash: hashToken(token),
        created_at: now,
        revoked_at: null,
        user_agent: userAgent?.slice(0, 512) ?? null,
      })
      .execute();
    const live = await this.db
      .selectFrom('sessions')
      .select('id')
      .where('token_hash', '=', hashToken(sessionToken))
      .where('tenant_id', '=', tenant.id)
      .where('user_id', '=', userId)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    if (live) return { token, expiresAt: now + days * 86_400_000 };
    await this.db.updateTable('remembered_devices').set({ revoked_at: this.clock.now() }).where('id', '=', id).execute();
    return undefined;
  }

  /** Whether this token remembers this user's browser today, under today's policy (a shortened policy applies at once). */
  async recognises(tenant: Tenant, userId: string, token: string | undefined): Promise<boolean> {
    const days = tenant.policy.rememberedDeviceDays;
    // Quick refusals only: with no days the age check below refuses too, and a token without the prefix or
    // too long is no stored token's hash, so dropping any of these changes no answer.
    // Stryker disable next-line ConditionalExpression,EqualityOperator: equivalent, see above
    if (!token || days <= 0 || !token.startsWith(PREFIX) || token.length > 100) return false;
    const row = await this.db
      .selectFrom('remembered_devices')
      .select(['created_at'])
      .where('token_hash', '=', hashToken(token))
      .where('tenant_id', '=', tenant.id)
      .where('user_id', '=', userId)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    return row !== undefined && Number(row.created_at) + days * 86_400_000 > this.clock.now();
  }
}
