/** Recovery codes: ten single-use codes, Argon2id-hashed, a new set replacing the old. */
import { RateLimiterRes } from 'rate-limiter-flexible';
import type { Db } from '../../store/durable/database.ts';
import type { EphemeralStore } from '../../store/ephemeral/ephemeral-store.ts';
import { AppError } from '../../errors/app-error.ts';
import type { Clock } from '../../clock.ts';
import type { PasswordHasher } from '../../directory/password-hasher.ts';
import { newId, normaliseBase32, randomBase32 } from '../../crypto/random.ts';
import { guardLiveSession, type Credentials } from '../credentials.ts';
import type { Method } from '../method.ts';

// A used code's hold outlives any outage worth surviving; the replayed `used_at` takes over after.
const RECOVERY_HOLD_MS = 7 * 24 * 3600_000;

const CODE_COUNT = 10;
// Each code is 12 Crockford base32 characters: a 4-character look-up part that
// picks the stored row, and 8 secret characters (40 bits). Only the whole code
// is hashed, with Argon2id (ASVS v5 6.5.2), so verification costs one slow hash
// at most, whatever was typed.
const LOOKUP_LENGTH = 4;
const SECRET_LENGTH = 8;

export interface RecoveryCodesDeps {
  db: Db;
  credentials: Credentials;
  hasher: PasswordHasher;
  clock: Clock;
  ephemeral: EphemeralStore;
}

const SETS_PER_HOUR = 5;

export function formatRecoveryCode(raw: string): string {
  return `${raw.slice(0, 4)}-${raw.slice(4, 8)}-${raw.slice(8, 12)}`.toLowerCase();
}

export function createRecoveryCodesMethod(deps: RecoveryCodesDeps) {
  // Each new set costs ten Argon2id hashes: a few sets an hour is plenty for a person, and no more for a script.
  const regenerations = deps.ephemeral.rateLimiter({ keyPrefix: 'rl:rcgen', points: SETS_PER_HOUR, durationSeconds: 3600, blockSeconds: 0 });
  const takeRegeneration = async (key: string) => {
    try {
      await regenerations.consume(key);
    } catch (err) {
      if (err instanceof RateLimiterRes)
        throw new AppError(
          'too-many-requests',
          'new recovery codes can be made a few times an hour; use the newest set',
          {},
          Math.max(1, Math.ceil(err.msBeforeNext / 1000)),
        );
      throw err;
    }
  };
  return {
    type: 'recovery-codes',
    enrolmentProvesPossession: false,

    async enrol(tenant, user, input = {}) {
      const lookups = new Set<string>();
      while (lookups.size < CODE_COUNT) lookups.add(randomBase32(LOOKUP_LENGTH));
      await takeRegeneration(`${tenant.id}|${user.id}`);
      const codes = [...lookups].map((lookup) => lookup + randomBase32(SECRET_LENGTH));
      // One at a time: ten slow hashes at once would take ten places on the hashing pool that sign-ins share.
      const hashes: string[] = [];
      for (const code of codes) hashes.push(await deps.hasher.hash(code));

      const credentialId = newId();
      // A new set replaces the old one: both in one transaction, so there is never a moment with no set or two.
      await deps.db.transaction().execute(async (trx) => {
        await guardLiveSession(trx, { tenant_id: tenant.id, user_id: user.id }, input.bySession, deps.clock.now());
        await trx.deleteFrom('credentials').where('tenant_id', '=', tenant.id).where('user_id', '=', user.id).where('type', '=', 'recovery-codes').execute();
        await trx
          .insertInto('credentials')
          .values({
            id: credentialId,
            tenant_id: tenant.id,
            user_id: user.id,
            type: 'recovery-codes',
            label: 'Recovery codes',
            state: 'pending',
            secret: null,
            public_data: JSON.stringify({ count: CODE_COUNT }),
            is_default: 0,
            last_step: null,
            sign_count: 0,
            created_at: deps.clock.now(),
            last_used_at: null,
          })
          .execute();
        await trx
          .insertInto('recovery_codes')
          .values(
            codes.map((code, i) => ({
              id: newId(),
              tenant_id: tenant.id,
              credential_id: credentialId,
              lookup: code.slice(0, LOOKUP_LENGTH),
              code_hash: hashes[i]!,
              used_at: null,
            })),
          )
          .execute();
      });
      const credential = (await deps.credentials.get(tenant.id, user.id, credentialId))!;
      // Inserted pending and activated through the repository so the default-method rule applies.
      await deps.credentials.activate(credential);
      return { credential: { ...credential, state: 'active' }, reveal: { codes: codes.map(formatRecoveryCode) } };
    },

    async challenge() {
      return {};
    },

    async verify(candidates, input) {
      // A user has one set at most: the newest replaces any other.
      const credential = candidates[0];
      if (!credential) return undefined;
      const code = normaliseBase32(input.code ?? '');
      // Spares a look-up only: a malformed code matches no stored code, and the same one hash is spent either way
      // (test/core/security-core.test.ts), so a weaker test here changes nothing an attacker can see.
      // Stryker disable next-line ConditionalExpression,LogicalOperator,Regex: equivalent, see above
      const wellFormed = code.length === LOOKUP_LENGTH + SECRET_LENGTH && /^[0-9A-Z]+$/.test(code);
      const row = wellFormed
        ? await deps.db
            .selectFrom('recovery_codes')
            .select(['id', 'code_hash'])
            .where('tenant_id', '=', credential.tenantId)
            .where('credential_id', '=', credential.id)
            .where('lookup', '=', code.slice(0, LOOKUP_LENGTH))
            .where('used_at', 'is', null)
            .executeTakeFirst()
        : undefined;
      // The same slow hash runs whether or not the look-up part matched, so timing
      // does not reveal which look-up parts exist.
      if (!row) {
        await deps.hasher.verifyNothing(code);
        return undefined;
      }
      if (!(await deps.hasher.verify(row.code_hash, code))) return undefined;
      // During an outage: refused on every node once any node took it (until the database records it everywhere).
      if (!(await deps.credentials.holds.claim(`recovery-code:${row.id}`, RECOVERY_HOLD_MS))) return undefined;
      const used = await deps.db
        .updateTable('recovery_codes')
        .set({ used_at: deps.clock.now() })
        .where('tenant_id', '=', credential.tenantId)
        .where('id', '=', row.id)
        .where('used_at', 'is', null)
        .executeTakeFirst();
      if (Number(used.numUpdatedRows) !== 1) return undefined;
      await deps.credentials.markUsed(credential);
      return { credential, amr: ['otp'] };
    },
  } satisfies Method;
}

/** How many unused codes a set has left; shown to the user so they renew in time. */
export async function remainingRecoveryCodes(db: Db, tenantId: string, credentialId: string): Promise<number> {
  const row = await db
    .selectFrom('recovery_codes')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('tenant_id', '=', tenantId)
    .where('credential_id', '=', credentialId)
    .where('used_at', 'is', null)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}
