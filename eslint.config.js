import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'coverage/', 'node_modules/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-console': 'error',
    },
  },
  {
    // A folder's surface is its index.ts: code outside a folder imports it through that file only (tests may reach
    // into the module they test). Going up and then into another folder must end at that folder's index.js.
    files: ['src/**/*.ts', 'workers/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '^(\\.\\./)+(src/)?([\\w-]+/)+(?!index\\.js$)[\\w.-]+$',
              message: "Import another folder through its index.js (its public surface), not one of its files.",
            },
          ],
        },
      ],
    },
  },
  {
    files: ['src/cli/**/*.ts', 'workers/**/*.ts', 'test/**/*.ts'],
    rules: { 'no-console': 'off' },
  },
);
