import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sinon from 'sinon';
import { runWorker, type StageName } from '../../../src/relay/index.js';

/** The worker life up to the point where it would receive: every way start-up can fail says why and exits. */
describe('relay: runWorker start-up', () => {
  const env = {
    SERVICEBUS_CONNECTION_STRING:
      'Endpoint=sb://127.0.0.1:1;SharedAccessKeyName=k;SharedAccessKey=s;UseDevelopmentEmulator=true;',
    DATAVERSE_URL: 'http://127.0.0.1:1',
    DATAVERSE_AUTH: 'emulator',
    TWILIO_AUTH_TOKEN: 'token-0123456789abcdef',
    TELEGRAM_BOT_TOKEN: '1:abcdefghijklmnopqrstuvwxyz',
    CONTRACT_SIGNING_SECRET: 'whsec_c2VjcmV0LXNpZ25pbmcta2V5',
    PROVIDERS_URL: 'http://127.0.0.1:1',
    HEALTH_HOST: '127.0.0.1',
    HEALTH_PORT: '0',
    LOG_LEVEL: 'error',
  };

  async function run(
    extra: Record<string, string | undefined>,
    stages: StageName[] = ['recorder'],
  ): Promise<{ code: number | undefined; stderr: string }> {
    let stderr = '';
    let code: number | undefined;
    await runWorker(stages, {
      env: { ...env, ...extra },
      stderr: { write: (t: string) => (stderr += t) },
      exit: (c) => (code = c),
    });
    return { code, stderr };
  }

  it('a bad configuration stops start-up with every problem named and exit code 2', async () => {
    const { code, stderr } = await run({
      DATAVERSE_URL: undefined,
      SERVICEBUS_CONNECTION_STRING: undefined,
      LOG_LEVEL: 'loud',
    });
    assert.equal(code, 2);
    assert.match(stderr, /^recorder: cannot start: configuration has \d+ problems/);
    assert.match(stderr, /log\.level: expected one of "error", "warn", "info", "debug", found "loud"/);
    assert.match(stderr, /dataverse\.url/);
  });

  it('a channels file with a secret that is not set stops start-up with exit code 2', async () => {
    const { code, stderr } = await run({ TELEGRAM_BOT_TOKEN: undefined }, ['dispatch']);
    assert.equal(code, 2);
    assert.match(
      stderr,
      /^dispatch: cannot start: [\s\S]*channels\.json: channels\.1\.provider\.botToken: expected environment variable TELEGRAM_BOT_TOKEN to be set/,
    );
  });

  it('a provider setting the adapter refuses stops start-up with exit code 2, naming the channel', async () => {
    // Dispatch makes every adapter before any loop starts.
    let out = '';
    let exitCode: number | undefined;
    await runWorker(['dispatch'], {
      env: { ...env, CONTRACT_SIGNING_SECRET: 'not-a-webhook-secret' },
      stderr: { write: (t: string) => (out += t) },
      exit: (c) => (exitCode = c),
    });
    assert.equal(exitCode, 2);
    assert.match(
      out,
      /dispatch: cannot start: configuration has 1 problem\n {2}- channel "realtime-sms" in .*channels\.json: provider\.signingSecret: expected "whsec_" followed by base64/,
    );
    assert.doesNotMatch(out, /not-a-webhook-secret/);
  }).timeout(10_000);

  it('a taken health port stops start-up before anything is received, with exit code 1', async () => {
    const taken: Server = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    try {
      const port = (taken.address() as AddressInfo).port;
      const { code, stderr } = await run({ HEALTH_PORT: String(port) });
      assert.equal(code, 1);
      assert.match(
        stderr,
        new RegExp(
          `the health server cannot listen on 127\\.0\\.0\\.1:${port} \\(health\\.port / HEALTH_PORT\\): .*EADDRINUSE`,
        ),
      );
    } finally {
      await new Promise((resolve) => taken.close(resolve));
    }
  });

  it('dispatch does not need a Dataverse URL (it never calls Dataverse); intake and the recorder do', async () => {
    let out = '';
    let exitCode: number | undefined;
    await runWorker(['recorder'], {
      env: { ...env, DATAVERSE_URL: undefined },
      stderr: { write: (t: string) => (out += t) },
      exit: (c) => (exitCode = c),
    });
    assert.equal(exitCode, 2);
    assert.match(out, /dataverse\.url: expected the org URL \(or set DATAVERSE_URL\), found nothing/);
    // Dispatch gets past the configuration to its adapters (a bad secret stops it there, before any loop starts).
    out = '';
    exitCode = undefined;
    await runWorker(['dispatch'], {
      env: { ...env, DATAVERSE_URL: undefined, CONTRACT_SIGNING_SECRET: 'not-a-webhook-secret' },
      stderr: { write: (t: string) => (out += t) },
      exit: (c) => (exitCode = c),
    });
    assert.equal(exitCode, 2);
    assert.doesNotMatch(out, /dataverse\.url/);
    assert.match(out, /channel "realtime-sms"/);
  });

  it('logs a warning naming the file and the key when the configuration file uses a renamed key', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'relay-main-'));
    const file = path.join(dir, 'relay.json');
    writeFileSync(file, JSON.stringify({ dispatch: { maxAttempts: 3 } }));
    const taken: Server = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    // The worker logs to process.stderr; the taken health port stops it right after the configuration.
    const logged: string[] = [];
    const write = sinon
      .stub(process.stderr, 'write')
      .callsFake((chunk: string | Uint8Array) => logged.push(String(chunk)) > 0);
    try {
      const port = (taken.address() as AddressInfo).port;
      const { code } = await run({ CHANNEL_RELAY_CONFIG: file, HEALTH_PORT: String(port), LOG_LEVEL: 'warn' });
      assert.equal(code, 1);
    } finally {
      write.restore();
      await new Promise((resolve) => taken.close(resolve));
      rmSync(dir, { recursive: true, force: true });
    }
    const line = logged.find((l) => l.includes('deprecated'));
    assert.match(
      line ?? logged.join(''),
      /configuration: .*relay\.json: dispatch\.maxAttempts is deprecated: read as dispatch\.retry\.attempts; rename it/,
    );
  });
});
