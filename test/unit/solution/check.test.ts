import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { unzipSync, zipSync } from 'fflate';
import { loadChannels } from '../../../src/channels/index.js';
import { configPath } from '../../../src/paths.js';
import { checkSolution, packSolution, type SolutionProblem } from '../../../src/solution/index.js';
import { copyFixture, fixtureDir, lineOf, type SolutionFixture } from '../../helpers/solutions.js';

const TILE_FILE = 'WebResources/sample_SpecialTileCustomerJourneyDesignerTileConfig.xml';
const CUSTOMIZATIONS = 'Other/Customizations.xml';
const DEFINITION_ID = '9d3e6b1c-2a4f-5c8d-9e0a-1b2c3d4e5f6a';
/** Where a folder's file is in the packed zip, where the two differ. */
const ZIP_ENTRY: Record<string, string> = {
  [CUSTOMIZATIONS]: 'customizations.xml',
  [TILE_FILE]:
    'WebResources/sample_SpecialTileCustomerJourneyDesignerTileConfigxml0b6f1a52-2c1d-4f4e-9d0a-1c2b3d4e5f60',
};

/** Repacks a zip with one entry's text changed (for what a folder cannot be packed with). */
function editZip(zip: Uint8Array, entry: string, edit: (text: string) => string): Uint8Array {
  const files = unzipSync(zip);
  assert.ok(files[entry], `${entry} is in the zip`);
  const next = edit(new TextDecoder().decode(files[entry]));
  return zipSync({ ...files, [entry]: new TextEncoder().encode(next) });
}

function summary(problems: readonly SolutionProblem[]): string {
  return problems.map((p) => `${p.file}:${p.line ?? '-'} <${p.element ?? ''}> ${p.message}`).join('\n');
}

