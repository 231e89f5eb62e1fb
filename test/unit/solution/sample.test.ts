/**
 * The sample's committed artefacts are what the generator and the packer produce today, so that the channels file,
 * the seed and the solutions agree by construction: the packed solutions the Dataverse emulator's seed imports
 * (config/solutions/special.zip, config/solutions/realtime-sms.zip), the tile the channels file names (config/tiles/)
 * and the real-time channel's channelDefinitionId. When the generator changes, regenerate them with the commands
 * below and commit the result.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { channelNewCommand, DEMO_SOLUTIONS } from '../../../src/demo/index.js';
import { configPath } from '../../../src/paths.js';
import { newChannelSolution, packSolution } from '../../../src/solution/index.js';

const byName = (name: string): (typeof DEMO_SOLUTIONS)[number] => {
  const spec = DEMO_SOLUTIONS.find((s) => s.name === name);
  assert.ok(spec, `DEMO_SOLUTIONS has ${name}`);
  return spec;
};
const DEMO_SOLUTION = byName('special');
const REALTIME_SOLUTION = byName('realtime-sms');
const REGENERATE = `regenerate the sample: npm run cli -- channel new special --contract outbound-marketing --publisher-prefix sample --out /tmp/special && npm run cli -- channel pack /tmp/special --out config/solutions/special.zip && cp /tmp/special/WebResources/sample_SpecialTileCustomerJourneyDesignerTileConfig.xml config/tiles/`;
const REGENERATE_REALTIME = `regenerate the real-time sample: npm run cli -- ${channelNewCommand(REALTIME_SOLUTION)} --out /tmp/realtime-sms && npm run cli -- channel pack /tmp/realtime-sms --out config/solutions/realtime-sms.zip, and set config/channels.json's realtime-sms channelDefinitionId to the id it prints`;

describe('the sample channel solution', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'sample-solution-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("is what channel new and channel pack produce: the seed's zip and the channels file's tile, byte for byte", async () => {
    const generated = await newChannelSolution({ ...DEMO_SOLUTION, out: path.join(dir, 'special') });
    const zip = await packSolution(generated.dir);
    assert.ok(
      Buffer.from(zip).equals(readFileSync(configPath('solutions', 'special.zip'))),
      `config/solutions/special.zip differs from the generated solution: ${REGENERATE}`,
    );
    const tile = String(generated.tileFile);
    assert.equal(path.basename(tile), 'sample_SpecialTileCustomerJourneyDesignerTileConfig.xml');
    assert.equal(
      readFileSync(configPath('tiles', path.basename(tile)), 'utf8'),
      readFileSync(tile, 'utf8'),
      `config/tiles/ differs from the generated tile: ${REGENERATE}`,
    );
  });

  it('is what the seed imports and what the channels file names, with the generated entry for the message columns', async () => {
    const seed = JSON.parse(readFileSync(configPath('dataverse-seed.json'), 'utf8')) as Record<string, unknown>;
    assert.deepEqual(seed['solutions'], ['solutions/special.zip', 'solutions/realtime-sms.zip']);
    assert.equal(seed['tables'], undefined, 'the message table comes from the solution, not the seed');
    assert.equal(seed['tiles'], undefined, 'the tile comes from the solution, not the seed');
    const generated = await newChannelSolution({
      ...DEMO_SOLUTION,
      out: path.join(dir, 'entry'),
      channelsFile: configPath('channels.json'),
    });
    const channels = (
      JSON.parse(readFileSync(configPath('channels.json'), 'utf8')) as { channels: Array<Record<string, unknown>> }
    ).channels.filter((c) => c['tile'] !== undefined);
    assert.deepEqual(
      channels.map((c) => c['name']),
      ['sms', 'telegram'],
    );
    for (const c of channels) {
      // The committed channels file names the committed tile; the generated entry names the one in its folder.
      assert.equal(c['tile'], 'tiles/sample_SpecialTileCustomerJourneyDesignerTileConfig.xml');
      for (const key of ['textField', 'channelField', 'failureResponseType'])
        assert.equal(c[key], generated.channelsEntry[key], `${String(c['name'])}.${key}`);
    }
  });

  it('real-time: config/solutions/realtime-sms.zip is what channel new and channel pack produce, and the channels file names its channel definition', async () => {
    const generated = await newChannelSolution({ ...REALTIME_SOLUTION, out: path.join(dir, 'realtime-sms') });
    const zip = await packSolution(generated.dir);
    assert.ok(
      Buffer.from(zip).equals(readFileSync(configPath('solutions', 'realtime-sms.zip'))),
      `config/solutions/realtime-sms.zip differs from the generated solution: ${REGENERATE_REALTIME}`,
    );
    const channels = (
      JSON.parse(readFileSync(configPath('channels.json'), 'utf8')) as { channels: Array<Record<string, unknown>> }
    ).channels.filter((c) => c['channelDefinitionId'] !== undefined);
    assert.deepEqual(
      channels.map((c) => [c['name'], c['channelDefinitionId']]),
      [['realtime-sms', generated.channelDefinitionId]],
      REGENERATE_REALTIME,
    );
    // The seed declares no channel definition, part or Custom API of its own: they all come from the solution.
    const seed = JSON.parse(readFileSync(configPath('dataverse-seed.json'), 'utf8')) as {
      rows: Record<string, unknown>;
    };
    for (const set of ['msdyn_channeldefinitions', 'msdyn_channelmessageparts', 'customapis'])
      assert.equal(seed.rows[set], undefined, `the seed's rows.${set}`);
  });
});
