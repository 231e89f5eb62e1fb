/**
 * The README's "A custom channel in one command each" block, run line by line with bash in an empty folder against the
 * Service Bus and Dataverse emulators, with the environment it names (DATAVERSE_URL, DATAVERSE_AUTH, SERVICEBUS_*,
 * CHANNELS_FILE) and the step its comment asks for (the printed entry added to the channels file). The commands run
 * the CLI from the sources in place of `dist/` (test/integration/production-form.test.ts covers the build).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { DataverseEmulator } from '../../../src/emulators/dataverse/index.js';
import { startServiceBusEmulator } from '../../../src/emulators/servicebus/index.js';
import { packageRoot } from '../../../src/paths.js';
import { completed } from '../../helpers/cli.js';
import { closedAfterEach } from '../../helpers/fixtures.js';
import { SEED_FILE, startEmulator } from '../emulators/dataverse/helpers.js';
import { emulatorConfig } from '../emulators/servicebus/helpers.js';

const MARK = '**A custom channel in one command each.**';
const CLI = 'node dist/src/cli/main.js';

/** The block's lines: commands, and the comment lines that ask the reader to do something. */
function readmeBlock(): string[] {
  const readme = readFileSync(path.join(packageRoot(), 'README.md'), 'utf8');
  const start = readme.indexOf(MARK);
  assert.notEqual(start, -1, `README.md has no "${MARK}"`);
  const block = /```sh\n([\s\S]*?)\n\s*```/.exec(readme.slice(start))?.[1];
  assert.ok(block !== undefined, 'the section has a sh block');
  return block
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
}

describe('README: a custom channel in one command each', function () {
  this.timeout(120_000);
  const track = closedAfterEach();
  let dv: DataverseEmulator;
  let bus: string;
  let dir: string;

  beforeEach(async () => {
    const sb = track(
      await startServiceBusEmulator({ port: 0, config: emulatorConfig({ queues: { activities: {} } }) }),
    );
    dv = track(await startEmulator({ seed: SEED_FILE, importDurationMs: 300 }));
    dir = mkdtempSync(path.join(tmpdir(), 'readme-channel-'));
    track({ close: async () => rmSync(dir, { recursive: true, force: true }) });
    bus = sb.connectionString;
  });

  it('new, pack, check and import run as written and leave the channel imported and registered', async () => {
    const tsx = createRequire(import.meta.url).resolve('tsx');
    const channelsFile = path.join(dir, 'channels.json');
    const env = {
      PATH: process.env['PATH'] ?? '',
      DATAVERSE_URL: dv.url,
      DATAVERSE_AUTH: 'emulator',
      SERVICEBUS_CONNECTION_STRING: bus,
      CHANNELS_FILE: channelsFile,
      NODE_V8_COVERAGE: '',
    };
    const outputs: string[] = [];
    for (const line of readmeBlock()) {
      if (line.startsWith('#')) {
        // "add the entry it printed (also in <folder>.channels.json) to the channels file"
        const entryFile = /\(also in (\S+)\)/.exec(line)?.[1];
        assert.ok(entryFile !== undefined, `the comment names the entry file: ${line}`);
        writeFileSync(channelsFile, readFileSync(path.join(dir, entryFile), 'utf8'));
        continue;
      }
      assert.ok(line.startsWith(`${CLI} channel `), `a channel-relay command: ${line}`);
      const command = line.replace(CLI, `node --import ${tsx} ${path.join(packageRoot(), 'src/cli/main.ts')}`);
      // Asynchronously: the emulators answer from this process.
      const run = await completed(
        spawn('bash', ['--noprofile', '--norc', '-c', command], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] }),
      );
      assert.equal(run.code, 0, `${line}\n${run.stdout}\n${run.stderr}`);
      outputs.push(run.stdout);
    }
    assert.equal(outputs.length, 4, 'new, pack, check, import');
    const imported = outputs[3] ?? '';
    assert.match(imported, /^imported contoso_Whatsapp 1\.0\.0\.0: 100 % in /m);
    assert.match(imported, /^registering for channel whatsapp:$/m);
    assert.match(
      imported,
      /^step 'channel-relay: contoso_\w+' \(the outbound Custom API of channel whatsapp\).*: created/m,
    );
  });
});
