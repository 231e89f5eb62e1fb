import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { unzipSync } from 'fflate';
import { loadChannels } from '../../../src/channels/index.js';
import {
  checkSolution,
  newChannelSolution,
  packSolution,
  type NewChannelOptions,
} from '../../../src/solution/index.js';

/** What the channels entry's placeholders and `${NAME}` references need to load. */
const ENV = { CALLBACKS_PUBLIC_URL: 'https://relay.example.test', CONTRACT_SIGNING_SECRET: 'whsec_c2VjcmV0' };

describe('channel new → channel pack → channel check', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'relay-new-pack-check-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const cases: Array<Omit<NewChannelOptions, 'out'>> = [
    { name: 'special', contract: 'outbound-marketing', publisherPrefix: 'sample' },
    { name: 'rsms', contract: 'realtime', channelType: 'SMS', inbound: true, deliveryReports: true },
    { name: 'rich', contract: 'realtime', parts: ['text', 'title', 'picture:image?'], deliveryReports: true },
  ];
  for (const options of cases) {
    const what = options.contract === 'realtime' ? `real-time ${options.channelType ?? 'Custom'}` : options.contract;
    it(`${what}: the generated folder and its zip are clean, and agree with the generated channels entry`, async () => {
      const result = await newChannelSolution({ ...options, out: path.join(dir, options.name) });
      const channels = loadChannels(result.entryFile, {
        env: ENV,
        providers: 'none',
        callbackSecrets: false,
        messaging: 'none',
      });
      assert.deepEqual(await checkSolution({ dir: result.dir }, { channels }), []);
      const zip = await packSolution(result.dir);
      assert.deepEqual(await checkSolution({ zip, name: `${options.name}.zip` }, { channels }), []);

      // Every generated file made it into the zip: merged into customizations.xml, or as an entry of its own.
      const entries = Object.keys(unzipSync(zip));
      assert.deepEqual(entries.slice(0, 3), ['[Content_Types].xml', 'solution.xml', 'customizations.xml']);
      const customizations = new TextDecoder().decode(unzipSync(zip)['customizations.xml']);
      for (const file of result.files) {
        if (file.startsWith('customapis/')) assert.ok(entries.includes(file), file);
        const form =
          /\/FormXml\/[^/]+\/\{([0-9a-f-]+)\}\.xml$/.exec(file) ?? /\/SavedQueries\/\{([0-9a-f-]+)\}\.xml$/.exec(file);
        if (form) assert.ok(customizations.includes(`{${form[1]}}`), `${file} is merged`);
      }
      if (result.channelDefinitionId !== undefined) {
        assert.ok(customizations.includes(`msdyn_channeldefinitionid="${result.channelDefinitionId}"`));
      }
    });
  }

  it('a generated SMS solution given a second message part is refused', async () => {
    const result = await newChannelSolution({
      name: 'rsms',
      contract: 'realtime',
      channelType: 'SMS',
      out: path.join(dir, 'rsms'),
    });
    const { readFileSync, writeFileSync } = await import('node:fs');
    const file = path.join(result.dir, 'Other/Customizations.xml');
    const xml = readFileSync(file, 'utf8');
    const part = /<msdyn_channelmessagepart [\s\S]*?<\/msdyn_channelmessagepart>/.exec(xml)![0];
    const second = part
      .replace(
        /msdyn_channelmessagepartid="[^"]+"/,
        'msdyn_channelmessagepartid="0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9"',
      )
      .replace(/<msdyn_name>text<\/msdyn_name>/, '<msdyn_name>title</msdyn_name>');
    writeFileSync(file, xml.replace(part, `${part}\n    ${second}`));
    const problems = await checkSolution({ dir: result.dir });
    assert.equal(problems.length, 1, JSON.stringify(problems));
    assert.equal(problems[0]!.file, 'Other/Customizations.xml');
    assert.match(problems[0]!.message, /exactly one message part, named 'text'/);
  });
});
