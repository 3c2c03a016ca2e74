import { defineConfig } from 'vitest/config';

/**
 * The tests `npm run mutate` runs for every mutant: the fast ones that pin the
 * security-critical modules (no HTTP servers, cheap Argon2id, SQLite). The
 * HTTP suites prove the same rules from outside but take minutes a run, which
 * times a few hundred mutants is hours. (Not merged with vitest.config.ts:
 * merging would add its include list to this one.)
 */
export default defineConfig({
  ssr: { resolve: { conditions: ['steadfast-source'] } },
  test: {
    include: ['test/core/**/*.test.ts', 'test/unit/password-hasher.test.ts', 'test/unit/bulkhead.test.ts', 'test/unit/admission-controller.test.ts', 'test/unit/request-class.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
