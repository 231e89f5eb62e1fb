import assert from 'node:assert/strict';
import { collectOutput, completed, spawnCli } from '../../../helpers/cli.js';
import { client, SEED_FILE } from './helpers.js';

describe('channel-relay emulate dataverse (process)', function () {
  this.timeout(30_000);

  it('prints DATAVERSE_URL when ready, serves the sample seed, and stops cleanly on SIGTERM', async () => {
    const child = spawnCli(['emulate', 'dataverse', '--port', '0', '--seed', SEED_FILE, '--limits', 'off']);
    const output = collectOutput(child);
    try {
      const url = (await output.stdoutMatch(/^DATAVERSE_URL=(http:\/\/127\.0\.0\.1:\d+)\n/m))[1]!;
      const api = client(url);
      const contacts = await api.retrieveMultiple({
        collection: 'contacts',
        select: ['firstname'],
        count: true,
        filter: 'donotphone eq true',
      });
      assert.equal(contacts.oDataCount, 30);
      const messages = await api.retrieveMultiple({ collection: 'sample_specialmessages', select: ['sample_text'] });
      assert.match(messages.value[0]!.sample_text, /\{firstname\}/);
      child.kill('SIGTERM');
      assert.equal(await output.exited, 0);
      assert.equal(output.stdout().trim(), `DATAVERSE_URL=${url}`, 'stdout holds only the URL line');
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });

  it('listens on the address --host names (0.0.0.0 for a container) and prints it in DATAVERSE_URL', async () => {
    const child = spawnCli([
      'emulate',
      'dataverse',
      '--host',
      '0.0.0.0',
      '--port',
      '0',
      '--seed',
      SEED_FILE,
      '--limits',
      'off',
    ]);
    const output = collectOutput(child);
    try {
      const port = (await output.stdoutMatch(/^DATAVERSE_URL=http:\/\/0\.0\.0\.0:(\d+)\n/m))[1]!;
      // Listening on every interface: reachable through loopback (and, in a container, through the service name).
      const contacts = await client(`http://127.0.0.1:${port}`).retrieveMultiple({
        collection: 'contacts',
        select: ['firstname'],
        count: true,
        filter: 'donotphone eq true',
      });
      assert.equal(contacts.oDataCount, 30);
      child.kill('SIGTERM');
      assert.equal(await output.exited, 0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });

  it('fails with a message naming the file and key for a bad seed', async () => {
    const run = await completed(spawnCli(['emulate', 'dataverse', '--seed', '/nonexistent/seed.json']));
    assert.equal(run.code, 1);
    assert.match(run.stderr, /\/nonexistent\/seed\.json: \(root\): expected a readable JSON file/);
  });
  it('--partial-targets: Creates posted without those columns for the share given; a bad value is refused with an example', async () => {
    const bad = await completed(spawnCli(['emulate', 'dataverse', '--partial-targets', 'msdyncrm_contact@2']));
    assert.notEqual(bad.code, 0);
    assert.match(
      bad.stderr,
      /--partial-targets.*expected column names separated by commas, optionally @share \(0-1\), e\.g\. msdyncrm_contact,msdyncrm_entityid@0\.5; found 'msdyncrm_contact@2'/,
    );
    const child = spawnCli([
      'emulate',
      'dataverse',
      '--port',
      '0',
      '--limits',
      'off',
      '--partial-targets',
      'msdyncrm_contact,msdyncrm_entityid@0.5',
    ]);
    const output = collectOutput(child);
    try {
      const url = (await output.stdoutMatch(/^DATAVERSE_URL=(http:\/\/127\.0\.0\.1:\d+)\n/m))[1]!;
      const stats = (await (await fetch(`${url}/_emulator/stats`)).json()) as {
        partialTargets: unknown;
        posting: { partialTargets: number };
      };
      assert.deepEqual(stats.partialTargets, { omit: ['msdyncrm_contact', 'msdyncrm_entityid'], share: 0.5 });
      assert.equal(stats.posting.partialTargets, 0, 'nothing posted yet');
      child.kill('SIGTERM');
      assert.equal(await output.exited, 0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
