import { defineConfig } from 'vitest/config';

/**
 * The benchmark's quick mode runs on its own, after the main suite (see `npm test`): it drives
 * the CPU flat out for a while, which would starve the processes of whatever test file ran
 * beside it.
 */
export default defineConfig({
  test: {
    include: ['test/bench/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    maxWorkers: 1,
    testTimeout: 330_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
