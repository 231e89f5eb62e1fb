import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import type { DynamicsWebApi } from 'dynamics-web-api';
import { loadChannels } from '../../../src/channels/index.js';
import { runCli } from '../../../src/cli/program.js';
import { closeDataverseClient, createDataverseClient } from '../../../src/dataverse/index.js';
import type { DataverseEmulator } from '../../../src/emulators/dataverse/index.js';
import { startServiceBusEmulator } from '../../../src/emulators/servicebus/index.js';
import { newChannelSolution, packSolution, type NewChannelResult } from '../../../src/solution/index.js';
import { recordingIo } from '../../helpers/cli.js';
import { closedAfterEach } from '../../helpers/fixtures.js';
import { SEED_FILE, startEmulator } from '../emulators/dataverse/helpers.js';
import { emulatorConfig } from '../emulators/servicebus/helpers.js';

interface Run {
  code: number;
  out: string;
  err: string;
}

describe('channel-relay channel import', function () {
  this.timeout(60_000);
  const track = closedAfterEach();
  let dv: DataverseEmulator;
  let api: DynamicsWebApi;
  let env: NodeJS.ProcessEnv;
  let dir: string;

  beforeEach(async () => {
    const sb = track(
      await startServiceBusEmulator({ port: 0, config: emulatorConfig({ queues: { activities: {} } }) }),
    );
    dv = track(await startEmulator({ seed: SEED_FILE, importDurationMs: 600 }));
    api = createDataverseClient({ url: dv.url, auth: 'emulator', tokenIdentity: 'test-reader' });
    track({ close: async () => closeDataverseClient(api) });
    dir = mkdtempSync(path.join(tmpdir(), 'channel-import-'));
    track({ close: async () => rmSync(dir, { recursive: true, force: true }) });
    env = { SERVICEBUS_CONNECTION_STRING: sb.connectionString, DATAVERSE_AUTH: 'emulator', DATAVERSE_URL: dv.url };
  });

  /** A generated channel `promo` (outbound marketing, prefix `test`), packed to `<dir>/promo.zip`. */
  async function promo(
    edit?: (generated: NewChannelResult) => void,
  ): Promise<{ zip: string; generated: NewChannelResult }> {
    const generated = await newChannelSolution({
      name: 'promo',
      contract: 'outbound-marketing',
      publisherPrefix: 'test',
      provider: 'twilio',
      sender: '+4915100000009',
      out: path.join(dir, 'promo'),
    });
    edit?.(generated);
    const zip = path.join(dir, 'promo.zip');
    writeFileSync(zip, await packSolution(generated.dir));
    return { zip, generated };
  }

  async function importCli(
    args: string[],
    channelsFile?: string,
    progressStream?: NodeJS.WritableStream & { isTTY?: boolean },
  ): Promise<Run> {
    const io = recordingIo({ ...env, ...(channelsFile === undefined ? {} : { CHANNELS_FILE: channelsFile }) }, dir);
    const code = await runCli(['channel', 'import', ...args], { ...io, ...(progressStream && { progressStream }) });
    return { code, out: io.stdout.join('\n'), err: io.stderr.join('\n') };
  }

  const rows = async (collection: string): Promise<Array<Record<string, unknown>>> =>
    ((await api.retrieveMultiple({ collection })) as { value: Array<Record<string, unknown>> }).value;

  it('imports the solution with its progress, then registers the relay for the channel it carries', async () => {
    const { zip, generated } = await promo();
    const run = await importCli([zip], generated.entryFile);
    assert.equal(run.code, 0, run.err);
    // The progress while the job ran: more than one reading, never going back.
    const percents = [...run.err.matchAll(/^import: (\d+) %/gm)].map((m) => Number(m[1]));
    assert.ok(new Set(percents).size >= 2, `expected several progress readings, got:\n${run.err}`);
    assert.deepEqual(
      percents,
      [...percents].sort((a, b) => a - b),
      'progress never goes back',
    );
    assert.match(run.out, new RegExp(`^imported ${generated.uniqueName}\\b.*: 100 % in \\d+\\.\\d s`, 'm'));
    // What the relay reads of the channel (its tile's table) now exists in the org, and so do the endpoint and step.
    const tile = loadChannels(generated.entryFile, { env: { PROMO_AUTH_TOKEN: 'x' } }).all()[0]?.tile;
    assert.ok(tile !== undefined);
    assert.deepEqual(await rows(tile.entitySetName), []);
    assert.match(run.out, /^registering for channel promo:$/m);
    assert.match(run.out, /^step 'channel-relay: Create of msdyncrm_customerjourneycustomchannelactivity'.*: created/m);
    assert.equal((await rows('serviceendpoints')).length, 1);

    // A second import updates the same components; the registration then has nothing to change.
    const again = await importCli([zip], generated.entryFile);
    assert.equal(again.code, 0, again.err);
    assert.match(again.out, /nothing to change/);
  });

  it('on a terminal, the progress is a bar redrawn in place on the progress stream instead of lines; not on one, lines', async () => {
    const { zip, generated } = await promo();
    const terminal = Object.assign(new PassThrough(), { isTTY: true, columns: 120 });
    let drawn = '';
    terminal.on('data', (chunk: Buffer) => (drawn += chunk.toString('utf8')));
    const run = await importCli([zip, '--no-register'], generated.entryFile, terminal);
    assert.equal(run.code, 0, run.err);
    assert.doesNotMatch(run.err, /^import: /m, 'no progress lines beside the bar');
    // Each redraw goes back to the line's start (readline.cursorTo) and writes the bar with the job's state.
    const frames = [...drawn.matchAll(/import {2}\S+ (\d+)% \| ([a-z ]+) \| \d+\.\d s/g)];
    assert.ok(frames.length >= 2, `several frames drawn, got:\n${JSON.stringify(drawn)}`);
    const percents = frames.map((f) => Number(f[1]));
    assert.deepEqual(
      percents,
      [...percents].sort((a, b) => a - b),
      'the bar never goes back',
    );
    assert.equal(frames.at(-1)?.[1], '100');
    assert.equal(frames.at(-1)?.[2], 'succeeded');
    assert.ok(drawn.includes('\u001b['), 'drawn in place with terminal escapes');
    assert.match(run.out, new RegExp(`^imported ${generated.uniqueName}\\b.*: 100 % in`, 'm'));

    // A stream that is not a terminal (a pipe, a CI log) gets no bar: the lines, as without one.
    const pipe = Object.assign(new PassThrough(), { isTTY: false });
    let piped = '';
    pipe.on('data', (chunk: Buffer) => (piped += chunk.toString('utf8')));
    const again = await importCli([zip, '--no-register'], generated.entryFile, pipe);
    assert.equal(again.code, 0, again.err);
    assert.equal(piped, '');
    assert.match(again.err, /^import: 100 % \(succeeded, \d+\.\d s\)$/m);
  });

  it("a failed import names each failed component with Dataverse's message, exits 1 and registers nothing", async () => {
    const { zip, generated } = await promo((g) => {
      // An uppercase GUID in a customization file: the real-time pages require lowercase GUIDs, the emulator reads the
      // rule for every GUID (the relay's own channels loader never reads this file).
      const meta = `${String(g.tileFile)}.data.xml`;
      writeFileSync(
        meta,
        readFileSync(meta, 'utf8').replace(
          /<WebResourceId>\{([0-9a-f-]+)\}/,
          (_m, id: string) => `<WebResourceId>{${id.toUpperCase()}}`,
        ),
      );
    });
    const run = await importCli([zip], generated.entryFile);
    assert.equal(run.code, 1, run.out);
    assert.match(run.err, new RegExp(`^the import of ${generated.uniqueName}\\b.* failed after`, 'm'));
    assert.match(
      run.err,
      /^ {2}failure in .*: (0x[0-9a-f]{8} )?.*TileCustomerJourneyDesignerTileConfig\.xml.*(upper|lower)case/im,
    );
    assert.equal((await rows('serviceendpoints')).length, 0, 'nothing registered');
  });

  it('refuses before any call: not a solution, a channel the solution does not carry, no org URL', async () => {
    const { zip, generated } = await promo();
    const notZip = path.join(dir, 'notes.zip');
    writeFileSync(notZip, 'not a zip');
    const bad = await importCli([notZip], generated.entryFile);
    assert.equal(bad.code, 2);
    assert.match(bad.err, /notes\.zip: not a zip file/);

    const other = await importCli([zip, '--channel', 'sms'], generated.entryFile);
    assert.equal(other.code, 2);
    assert.match(other.err, /--channel sms: the channels file .* has no channel named 'sms'/);

    const io = recordingIo({ ...env, DATAVERSE_URL: '' }, dir);
    assert.equal(await runCli(['channel', 'import', zip], io), 2);
    assert.match(io.stderr.join('\n'), /--dataverse-url: expected the org URL/);
    assert.deepEqual(await rows('importjobs'), [], 'no import was started');
  });

  it('--no-register imports only', async () => {
    const { zip, generated } = await promo();
    const run = await importCli([zip, '--no-register'], generated.entryFile);
    assert.equal(run.code, 0, run.err);
    assert.match(run.out, /^imported /m);
    assert.equal((await rows('serviceendpoints')).length, 0);
  });
});
