import { defineConfig } from 'vitest/config';

/** The fast test files that pin the security-critical modules. */
const FAST = [
  'test/core/**/*.test.ts',
  'test/unit/password-hasher.test.ts',
  'test/unit/bulkhead.test.ts',
  'test/unit/admission-controller.test.ts',
  'test/unit/request-class.test.ts',
  'test/unit/work-ticket.test.ts',
  'test/unit/signin-pieces.test.ts',
  'test/unit/out-of-band-limits.test.ts',
  'test/unit/delivery-pieces.test.ts',
  'test/unit/small-pieces.test.ts',
  'test/unit/push-pieces.test.ts',
];

/**
 * The tests `npm run mutate` runs for every mutant: the fast ones that pin the
 * security-critical modules (no HTTP servers, cheap Argon2id, SQLite). The
 * HTTP suites prove the same rules from outside but take minutes a run, which
 * times a few hundred mutants is hours. (Not merged with vitest.config.ts:
 * merging would add its include list to this one.)
 *
 * STRYKER_TESTS (comma-separated globs) narrows a run to the files that guard
 * one module, so one module can be measured at a time on a shared machine:
 *   STRYKER_TESTS=test/core/sessions.test.ts npx stryker run --mutate 'src/sessions/**\/*.ts'
 */
const only = process.env.STRYKER_TESTS?.split(',').filter(Boolean);

export default defineConfig({
  ssr: { resolve: { conditions: ['steadfast-source'] } },
  test: {
    include: only?.length ? only : FAST,
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
