import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { readSeedTile, SeedTileError } from '../../../../src/emulators/dataverse/index.js';
import { configPath } from '../../../../src/paths.js';

const SAMPLE = readFileSync(configPath('tiles/sample_SpecialTileCustomerJourneyDesignerTileConfig.xml'), 'utf8');

describe('Dataverse emulator: its own reading of a tile XML', () => {
  it('reads the sample tile: table, set, compliance field and response types with the custom one', () => {
    const tile = readSeedTile(SAMPLE, 'sample');
    assert.equal(tile.entityType, 'sample_specialmessage');
    assert.equal(tile.entitySetName, 'sample_specialmessages');
    assert.equal(tile.complianceField, 'donotphone');
    assert.ok(tile.responseTypes.length >= 3, JSON.stringify(tile.responseTypes));
    assert.deepEqual(
      tile.responseTypes.filter((t) => t.custom).map((t) => t.id),
      ['keyword'],
    );
    assert.ok(tile.responseTypes.some((t) => t.id === 'sent' && !t.custom));
  });

  const refusals: Array<[string, string, RegExp]> = [
    ['not XML', '<LibraryTile><ChannelProperties>', /^t: the tile is not well-formed XML/],
    ['another document element', '<Tile/>', /^t: the document element must be <LibraryTile>/],
    ['no ChannelProperties', '<LibraryTile/>', /^t: <LibraryTile> has no <ChannelProperties>/],
    [
      'no LookupViewId (the current docs require it)',
      SAMPLE.replace(/<LookupViewId>[^<]*<\/LookupViewId>/, ''),
      /^t: <ChannelProperties> has no <LookupViewId>/,
    ],
    [
      'no ComplianceField',
      SAMPLE.replace(/<ComplianceField>[^<]*<\/ComplianceField>/, ''),
      /^t: <ChannelProperties> has no <ComplianceField>/,
    ],
    [
      'a response type without an English label',
      SAMPLE.replace(/(<ResponseType id="sent"[^>]*>[\s\S]*?)locId="1033"/, '$1locId="1031"'),
      /^t: <ResponseType id="sent"> has no <Label locId="1033">/,
    ],
    [
      'two response types with one id',
      SAMPLE.replace('id="delivered"', 'id="sent"'),
      /^t: two <ResponseType> elements have the id 'sent'/,
    ],
    [
      'two custom response types',
      SAMPLE.replace('id="sent"', 'id="sent" custom="True"'),
      /only one response type may have custom="True"/,
    ],
  ];
  for (const [name, xml, message] of refusals) {
    it(`refuses ${name}`, () => {
      assert.throws(
        () => readSeedTile(xml, 't'),
        (err: unknown) => err instanceof SeedTileError && message.test(err.message),
      );
    });
  }
});