describe('channel check (checkSolution)', () => {
  for (const fixture of ['outbound', 'realtime'] as const) {
    it(`finds nothing wrong with the ${fixture} fixture, as a folder and as its zip`, async () => {
      assert.deepEqual(await checkSolution({ dir: fixtureDir(fixture) }), []);
      const zip = await packSolution(fixtureDir(fixture));
      assert.deepEqual(await checkSolution({ zip, name: `${fixture}.zip` }), []);
    });
  }

  /**
   * The table of broken solutions: each refused with its file and element. `line` is the needle whose line the
   * problem must give, in the broken file.
   */
  const broken: Array<{
    name: string;
    fixture: SolutionFixture;
    file: string;
    from: string | RegExp;
    to: string;
    element: string;
    message: RegExp;
    line: string;
  }> = [
    {
      name: 'a tile without its ComplianceField',
      fixture: 'outbound',
      file: TILE_FILE,
      from: /\s*<ComplianceField>donotphone<\/ComplianceField>/,
      to: '',
      element: 'LibraryTile/ChannelProperties/ComplianceField',
      message: /is required: the contact's boolean column/,
      line: '<ChannelProperties>',
    },
    {
      name: 'an upper-case GUID in a channel definition',
      fixture: 'realtime',
      file: CUSTOMIZATIONS,
      from: '<msdyn_channeldefinitionexternalformid>6e2f8a41-93b7-4c1d-a5e6-7f8091a2b3c4',
      to: '<msdyn_channeldefinitionexternalformid>6E2F8A41-93B7-4C1D-A5E6-7F8091A2B3C4',
      element: 'ImportExportXml/msdyn_channeldefinitions/msdyn_channeldefinition/msdyn_channeldefinitionexternalformid',
      message: /GUIDs in customization files must be lowercase, found 6E2F8A41-93B7-4C1D-A5E6-7F8091A2B3C4/,
      line: '<msdyn_channeldefinitionexternalformid>',
    },
    {
      name: 'two custom response types',
      fixture: 'outbound',
      file: TILE_FILE,
      from: '<ResponseType id="opened">',
      to: '<ResponseType id="opened" custom="True">',
      element: 'LibraryTile/ResponseTypes',
      message: /only one response type may have custom="True", found 2: opened, keyword/,
      line: '<ResponseTypes>',
    },
    {
      name: 'an SMS channel with a second message part',
      fixture: 'realtime',
      file: CUSTOMIZATIONS,
      from: '  </msdyn_channelmessageparts>',
      to: `    <msdyn_channelmessagepart msdyn_channelmessagepartid="3a5b7c9d-2e4f-4a6b-8c0d-1e2f3a4b5c6d">
      <msdyn_channeldefinitionid>
        <msdyn_channeldefinitionid>${DEFINITION_ID}</msdyn_channeldefinitionid>
      </msdyn_channeldefinitionid>
      <msdyn_name>title</msdyn_name>
      <msdyn_type>192350000</msdyn_type>
    </msdyn_channelmessagepart>
  </msdyn_channelmessageparts>`,
      element: 'ImportExportXml/msdyn_channelmessageparts/msdyn_channelmessagepart',
      message: /an SMS channel definition has exactly one message part, named 'text'.*has 2: text, title/,
      line: 'msdyn_channelmessagepartid="3a5b7c9d',
    },
    {
      name: 'a channel definition naming an outbound API that is not in the solution',
      fixture: 'realtime',
      file: CUSTOMIZATIONS,
      from: '/sample_RealtimeSmsOutbound<',
      to: '/sample_SomeOtherApi<',
      element: `ImportExportXml/msdyn_channeldefinitions/msdyn_channeldefinition[@msdyn_channeldefinitionid='${DEFINITION_ID}']/msdyn_outboundendpointurltemplate`,
      message:
        /names custom API 'sample_SomeOtherApi', which is not in the solution \(customapis\/sample_SomeOtherApi\/customapi.xml\)/,
      line: '<msdyn_outboundendpointurltemplate>',
    },
    {
      name: 'malformed XML',
      fixture: 'realtime',
      file: 'customapis/sample_RealtimeSmsOutbound/customapi.xml',
      from: '<isfunction>0</isfunction>',
      to: '<isfunction>0</isfunktion>',
      element: '',
      message: /not well-formed XML \(line \d+, column \d+\): Expected closing tag 'isfunction'/,
      line: '<isfunction>',
    },
  ];

  for (const c of broken) {
    it(`refuses ${c.name}, naming ${c.file} and the element`, async () => {
      const copy = copyFixture(c.fixture);
      try {
        copy.edit(c.file, c.from, c.to);
        const problems = await checkSolution({ dir: copy.dir });
        assert.equal(problems.length, 1, summary(problems));
        const [p] = problems;
        assert.equal(p!.file, c.file);
        assert.equal(p!.element ?? '', c.element);
        assert.match(p!.message, c.message);
        assert.equal(p!.line, lineOf(readFileSync(path.join(copy.dir, c.file), 'utf8'), c.line), summary(problems));
      } finally {
        copy.remove();
      }
    });

    const entry = ZIP_ENTRY[c.file] ?? c.file;
    it(`refuses ${c.name} in a zip, naming its entry ${entry} and the element`, async () => {
      let edited = '';
      const zip = editZip(await packSolution(fixtureDir(c.fixture)), entry, (t) => {
        edited = t.replace(c.from, c.to);
        assert.notEqual(edited, t, 'the edit applies to the packed entry');
        return edited;
      });
      const problems = await checkSolution({ zip, name: 'broken.zip' });
      assert.equal(problems.length, 1, summary(problems));
      const [p] = problems;
      assert.deepEqual(
        [p!.file, p!.element ?? '', p!.line],
        [entry, c.element, lineOf(edited, c.line)],
        summary(problems),
      );
      assert.match(p!.message, c.message);
    });
  }

  it("names the zip's own entries and lines when checking a zip", async () => {
    const zip = editZip(await packSolution(fixtureDir('realtime')), 'customizations.xml', (t) =>
      t.replace(
        `msdyn_channeldefinitionid="${DEFINITION_ID}"`,
        `msdyn_channeldefinitionid="${DEFINITION_ID.toUpperCase()}"`,
      ),
    );
    const problems = await checkSolution({ zip, name: 'sms.zip' });
    const text = new TextDecoder().decode(unzipSync(zip)['customizations.xml']);
    assert.deepEqual(
      problems.map((p) => [p.file, p.line, p.element]),
      [
        [
          'customizations.xml',
          lineOf(text, '<msdyn_channeldefinition '),
          'ImportExportXml/msdyn_channeldefinitions/msdyn_channeldefinition',
        ],
      ],
      summary(problems),
    );
  });

  it('refuses a zip without the three root files, and a file that is not a zip', async () => {
    const files = unzipSync(await packSolution(fixtureDir('outbound')));
    delete files['customizations.xml'];
    assert.deepEqual(
      (await checkSolution({ zip: zipSync(files), name: 'a.zip' })).map((p) => [p.file, p.message]),
      [
        [
          'a.zip',
          'a solution zip must contain solution.xml, customizations.xml and [Content_Types].xml at its root; missing: customizations.xml',
        ],
      ],
    );
    const notZip = await checkSolution({ zip: new TextEncoder().encode('hello'), name: 'b.zip' });
    assert.equal(notZip.length, 1);
    assert.match(notZip[0]!.message, /^not a zip file/);
  });

  it('refuses an entry without a content type', async () => {
    const zip = editZip(await packSolution(fixtureDir('outbound')), '[Content_Types].xml', (t) =>
      t.replace(/<Override PartName="\/WebResources\/[^"]*css[^"]*" ContentType="application\/octet-stream" \/>/, ''),
    );
    const problems = await checkSolution({ zip, name: 'a.zip' });
    assert.equal(problems.length, 1, summary(problems));
    assert.equal(problems[0]!.file, '[Content_Types].xml');
    assert.match(
      problems[0]!.message,
      /declares no content type for WebResources\/sample_SpecialTileCustomerJourneyDesignerTileConfigcss/,
    );
  });

  it('refuses an outbound custom API that takes no asynchronous step, and isoptional on a response property', async () => {
    const copy = copyFixture('realtime');
    const api = 'customapis/sample_RealtimeSmsOutbound';
    try {
      copy.edit(`${api}/customapi.xml`, '<allowedcustomprocessingsteptype>2<', '<allowedcustomprocessingsteptype>0<');
      copy.edit(
        `${api}/customapiresponseproperties/response/customapiresponseproperty.xml`,
        '<logicalentityname />',
        '<isoptional>0</isoptional><logicalentityname />',
      );
      const problems = await checkSolution({ dir: copy.dir });
      assert.deepEqual(
        problems.map((p) => [p.file, p.element]),
        [
          [
            `${api}/customapiresponseproperties/response/customapiresponseproperty.xml`,
            'customapiresponseproperty/isoptional',
          ],
          [`${api}/customapi.xml`, 'customapi/allowedcustomprocessingsteptype'],
        ],
        summary(problems),
      );
      assert.match(problems[1]!.message, /must allow asynchronous custom processing steps/);
    } finally {
      copy.remove();
    }
  });

  it("refuses a tile whose lookup view or entity set is not the message table's", async () => {
    const copy = copyFixture('outbound');
    try {
      copy.edit(
        TILE_FILE,
        '<LookupViewId>18e2baab-5b6c-5f28-b5fb-e730783fef4f',
        '<LookupViewId>00000000-7f3e-4a8d-9a53-2d6c0b5e8f11',
      );
      copy.edit(TILE_FILE, '<EntitySetName>sample_specialmessages<', '<EntitySetName>sample_specials<');
      const problems = await checkSolution({ dir: copy.dir });
      assert.deepEqual(
        problems.map((p) => [p.file, p.element]),
        [
          [TILE_FILE, 'LibraryTile/ChannelProperties/EntitySetName'],
          [TILE_FILE, 'LibraryTile/ChannelProperties/LookupViewId'],
        ],
        summary(problems),
      );
    } finally {
      copy.remove();
    }
  });

  it("accepts upper-case GUIDs in a form's layout (control class ids, as exports write them) and a web resource's FileName, not in a form id", async () => {
    const copy = copyFixture('outbound');
    const form = 'Entities/sample_specialmessage/FormXml/main/{3c0a5d0e-6f7d-4d7e-8a43-0e1f2a3b4c5d}.xml';
    try {
      copy.edit(
        form,
        /classid="\{4273edbd-ac1d-40d3-9fb2-095c621b552d\}"/g,
        'classid="{4273EDBD-AC1D-40D3-9FB2-095C621B552D}"',
      );
      assert.deepEqual(await checkSolution({ dir: copy.dir }), []);
      copy.edit(
        `${TILE_FILE}.data.xml`,
        'Configxml0b6f1a52-2c1d-4f4e-9d0a-1c2b3d4e5f60',
        'Configxml0B6F1A52-2C1D-4F4E-9D0A-1C2B3D4E5F60',
      );
      assert.deepEqual(await checkSolution({ dir: copy.dir }), [], 'a FileName is a path in the zip, not an id');
      copy.edit(form, '<formid>{3c0a5d0e-6f7d', '<formid>{3C0A5D0E-6f7d');
      const problems = await checkSolution({ dir: copy.dir });
      assert.deepEqual(
        problems.map((p) => [p.file, p.element]),
        [[form, 'ImportExportXml/Entities/Entity/FormXml/forms/systemform/formid']],
        summary(problems),
      );
    } finally {
      copy.remove();
    }
  });

  it('refuses a DOCTYPE, and a zip whose entries declare more than the limit, before reading them', async () => {
    const zip = editZip(await packSolution(fixtureDir('outbound')), 'solution.xml', (t) =>
      t.replace('<ImportExportXml', '<!DOCTYPE x [<!ENTITY a "aaaa">]>\r\n<ImportExportXml'),
    );
    assert.deepEqual(
      (await checkSolution({ zip, name: 'a.zip' })).map((p) => [p.file, p.line, p.message]),
      [['solution.xml', 1, 'a DOCTYPE is not allowed in a solution file']],
    );
    const fine = await packSolution(fixtureDir('outbound'));
    const declared = Object.values(unzipSync(fine)).reduce((n, b) => n + b.byteLength, 0);
    assert.deepEqual(await checkSolution({ zip: fine, name: 'b.zip' }, { maxExpandedBytes: declared }), []);
    assert.deepEqual(
      (await checkSolution({ zip: fine, name: 'b.zip' }, { maxExpandedBytes: declared - 1 })).map((p) => p.message),
      [`its entries declare more than ${declared - 1} bytes: refused unread`],
    );
  });

  it('refuses a table without its primary name column', async () => {
    const copy = copyFixture('outbound');
    const entity = 'Entities/sample_specialmessage/Entity.xml';
    try {
      copy.edit(entity, '<DisplayMask>PrimaryName|', '<DisplayMask>');
      const problems = await checkSolution({ dir: copy.dir });
      assert.deepEqual(
        problems.map((p) => [p.file, p.line, p.element]),
        [[entity, 2, 'Entity[sample_specialmessage]/EntityInfo/entity/attributes']],
        summary(problems),
      );
      assert.match(problems[0]!.message, /needs exactly one primary name column .*found none/);
    } finally {
      copy.remove();
    }
  });

  describe('with the channels file', () => {
    let dir: string;
    beforeEach(() => {
      dir = mkdtempSync(path.join(tmpdir(), 'relay-check-channels-'));
    });
    afterEach(() => rmSync(dir, { recursive: true, force: true }));

    function channelsFile(
      overrides: { textField?: string; channelDefinitionId?: string } = {},
    ): ReturnType<typeof loadChannels> {
      const file = path.join(dir, 'channels.json');
      writeFileSync(
        file,
        JSON.stringify({
          channels: [
            {
              name: 'sms',
              tile: configPath('tiles', 'sample_SpecialTileCustomerJourneyDesignerTileConfig.xml'),
              provider: { type: 'contract', url: 'https://example.test/messages', signingSecret: 'env:SECRET' },
              sender: '+4915100000001',
              addressField: 'mobilephone',
              textField: overrides.textField ?? 'sample_text',
              channelField: 'sample_channel',
              rateLimit: { messages: 10 },
              failureResponseType: 'failed',
            },
            {
              name: 'realtime-sms',
              channelDefinitionId: overrides.channelDefinitionId ?? DEFINITION_ID,
              provider: { type: 'contract', url: 'https://example.test/messages', signingSecret: 'env:SECRET' },
              sender: '+4915100000001',
              rateLimit: { messages: 10 },
            },
          ],
        }),
      );
      return loadChannels(file, { env: {}, providers: 'none', callbackSecrets: false, messaging: 'none' });
    }

    it('agrees with a channels file that names its tile, columns and channel definition', async () => {
      const channels = channelsFile();
      assert.deepEqual(await checkSolution({ dir: fixtureDir('outbound') }, { channels }), []);
      assert.deepEqual(await checkSolution({ dir: fixtureDir('realtime') }, { channels }), []);
    });

    it('refuses a text column the message table lacks and a channel definition no channel serves', async () => {
      const channels = channelsFile({
        textField: 'sample_body',
        channelDefinitionId: '11111111-2222-4333-8444-555555555555',
      });
      const outbound = await checkSolution({ dir: fixtureDir('outbound') }, { channels });
      assert.deepEqual(
        outbound.map((p) => [p.file, p.element]),
        [['Entities/sample_specialmessage/Entity.xml', 'Entity[sample_specialmessage]/EntityInfo/entity/attributes']],
        summary(outbound),
      );
      assert.match(outbound[0]!.message, /has no column sample_body, channel sms's textField in .*channels\.json/);
      const realtime = await checkSolution({ dir: fixtureDir('realtime') }, { channels });
      assert.deepEqual(
        realtime.map((p) => [p.file, p.message.replace(/ of .*channels\.json/, ' of channels.json')]),
        [[CUSTOMIZATIONS, `no channel of channels.json has channelDefinitionId ${DEFINITION_ID}`]],
      );
    });
  });
});
