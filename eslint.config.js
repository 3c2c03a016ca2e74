import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/', 'data/', 'coverage/', 'docs/', 'dist/', '.dependency-cruiser.cjs', '.stryker-tmp/', 'reports/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { parserOptions: { ecmaVersion: 2023, sourceType: 'module' }, globals: { process: 'readonly', Buffer: 'readonly', console: 'readonly', URL: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', fetch: 'readonly', Headers: 'readonly', document: 'readonly', window: 'readonly', navigator: 'readonly' } },
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': 'error',
    },
  },
  {
    // Domain code never reaches for HTTP (every layer rule, cycles included: .dependency-cruiser.cjs).
    files: ['src/{signin,methods,directory,sessions,activity,delivery,admission,cluster,retention,backup,config,crypto,store,errors,net}/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ group: ['fastify', '@fastify/*', '**/http/*', '**/http/**', '**/server/*', '**/portal/*', '**/admin/*', '**/oidc/*', '**/cli/*'], message: 'domain modules do not depend on HTTP or on the web layers' }] },
      ],
    },
  },
);
