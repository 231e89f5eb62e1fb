import assert from 'node:assert/strict';
import { DynamicsWebApi } from 'dynamics-web-api';
import type { DataverseEmulator } from '../../../../src/emulators/dataverse/index.js';
import { client, contactId, rejection, smallSeed, startEmulator } from './helpers.js';

describe('Dataverse emulator: CRUD and queries through dynamics-web-api', () => {
  let emulator: DataverseEmulator;
  afterEach(async () => emulator?.close());

  it('creates, retrieves, updates, upserts and deletes rows, with ETags and lookups read back as _<name>_value', async () => {
    emulator = await startEmulator({ seed: smallSeed(3) });
    const api = client(emulator.url);
    const id = (await api.create({
      collection: 'contacts',
      data: { firstname: 'Ada', lastname: 'Lovelace', donotphone: false },
    })) as string;
    const unicode = (await api.create({
      collection: 'contacts',
      data: { firstname: 'Zoë', lastname: 'Müller 😀' },
    })) as string;
    assert.equal(
      (await api.retrieve({ collection: 'contacts', key: unicode, select: ['fullname'] })).fullname,
      'Zoë Müller 😀',
    );
    assert.match(id, /^[0-9a-f-]{36}$/);

    const row = await api.retrieve({ collection: 'contacts', key: id, select: ['firstname', 'fullname'] });
    assert.equal(row.firstname, 'Ada');
    assert.equal(row.fullname, 'Ada Lovelace');
    assert.equal(row.contactid, id);
    assert.match(row['@odata.etag'], /^W\/"\d+"$/);

    const created: Record<string, unknown> = await api.create({
      collection: 'msdyncrm_customerjourneycustomchannelactivities',
      data: {
        msdyncrm_activityid: 'a-1',
        msdyncrm_entitytype: 'sample_specialmessage',
        'msdyncrm_Contact@odata.bind': `/contacts(${id})`,
      },
      returnRepresentation: true,
    });
    assert.equal(created._msdyncrm_contact_value, id);
    assert.equal(created.msdyncrm_activityid, 'a-1');
    const annotated = await api.retrieve({
      collection: 'msdyncrm_customerjourneycustomchannelactivities',
      key: created.msdyncrm_customerjourneycustomchannelactivityid as string,
      select: ['_msdyncrm_contact_value', 'statecode'],
      includeAnnotations: '*',
    });
    assert.equal(annotated._msdyncrm_contact_value_LogicalName, 'contact');
    assert.equal(annotated._msdyncrm_contact_value_NavigationProperty, 'msdyncrm_Contact');
    assert.equal(annotated._msdyncrm_contact_value_Formatted, 'Ada Lovelace');
    assert.equal(annotated.statecode_Formatted, 'Active');

    await api.update({ collection: 'contacts', key: id, data: { lastname: 'King' }, ifmatch: row['@odata.etag'] });
    // dynamics-web-api turns a 412 on update into `false`; with propagateErrors it shows the error.
    assert.equal(
      await api.update({ collection: 'contacts', key: id, data: { lastname: 'Byron' }, ifmatch: row['@odata.etag'] }),
      false,
    );
    const strict = new DynamicsWebApi({
      serverUrl: emulator.url,
      onTokenRefresh: async () => 'test-user',
      propagateErrors: true,
    });
    const stale = await rejection(
      strict.update({ collection: 'contacts', key: id, data: { lastname: 'Byron' }, ifmatch: row['@odata.etag'] }),
    );
    assert.equal(stale.status, 412);
    assert.equal(stale.code, '0x80060882');
    assert.equal((await api.retrieve({ collection: 'contacts', key: id, select: ['lastname'] })).lastname, 'King');

    const upsertId = '9a9a9a9a-0000-4000-8000-000000000001';
    await api.upsert({ collection: 'contacts', key: upsertId, data: { firstname: 'Grace' } });
    assert.equal(
      (await api.retrieve({ collection: 'contacts', key: upsertId, select: ['firstname'] })).firstname,
      'Grace',
    );
    const duplicate = await rejection(
      strict.upsert({ collection: 'contacts', key: upsertId, data: { firstname: 'Again' }, ifnonematch: '*' }),
    );
    assert.equal(duplicate.status, 412);
    assert.equal(
      (await api.retrieve({ collection: 'contacts', key: upsertId, select: ['firstname'] })).firstname,
      'Grace',
    );

    await api.deleteRecord({ collection: 'contacts', key: upsertId });
    const gone = await rejection(api.retrieve({ collection: 'contacts', key: upsertId }));
    assert.equal(gone.status, 404);
    assert.equal(gone.code, '0x80040217');
    assert.match(String(gone.message), /contact With Id = 9a9a9a9a-0000-4000-8000-000000000001 Does Not Exist/);
  });

  it('compares ETags weakly (W/"n", "n", lists, *) and answers a retrieve with a current If-None-Match with 304', async () => {
    emulator = await startEmulator({ seed: smallSeed(1) });
    const api = client(emulator.url);
    const strict = new DynamicsWebApi({
      serverUrl: emulator.url,
      onTokenRefresh: async () => 'test-user',
      propagateErrors: true,
    });
    const etag = (await api.retrieve({ collection: 'contacts', key: contactId(0), select: ['firstname'] }))[
      '@odata.etag'
    ] as string;
    const version = /^W\/"(\d+)"$/.exec(etag)![1]!;
    // dynamics-web-api resolves a 304 as undefined: "not modified".
    assert.equal(
      await api.retrieve({ collection: 'contacts', key: contactId(0), select: ['firstname'], ifnonematch: etag }),
      undefined,
    );
    assert.equal(
      (await api.retrieve({ collection: 'contacts', key: contactId(0), select: ['firstname'], ifnonematch: 'W/"1"' }))
        .firstname,
      'First0',
    );
    await strict.update({
      collection: 'contacts',
      key: contactId(0),
      data: { lastname: 'Strong' },
      ifmatch: `"${version}"`,
    });
    const next = (await api.retrieve({ collection: 'contacts', key: contactId(0), select: ['lastname'] }))[
      '@odata.etag'
    ] as string;
    await strict.update({
      collection: 'contacts',
      key: contactId(0),
      data: { lastname: 'Listed' },
      ifmatch: `W/"1", ${next}`,
    });
    const stale = await rejection(
      strict.update({
        collection: 'contacts',
        key: contactId(0),
        data: { lastname: 'Stale' },
        ifmatch: `"${version}"`,
      }),
    );
    assert.equal(stale.status, 412);
    assert.equal(
      (await api.retrieve({ collection: 'contacts', key: contactId(0), select: ['lastname'] })).lastname,
      'Listed',
    );
  });

  it('filters, orders, selects, counts and pages like Dataverse', async () => {
    emulator = await startEmulator({ seed: smallSeed(25, 5) });
    const api = client(emulator.url);
    const cases: Array<{ filter: string; expected: number }> = [
      { filter: 'donotphone eq true', expected: 5 },
      { filter: 'donotphone ne true', expected: 20 },
      { filter: "startswith(lastname,'last001')", expected: 10 },
      { filter: "contains(firstname,'IRST2')", expected: 6 },
      { filter: "lastname ge 'Last0020' and not (donotphone eq true)", expected: 4 },
      { filter: "firstname eq 'First1' or firstname eq 'First2'", expected: 2 },
      {
        filter: `Microsoft.Dynamics.CRM.In(PropertyName='contactid',PropertyValues=['${contactId(0)}','${contactId(3)}'])`,
        expected: 2,
      },
      { filter: `contactid eq ${contactId(7)}`, expected: 1 },
      // Answered from the primary-key index: each row once, whatever the case or repetition of the ids.
      {
        filter: `Microsoft.Dynamics.CRM.In(PropertyName='contactid',PropertyValues=['${contactId(1)}','${contactId(1).toUpperCase()}','${contactId(2)}']) and donotphone eq false`,
        expected: 2,
      },
      {
        filter: `Microsoft.Dynamics.CRM.In(PropertyName='contactid',PropertyValues=['${contactId(4)}','${contactId(9)}'])\r\nand donotphone eq true`,
        expected: 2,
      },
    ];
    for (const { filter, expected } of cases) {
      const res = await api.retrieveMultiple({ collection: 'contacts', select: ['firstname'], filter, count: true });
      assert.equal(res.value.length, expected, filter);
      assert.equal(res.oDataCount, expected, filter);
    }
    const ordered = await api.retrieveMultiple({
      collection: 'contacts',
      select: ['lastname'],
      orderBy: ['lastname desc'],
      top: 3,
    });
    assert.deepEqual(
      ordered.value.map((r) => r.lastname),
      ['Last0024', 'Last0023', 'Last0022'],
    );
    assert.deepEqual(Object.keys(ordered.value[0]!).sort(), ['@odata.etag', 'contactid', 'lastname']);

    const page = await api.retrieveMultiple({ collection: 'contacts', select: ['firstname'], maxPageSize: 10 });
    assert.equal(page.value.length, 10);
    assert.ok(page.oDataNextLink, 'a first page has a next link');
    const all = await api.retrieveAll({ collection: 'contacts', select: ['firstname'], maxPageSize: 7 });
    assert.equal(all.value.length, 25);
    // Dataverse says not to combine $top with paging; the emulator pages within the $top rows.
    const topped = await api.retrieveAll({
      collection: 'contacts',
      select: ['lastname'],
      orderBy: ['lastname'],
      top: 10,
      maxPageSize: 3,
    });
    assert.deepEqual(
      topped.value.map((r) => r.lastname),
      Array.from({ length: 10 }, (_, i) => `Last${String(i).padStart(4, '0')}`),
    );
    assert.equal(new Set(all.value.map((r) => r.contactid)).size, 25);
  });

  it('refuses unknown columns, bad GUIDs and bad lookups with Dataverse error codes and clear messages', async () => {
    emulator = await startEmulator({ seed: smallSeed(1) });
    const api = client(emulator.url);
    const cases: Array<{ call: () => Promise<unknown>; status: number; code: string; message: RegExp }> = [
      {
        call: () => api.retrieveMultiple({ collection: 'contacts', select: ['nosuchcolumn'] }),
        status: 400,
        code: '0x80060888',
        message: /Could not find a property named 'nosuchcolumn' on type 'Microsoft.Dynamics.CRM.contact'/,
      },
      {
        call: () => api.retrieveMultiple({ collection: 'contacts', filter: "nosuch eq 'x'" }),
        status: 400,
        code: '0x80060888',
        message: /nosuch/,
      },
      {
        call: () => api.retrieveMultiple({ collection: 'contacts', filter: "contactid eq 'not-a-guid'" }),
        status: 400,
        code: '0x80060888',
        message: /Edm.Guid.*Edm.String/,
      },
      {
        call: () => api.create({ collection: 'contacts', data: { nosuchcolumn: 1 } }),
        status: 400,
        code: '0x80048d19',
        message: /The property 'nosuchcolumn' does not exist on type 'Microsoft.Dynamics.CRM.contact'/,
      },
      {
        call: () =>
          api.create({
            collection: 'msdyncrm_customerjourneycustomchannelactivities',
            data: { 'msdyncrm_contact@odata.bind': `/contacts(${contactId(0)})` },
          }),
        status: 400,
        code: '0x80048d19',
        message: /did you mean 'msdyncrm_Contact'/,
      },
      {
        call: () =>
          api.create({
            collection: 'msdyncrm_customerjourneycustomchannelactivities',
            data: { _msdyncrm_contact_value: contactId(0) },
          }),
        status: 400,
        code: '0x80048d19',
        message:
          /'_msdyncrm_contact_value' is read-only: set the lookup 'msdyncrm_contact' with 'msdyncrm_Contact@odata.bind'/,
      },
      {
        call: () => api.retrieve({ collection: 'contacts', key: "emailaddress1='a@example.com'" }),
        status: 400,
        code: '0x80060888',
        message: /is not a valid GUID .*alternate keys are not supported by the emulator/,
      },
      {
        call: () => api.retrieveMultiple({ collection: 'nosuchentities' }),
        status: 404,
        code: '0x80060888',
        message: /Resource not found for the segment 'nosuchentities'/,
      },
      {
        call: () => api.create({ collection: 'contacts', data: { firstname: 'x'.repeat(51) } }),
        status: 400,
        code: '0x80044331',
        message: /exceeded the maximum allowed length of '50'/,
      },
    ];
    for (const c of cases) {
      const err = await rejection(c.call());
      assert.equal(err.status, c.status, String(err.message));
      assert.equal(err.code, c.code, String(err.message));
      assert.match(String(err.message), c.message);
    }
  });

  it('answers a body over 64 MB with 413 in the error shape (the connection is not reset before the answer)', async () => {
    emulator = await startEmulator();
    const res = await fetch(`${emulator.url}/api/data/v9.2/contacts`, {
      method: 'POST',
      headers: { Authorization: 'Bearer big', 'Content-Type': 'application/json' },
      body: JSON.stringify({ firstname: 'x'.repeat(64 * 1024 * 1024) }),
    });
    assert.equal(res.status, 413);
    assert.match(((await res.json()) as { error: { message: string } }).error.message, /exceeds 67108864 bytes/);
    assert.equal((await client(emulator.url).retrieveMultiple({ collection: 'contacts', count: true })).oDataCount, 0);
  });

  it('answers 401 in the error shape without a token, and WhoAmI with a stable user id per token', async () => {
    emulator = await startEmulator();
    const anonymous = await fetch(`${emulator.url}/api/data/v9.2/contacts`);
    assert.equal(anonymous.status, 401);
    const body = (await anonymous.json()) as { error: { code: string; message: string } };
    assert.match(body.error.code, /^0x[0-9a-f]{8}$/);
    assert.match(body.error.message, /bearer token/);

    const a = await client(emulator.url, 'alice').callFunction('WhoAmI');
    const b = await client(emulator.url, 'bob').callFunction('WhoAmI');
    assert.equal((await client(emulator.url, 'alice').callFunction('WhoAmI')).UserId, a.UserId);
    assert.notEqual(a.UserId, b.UserId);
    assert.match(a.OrganizationId, /^[0-9a-f-]{36}$/);
  });
});
