import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import * as relay from '../../src/index.js';
import { packageRoot } from '../../src/paths.js';

describe('public surface', () => {
  it('the package entry point is src/index.ts, compiled', () => {
    const pkg = JSON.parse(readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')) as {
      exports: Record<string, string>;
      bin: Record<string, string>;
    };
    assert.equal(pkg.exports['.'], './dist/src/index.js');
    assert.equal(pkg.bin['channel-relay'], 'dist/src/cli/main.js');
  });

  it('names the configuration, channels, errors, logging, life cycle, relay, providers and emulators', () => {
    const names = Object.keys(relay).sort();
    const expected = [
      'loadConfig',
      'loadChannels',
      'createLogger',
      'createShutdown',
      'Closer',
      'isDataverseError',
      'isRetryable',
      'startRelay',
      'runWorker',
      'createProvider',
      'verifyWebhook',
    ];
    for (const name of [...expected, 'startServiceBusEmulator', 'startDataverseEmulator', 'startProviderSimulators']) {
      assert.ok(names.includes(name), `${name} is exported`);
      assert.equal(typeof (relay as Record<string, unknown>)[name], 'function');
    }
  });
});
