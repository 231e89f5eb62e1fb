import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { readTile, TileError } from '../../../src/channels/tile.js';
import { configPath } from '../../../src/paths.js';

const VIEW = '<LookupViewId>{00000000-0000-0000-00AA-000010001003}</LookupViewId>';
function tile(
  body: string,
  props = `<EntityType>t_msg</EntityType><EntitySetName>t_msgs</EntitySetName><ComplianceField>donotphone</ComplianceField>${VIEW}`,
): string {
  return `<?xml version="1.0"?><LibraryTile><ChannelProperties>${props}</ChannelProperties>${body}</LibraryTile>`;
}
const rt = (id: string, extra = ''): string =>
  `<ResponseType id="${id}"${extra}><Labels><Label locId="1033">${id}</Label></Labels></ResponseType>`;

describe('tile XML reader', () => {
  it('reads the sample tile in config/tiles', () => {
    const t = readTile(
      readFileSync(configPath('tiles', 'sample_SpecialTileCustomerJourneyDesignerTileConfig.xml'), 'utf8'),
    );
    assert.equal(t.entityType, 'sample_specialmessage');
    assert.equal(t.entitySetName, 'sample_specialmessages');
    assert.equal(t.complianceField, 'donotphone');
    assert.equal(t.titleFieldName, 'sample_name');
    assert.equal(t.lookupViewId, '18e2baab-5b6c-5f28-b5fb-e730783fef4f');
    assert.deepEqual(
      t.responseTypes.map((r) => [r.id, r.custom]),
      [
        ['sent', false],
        ['delivered', false],
        ['failed', false],
        ['opened', false],
        ['keyword', true],
      ],
    );
    assert.equal(t.customResponseType, 'keyword');
    assert.equal(t.responseTypes[0]!.labels['1033'], 'Sent');
  });

  const good: Array<[string, string, (t: ReturnType<typeof readTile>) => void]> = [
    ['no ResponseTypes', '', (t) => assert.deepEqual(t.responseTypes, [])],
    [
      'custom="true" in lower case',
      `<ResponseTypes>${rt('kw', ' custom="true"')}</ResponseTypes>`,
      (t) => assert.equal(t.customResponseType, 'kw'),
    ],
    [
      'a single ResponseType',
      `<ResponseTypes>${rt('sent')}</ResponseTypes>`,
      (t) =>
        assert.deepEqual(
          t.responseTypes.map((r) => r.id),
          ['sent'],
        ),
    ],
    ['a LookupViewId in braces', '', (t) => assert.equal(t.lookupViewId, '00000000-0000-0000-00aa-000010001003')],
  ];
  for (const [name, body, check] of good) it(`reads a tile with ${name}`, () => check(readTile(tile(body))));

  const bad: Array<[string, string, RegExp]> = [
    ['broken XML', '<LibraryTile><ChannelProperties>', /not well-formed|ChannelProperties/],
    ['another root', '<Tile/>', /root element must be <LibraryTile>/],
    ['no ChannelProperties', '<LibraryTile></LibraryTile>', /<ChannelProperties> is mandatory/],
    [
      'no ComplianceField',
      tile('', '<EntityType>a</EntityType><EntitySetName>b</EntitySetName>'),
      /needs <ComplianceField>/,
    ],
    [
      'no LookupViewId',
      tile('', '<EntityType>a</EntityType><EntitySetName>b</EntitySetName><ComplianceField>c</ComplianceField>'),
      /^x\.xml: <ChannelProperties> needs <LookupViewId> \(the current Microsoft docs of the tile XML require it/,
    ],
    [
      'a LookupViewId that is not a view id',
      tile(
        '',
        '<EntityType>a</EntityType><EntitySetName>b</EntitySetName><ComplianceField>c</ComplianceField><LookupViewId>main</LookupViewId>',
      ),
      /<LookupViewId> must be a view id \(a GUID\), found 'main'/,
    ],
    [
      'two custom response types',
      tile(`<ResponseTypes>${rt('a', ' custom="True"')}${rt('b', ' custom="True"')}</ResponseTypes>`),
      /only one response type may have custom="True"/,
    ],
    ['a duplicate id', tile(`<ResponseTypes>${rt('a')}${rt('a')}</ResponseTypes>`), /'a' is declared twice/],
    [
      'no 1033 label',
      tile(
        '<ResponseTypes><ResponseType id="a"><Labels><Label locId="1031">x</Label></Labels></ResponseType></ResponseTypes>',
      ),
      /locId="1033"/,
    ],
    [
      'a ResponseType without id',
      tile(
        '<ResponseTypes><ResponseType><Labels><Label locId="1033">x</Label></Labels></ResponseType></ResponseTypes>',
      ),
      /needs an id/,
    ],
  ];
  for (const [name, xml, message] of bad) {
    it(`refuses ${name}`, () =>
      assert.throws(
        () => readTile(xml, 'x.xml'),
        (err: unknown) => err instanceof TileError && message.test(err.message),
      ));
  }
});
