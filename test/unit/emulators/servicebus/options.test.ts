import assert from 'node:assert/strict';
import { resolveOptions } from '../../../../src/emulators/servicebus/options.js';
import { configPath } from '../../../../src/paths.js';
import {
  startServiceBusEmulator,
  isServiceBusEmulatorConfigError,
} from '../../../../src/emulators/servicebus/index.js';

describe('Service Bus emulator options', () => {
  it('spreads the documented defaults', () => {
    const o = resolveOptions();
    assert.equal(o.host, '127.0.0.1');
    assert.equal(o.port, 5672);
    assert.equal(o.configFile, configPath('servicebus-emulator.json'));
    assert.equal(o.dataDir, undefined);
    assert.equal(o.fsync, true);
    assert.equal(o.compactBytes, 64 * 1024 * 1024);
    assert.equal(o.maxMessageSizeBytes, 256 * 1024);
    assert.equal(o.tickMs, 50);
    assert.equal(o.deflateAboveBytes, 128 * 1024 * 1024);
    assert.equal(o.configRanges, 'azure');
    assert.equal(resolveOptions({ deflateAboveBytes: Number.POSITIVE_INFINITY }).deflateAboveBytes, Infinity);
  });

  it('rejects bad values once, naming the field, what was expected and what was found', () => {
    assert.throws(
      () => resolveOptions({ port: 70000 }),
      /ServiceBusEmulatorOptions\.port must be an integer from 0 to 65535, got 70000/,
    );
    assert.throws(() => resolveOptions({ port: 1.5 }), /port/);
    assert.throws(() => resolveOptions({ host: '' }), /ServiceBusEmulatorOptions\.host/);
    assert.throws(() => resolveOptions({ dataDir: '' }), /ServiceBusEmulatorOptions\.dataDir/);
    assert.throws(
      () => resolveOptions({ tickMs: 0 }),
      /ServiceBusEmulatorOptions\.tickMs must be an integer >= 1, got 0/,
    );
    assert.throws(() => resolveOptions({ maxMessageSizeBytes: 10 }), /maxMessageSizeBytes/);
    assert.throws(
      () => resolveOptions({ deflateAboveBytes: -1 }),
      /ServiceBusEmulatorOptions\.deflateAboveBytes must be an integer >= 0, got -1/,
    );
    assert.throws(() => resolveOptions({ fsync: 'yes' as unknown as boolean }), /fsync/);
    assert.throws(
      () => resolveOptions({ configRanges: 'emulator' as 'azure' }),
      /ServiceBusEmulatorOptions\.configRanges must be 'azure' or 'microsoft-emulator', got emulator/,
    );
  });

  it('refuses to start with a bad configuration object, before listening', async () => {
    await assert.rejects(
      startServiceBusEmulator({
        port: 0,
        config: {
          UserConfig: { Namespaces: [{ Name: 'n', Queues: [{ Name: 'q', Properties: { LockDuration: 'soon' } }] }] },
        },
      }),
      (err: unknown) =>
        isServiceBusEmulatorConfigError(err) &&
        err.source === 'options.config' &&
        err.issues[0]!.path === '$.UserConfig.Namespaces[0].Queues[0].Properties.LockDuration',
    );
  });
});
