// Lint for correctness, not taste: formatting is prettier's job. Type-aware rules are left out to keep
// `npm test` quick; `tsc --noEmit` (strict) already runs before the tests.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['**/node_modules/**', '.tools/**', '.warden/**', '**/dist/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: {
        process: 'readonly',
        console: 'readonly',
        Buffer: 'readonly',
        URL: 'readonly',
        fetch: 'readonly',
        AbortSignal: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
        performance: 'readonly',
      },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' },
      ],
      // Migrations take Kysely<any> by design (they are frozen and must not import app types); tests read JSON bodies.
      '@typescript-eslint/no-explicit-any': 'off',
      'no-empty': ['error', { allowEmptyCatch: true }],
    },
  },
  {
    // Services depend on packages, never on each other.
    files: ['services/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: [
                '@warden/api',
                '@warden/supervisor-worker',
                '@warden/scheduler',
                '@warden/lead-miner',
                '@warden/executor',
                '../../*/src/*',
              ],
              message: 'services must not import other services; share code through packages/',
            },
          ],
        },
      ],
    },
  },
  {
    // domain is pure: no I/O, nothing of ours.
    files: ['packages/domain/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: [
                '@warden/*',
                'pg',
                'ioredis',
                'bullmq',
                'kysely',
                'express',
                'node:fs',
                'node:fs/*',
                'node:net',
                'node:http',
                'node:child_process',
              ],
              message: 'packages/domain is pure: no I/O and no dependency on other Warden packages',
            },
          ],
        },
      ],
    },
  },
);
