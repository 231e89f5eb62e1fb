import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ServiceBusClient } from '@azure/service-bus';
import { completed, spawnCli } from '../../../helpers/cli.js';
import { emulatorConfig } from './helpers.js';
import { spawnEmulator } from './process.js';

describe('channel-relay emulate servicebus (CLI)', function () {
  this.timeout(30_000);
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'sb-cli-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('prints only the connection string on stdout, serves --config entities, and stops on SIGINT', async () => {
    const file = path.join(dir, 'Config.json');
    writeFileSync(file, JSON.stringify(emulatorConfig({ queues: { 'cli-queue': {} } })));
    const proc = await spawnEmulator(['--config', file]);
    assert.match(
      proc.connectionString,
      /^Endpoint=sb:\/\/127\.0\.0\.1:\d+;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=[^;]+;UseDevelopmentEmulator=true;$/,
    );
    const client = new ServiceBusClient(proc.connectionString);
    try {
      await client.createSender('cli-queue').sendMessages({ body: 'via cli' });
      const [m] = await client
        .createReceiver('cli-queue', { receiveMode: 'receiveAndDelete' })
        .receiveMessages(1, { maxWaitTimeInMs: 2000 });
      assert.equal(m!.body, 'via cli');
    } finally {
      await client.close();
    }
    proc.child.kill('SIGINT');
    assert.equal(await proc.exited, 0);
    assert.match(proc.stderr(), /Service Bus emulator listening/, 'logs go to stderr');
  });

  it("refuses a bad Config.json with exit code 1 and each problem with its JSON path, range and set (--ranges: Azure's by default)", async () => {
    const file = path.join(dir, 'Config.json');
    writeFileSync(
      file,
      JSON.stringify(
        emulatorConfig({
          queues: { q: { LockDuration: 'PT1S', MaxDeliveryCount: 11, DuplicateDetectionHistoryTimeWindow: 'PT10M' } },
        }),
      ),
    );
    const p = /\$\.UserConfig\.Namespaces\[0\]\.Queues\[0\]\.Properties/.source;
    const azure = await completed(spawnCli(['emulate', 'servicebus', '--port', '0', '--config', file]));
    assert.equal(azure.code, 1);
    assert.equal(azure.stdout, '');
    assert.match(azure.stderr, /Service Bus emulator configuration has 1 problem/);
    assert.match(
      azure.stderr,
      new RegExp(
        `${p}\\.LockDuration: expected a duration from PT5S to PT5M \\(Azure Service Bus's range\\), found PT1S`,
      ),
    );
    const microsoft = await completed(
      spawnCli(['emulate', 'servicebus', '--port', '0', '--config', file, '--ranges', 'microsoft-emulator']),
    );
    assert.equal(microsoft.code, 1);
    assert.match(microsoft.stderr, /Service Bus emulator configuration has 3 problems/);
    assert.match(
      microsoft.stderr,
      new RegExp(
        `${p}\\.MaxDeliveryCount: expected an integer from 1 to 10 \\(Microsoft's Service Bus emulator's range \\(its Config-schema\\.json\\)\\), found 11`,
      ),
    );
    assert.match(
      microsoft.stderr,
      new RegExp(`${p}\\.DuplicateDetectionHistoryTimeWindow: expected a duration from PT5S to PT5M \\(Microsoft's`),
    );
  });
});
