import assert from 'node:assert/strict';
import { spawnCli } from '../../helpers/cli.js';
import { client, SEED_FILE } from './helpers.js';

describe('channel-relay emulate dataverse (process)', function () {
  this.timeout(30_000);

  it('prints DATAVERSE_URL when ready, serves the sample seed, and stops cleanly on SIGTERM', async () => {
    const child = spawnCli(['emulate', 'dataverse', '--port', '0', '--seed', SEED_FILE, '--limits', 'off']);
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      let stdout = '';
      const url = await new Promise<string>((resolve, reject) => {
        child.stdout.on('data', (chunk: Buffer) => {
          stdout += chunk.toString();
          const m = /^DATAVERSE_URL=(http:\/\/127\.0\.0\.1:\d+)\n/m.exec(stdout);
          if (m) resolve(m[1]!);
        });
        void exited.then((code) => reject(new Error(`exited with ${String(code)} before printing the URL`)));
      });
      const api = client(url);
      const contacts = await api.retrieveMultiple({ collection: 'contacts', select: ['firstname'], count: true, filter: 'donotphone eq true' });
      assert.equal(contacts.oDataCount, 30);
      const messages = await api.retrieveMultiple({ collection: 'sample_specialmessages', select: ['sample_text'] });
      assert.match(messages.value[0]!.sample_text, /\{firstname\}/);
      child.kill('SIGTERM');
      assert.equal(await exited, 0);
      assert.equal(stdout.trim(), `DATAVERSE_URL=${url}`, 'stdout holds only the URL line');
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });

  it('listens on the address --host names (0.0.0.0 for a container) and prints it in DATAVERSE_URL', async () => {
    const child = spawnCli(['emulate', 'dataverse', '--host', '0.0.0.0', '--port', '0', '--seed', SEED_FILE, '--limits', 'off']);
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      let stdout = '';
      const port = await new Promise<string>((resolve, reject) => {
        child.stdout.on('data', (chunk: Buffer) => {
          stdout += chunk.toString();
          const m = /^DATAVERSE_URL=http:\/\/0\.0\.0\.0:(\d+)\n/m.exec(stdout);
          if (m) resolve(m[1]!);
        });
        void exited.then((code) => reject(new Error(`exited with ${String(code)} before printing the URL; stdout: ${stdout}`)));
      });
      // Listening on every interface: reachable through loopback (and, in a container, through the service name).
      const contacts = await client(`http://127.0.0.1:${port}`).retrieveMultiple({ collection: 'contacts', select: ['firstname'], count: true, filter: 'donotphone eq true' });
      assert.equal(contacts.oDataCount, 30);
      child.kill('SIGTERM');
      assert.equal(await exited, 0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });

  it('fails with a message naming the file and key for a bad seed', async () => {
    const child = spawnCli(['emulate', 'dataverse', '--seed', '/nonexistent/seed.json']);
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    assert.equal(code, 1);
    assert.match(stderr, /\/nonexistent\/seed\.json: \(root\): expected a readable JSON file/);
  });
});
