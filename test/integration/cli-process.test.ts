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

  it('config check --stage recorder passes with the bus and Dataverse alone (no channel or provider secret)', async () => {
    const run = await runCliProcess(['config', 'check', '--stage', 'recorder'], {
      SERVICEBUS_CONNECTION_STRING:
        'Endpoint=sb://127.0.0.1:5672;SharedAccessKeyName=Root;SharedAccessKey=k;UseDevelopmentEmulator=true;',
      DATAVERSE_URL: 'https://contoso.crm.dynamics.com',
    });
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /^configuration is valid for recorder/);
    const dispatch = await runCliProcess(['config', 'check', '--stage', 'dispatch'], {
      SERVICEBUS_CONNECTION_STRING:
        'Endpoint=sb://127.0.0.1:5672;SharedAccessKeyName=Root;SharedAccessKey=k;UseDevelopmentEmulator=true;',
    });
    assert.equal(dispatch.code, 1);
    assert.match(
      dispatch.stderr,
      /config\/channels\.json: channels\.0\.provider\.authToken: expected environment variable TWILIO_AUTH_TOKEN to be set/,
    );
  });
});
