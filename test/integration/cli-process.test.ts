import assert from 'node:assert/strict';
import { packageVersion } from '../../src/cli/program.js';
import { runCliProcess } from '../helpers/cli.js';

describe('the channel-relay executable', () => {
  it('prints its version and exits 0', async () => {
    const run = await runCliProcess(['--version']);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout.trim(), packageVersion());
  });

  it('carries the exit code of a failed config check to the process', async () => {
    const run = await runCliProcess(['config', 'check'], { LOG_LEVEL: 'loud' });
    assert.equal(run.code, 1);
    assert.match(run.stderr, /environment variable LOG_LEVEL: log\.level: expected one of/);
    assert.equal(run.stdout, '');
  });
});
