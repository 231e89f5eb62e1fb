import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runCli } from '../../../src/cli/program.js';
import { packSolution } from '../../../src/solution/index.js';
import { recordingIo } from '../../helpers/cli.js';
import { copyFixture, fixtureDir } from '../../helpers/solutions.js';

describe('channel pack and channel check (CLI)', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'relay-channel-cli-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('pack writes the zip packSolution makes, and check says OK about it in one line', async () => {
    const io = recordingIo({}, dir);
    assert.equal(
      await runCli(['channel', 'pack', fixtureDir('realtime'), '--out', 'sms.zip'], io),
      0,
      io.stderr.join(''),
    );
    const written = new Uint8Array(readFileSync(path.join(dir, 'sms.zip')));
    assert.deepEqual(written, await packSolution(fixtureDir('realtime')));
    assert.match(io.stdout.join(''), /^packed .*realtime into sms\.zip \(\d+ bytes\)\n?$/);

    const check = recordingIo({}, dir);
    assert.equal(await runCli(['channel', 'check', 'sms.zip'], check), 0, check.stderr.join(''));
    assert.deepEqual(check.stdout, ['sms.zip: OK']);
  });

  it('check lists every problem as file:line: <element>: message and exits 1', async () => {
    const copy = copyFixture('realtime');
    try {
      copy.edit('Other/Customizations.xml', '<msdyn_channeltype>SMS<', '<msdyn_channeltype>Pager<');
      copy.edit('Other/Customizations.xml', '<msdyn_type>192350000<', '<msdyn_type>7<');
      const io = recordingIo({}, dir);
      assert.equal(await runCli(['channel', 'check', copy.dir], io), 1);
      const lines = io.stderr.join('\n').split('\n');
      assert.match(lines[0]!, /has 2 problems:$/);
      assert.match(
        lines[1]!,
        /^ {2}- Other\/Customizations\.xml:\d+: <ImportExportXml\/msdyn_channeldefinitions\/msdyn_channeldefinition\[@msdyn_channeldefinitionid='[0-9a-f-]+'\]\/msdyn_channeltype>: must be Custom or SMS, found Pager$/,
      );
      assert.match(
        lines[2]!,
        /^ {2}- Other\/Customizations\.xml:\d+: <.*msdyn_channelmessagepart\[msdyn_name='text'\]\/msdyn_type>: must be 192350000 \(plaintext\)/,
      );
      assert.deepEqual(io.stdout, []);
    } finally {
      copy.remove();
    }
  });

  it('pack refuses a broken folder with the problems and exit 1, and writes nothing', async () => {
    const copy = copyFixture('outbound');
    try {
      copy.edit('Other/Solution.xml', '</ImportExportXml>', '');
      const io = recordingIo({}, dir);
      assert.equal(await runCli(['channel', 'pack', copy.dir, '--out', 'x.zip'], io), 1);
      assert.match(io.stderr.join('\n'), /Other\/Solution\.xml:\d+: not well-formed XML/);
      assert.throws(() => readFileSync(path.join(dir, 'x.zip')), /ENOENT/);
    } finally {
      copy.remove();
    }
  });

  it('check with --channels: names the file in what disagrees; a channels file with problems or a missing source is exit 2', async () => {
    writeFileSync(
      path.join(dir, 'channels.json'),
      JSON.stringify({
        channels: [
          {
            name: 'realtime-sms',
            channelDefinitionId: '11111111-2222-4333-8444-555555555555',
            provider: { type: 'contract', url: 'https://example.test/m', signingSecret: 'env:SECRET' },
            sender: '+4915100000001',
            rateLimit: { messages: 10 },
          },
        ],
      }),
    );
    const io = recordingIo({}, dir);
    assert.equal(await runCli(['channel', 'check', fixtureDir('realtime'), '--channels', 'channels.json'], io), 1);
    assert.match(
      io.stderr.join('\n'),
      /no channel of .*channels\.json has channelDefinitionId 9d3e6b1c-2a4f-5c8d-9e0a-1b2c3d4e5f6a/,
    );

    writeFileSync(path.join(dir, 'bad.json'), JSON.stringify({ channels: [{ name: 'x' }] }));
    const bad = recordingIo({}, dir);
    assert.equal(await runCli(['channel', 'check', fixtureDir('realtime'), '--channels', 'bad.json'], bad), 2);
    assert.match(bad.stderr.join('\n'), /the channels file has \d+ problems?:/);

    const missing = recordingIo({}, dir);
    assert.equal(await runCli(['channel', 'check', 'nothing.zip'], missing), 2);
    assert.deepEqual(missing.stderr, ['nothing.zip: no such folder or file']);
  });
});
