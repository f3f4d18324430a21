/**
 * The layering of payonce, checked by `npm run lint` (dependency-cruiser): no import cycles;
 * src/shared is used by the processes and uses none of them; the API, the worker and the
 * migration entry never import each other; product code never imports tests, the bench or the
 * development scripts.
 */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'An import cycle makes load order matter and hides a missing seam.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'shared-uses-no-process',
      severity: 'error',
      comment: 'src/shared holds what the processes share; it must not depend on any of them.',
      from: { path: '^src/shared/' },
      to: { path: '^src/(api|worker|migrate)/' },
    },
    {
      name: 'api-not-worker',
      severity: 'error',
      comment: 'The API and the worker are separate processes; what both need lives in src/shared.',
      from: { path: '^src/api/' },
      to: { path: '^src/(worker|migrate)/' },
    },
    {
      name: 'worker-not-api',
      severity: 'error',
      comment: 'The API and the worker are separate processes; what both need lives in src/shared.',
      from: { path: '^src/worker/' },
      to: { path: '^src/(api|migrate)/' },
    },
    {
      name: 'migrate-only-shared',
      severity: 'error',
      from: { path: '^src/migrate/' },
      to: { path: '^src/(api|worker)/' },
    },
    {
      name: 'product-code-not-dev-code',
      severity: 'error',
      comment: 'What ships (src, migrations, seeds) must not depend on tests, the bench or dev scripts.',
      from: { path: '^(src|migrations|seeds)/' },
      to: { path: '^(test|bench|scripts)/' },
    },
    {
      name: 'no-test-helpers-outside-tests',
      severity: 'error',
      comment: 'Test helpers live in test/support and serve tests only.',
      from: { pathNot: '^test/' },
      to: { path: '^test/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'] },
  },
};
