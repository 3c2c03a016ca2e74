import { defineConfig } from 'vitest/config';

export default defineConfig({
  // The package's own exports (`steadfast/client`) resolve to the TypeScript sources.
  ssr: { resolve: { conditions: ['steadfast-source'] } },
  test: {
    include: ['test/**/*.test.ts'],
    // Argon2id at production parameters and real servers make some tests take seconds.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Two cores: more parallel files only make each slower.
    maxWorkers: 2,
    minWorkers: 1,
    reporters: ['default', './test/helpers/summary-reporter.ts'],
  },
});
