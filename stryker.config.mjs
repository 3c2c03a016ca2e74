// Mutation testing of the security-critical modules (issue 20, item 6).
//
//   npm run mutate                      the core set below, incremental (reports/mutation/)
//   npm run mutate -- --mutate 'src/signin/**/*.ts'   another set, e.g. nightly
//   npm run mutate:changed              only the security-critical files this branch changed against main
//   STRYKER_TESTS=test/core/sessions.test.ts npx stryker run --mutate 'src/sessions/**/*.ts' --incrementalFile reports/mutation/sessions.json
//                                       one module with only its own test files (see vitest.mutation.config.ts);
//                                       figures per module are kept in docs/mutation-score.md
//
// Concurrency 1: the machines it runs on share their cores. Incremental: a
// run reuses the results of mutants whose code and tests did not change
// (reports/mutation/stryker-incremental.json), so a second run costs only
// what changed.
//
// Surviving mutants judged equivalent are marked in the source with
// `// Stryker disable next-line <mutator>: <reason>`, so the reason sits
// beside the line it is about.

/** The modules the mutation score is reported for: where a missed break is a security hole. */
export const SECURITY_CORE = [
  'src/sessions/session-scope.ts',
  'src/http/authenticate.ts',
  'src/signin/abuse-limits.ts',
  'src/methods/tap/access-passes.ts',
  'src/methods/recovery-codes/recovery-codes-method.ts',
  'src/directory/password-hasher.ts',
];

/** Everything issue 20 names; a full run of these takes hours on a shared machine (nightly). */
export const SECURITY_ALL = [
  'src/signin/**/*.ts',
  'src/methods/**/*.ts',
  'src/http/authenticate.ts',
  'src/sessions/**/*.ts',
  'src/activity/audit-log.ts',
  'src/admission/**/*.ts',
  'src/directory/password-hasher.ts',
];

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  packageManager: 'npm',
  testRunner: 'vitest',
  vitest: { configFile: 'vitest.mutation.config.ts', related: false },
  plugins: ['@stryker-mutator/vitest-runner'],
  mutate: process.env.STRYKER_SET === 'all' ? SECURITY_ALL : SECURITY_CORE,
  coverageAnalysis: 'perTest',
  concurrency: 1,
  incremental: true,
  incrementalFile: 'reports/mutation/stryker-incremental.json',
  reporters: ['html', 'clear-text', 'progress', 'json'],
  htmlReporter: { fileName: 'reports/mutation/index.html' },
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  // STRYKER_BREAK: fail the run below this score (scripts/mutate-changed.mjs --break, in CI).
  thresholds: { high: 90, low: 80, break: process.env.STRYKER_BREAK ? Number(process.env.STRYKER_BREAK) : null },
  // A core run takes a few seconds: a mutant that hangs (a limit never reached, a wait never ended) is a timeout soon after.
  timeoutMS: 5_000,
  timeoutFactor: 2,
  // Static mutants (module-level constants) rerun every test for each: too slow here, and covered by the tests' assertions on values.
  ignoreStatic: true,
  tempDirName: '.stryker-tmp',
  cleanTempDir: 'always',
};
