// ESLint for the project's own JavaScript, TypeScript and Vue, run by
// scripts/lint-js.sh from the repository's root over the files git tracks
// (so never node_modules, npm/pkg or a build's output). Each file gets the
// globals of where it runs: the browser, Node, or both (a test on Node that
// hands functions to the page under test).
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';
import vue from 'eslint-plugin-vue';

const browser = { ...globals.browser };
const node = { ...globals.node };

export default tseslint.config(
  js.configs.recommended,
  {
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // `catch { }` with a comment saying why is how the drivers swallow
      // what the browser refuses (storage, sandboxed frames).
      'no-empty': ['error', { allowEmptyCatch: true }],
      // `_name` marks an argument a signature needs and the body does not;
      // `_` a value bound only to be thrown away (a drained stream's chunks,
      // a key left out of a rest).
      'no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_$', caughtErrors: 'none' }],
    },
  },
  // The tracker and its Vue composable run in the browser, and are imported
  // on servers too (they touch no global at import time).
  { files: ['npm/src/index.js', 'npm/src/vue.js', 'npm/src/nuxt/runtime/plugin.client.js'], languageOptions: { globals: browser } },
  // Node: freshet/server, the Nuxt module and its server route, the scripts,
  // benchmarks and test servers.
  {
    files: ['npm/src/server.js', 'npm/src/nuxt/module.js', 'npm/src/nuxt/runtime/ingest.js', 'scripts/**', 'bench/**', 'edge/**'],
    languageOptions: { globals: node },
  },
  // Tests and the end-to-end stack run on Node and pass functions to the page.
  { files: ['tests/**'], languageOptions: { globals: { ...node, ...browser } } },
  // TypeScript: the examples' and the type tests' own code, without type
  // information (tsc and nuxt build check the types).
  ...tseslint.configs.recommended.map((config) => ({ ...config, files: ['**/*.ts', '**/*.vue'] })),
  // Vue single-file components (`<script setup lang="ts">`): the rules that
  // catch errors, not the template layout ones.
  ...vue.configs['flat/essential'].map((config) => ({ ...config, files: ['**/*.vue'] })),
  {
    files: ['**/*.vue'],
    languageOptions: { parserOptions: { parser: tseslint.parser } },
  },
  {
    files: ['examples/**', 'tests/sdk/nuxt-app/**'],
    languageOptions: { globals: { ...node, ...browser } },
  },
  // A Nuxt page is named by its route (`pages/search.vue` is /search).
  { files: ['**/pages/**/*.vue', '**/app.vue'], rules: { 'vue/multi-word-component-names': 'off' } },
);
