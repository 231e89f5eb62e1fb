import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { loadChannels, readTile } from '../../../src/channels/index.js';
import { runCli } from '../../../src/cli/program.js';
import { isSolutionError, type SolutionError } from '../../../src/errors.js';
import { readSeedTile } from '../../../src/emulators/dataverse/index.js';
import { configPath } from '../../../src/paths.js';
import { newChannelSolution, type NewChannelOptions, type NewChannelResult } from '../../../src/solution/index.js';
import { recordingIo } from '../../helpers/cli.js';

type Node = Record<string, unknown>;
const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@',
  parseTagValue: false,
  isArray: (name) =>
    ['attribute', 'savedquery', 'RootComponent', 'msdyn_channelmessagepart', 'row', 'EntityRelationship'].includes(
      name,
    ),
});
const GUID = /[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}/g;

describe('solution: channel new', () => {
  let root: string;
  beforeEach(() => {
    root = mkdtempSync(path.join(os.tmpdir(), 'solution-new-'));
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  const generate = (options: Omit<NewChannelOptions, 'out'> & { out?: string }): Promise<NewChannelResult> =>
    newChannelSolution({ out: path.join(root, options.name), ...options });
  const read = (r: NewChannelResult, file: string): string => readFileSync(path.join(r.dir, file), 'utf8');
  const xml = (r: NewChannelResult, file: string): Node => parser.parse(read(r, file)) as Node;
  const refused = async (options: Omit<NewChannelOptions, 'out'> & { out?: string }): Promise<SolutionError> => {
    try {
      await generate(options);
    } catch (err) {
      assert.ok(isSolutionError(err), `a SolutionError, got ${String(err)}`);
      return err;
    }
    assert.fail('expected a refusal');
  };

  function assertWellFormedLowercase(r: NewChannelResult): void {
    for (const file of r.files) {
      const text = read(r, file);
      if (file.endsWith('.xml')) assert.equal(XMLValidator.validate(text), true, `${file} is well-formed XML`);
      for (const id of text.match(GUID) ?? []) assert.equal(id, id.toLowerCase(), `${file}: ${id} is lowercase`);
      for (const id of file.match(GUID) ?? []) assert.equal(id, id.toLowerCase(), `${file} is named in lowercase`);
    }
  }

  describe('outbound marketing', () => {
    it("gives the sample's names: message table, columns, tile web resource with the sample tile's content", async () => {
      const r = await generate({ name: 'special', contract: 'outbound-marketing', publisherPrefix: 'sample' });
      assertWellFormedLowercase(r);
      const tileFile = 'WebResources/sample_SpecialTileCustomerJourneyDesignerTileConfig.xml';
      assert.ok(r.files.includes(tileFile));
      const tile = readTile(read(r, tileFile), tileFile);
      const sample = readTile(
        readFileSync(configPath('tiles', 'sample_SpecialTileCustomerJourneyDesignerTileConfig.xml'), 'utf8'),
      );
      const { lookupViewId, ...rest } = tile;
      const { lookupViewId: _sampleView, ...sampleRest } = sample;
      assert.deepEqual(rest, sampleRest);
      assert.equal(tile.entityType, 'sample_specialmessage');
      assert.deepEqual(
        tile.responseTypes.map((t) => [t.id, t.custom]),
        [
          ['sent', false],
          ['delivered', false],
          ['failed', false],
          ['opened', false],
          ['keyword', true],
        ],
      );
      // The Dataverse emulator reads tiles with its own parser: it takes the generated one too.
      const seen = readSeedTile(read(r, tileFile), tileFile);
      assert.equal(seen.entityType, 'sample_specialmessage');
      assert.deepEqual(
        seen.responseTypes.filter((t) => t.custom).map((t) => t.id),
        ['keyword'],
      );
      const definition = (xml(r, tileFile)['LibraryTile'] as Node)['Definition'] as Node;
      assert.equal(definition['@icon'], 'sample_SpecialTile');
      assert.equal(definition['@fontFamily'], 'sample_SpecialTileSymbolFont');
      assert.equal(definition['@cssFileName'], 'sample_SpecialTileCustomerJourneyDesignerTileConfig.css');
      assert.ok(r.files.includes(`WebResources/${String(definition['@cssFileName'])}`), 'the CSS the tile names');

      // The lookup view the tile names is the message table's view of query type 64.
      const views = r.files.filter((f) => f.startsWith('Entities/sample_specialmessage/SavedQueries/'));
      const lookup = views
        .map((f) => (xml(r, f)['savedqueries'] as Node)['savedquery'] as Node[])
        .flat()
        .find((q) => q['querytype'] === '64');
      assert.equal(lookup?.['savedqueryid'], `{${lookupViewId}}`);

      const entity = ((xml(r, 'Entities/sample_specialmessage/Entity.xml')['Entity'] as Node)['EntityInfo'] as Node)[
        'entity'
      ] as Node;
      assert.equal(entity['EntitySetName'], 'sample_specialmessages');
      const columns = Object.fromEntries(
        ((entity['attributes'] as Node)['attribute'] as Node[]).map((a) => [
          a['LogicalName'],
          [a['Type'], a['MaxLength']],
        ]),
      );
      assert.deepEqual(columns, {
        sample_specialmessageid: ['primarykey', undefined],
        sample_name: ['nvarchar', '100'],
        sample_text: ['ntext', '4000'],
        sample_channel: ['nvarchar', '50'],
        statecode: ['state', undefined],
        statuscode: ['status', undefined],
      });
      const form = r.files.filter((f) => f.startsWith('Entities/sample_specialmessage/FormXml/main/'));
      assert.equal(form.length, 1);
      assert.deepEqual(
        [...read(r, form[0]!).matchAll(/datafieldname="([^"]+)"/g)].map((m) => m[1]),
        ['sample_name', 'sample_text', 'sample_channel'],
      );

      const types = Object.fromEntries(
        r.files
          .filter((f) => f.endsWith('.data.xml'))
          .map((f) => {
            const w = xml(r, f)['WebResource'] as Node;
            return [w['Name'], w['WebResourceType']];
          }),
      );
      assert.deepEqual(types, {
        'sample_SpecialTileCustomerJourneyDesignerTileConfig.xml': '4',
        'sample_SpecialTileCustomerJourneyDesignerTileConfig.css': '2',
        'sample_SpecialTileConfiguration.html': '1',
        'sample_SpecialTileIcon.svg': '11',
      });
      assert.match(
        read(r, 'WebResources/sample_SpecialTileIcon.svg'),
        /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/,
      );
      assert.match(read(r, 'WebResources/sample_SpecialTileConfiguration.html'), /<code>sample_specialmessage<\/code>/);

      const manifest = (xml(r, 'Other/Solution.xml')['ImportExportXml'] as Node)['SolutionManifest'] as Node;
      assert.equal(manifest['UniqueName'], r.uniqueName);
      assert.equal((manifest['Publisher'] as Node)['CustomizationPrefix'], 'sample');
      assert.deepEqual(
        ((manifest['RootComponents'] as Node)['RootComponent'] as Node[]).map(
          (c) => `${String(c['@type'])}:${String(c['@schemaName'])}`,
        ),
        [
          '1:sample_specialmessage',
          '61:sample_SpecialTileConfiguration.html',
          '61:sample_SpecialTileCustomerJourneyDesignerTileConfig.css',
          '61:sample_SpecialTileCustomerJourneyDesignerTileConfig.xml',
          '61:sample_SpecialTileIcon.svg',
        ],
      );
      assert.equal(r.channelDefinitionId, undefined);
    });

    it('the folder holds the solution only; the entry is a channels file next to it', async () => {
      const r = await generate({ name: 'special', contract: 'outbound-marketing' });
      const top = new Set(r.files.map((f) => f.split('/')[0]));
      assert.deepEqual([...top].sort(), ['Entities', 'Other', 'WebResources']);
      assert.equal(r.entryFile, path.join(root, 'special.channels.json'));
      assert.equal(
        r.tileFile,
        path.join(
          r.dir,
          'WebResources',
          'sample_SpecialTileCustomerJourneyDesignerTileConfig.xml'.replace('sample', 'relay'),
        ),
      );
      assert.equal(path.resolve(root, String(r.channelsEntry['tile'])), r.tileFile);
      const written = JSON.parse(readFileSync(r.entryFile, 'utf8')) as { channels: unknown[] };
      assert.deepEqual(written.channels, [r.channelsEntry]);
      const elsewhere = await generate({
        name: 'other',
        contract: 'realtime',
        entryFile: path.join(root, 'cfg', 'e.json'),
      });
      assert.equal(elsewhere.entryFile, path.join(root, 'cfg', 'e.json'));
      assert.ok(existsSync(elsewhere.entryFile));
    });

    it('the entry loads through the relay’s channels loader, its tile read from the solution folder', async () => {
      const r = await generate({
        name: 'special',
        contract: 'outbound-marketing',
        publisherPrefix: 'sample',
        provider: 'twilio',
        sender: '+4915100000009',
        inbound: true,
      });
      assert.deepEqual(r.placeholders, ['provider.accountSid']);
      const registry = loadChannels(r.entryFile, {
        env: { SPECIAL_AUTH_TOKEN: 't', CALLBACKS_PUBLIC_URL: 'https://cb.example' },
      });
      const channel = registry.byName('special');
      assert.equal(channel?.tile?.entityType, 'sample_specialmessage');
      assert.equal(
        channel?.tile?.file,
        path.join(r.dir, 'WebResources', 'sample_SpecialTileCustomerJourneyDesignerTileConfig.xml'),
      );
      assert.equal(channel?.textField, 'sample_text');
      assert.equal(channel?.channelField, 'sample_channel');
      assert.equal(channel?.addressField, 'mobilephone');
      assert.equal(channel?.failureResponseType, 'failed');
      assert.equal(channel?.sender, '+4915100000009');
      assert.equal(channel?.callbacks?.publicBaseUrl, 'https://cb.example');
    });

    it('writes the printed entry’s tile relative to the channels file named', async () => {
      const config = path.join(root, 'config');
      mkdirSync(config);
      const r = await generate({
        name: 'special',
        contract: 'outbound-marketing',
        publisherPrefix: 'sample',
        channelsFile: path.join(config, 'channels.json'),
      });
      assert.equal(
        r.channelsEntry['tile'],
        '../special/WebResources/sample_SpecialTileCustomerJourneyDesignerTileConfig.xml',
      );
      writeFileSync(path.join(config, 'channels.json'), JSON.stringify({ channels: [r.channelsEntry] }));
      const env = { SPECIAL_PROVIDER_URL: 'http://127.0.0.1:1', SPECIAL_SIGNING_SECRET: 'whsec_c2VjcmV0' };
      assert.equal(
        loadChannels(path.join(config, 'channels.json'), { env }).byName('special')?.tile?.entityType,
        'sample_specialmessage',
      );
    });
  });

  describe('real-time', () => {
    it('an SMS channel: definition with every documented field, one text part, instance and account tables, APIs', async () => {
      const r = await generate({
        name: 'realtime-sms',
        contract: 'realtime',
        channelType: 'SMS',
        publisherPrefix: 'sample',
        inbound: true,
        deliveryReports: true,
        sender: '+4915100000001',
      });
      assertWellFormedLowercase(r);
      const custom = xml(r, 'Other/Customizations.xml')['ImportExportXml'] as Node;
      const definition = (custom['msdyn_channeldefinitions'] as Node)['msdyn_channeldefinition'] as Node;
      assert.equal(definition['@msdyn_channeldefinitionid'], r.channelDefinitionId);
      assert.equal(r.channelsEntry['channelDefinitionId'], r.channelDefinitionId);
      const fields = Object.fromEntries(Object.entries(definition).filter(([k]) => !k.startsWith('@')));
      const formOf = (entity: string) =>
        r.files.find((f) => f.startsWith(`Entities/${entity}/FormXml/main/`))?.match(GUID)?.[0];
      assert.deepEqual(fields, {
        msdyn_channeldefinitionaccountexternalentity: 'sample_realtimesmsinstanceaccount',
        msdyn_channeldefinitionaccountexternalformid: formOf('sample_realtimesmsinstanceaccount'),
        msdyn_channeldefinitionexternalentity: 'sample_realtimesmsinstance',
        msdyn_channeldefinitionexternalformid: formOf('sample_realtimesmsinstance'),
        msdyn_channeltype: 'SMS',
        msdyn_description: 'The realtime-sms channel, sent by channel-relay.',
        msdyn_displayname: 'Realtime Sms',
        msdyn_hasdeliveryreceipt: '1',
        msdyn_hasinbound: '1',
        msdyn_outboundendpointurltemplate: '/sample_RealtimeSmsOutboundApi',
        msdyn_specialconsentrequired: '0',
        msdyn_supportsaccount: '1',
        msdyn_supportsattachment: '0',
        msdyn_supportsbinary: '0',
        statecode: '0',
        statuscode: '1',
      });
      const parts = (custom['msdyn_channelmessageparts'] as Node)['msdyn_channelmessagepart'] as Node[];
      assert.equal(parts.length, 1);
      assert.deepEqual(
        { ...parts[0], '@msdyn_channelmessagepartid': undefined },
        {
          '@msdyn_channelmessagepartid': undefined,
          msdyn_channeldefinitionid: { msdyn_channeldefinitionid: r.channelDefinitionId },
          msdyn_description: 'Text (plaintext)',
          msdyn_displayname: 'Text',
          msdyn_isrequired: '1',
          msdyn_maxlength: '1600',
          msdyn_name: 'text',
          msdyn_order: '1',
          msdyn_type: '192350000',
          statecode: '0',
          statuscode: '1',
        },
      );
      // SMS uses the native editor: no message editor table.
      assert.ok(!r.files.some((f) => f.startsWith('Entities/sample_realtimesmsmessage/')));

      for (const [file, base, table] of [
        ['Other/Relationships/sample_realtimesmsinstance.xml', 'msdyn_ChannelInstance', 'sample_realtimesmsinstance'],
        [
          'Other/Relationships/sample_realtimesmsinstanceaccount.xml',
          'msdyn_ChannelInstanceAccount',
          'sample_realtimesmsinstanceaccount',
        ],
      ] as const) {
        const rel = ((xml(r, file)['EntityRelationships'] as Node)['EntityRelationship'] as Node[])[0]!;
        assert.equal(rel['@Name'], `${base}_extendedentityid_${table}`);
        assert.equal(rel['EntityRelationshipType'], 'OneToMany');
        assert.equal(rel['ReferencingEntityName'], base);
        assert.equal(rel['ReferencedEntityName'], table);
        assert.equal(rel['ReferencingAttributeName'], 'msdyn_extendedentityId');
        assert.match(
          read(r, 'Other/Relationships.xml'),
          new RegExp(`<EntityRelationship Name="${base}_extendedentityid_${table}" />`),
        );
      }

      const apis = [
        'sample_RealtimeSmsOutboundApi',
        'sample_RealtimeSmsDeliveryReportApi',
        'sample_RealtimeSmsInboundApi',
      ];
      for (const api of apis) {
        const def = xml(r, `customapis/${api}/customapi.xml`)['customapi'] as Node;
        assert.equal(def['@uniquename'], api);
        assert.equal(def['allowedcustomprocessingsteptype'], '2', 'asynchronous steps allowed');
        assert.equal(def['isfunction'], '0');
        const request = xml(r, `customapis/${api}/customapirequestparameters/payload/customapirequestparameter.xml`)[
          'customapirequestparameter'
        ] as Node;
        assert.deepEqual(
          [request['@uniquename'], request['name'], request['type'], request['isoptional']],
          ['payload', `${api}.payload`, '10', '0'],
        );
        const response = xml(r, `customapis/${api}/customapiresponseproperties/response/customapiresponseproperty.xml`)[
          'customapiresponseproperty'
        ] as Node;
        assert.deepEqual(
          [response['@uniquename'], response['type'], 'isoptional' in response],
          ['response', '10', false],
        );
      }
    });

    it('without --inbound and --delivery-reports: the outbound API alone, and both flags off in the definition', async () => {
      const r = await generate({ name: 'sms', contract: 'realtime', channelType: 'SMS' });
      assert.deepEqual(
        [...new Set(r.files.filter((f) => f.startsWith('customapis/')).map((f) => f.split('/')[1]))],
        ['relay_SmsOutboundApi'],
      );
      assert.match(read(r, 'Other/Customizations.xml'), /<msdyn_hasinbound>0<\/msdyn_hasinbound>/);
      assert.match(read(r, 'Other/Customizations.xml'), /<msdyn_hasdeliveryreceipt>0<\/msdyn_hasdeliveryreceipt>/);
      assert.equal(r.channelsEntry['callbacks'], undefined);
    });

    it('a Custom channel: parts in order with their types, the message editor table and form, media parts in the entry', async () => {
      const r = await generate({
        name: 'chat',
        contract: 'realtime',
        parts: ['title?', 'text', 'picture:image', 'file:media'],
      });
      assertWellFormedLowercase(r);
      const custom = xml(r, 'Other/Customizations.xml')['ImportExportXml'] as Node;
      const definition = (custom['msdyn_channeldefinitions'] as Node)['msdyn_channeldefinition'] as Node;
      assert.equal(definition['msdyn_channeltype'], 'Custom');
      assert.equal(definition['msdyn_supportsaccount'], '0');
      assert.equal(definition['msdyn_channeldefinitionaccountexternalentity'], undefined);
      const editorForm = r.files.find((f) => f.startsWith('Entities/relay_chatmessage/FormXml/main/'));
      assert.equal(definition['msdyn_messageformid'], editorForm?.match(GUID)?.[0]);
      const parts = (custom['msdyn_channelmessageparts'] as Node)['msdyn_channelmessagepart'] as Node[];
      assert.deepEqual(
        parts.map((p) => [p['msdyn_name'], p['msdyn_type'], p['msdyn_isrequired'], p['msdyn_order']]),
        [
          ['title', '192350000', '0', '4'],
          ['text', '192350000', '1', '3'],
          ['picture', '192350004', '1', '2'],
          ['file', '192350003', '1', '1'],
        ],
      );
      const editor = read(r, editorForm!);
      assert.deepEqual(
        [...editor.matchAll(/datafieldname="([^"]+)"/g)].map((m) => m[1]),
        ['relay_name', 'relay_title', 'relay_text', 'relay_picture', 'relay_file', 'relay_placeholders'],
      );
      assert.match(editor, /visible="false"[^>]*>\s*<labels>\s*<label description="Placeholders"/);
      const registry = loadChannels(r.entryFile, {
        env: { CHAT_PROVIDER_URL: 'http://127.0.0.1:1', CHAT_SIGNING_SECRET: 'whsec_c2VjcmV0' },
      });
      const channel = registry.byName('chat');
      assert.equal(channel?.channelDefinitionId, r.channelDefinitionId);
      assert.deepEqual((channel?.provider as { mediaParts?: string[] }).mediaParts, ['picture', 'file']);
      assert.deepEqual(r.placeholders, ['sender']);
    });

    it('refuses --parts that break the SMS rule (exactly one part, text), naming the option', async () => {
      for (const parts of [['text', 'title'], ['title'], ['text?'], ['text:media']]) {
        const err = await refused({ name: 'sms', contract: 'realtime', channelType: 'SMS', parts });
        assert.equal(err.code, 'SolutionOptionInvalid');
        assert.equal(err.option, '--parts');
        assert.match(err.message, /exactly one part, text/);
      }
      assert.ok(!existsSync(path.join(root, 'sms')), 'nothing written');
    });
  });

  it('is deterministic: two runs write the same bytes', async () => {
    for (const options of [
      { name: 'special', contract: 'outbound-marketing' as const },
      {
        name: 'chat',
        contract: 'realtime' as const,
        parts: ['text', 'image:image'],
        inbound: true,
        deliveryReports: true,
      },
    ]) {
      const a = await generate({ ...options, out: path.join(root, 'a', options.name) });
      const b = await generate({ ...options, out: path.join(root, 'b', options.name) });
      assert.deepEqual(a.files, b.files);
      for (const f of a.files) assert.equal(read(a, f), read(b, f), f);
      assert.equal(readFileSync(a.entryFile, 'utf8'), readFileSync(b.entryFile, 'utf8'));
      // Another prefix or channel gives other ids.
      const c = await generate({ ...options, publisherPrefix: 'other', out: path.join(root, 'c', options.name) });
      assert.notEqual(
        read(
          a,
          a.files.find((f) => f.includes('FormXml'))!,
        ).match(GUID)?.[0],
        read(
          c,
          c.files.find((f) => f.includes('FormXml'))!,
        ).match(GUID)?.[0],
      );
    }
  });

  describe('bad options', () => {
    const cases: Array<[string, Omit<NewChannelOptions, 'out'>, string]> = [
      ['an uppercase name', { name: 'Special', contract: 'outbound-marketing' }, 'NAME'],
      ['a name starting with a digit', { name: '1sms', contract: 'outbound-marketing' }, 'NAME'],
      ['a name of 25 characters', { name: 'a'.repeat(25), contract: 'outbound-marketing' }, 'NAME'],
      ['a name with a double dash', { name: 'a--b', contract: 'outbound-marketing' }, 'NAME'],
      ['an unknown contract', { name: 'a', contract: 'email' as 'realtime' }, '--contract'],
      ['a one-letter prefix', { name: 'a', contract: 'realtime', publisherPrefix: 'a' }, '--publisher-prefix'],
      ['a nine-letter prefix', { name: 'a', contract: 'realtime', publisherPrefix: 'abcdefghi' }, '--publisher-prefix'],
      [
        'a prefix starting with a digit',
        { name: 'a', contract: 'realtime', publisherPrefix: '9ab' },
        '--publisher-prefix',
      ],
      ['an uppercase prefix', { name: 'a', contract: 'realtime', publisherPrefix: 'Sample' }, '--publisher-prefix'],
      ['the mscrm prefix', { name: 'a', contract: 'realtime', publisherPrefix: 'mscrm' }, '--publisher-prefix'],
      ['parts on outbound marketing', { name: 'a', contract: 'outbound-marketing', parts: ['text'] }, '--parts'],
      [
        'a channel type on outbound marketing',
        { name: 'a', contract: 'outbound-marketing', channelType: 'SMS' },
        '--channel-type',
      ],
      ['an unknown channel type', { name: 'a', contract: 'realtime', channelType: 'Email' as 'SMS' }, '--channel-type'],
      ['no parts', { name: 'a', contract: 'realtime', parts: [] }, '--parts'],
      ['a part twice', { name: 'a', contract: 'realtime', parts: ['text', 'text'] }, '--parts'],
      ['an unknown part type', { name: 'a', contract: 'realtime', parts: ['text:video'] }, '--parts'],
      ['a part named placeholders', { name: 'a', contract: 'realtime', parts: ['placeholders'] }, '--parts'],
      ['a part with an uppercase name', { name: 'a', contract: 'realtime', parts: ['Text'] }, '--parts'],
      ['a Twilio real-time channel', { name: 'a', contract: 'realtime', provider: 'twilio' }, '--provider'],
      [
        'an unknown provider',
        { name: 'a', contract: 'outbound-marketing', provider: 'smtp' as 'twilio' },
        '--provider',
      ],
      [
        'an address field on real-time',
        { name: 'a', contract: 'realtime', addressField: 'mobilephone' },
        '--address-field',
      ],
      [
        'a bad address field',
        { name: 'a', contract: 'outbound-marketing', addressField: 'Mobile Phone' },
        '--address-field',
      ],
      ['an empty sender', { name: 'a', contract: 'outbound-marketing', sender: ' ' }, '--sender'],
      [
        'an entry file inside the solution folder',
        {
          name: 'a',
          contract: 'realtime',
          entryFile: path.join(os.tmpdir(), 'x', 'a', 'channels.json'),
          out: path.join(os.tmpdir(), 'x', 'a'),
        } as Omit<NewChannelOptions, 'out'>,
        '--entry-file',
      ],
    ];
    for (const [what, options, option] of cases) {
      it(`${what}: refused, naming ${option}`, async () => {
        const err = await refused(options);
        assert.equal(err.option, option);
        assert.match(err.message, new RegExp(`^${option}: expected .+, found `));
      });
    }

    it('a folder with other files or a file: refused; a solution folder: refused without --force, replaced with it', async () => {
      const other = path.join(root, 'other');
      mkdirSync(other);
      writeFileSync(path.join(other, 'notes.txt'), 'mine');
      const err = await refused({ name: 'sms', contract: 'realtime', out: other });
      assert.equal(err.code, 'SolutionOutputExists');
      assert.equal(readFileSync(path.join(other, 'notes.txt'), 'utf8'), 'mine');

      writeFileSync(path.join(root, 'file'), 'x');
      const onFile = await refused({ name: 'sms', contract: 'realtime', out: path.join(root, 'file') });
      assert.deepEqual([onFile.code, onFile.option], ['SolutionOutputExists', '--out']);

      const first = await generate({ name: 'sms', contract: 'realtime', inbound: true });
      assert.ok(existsSync(path.join(first.dir, 'customapis', 'relay_SmsInboundApi')));
      writeFileSync(path.join(first.dir, 'README.txt'), 'kept');
      assert.equal((await refused({ name: 'sms', contract: 'realtime' })).code, 'SolutionOutputExists');
      await generate({ name: 'sms', contract: 'realtime', force: true });
      assert.ok(!existsSync(path.join(first.dir, 'customapis', 'relay_SmsInboundApi')), 'the old API is gone');
      assert.ok(existsSync(path.join(first.dir, 'customapis', 'relay_SmsOutboundApi')));
      assert.equal(readFileSync(path.join(first.dir, 'README.txt'), 'utf8'), 'kept', 'only the solution is replaced');
    });
  });

  describe('the command', () => {
    it('channel new writes the folder and prints the entry; exit 0', async () => {
      const io = recordingIo({}, root);
      const code = await runCli(
        [
          'channel',
          'new',
          'special',
          '--contract',
          'outbound-marketing',
          '--publisher-prefix',
          'sample',
          '--out',
          'sol',
          '--sender',
          '+1555',
        ],
        io,
      );
      assert.equal(code, 0, io.stderr.join('\n'));
      assert.ok(existsSync(path.join(root, 'sol', 'Other', 'Solution.xml')));
      assert.ok(existsSync(path.join(root, 'sol.channels.json')));
      const out = io.stdout.join('\n');
      assert.match(out, /^solution sample_Special: 15 files in /);
      const entry = JSON.parse(out.slice(out.indexOf('{'))) as Record<string, unknown>;
      assert.equal(entry['name'], 'special');
      assert.equal(entry['sender'], '+1555');
      assert.deepEqual(io.stderr, []);
    });

    it('--channel-type sms with a second part: exit 2, the option named on stderr, nothing written', async () => {
      const io = recordingIo({}, root);
      const code = await runCli(
        ['channel', 'new', 'sms', '--contract', 'realtime', '--channel-type', 'sms', '--parts', 'text,title'],
        io,
      );
      assert.equal(code, 2);
      assert.match(io.stderr.join('\n'), /^--parts: expected exactly one part, text/);
      assert.ok(!existsSync(path.join(root, 'sms')));
    });

    it('--json prints the result; a missing sender is named on stderr', async () => {
      const io = recordingIo({}, root);
      assert.equal(await runCli(['channel', 'new', 'rt', '--contract', 'realtime', '--json'], io), 0);
      const result = JSON.parse(io.stdout.join('\n')) as NewChannelResult;
      assert.equal(result.dir, path.join(root, 'rt'));
      assert.match(result.channelDefinitionId ?? '', /^[0-9a-f-]{36}$/);
      assert.match(io.stderr.join('\n'), /set before the relay runs this channel: sender/);
    });
  });
});
