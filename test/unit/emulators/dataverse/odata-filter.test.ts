import assert from 'node:assert/strict';
import { isFault } from '../../../../src/emulators/dataverse/faults.js';
import { builtInTables, defineTable } from '../../../../src/emulators/dataverse/metadata.js';
import { compileFilter, parseFilter } from '../../../../src/emulators/dataverse/odata-filter.js';
import type { Row } from '../../../../src/emulators/dataverse/store.js';

const contact = defineTable(builtInTables().find((t) => t.logicalName === 'contact')!);
const activity = defineTable(
  builtInTables().find((t) => t.logicalName === 'msdyncrm_customerjourneycustomchannelactivity')!,
);
const ID1 = '00000000-0000-4000-8000-000000000001';
const ID2 = '00000000-0000-4000-8000-000000000002';

const rows: Row[] = [
  {
    contactid: ID1,
    firstname: 'Ada',
    lastname: "O'Neil",
    donotphone: false,
    preferredcontactmethodcode: 1,
    createdon: '2026-01-01T00:00:00Z',
  },
  {
    contactid: ID2,
    firstname: 'Bob',
    lastname: 'Smith',
    donotphone: true,
    preferredcontactmethodcode: 3,
    createdon: '2026-06-01T00:00:00Z',
  },
  {
    contactid: '00000000-0000-4000-8000-000000000003',
    firstname: null,
    lastname: 'smithers',
    donotphone: false,
    preferredcontactmethodcode: 2,
    createdon: '2026-03-01T00:00:00Z',
  },
];

function matching(filter: string): number[] {
  const predicate = compileFilter(contact, parseFilter(filter));
  return rows.flatMap((row, i) => (predicate(row) ? [i] : []));
}

describe('$filter parser and compiler', () => {
  const cases: Array<[string, number[]]> = [
    ["firstname eq 'Ada'", [0]],
    ["firstname eq 'ADA'", [0]],
    ["lastname eq 'O''Neil'", [0]],
    ['firstname eq null', [2]],
    ["firstname ne 'Ada'", [1, 2]],
    ['donotphone eq true', [1]],
    ['preferredcontactmethodcode gt 1', [1, 2]],
    ['preferredcontactmethodcode le 2', [0, 2]],
    ['preferredcontactmethodcode lt 2 or preferredcontactmethodcode ge 3', [0, 1]],
    ['createdon ge 2026-03-01T00:00:00Z', [1, 2]],
    ['createdon lt 2026-02-01', [0]],
    [`contactid eq ${ID2}`, [1]],
    [`contactid eq ${ID2.toUpperCase()}`, [1]],
    ["contains(lastname,'MITH')", [1, 2]],
    ["startswith(lastname,'smith')", [1, 2]],
    ["endswith(lastname,'ers')", [2]],
    ["not contains(lastname,'smith')", [0]],
    ["(firstname eq 'Ada' or firstname eq 'Bob') and donotphone eq false", [0]],
    ["firstname eq 'Ada' or firstname eq 'Bob' and donotphone eq false", [0]],
    [`Microsoft.Dynamics.CRM.In(PropertyName='contactid',PropertyValues=['${ID1}','${ID2}'])`, [0, 1]],
    ["Microsoft.Dynamics.CRM.In(PropertyName='lastname',PropertyValues=['SMITH','nobody'])", [1]],
    ["Microsoft.Dynamics.CRM.In(PropertyName='preferredcontactmethodcode',PropertyValues=['2','3'])", [1, 2]],
  ];
  for (const [filter, expected] of cases) {
    it(`${filter} → rows ${expected.join(',') || 'none'}`, () => assert.deepEqual(matching(filter), expected));
  }

  it('filters lookups as _<name>_value', () => {
    const predicate = compileFilter(activity, parseFilter(`_msdyncrm_contact_value eq ${ID1}`));
    assert.equal(predicate({ msdyncrm_contact: { id: ID1, table: 'contact' } }), true);
    assert.equal(predicate({ msdyncrm_contact: null }), false);
  });

  const errors: Array<[string, RegExp]> = [
    ["nosuch eq 'x'", /Could not find a property named 'nosuch' on type 'Microsoft.Dynamics.CRM.contact'/],
    ["msdyncrm_contact eq 'x'", /property named 'msdyncrm_contact'/],
    ["contactid eq 'abc'", /incompatible types.*'Edm.Guid' and 'Edm.String'/],
    ['firstname eq 3', /'Edm.String' and 'Edm.Int32'/],
    ["firstname eq 'a", /unterminated string literal/],
    ["firstname eq 'a' and", /expected a property name, found the end/],
    ["firstname 'a'", /expected an operator/],
    ["firstname eq 'a')", /unexpected '\)'/],
    ["substringof('a',firstname)", /unknown function 'substringof'/],
    ["contains(donotphone,'x')", /needs a string property/],
    ["Microsoft.Dynamics.CRM.In(PropertyName='contactid',PropertyValues=['nope'])", /must be a GUID/],
    ['', /empty/],
  ];
  for (const [filter, message] of errors) {
    it(`refuses ${JSON.stringify(filter)}`, () => {
      assert.throws(
        () => compileFilter(contact, parseFilter(filter)),
        (err: unknown) => isFault(err) && err.status === 400 && err.code === '0x80060888' && message.test(err.message),
      );
    });
  }
});
