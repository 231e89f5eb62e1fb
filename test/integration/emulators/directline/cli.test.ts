import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ClientSecretCredential } from '@azure/identity';
import { collectOutput, spawnCli } from '../../../helpers/cli.js';
import { customerMessage, post, readAll, startConversation } from './helpers.js';

describe('channel-relay emulate directline (process)', function () {
  this.timeout(60_000);
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'directline-cli-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('prints DIRECTLINE_URL, IDENTITY_URL and IDENTITY_CA_FILE, serves both with the config file, and stops cleanly on SIGTERM', async () => {
    const config = path.join(dir, 'directline.json');
    const clientId = '0f0e0d0c-0b0a-4909-8807-060504030201';
    writeFileSync(
      config,
      JSON.stringify({
        secrets: ['a-secret-from-the-file'],
        agents: { replyDelayMs: 0, endAfterTurns: 0 },
        identity: { apps: [{ clientId, secrets: [{ value: 's3cret' }] }] },
      }),
    );
    const child = spawnCli([
      'emulate',
      'directline',
      '--port',
      '0',
      '--identity-port',
      '0',
      '--config',
      config,
      '--log-level',
      'warn',
    ]);
    const out = collectOutput(child);
    try {
      const m = await out.stdoutMatch(
        /^DIRECTLINE_URL=(http:\/\/127\.0\.0\.1:\d+)\nIDENTITY_URL=(https:\/\/127\.0\.0\.1:\d+)\nIDENTITY_CA_FILE=(.+)\n/,
      );
      const [, url, identityUrl, caFile] = m as unknown as [string, string, string, string];
      const c = await startConversation(url, 'a-secret-from-the-file');
      assert.equal((await post(url, c, customerMessage('hello'))).status, 200);
      assert.equal((await readAll(url, c)).activities[0]?.text, 'hello');
      const ca = readFileSync(caFile, 'utf8');
      const token = await new ClientSecretCredential('botframework.com', clientId, 's3cret', {
        authorityHost: identityUrl,
        disableInstanceDiscovery: true,
        tlsOptions: { ca },
      }).getToken('https://api.botframework.com/.default');
      assert.ok(token.token.length > 20);
      child.kill('SIGTERM');
      assert.equal(await out.exited, 0);
      assert.equal(
        out.stdout(),
        `DIRECTLINE_URL=${url}\nIDENTITY_URL=${identityUrl}\nIDENTITY_CA_FILE=${caFile}\n`,
        'stdout holds only the three lines',
      );
      assert.equal(existsSync(caFile), false, 'the certificate file is removed on stop');
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });

  it('fails with exit code 1 and a message naming the file for a bad config', async () => {
    const config = path.join(dir, 'bad.json');
    writeFileSync(config, JSON.stringify({ pageSize: 0, colour: 'blue' }));
    const child = spawnCli(['emulate', 'directline', '--config', config]);
    const out = collectOutput(child);
    assert.equal(await out.exited, 1);
    assert.match(out.stderr(), /emulate directline: .*bad\.json: unknown option\(s\) colour/);
  });
});
