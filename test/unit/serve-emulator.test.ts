import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { serveEmulator, parsePort } from '../../src/cli/commands/serve-emulator.js';
import { recordingIo } from '../helpers/cli.js';
import { waitFor } from '../helpers/wait.js';

describe('emulate commands: serveEmulator', () => {
  it('prints the ready line only once signals are handled, and exits 0 after a clean stop on SIGTERM', async () => {
    const io = recordingIo();
    const signals = new EventEmitter();
    const events: string[] = [];
    let code = -1;
    const served = serveEmulator(io, (c) => (code = c), {
      command: 'emulate test',
      service: 'test-emulator',
      logLevel: 'error',
      signals,
      start: async () => ({ readyLine: 'TEST_URL=http://127.0.0.1:1', close: () => void events.push('closed') }),
    });
    await waitFor('the ready line', () => (io.stdout.length > 0 ? true : undefined));
    assert.deepEqual(io.stdout, ['TEST_URL=http://127.0.0.1:1']);
    assert.equal(signals.listenerCount('SIGTERM'), 1, 'the handler is in place when the line is out');
    signals.emit('SIGTERM', 'SIGTERM');
    await served;
    assert.deepEqual(events, ['closed']);
    assert.equal(code, 0);
  });

  it('exits 1 with the reason when the emulator cannot start, 2 for a bad log level', async () => {
    const io = recordingIo();
    let code = -1;
    await serveEmulator(io, (c) => (code = c), {
      command: 'emulate test',
      service: 't',
      logLevel: 'info',
      start: () => Promise.reject(new Error('port 5672 is in use')),
    });
    assert.equal(code, 1);
    assert.deepEqual(io.stderr, ['emulate test: port 5672 is in use']);
    await serveEmulator(io, (c) => (code = c), {
      command: 'emulate test',
      service: 't',
      logLevel: 'loud',
      start: () => Promise.reject(new Error('not called')),
    });
    assert.equal(code, 2);
    assert.match(io.stderr[1] ?? '', /--log-level must be one of error, warn, info, debug, found 'loud'/);
    assert.deepEqual(io.stdout, []);
  });

  it('parses --port as an integer from 0 to 65535', () => {
    assert.equal(parsePort('0'), 0);
    assert.equal(parsePort('5672'), 5672);
    for (const bad of ['abc', '-1', '65536', '1.5', ''])
      assert.throws(() => parsePort(bad), /expected an integer from 0 \(any free port\) to 65535/);
  });
});
