import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { spawnCli } from '../../../helpers/cli.js';
import { contractPayload, contractSend, sms, twilioSend } from './helpers.js';

describe('channel-relay emulate providers (process)', function () {
  this.timeout(30_000);
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'providers-cli-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('prints PROVIDERS_URL when ready, serves the three APIs with the config file, and stops cleanly on SIGTERM', async () => {
    const config = path.join(dir, 'providers.json');
    writeFileSync(
      config,
      JSON.stringify({ contract: { notSentRecipients: ['+4915100000666'] }, faults: { twilio: { errorNext: 1 } } }),
    );
    const child = spawnCli([
      'emulate',
      'providers',
      '--port',
      '0',
      '--latency-ms',
      '0',
      '--config',
      config,
      '--log-level',
      'warn',
    ]);
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      let stdout = '';
      const url = await new Promise<string>((resolve, reject) => {
        child.stdout.on('data', (chunk: Buffer) => {
          stdout += chunk.toString();
          const m = /^PROVIDERS_URL=(http:\/\/127\.0\.0\.1:\d+)\n/m.exec(stdout);
          if (m) resolve(m[1]!);
        });
        void exited.then((code) => reject(new Error(`exited with ${String(code)} before printing the URL`)));
      });
      assert.equal((await twilioSend(url, sms('+4915112345678'))).status, 503, 'the configured fault');
      assert.equal((await twilioSend(url, sms('+4915112345678'))).status, 201);
      assert.equal((await contractSend(url, contractPayload('r1', '+4915100000666'))).body['Status'], 'NotSent');
      const log = (await (await fetch(`${url}/_simulator/messages`)).json()) as unknown[];
      assert.equal(log.length, 1);
      child.kill('SIGTERM');
      assert.equal(await exited, 0);
      assert.equal(stdout, `PROVIDERS_URL=${url}\n`, 'stdout holds only the URL line');
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });

  it('fails with exit code 1 and a message naming the file for a bad config', async () => {
    const config = path.join(dir, 'bad.json');
    writeFileSync(config, JSON.stringify({ telegram: { perBot: 0 }, colour: 'blue' }));
    const child = spawnCli(['emulate', 'providers', '--config', config]);
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    assert.equal(code, 1);
    assert.match(stderr, /emulate providers: .*bad\.json: unknown option\(s\) colour/);
  });
});
