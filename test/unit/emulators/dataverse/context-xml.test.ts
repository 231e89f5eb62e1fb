import assert from 'node:assert/strict';
import { XMLParser } from 'fast-xml-parser';
import {
  contextInfoset,
  serializeContextBinary,
  serializeContextXml,
  xmlDateTime,
  type ColumnTypeOf,
} from '../../../../src/emulators/dataverse/context-xml.js';
import { defineTable, type TableDef } from '../../../../src/emulators/dataverse/metadata.js';
import {
  buildCustomApiContext,
  buildRemoteExecutionContext,
  fitContext,
  MAX_CONTEXT_BYTES,
  type ContextInput,
} from '../../../../src/emulators/dataverse/remote-context.js';
import { writeXml, type XmlElement } from '../../../../src/emulators/dataverse/xml-infoset.js';
import { decodeNbfx } from './nbfx-decoder.js';
import { ACTIVITY_TABLE, CONTACT_ID, CONTEXT_FIELDS, ROW_ID } from './context-fixtures.js';

const activity = ACTIVITY_TABLE;
const priced = defineTable({
  logicalName: 'x_priced',
  entitySetName: 'x_priceds',
  columns: {
    x_price: 'money',
    x_count: 'int',
    x_rate: 'decimal',
    x_ratio: 'decimal',
    x_flag: 'bool',
    x_note: 'memo',
    x_other: 'guid',
  },
});
const TABLES = new Map<string, TableDef>([activity, priced].map((t) => [t.logicalName, t]));
const columnType: ColumnTypeOf = (table, column) => TABLES.get(table)?.columns.get(column)?.type;
const CONTACT = CONTACT_ID;
const ENTITY_ID = '33333333-3333-4333-8333-333333333333';
const CONTRACTS = 'http://schemas.microsoft.com/xrm/2011/Contracts';
const GENERIC = 'http://schemas.datacontract.org/2004/07/System.Collections.Generic';

function input(table: TableDef = activity, row: Record<string, unknown> = {}): ContextInput {
  return {
    table,
    row:
      table === activity
        ? {
            msdyncrm_customerjourneycustomchannelactivityid: ROW_ID,
            msdyncrm_activityid: 'act <1> & "2"',
            msdyncrm_entitytype: 'sample_specialmessage',
            msdyncrm_entityid: ENTITY_ID,
            msdyncrm_contact: { id: CONTACT, table: 'contact' },
            msdyncrm_name: null,
            statecode: 0,
            statuscode: 1,
            createdon: '2026-11-22T00:00:00Z',
            versionnumber: 1000001,
            ...row,
          }
        : { x_pricedid: ROW_ID, ...row },
    ...CONTEXT_FIELDS,
  };
}

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@',
  parseTagValue: false,
  isArray: (name) => name === 'KeyValuePairOfstringanyType' || name === 'KeyValuePairOfstringstring',
});
type Node = Record<string, unknown>;

function parse(xml: string): Node {
  return (parser.parse(xml) as Node)['RemoteExecutionContext'] as Node;
}

/** `KeyValuePairOfstringanyType` entries of a collection element, as key → `a:value` node. */
function collectionOf(node: unknown): Record<string, Node | string> {
  const pairs = ((node as Node | '')?.['KeyValuePairOfstringanyType' as never] ?? []) as Node[];
  return Object.fromEntries(pairs.map((p) => [String(p['a:key']), p['a:value'] as Node | string]));
}

/** The value element's `i:type` and text. */
function typed(node: Node | string | undefined): [string | undefined, string | undefined] {
  if (typeof node === 'string' || node === undefined) return [undefined, node];
  return [node['@i:type'] as string | undefined, node['#text'] as string | undefined];
}

