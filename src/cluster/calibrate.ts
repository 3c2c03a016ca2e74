import { availableParallelism } from 'node:os';
import type { PasswordHasher } from '../directory/password-hasher.ts';

/**
 * Measures what this machine can carry: Argon2id verifications per second on
 * all cores, through the node's own hasher and parameters. Password checks are
 * what bounds sign-ins per second (everything else a sign-in does is a few
 * percent of it; `npm run bench -- signin` shows the share), so this is the
 * node's capacity in password sign-ins per second. Runs at start, before the
 * node takes traffic; STEADFAST_CAPACITY_PER_SECOND skips it.
 */
export async function calibrateCapacity(hasher: PasswordHasher, options: { durationMs?: number; minimumChecks?: number } = {}): Promise<number> {
  const durationMs = options.durationMs ?? 600;
  const minimum = options.minimumChecks ?? 2 * availableParallelism();
  const stored = await hasher.hash('calibration password');
  let done = 0;
  const started = performance.now();
  const deadline = started + durationMs;
  await Promise.all(
    Array.from({ length: availableParallelism() }, async () => {
      while (performance.now() < deadline || done < minimum) {
        await hasher.verify(stored, 'calibration password');
        done++;
      }
    }),
  );
  return done / ((performance.now() - started) / 1000);
}
