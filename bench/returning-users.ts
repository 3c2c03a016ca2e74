/** Returning users for the benchmarks: `user0`…, one shared password hash (it costs the same to check as distinct ones) and each an authenticator app. */
import { Secret } from 'otpauth';
import { secretContext } from '../src/methods/credentials.ts';
import type { Services } from '../src/server/services.ts';

export interface ReturningUser {
  id: string;
  username: string;
  secret: string;
}

export async function seedReturningUsers(services: Services, tenantId: string, count: number, password: string): Promise<ReturningUser[]> {
  const passwordHash = await services.hasher.hash(password);
  const users: ReturningUser[] = [];
  // A few at a time: faster than one by one, without flooding a PostgreSQL pool.
  for (let from = 0; from < count; from += 25) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(25, count - from) }, async (_, j) => {
        const i = from + j;
        const user = await services.users.create(tenantId, { username: `user${i}`, passwordHash });
        const secret = new Secret({ size: 20 }).base32;
        const id = `cred-${i}`;
        await services.credentials.insert({
          id,
          tenantId,
          userId: user.id,
          type: 'totp',
          label: 'bench',
          state: 'active',
          secret: services.keyRing.seal(secret, secretContext('totp', id)),
        });
        return { id: user.id, username: `user${i}`, secret };
      }),
    );
    users.push(...batch);
  }
  return users;
}
