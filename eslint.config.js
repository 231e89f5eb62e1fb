import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/**
 * A folder's surface is its index.ts: code outside a folder imports it through that file only (tests may reach into
 * the module they test). Going up and then into another folder must end at that folder's index.js.
 */
const SURFACE = {
  regex: '^(\\.\\./)+(src/)?([\\w-]+/)+(?!index\\.js$)[\\w.-]+$',
  message: 'Import another folder through its index.js (its public surface), not one of its files.',
};

/**
 * Dependencies flow one way: what each top folder of src/ must not import (its README says what it may). The
 * emulators are the other side of every contract, so they share no product code but the ground (log, errors, http,
 * abort, paths, duration, options), and no product code imports them (the demo and the CLI start them).
 */
const PRODUCT = ['pipeline', 'correlation', 'channels', 'config', 'providers', 'dataverse', 'servicebus', 'relay'];
const ENTRY = ['cli', 'demo', 'registration', 'emulators', 'solution'];
const FORBIDDEN = {
  emulators: [...PRODUCT, 'directline', 'cli', 'demo', 'registration', 'solution', 'health', 'telemetry'],
  correlation: [...PRODUCT.filter((f) => f !== 'correlation'), ...ENTRY, 'health', 'http'],
  config: ['pipeline', 'channels', 'providers', 'dataverse', 'servicebus', 'relay', ...ENTRY],
  providers: ['pipeline', 'correlation', 'channels', 'config', 'dataverse', 'servicebus', 'relay', ...ENTRY],
  channels: ['pipeline', 'correlation', 'dataverse', 'servicebus', 'relay', ...ENTRY],
  pipeline: ['config', 'dataverse', 'servicebus', 'relay', 'directline', ...ENTRY],
  servicebus: ['relay', 'correlation', ...ENTRY],
  dataverse: ['relay', 'correlation', ...ENTRY],
  registration: ['pipeline', 'relay', 'cli', 'demo', 'emulators', 'solution'],
  // Generating, packing, checking and importing solutions: the channels file and the Dataverse client, no stage.
  solution: [
    ...PRODUCT.filter((f) => !['channels', 'config', 'dataverse'].includes(f)),
    ...ENTRY.filter((f) => f !== 'solution'),
    'directline',
    'messaging',
    'health',
    'http',
    'telemetry',
  ],
  messaging: [...PRODUCT.filter((f) => !['config', 'channels'].includes(f)), 'directline', ...ENTRY, 'http'],
  relay: ENTRY,
  health: [...PRODUCT, ...ENTRY],
  http: [...PRODUCT, ...ENTRY, 'health'],
  directline: [...PRODUCT.filter((f) => f !== 'pipeline'), ...ENTRY, 'health'],
  // Tracing sits on the ground: every layer may use it, it uses none of them.
  telemetry: [...PRODUCT, ...ENTRY, 'directline', 'messaging', 'health', 'http'],
};

/** One config per folder and depth below it: `../` repeated `depth` times is src/ itself. */
function layers() {
  const configs = [];
  const STAGES = ['intake', 'dispatch', 'recorder', 'callbacks'];
  for (const [folder, forbidden] of Object.entries(FORBIDDEN)) {
    for (let depth = 1; depth <= 3; depth++) {
      const files = [`src/${folder}/${'*/'.repeat(depth - 1)}*.ts`];
      const up = '\\.\\./'.repeat(depth);
      // A stage's folder imports the pipeline's root files, never another stage's folder.
      const stages =
        folder === 'pipeline' && depth === 2
          ? [{ regex: `^\\.\\./(${STAGES.join('|')})/`, message: 'A stage folder never imports another stage.' }]
          : [];
      configs.push({
        files,
        rules: {
          'no-restricted-imports': [
            'error',
            {
              patterns: [
                SURFACE,
                {
                  regex: `^${up}(${forbidden.join('|')})(/|\\.js$)`,
                  message: `src/${folder} must not import this folder: dependencies flow one way (see src/${folder}/README.md).`,
                },
                ...stages,
              ],
            },
          ],
        },
      });
    }
  }
  return configs;
}

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
    files: ['src/**/*.ts', 'workers/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [SURFACE] }] },
  },
  ...layers(),
  {
    files: ['src/cli/**/*.ts', 'workers/**/*.ts', 'test/**/*.ts'],
    rules: { 'no-console': 'off' },
  },
);