describe('RemoteExecutionContext as XML (messageformat 3) and .NET Binary XML (messageformat 1)', () => {
  const context = buildRemoteExecutionContext(input());
  const xml = serializeContextXml(context, columnType);

  it('is a RemoteExecutionContext in the Contracts namespace, with the members in data contract (JSON) order', () => {
    assert.ok(
      xml.startsWith(
        `<RemoteExecutionContext xmlns="${CONTRACTS}" xmlns:i="http://www.w3.org/2001/XMLSchema-instance">`,
      ),
    );
    const root = contextInfoset(context, columnType);
    const names = root.children.map((c) => (c as XmlElement).name);
    assert.deepEqual(names, Object.keys(context));
    assert.deepEqual(names.slice(0, 7), [
      'BusinessUnitId',
      'CorrelationId',
      'Depth',
      'InitiatingUserAgent',
      'InitiatingUserAzureActiveDirectoryObjectId',
      'InitiatingUserId',
      'InputParameters',
    ]);
    assert.deepEqual(names.slice(-3), ['Stage', 'UserAzureActiveDirectoryObjectId', 'UserId']);
  });

  it('writes the scalar members as text, the date as xs:dateTime, null members as i:nil', () => {
    const root = parse(xml);
    assert.equal(root['MessageName'], 'Create');
    assert.equal(root['Stage'], '40');
    assert.equal(root['Mode'], '1');
    assert.equal(root['Depth'], '1');
    assert.equal(root['IsExecutingOffline'], 'false');
    assert.equal(root['PrimaryEntityId'], ROW_ID);
    assert.equal(root['OperationCreatedOn'], '2024-07-24T10:28:25.786Z');
    assert.equal(root['InitiatingUserAgent'], '');
    const parent = root['ParentContext'] as Node;
    assert.equal(parent['Stage'], '30');
    assert.deepEqual(parent['ParentContext'], { '@i:nil': 'true' });
    const owning = root['OwningExtension'] as Node;
    assert.equal(owning['LogicalName'], 'sdkmessageprocessingstep');
    assert.equal(owning['Name'], 'CCA Create → SB');
  });

  it('writes Target as an Entity with typed attribute values', () => {
    const root = parse(xml);
    assert.equal((root['InputParameters'] as Node)['@xmlns:a'], GENERIC);
    const target = collectionOf(root['InputParameters'])['Target'] as Node;
    assert.equal(target['@i:type'], 'Entity');
    assert.equal(target['LogicalName'], 'msdyncrm_customerjourneycustomchannelactivity');
    assert.equal(target['Id'], ROW_ID);
    assert.equal(target['RowVersion'], '1000001');
    assert.deepEqual(target['EntityState'], { '@i:nil': 'true' });
    const attrs = collectionOf(target['Attributes']);
    assert.deepEqual(typed(attrs['msdyncrm_customerjourneycustomchannelactivityid']), ['b:guid', ROW_ID]);
    assert.equal(
      (attrs['msdyncrm_customerjourneycustomchannelactivityid'] as Node)['@xmlns:b'],
      'http://schemas.microsoft.com/2003/10/Serialization/',
    );
    assert.deepEqual(typed(attrs['msdyncrm_activityid']), ['c:string', 'act <1> & "2"'], 'escaped and read back');
    assert.equal((attrs['msdyncrm_activityid'] as Node)['@xmlns:c'], 'http://www.w3.org/2001/XMLSchema');
    assert.deepEqual(
      typed(attrs['msdyncrm_entityid']),
      ['c:string', ENTITY_ID],
      'a GUID held in a string column is a string',
    );
    assert.deepEqual(typed(attrs['createdon']), ['c:dateTime', '2026-11-22T00:00:00Z']);
    assert.deepEqual(typed(attrs['versionnumber']), ['c:long', '1000001']);
    assert.deepEqual(attrs['msdyncrm_name'], { '@i:nil': 'true' });
    const contact = attrs['msdyncrm_contact'] as Node;
    assert.equal(contact['@i:type'], 'EntityReference');
    assert.deepEqual(
      [contact['Id'], contact['LogicalName'], contact['Name']],
      [CONTACT, 'contact', { '@i:nil': 'true' }],
    );
    const state = attrs['statecode'] as Node;
    assert.deepEqual([state['@i:type'], state['Value']], ['OptionSetValue', '0']);
    const formatted = ((target['FormattedValues'] as Node)['KeyValuePairOfstringstring'] as Node[]).map((p) => [
      p['a:key'],
      p['a:value'],
    ]);
    assert.deepEqual(formatted, [
      ['statecode', 'Active'],
      ['statuscode', 'Active'],
    ]);
    assert.ok(
      xml.includes(
        '<a:value i:type="c:string" xmlns:c="http://www.w3.org/2001/XMLSchema">act &lt;1&gt; &amp; "2"</a:value>',
      ),
    );
  });

  it('types OutputParameters id as a GUID and SharedVariables IsAutoTransact as a boolean', () => {
    const root = parse(xml);
    assert.deepEqual(typed(collectionOf(root['OutputParameters'])['id']), ['b:guid', ROW_ID]);
    assert.deepEqual(typed(collectionOf(root['SharedVariables'])['IsAutoTransact']), ['c:boolean', 'true']);
    assert.ok(
      xml.includes('<PreEntityImages xmlns:a="http://schemas.datacontract.org/2004/07/System.Collections.Generic"/>'),
    );
  });

  it('types the other column kinds: Money, int, decimal, double, bool, guid', () => {
    const row = { x_price: 12.5, x_count: 3, x_rate: 1.25, x_ratio: 2, x_flag: false, x_note: 'n', x_other: CONTACT };
    const root = parse(serializeContextXml(buildRemoteExecutionContext(input(priced, row)), columnType));
    const attrs = collectionOf((collectionOf(root['InputParameters'])['Target'] as Node)['Attributes']);
    const money = attrs['x_price'] as Node;
    assert.deepEqual([money['@i:type'], money['Value']], ['Money', '12.5']);
    assert.deepEqual(typed(attrs['x_count']), ['c:int', '3']);
    assert.deepEqual(typed(attrs['x_rate']), ['c:decimal', '1.25']);
    assert.deepEqual(typed(attrs['x_ratio']), ['c:decimal', '2']);
    assert.deepEqual(typed(attrs['x_flag']), ['c:boolean', 'false']);
    assert.deepEqual(typed(attrs['x_note']), ['c:string', 'n']);
    assert.deepEqual(typed(attrs['x_other']), ['b:guid', CONTACT]);
    // A number of no known column: an int when whole, a double otherwise.
    const api = parse(
      serializeContextXml(
        buildCustomApiContext(input(), [
          { key: 'n', value: 1.5 },
          { key: 'm', value: 2 },
          { key: 'payload', value: '{"a":1}' },
        ]),
        columnType,
      ),
    );
    const inputs = collectionOf(api['InputParameters']);
    assert.deepEqual(
      [typed(inputs['n']), typed(inputs['m']), typed(inputs['payload'])],
      [
        ['c:double', '1.5'],
        ['c:int', '2'],
        ['c:string', '{"a":1}'],
      ],
    );
    assert.equal(api['PrimaryEntityName'], 'none');
  });

  it('xs:dateTime drops trailing zeros of the fraction', () => {
    assert.equal(xmlDateTime('/Date(1721816905786)/'), '2024-07-24T10:28:25.786Z');
    assert.equal(xmlDateTime('/Date(1721816905700)/'), '2024-07-24T10:28:25.7Z');
    assert.equal(xmlDateTime('/Date(1721816905000)/'), '2024-07-24T10:28:25Z');
    assert.equal(xmlDateTime('2026-11-22T00:00:00.000Z'), '2026-11-22T00:00:00Z');
  });

  it('the binary body decodes to the same infoset as the XML body (and writes back to the same text)', () => {
    const binary = serializeContextBinary(context, columnType);
    assert.ok(Buffer.isBuffer(binary));
    assert.equal(binary[0], 0x40, 'ShortElement RemoteExecutionContext');
    assert.equal(binary[1], 'RemoteExecutionContext'.length);
    const decoded = decodeNbfx(binary);
    assert.deepEqual(decoded, contextInfoset(context, columnType));
    assert.equal(writeXml(decoded), xml);
    assert.ok(binary.length < Buffer.byteLength(xml), 'no closing tags: smaller than the text');
  });

  it('above 192 KB in its own format, the XML and binary bodies drop ParentContext, InputParameters and the images', () => {
    const big = buildRemoteExecutionContext(input(activity, { msdyncrm_name: 'x'.repeat(MAX_CONTEXT_BYTES / 2 + 10) }));
    const asXml = fitContext(big, (c) => serializeContextXml(c, columnType));
    assert.equal(asXml.trimmed, true);
    const root = parse(asXml.body);
    assert.deepEqual(root['ParentContext'], { '@i:nil': 'true' });
    assert.equal((root['InputParameters'] as Node)['KeyValuePairOfstringanyType'], undefined);
    const asBinary = fitContext(big, (c) => serializeContextBinary(c, columnType));
    assert.equal(asBinary.trimmed, true);
    assert.equal(writeXml(decodeNbfx(asBinary.body)), asXml.body);
    const small = fitContext(context, (c) => serializeContextBinary(c, columnType));
    assert.equal(small.trimmed, false);
  });
});
