import assert from 'node:assert/strict';
import { EmulatorError, isEmulatorError } from '../../../src/emulators/errors.js';
import { ServiceBusEmulatorConfigError } from '../../../src/emulators/servicebus/index.js';
import { ConfigError, isConfigError, isRelayError, isRetryable } from '../../../src/errors.js';
import { exitCodeOf } from '../../../src/lifecycle.js';

describe("emulators' errors", () => {
  it("are the emulators' own: their guard knows them, the relay's guards do not", () => {
    const err = new EmulatorError('EmulatorDataDirInUse', 'the data folder is in use', {
      context: { dataDir: '/tmp/x' },
    });
    assert.ok(isEmulatorError(err));
    assert.ok(!isRelayError(err) && !isConfigError(err) && !isRetryable(err));
    assert.equal(
      exitCodeOf(err),
      1,
      'an emulator that cannot start exits 1, as any failure that is not the relay configuration',
    );
    assert.deepEqual(err.toJSON(), {
      name: 'EmulatorError',
      code: 'EmulatorDataDirInUse',
      message: 'the data folder is in use',
      context: { dataDir: '/tmp/x' },
    });
  });

  it('the guard checks the brand and a known code, not the class', () => {
    const config = new ServiceBusEmulatorConfigError('Config.json', [
      { path: '$.UserConfig', reason: 'expected an object' },
    ]);
    assert.ok(isEmulatorError(config) && config.code === 'EmulatorConfigInvalid');
    assert.ok(
      isEmulatorError({ ...new EmulatorError('EmulatorClosed', 'closed') }),
      'the brand survives a spread copy',
    );
    assert.ok(
      !isEmulatorError(Object.assign(new Error('x'), { name: 'EmulatorError', code: 'EmulatorClosed' })),
      'no brand, not an emulator error',
    );
    assert.ok(!isEmulatorError(new ConfigError('ConfigInvalid', [])), "the relay's errors are not the emulators'");
  });
});
