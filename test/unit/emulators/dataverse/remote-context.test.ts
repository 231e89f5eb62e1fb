import assert from 'node:assert/strict';
import { defineTable } from '../../../../src/emulators/dataverse/metadata.js';
import {
  buildRemoteExecutionContext,
  claimsProperties,
  encodeAttribute,
  fitContext,
  MAX_CONTEXT_BYTES,
  serializeContext,
  type ContextInput,
} from '../../../../src/emulators/dataverse/remote-context.js';
import { ACTIVITY_TABLE, CONTACT_ID, CONTEXT_FIELDS, ROW_ID } from './context-fixtures.js';

const activity = ACTIVITY_TABLE;
const money = defineTable({
  logicalName: 'x_priced',
  entitySetName: 'x_priceds',
  columns: { x_price: 'money', x_count: 'int', x_note: 'memo' },
});
const CONTACT = CONTACT_ID;

function input(
  row = { msdyncrm_customerjourneycustomchannelactivityid: ROW_ID, msdyncrm_activityid: ROW_ID } as Record<
    string,
    unknown
  >,
): ContextInput {
  return {
    table: activity,
    row: {
      ...row,
      msdyncrm_entitytype: 'sample_specialmessage',
      msdyncrm_contact: { id: CONTACT, table: 'contact' },
      statecode: 0,
      statuscode: 1,
      createdon: '2026-11-22T00:00:00Z',
      versionnumber: 1000001,
    },
    ...CONTEXT_FIELDS,
  };
}

describe('RemoteExecutionContext builder', () => {
  const encodings: Array<[string, typeof activity, string, unknown, unknown]> = [
    ['a string stays bare', activity, 'msdyncrm_activityid', 'a-1', 'a-1'],
    ['a GUID stays bare', activity, 'msdyncrm_customerjourneycustomchannelactivityid', ROW_ID, ROW_ID],
    ['null stays null', activity, 'msdyncrm_name', null, null],
    [
      'a lookup is an EntityReference',
      activity,
      'msdyncrm_contact',
      { id: CONTACT, table: 'contact' },
      {
        __type: 'EntityReference:http://schemas.microsoft.com/xrm/2011/Contracts',
        Id: CONTACT,
        KeyAttributes: [],
        LogicalName: 'contact',
        Name: null,
        RowVersion: null,
      },
    ],
    ['a date is /Date(ms)/', activity, 'createdon', '2024-07-24T10:28:25Z', '/Date(1721816905000)/'],
    [
      'a state is an OptionSetValue',
      activity,
      'statecode',
      0,
      { __type: 'OptionSetValue:http://schemas.microsoft.com/xrm/2011/Contracts', Value: 0 },
    ],
    [
      'money is a Money',
      money,
      'x_price',
      12.5,
      { __type: 'Money:http://schemas.microsoft.com/xrm/2011/Contracts', Value: 12.5 },
    ],
    ['an int stays bare', money, 'x_count', 3, 3],
  ];
  for (const [name, table, column, value, expected] of encodings) {
    it(name, () => assert.deepEqual(encodeAttribute(table, column, value), expected));
  }

  it('builds an asynchronous post-operation Create context with Target, the parent main operation, and the documented members', () => {
    const ctx = buildRemoteExecutionContext(input());
    assert.deepEqual(
      Object.keys(ctx),
      [...Object.keys(ctx)].sort(),
      'members in alphabetical order, as the data contract serializer writes them',
    );
    assert.equal(ctx['MessageName'], 'Create');
    assert.equal(ctx['Stage'], 40);
    assert.equal(ctx['Mode'], 1);
    assert.equal(ctx['PrimaryEntityName'], 'msdyncrm_customerjourneycustomchannelactivity');
    assert.equal(ctx['PrimaryEntityId'], ROW_ID);
    assert.equal(ctx['OperationCreatedOn'], '/Date(1721816905786)/');
    assert.deepEqual(ctx['OutputParameters'], [{ key: 'id', value: ROW_ID }]);
    const [target] = ctx['InputParameters'] as Array<{ key: string; value: Record<string, unknown> }>;
    assert.equal(target!.key, 'Target');
    assert.equal(target!.value['__type'], 'Entity:http://schemas.microsoft.com/xrm/2011/Contracts');
    assert.equal(target!.value['LogicalName'], 'msdyncrm_customerjourneycustomchannelactivity');
    const attrs = Object.fromEntries(
      (target!.value['Attributes'] as Array<{ key: string; value: unknown }>).map((a) => [a.key, a.value]),
    );
    assert.equal(attrs['msdyncrm_entitytype'], 'sample_specialmessage');
    assert.equal((attrs['msdyncrm_contact'] as Record<string, unknown>)['LogicalName'], 'contact');
    assert.deepEqual(target!.value['FormattedValues'], [
      { key: 'statecode', value: 'Active' },
      { key: 'statuscode', value: 'Active' },
    ]);
    const parent = ctx['ParentContext'] as Record<string, unknown>;
    assert.equal(parent['Stage'], 30);
    assert.equal(parent['ParentContext'], null);
    assert.equal((ctx['OwningExtension'] as Record<string, unknown>)['LogicalName'], 'sdkmessageprocessingstep');
  });

  it('serializes like .NET: "/" escaped as "\\/", and parses back to the same object', () => {
    const ctx = buildRemoteExecutionContext(input());
    const body = serializeContext(ctx);
    assert.ok(body.includes('"OperationCreatedOn":"\\/Date(1721816905786)\\/"'));
    assert.ok(body.includes('"__type":"Entity:http:\\/\\/schemas.microsoft.com\\/xrm\\/2011\\/Contracts"'));
    assert.deepEqual(JSON.parse(body), ctx);
  });

  it('drops ParentContext, InputParameters and images above 192 KB, as Dataverse does', () => {
    const small = fitContext(buildRemoteExecutionContext(input()));
    assert.equal(small.trimmed, false);
    const big = fitContext(
      buildRemoteExecutionContext(
        input({
          msdyncrm_customerjourneycustomchannelactivityid: ROW_ID,
          msdyncrm_name: 'x'.repeat(MAX_CONTEXT_BYTES),
        }),
      ),
    );
    assert.equal(big.trimmed, true);
    const parsed = JSON.parse(big.body) as Record<string, unknown>;
    assert.equal(parsed['ParentContext'], null);
    assert.deepEqual(parsed['InputParameters'], []);
    assert.ok(Buffer.byteLength(big.body) < MAX_CONTEXT_BYTES);
  });

  it('sets the claims application properties', () => {
    const props = claimsProperties({
      organization: 'org.example',
      userId: 'u',
      initiatingUserId: 'i',
      entityLogicalName: 'contact',
      requestName: 'Create',
      trimmed: false,
    });
    assert.deepEqual(props, {
      'http://schemas.microsoft.com/xrm/2011/Claims/Organization': 'org.example',
      'http://schemas.microsoft.com/xrm/2011/Claims/User': 'u',
      'http://schemas.microsoft.com/xrm/2011/Claims/InitiatingUser': 'i',
      'http://schemas.microsoft.com/xrm/2011/Claims/EntityLogicalName': 'contact',
      'http://schemas.microsoft.com/xrm/2011/Claims/RequestName': 'Create',
    });
  });
});
