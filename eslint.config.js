// Lint configuration: typescript-eslint's recommended rules plus a few that keep the code honest.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'sim-traces/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-constant-condition': ['error', { checkLoops: false }],
      eqeqeq: ['error', 'always'],
    },
  },
  {
    files: ['bin/**/*.js', 'eslint.config.js'],
    languageOptions: { globals: { process: 'readonly' } },
  },
  {
    // The dashboard's browser code: its names (document, EventSource, HTMLElement, ...) are checked
    // by the browser type check (src/ui/browser/tsconfig.json, run by test/ui/browser-types.test.ts),
    // which knows the DOM library; ESLint's no-undef would need every browser global listed.
    files: ['src/ui/browser/**/*.js'],
    rules: { 'no-undef': 'off' },
  },
  {
    // The example apps and test fixtures written as plain Node.js scripts.
    files: ['examples/**/*.mjs', 'test/**/*.mjs'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly', setTimeout: 'readonly', setInterval: 'readonly', clearTimeout: 'readonly' } },
  },
);
