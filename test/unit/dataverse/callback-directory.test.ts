import assert from 'node:assert/strict';
import {
  activityRecord,
  createCallbackDirectory,
  type DirectoryClient,
} from '../../../src/dataverse/callback-directory.js';

/** For the clients of tests that make no `$batch`: one would fail the test. */
const NO_BATCH = {
  startBatch: (): void => assert.fail('no $batch expected'),
  executeBatch: async (): Promise<unknown[]> => assert.fail('no $batch expected'),
};

describe('dataverse: the callbacks directory', () => {
  const calls: Array<Record<string, unknown>> = [];
  const client: DirectoryClient = {
    retrieveMultiple: async (request) => {
      calls.push({ op: 'query', ...request });
      return { value: [] };
    },
    update: async (request) => {
      calls.push({ op: 'update', ...request });
      return undefined;
    },
    ...NO_BATCH,
  };
  const directory = createCallbackDirectory({ client, messageRecord: async () => undefined });
  beforeEach(() => (calls.length = 0));

  it('finds contacts by address with the quote escaped', async () => {
    await directory.contactsByAddress('mobilephone', "+1555'0", ['sample_optout']);
    // The query carries the signal of its batch (loader.ts), aborted when no caller waits any more.
    const { signal, ...query } = calls[0] ?? {};
    assert.ok(signal instanceof AbortSignal);
    assert.deepEqual(query, {
      op: 'query',
      collection: 'contacts',
      select: ['contactid', 'mobilephone', 'sample_optout'],
      filter: "mobilephone eq '+1555''0'",
    });
  });
  it('reads every contact holding an address, page after page', async () => {
    const links: Array<string | undefined> = [];
    const pages: Record<string, { value: unknown[]; oDataNextLink?: string }> = {
      first: {
        value: [{ contactid: 'c1' }, { contactid: 'c2' }],
        oDataNextLink: 'https://org/api/data/v9.2/contacts?$skiptoken=2',
      },
      'https://org/api/data/v9.2/contacts?$skiptoken=2': { value: [{ contactid: 'c3' }] },
    };
    const paging = createCallbackDirectory({
      client: {
        retrieveMultiple: async (_request, link) => (links.push(link), pages[link ?? 'first']!),
        update: async () => undefined,
        ...NO_BATCH,
      },
      messageRecord: async () => undefined,
    });
    const found = await paging.contactsByAddress('mobilephone', '+15550001111', []);
    assert.deepEqual(
      found.map((c) => c.contactId),
      ['c1', 'c2', 'c3'],
    );
    assert.deepEqual(links, [undefined, 'https://org/api/data/v9.2/contacts?$skiptoken=2']);
  });
  describe('concurrent lookups coalesced (In filters)', () => {
    /** A client whose first query is held until `release`, so that the lookups asked meanwhile wait together. */
    function held(rows: Array<Record<string, unknown>>) {
      const filters: string[] = [];
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      const client: DirectoryClient = {
        retrieveMultiple: async (request) => {
          filters.push(request.filter ?? '');
          if (filters.length === 1) await gate;
          return { value: rows };
        },
        update: async () => undefined,
        ...NO_BATCH,
      };
      return { filters, release: () => release(), client };
    }

    it('contacts of addresses asked while one query is in flight: one query with an In filter, each address its own holders', async () => {
      const { filters, release, client } = held([
        { contactid: 'c2', mobilephone: '+15550000002' },
        { contactid: 'c3', mobilephone: "+1555'3" },
        { contactid: 'c4', mobilephone: '+15550000002' },
      ]);
      const d = createCallbackDirectory({ client, messageRecord: async () => undefined });
      const first = d.contactsByAddress('mobilephone', '+15550000001', []);
      await new Promise((r) => setImmediate(r));
      const rest = ['+15550000002', "+1555'3", '+15550000009', '+15550000002'].map((a) =>
        d.contactsByAddress('mobilephone', a, []),
      );
      release();
      await first;
      const found = (await Promise.all(rest)).map((list) => list.map((c) => c.contactId));
      assert.deepEqual(found, [['c2', 'c4'], ['c3'], [], ['c2', 'c4']]);
      assert.deepEqual(filters, [
        "mobilephone eq '+15550000001'",
        "Microsoft.Dynamics.CRM.In(PropertyName='mobilephone',PropertyValues=['+15550000002','+1555''3','+15550000009'])",
      ]);
    });

    it('rows matched back to their address as Dataverse compares (case, trailing spaces); a batch stopped at the holder bound is read address by address', async () => {
      const { filters, release, client } = held([
        { contactid: 'c1', sample_chatid: 'AbC ' },
        { contactid: 'c2', sample_chatid: 'x' },
      ]);
      const d = createCallbackDirectory({ client, messageRecord: async () => undefined });
      const first = d.contactsByAddress('sample_chatid', 'first', []);
      await new Promise((r) => setImmediate(r));
      const rest = ['abc', 'X'].map((a) => d.contactsByAddress('sample_chatid', a, []));
      release();
      await first;
      assert.deepEqual(
        (await Promise.all(rest)).map((l) => l.map((c) => c.contactId)),
        [['c1'], ['c2']],
      );
      assert.equal(filters.length, 2);

      // Pages that never end: the In query stops at 5,000 per address asked, then each address is read alone.
      const alone: string[] = [];
      const endless = createCallbackDirectory({
        client: {
          retrieveMultiple: async (request) => {
            if (!request.filter?.startsWith('Microsoft.Dynamics.CRM.In')) {
              alone.push(request.filter ?? '');
              return { value: [{ contactid: `for ${request.filter}` }] };
            }
            return {
              value: Array.from({ length: 5000 }, (_, n) => ({ contactid: `c${n}`, mobilephone: 'a' })),
              oDataNextLink: 'https://org/api/data/v9.2/contacts?$skiptoken=more',
            };
          },
          update: async () => undefined,
          ...NO_BATCH,
        },
        messageRecord: async () => undefined,
      });
      const both = await Promise.all(['a', 'b'].map((a) => endless.contactsByAddress('mobilephone', a, [])));
      assert.deepEqual(alone, ["mobilephone eq 'a'", "mobilephone eq 'b'"]);
      assert.deepEqual(
        both.map((l) => l.map((c) => c.contactId)),
        [["for mobilephone eq 'a'"], ["for mobilephone eq 'b'"]],
      );
    });

    it('activity rows asked while one query is in flight: one In query by row id, each its own row, then cached', async () => {
      const id = (n: number): string => `b100000${n}-0000-4000-8000-000000000000`;
      const { filters, release, client } = held([
        { msdyncrm_customerjourneycustomchannelactivityid: id(2), _msdyncrm_contact_value: 'c2' },
        { msdyncrm_customerjourneycustomchannelactivityid: id(3), _msdyncrm_contact_value: 'c3' },
      ]);
      const d = createCallbackDirectory({ client, messageRecord: async () => undefined });
      const first = d.activityByRowId(id(1));
      await new Promise((r) => setImmediate(r));
      const rest = [id(2), id(3).toUpperCase(), id(4)].map((r) => d.activityByRowId(r));
      release();
      await first;
      assert.deepEqual(
        (await Promise.all(rest)).map((a) => a?.contactId),
        ['c2', 'c3', undefined],
      );
      assert.deepEqual(filters, [
        `msdyncrm_customerjourneycustomchannelactivityid eq ${id(1)}`,
        `Microsoft.Dynamics.CRM.In(PropertyName='msdyncrm_customerjourneycustomchannelactivityid',PropertyValues=['${id(2)}','${id(3)}','${id(4)}'])`,
      ]);
      await d.activityByRowId(id(2));
      assert.equal(filters.length, 2, 'a row found is cached');
    });
  });

  it('the latest activities of contacts asked while one query is in flight: one $batch of a GET per contact, an error for one contact its own', async () => {
    const id = (n: number): string => `c100000${n}-0000-4000-8000-000000000000`;
    const queries: Array<{ filter?: string; top?: number; orderBy?: string[]; batched: boolean }> = [];
    let batching = false;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const d = createCallbackDirectory({
      client: {
        retrieveMultiple: async (request) => {
          queries.push({ filter: request.filter, top: request.top, orderBy: request.orderBy, batched: batching });
          if (!batching) await gate;
          return { value: [] };
        },
        update: async () => undefined,
        startBatch: () => void (batching = true),
        executeBatch: async () => {
          batching = false;
          return [
            { value: [{ msdyncrm_customerjourneycustomchannelactivityid: 'r2', _msdyncrm_contact_value: id(2) }] },
            new Error('part 2 failed'),
          ];
        },
      },
      messageRecord: async () => undefined,
    });
    const first = d.latestActivities(id(1), 'sample_sms', 1);
    await new Promise((r) => setImmediate(r));
    const two = d.latestActivities(id(2), 'sample_sms', 1);
    const three = d.latestActivities(id(3), 'sample_sms', 1);
    release();
    assert.deepEqual(await first, []);
    assert.deepEqual(await two, [{ activityRowId: 'r2', contactId: id(2) }]);
    await assert.rejects(three, /part 2 failed/);
    const filter = (n: number): string => `_msdyncrm_contact_value eq ${id(n)} and msdyncrm_entitytype eq 'sample_sms'`;
    assert.deepEqual(
      queries,
      [1, 2, 3].map((n) => ({ filter: filter(n), top: 1, orderBy: ['createdon desc'], batched: n > 1 })),
    );
  });
  describe('activity cache', () => {
    const rowId = 'b1000001-0000-4000-8000-000000000000';
    const tileId = 'a1000001-0000-4000-8000-000000000000';
    let t = 0;
    let queries: Array<{ filter?: string; top?: number }> = [];
    /** Rows each query finds. */
    let found = 1;
    const cached = (activityCache?: { max?: number; ttlMs?: number }) =>
      createCallbackDirectory({
        client: {
          retrieveMultiple: async (request) => {
            queries.push({ filter: request.filter, top: request.top });
            const id = /eq '?([^' ]+)'?$/.exec(request.filter ?? '')?.[1];
            // By row id: that row; by activity id: rows `<id>/<n>`.
            const byRow = request.filter?.startsWith('msdyncrm_customerjourneycustomchannelactivityid') === true;
            return {
              value: Array.from({ length: found }, (_, n) => ({
                msdyncrm_customerjourneycustomchannelactivityid: byRow ? id : `${id}/${n}`,
              })),
            };
          },
          update: async () => undefined,
          ...NO_BATCH,
        },
        messageRecord: async () => undefined,
        now: () => t,
        ...(activityCache ? { activityCache } : {}),
      });
    beforeEach(() => {
      t = 0;
      queries = [];
      found = 1;
    });
    it('reads an activity row by its row id once for repeated clicks (case of the id ignored), again after 10 minutes', async () => {
      const d = cached();
      const row = { activityRowId: rowId };
      assert.deepEqual(await d.activityByRowId(rowId), row);
      assert.deepEqual(await d.activityByRowId(rowId.toUpperCase()), row);
      assert.deepEqual(queries, [{ filter: `msdyncrm_customerjourneycustomchannelactivityid eq ${rowId}`, top: 1 }]);
      t = 600_000;
      await d.activityByRowId(rowId);
      assert.equal(queries.length, 2);
    });
    it('keeps the most recently used entries up to max', async () => {
      const d = cached({ max: 2 });
      const id = (n: number): string => `b100000${n}-0000-4000-8000-000000000000`;
      await d.activityByRowId(id(1));
      await d.activityByRowId(id(2));
      await d.activityByRowId(id(1));
      await d.activityByRowId(id(3));
      assert.equal(queries.length, 3);
      await d.activityByRowId(id(1));
      assert.equal(queries.length, 3, 'id 1 was used recently: still cached');
      await d.activityByRowId(id(2));
      assert.equal(queries.length, 4, 'id 2 was the least recently used: evicted');
    });
    it('does not cache an activity that does not exist', async () => {
      const d = cached();
      found = 0;
      assert.equal(await d.activityByRowId(rowId), undefined);
      found = 1;
      assert.ok(await d.activityByRowId(rowId));
      assert.equal(queries.length, 2);
    });
    it('reads the rows of an activity id (a link from before the row key) two at most, and caches only a single one', async () => {
      const d = cached();
      found = 2;
      assert.equal((await d.activitiesByActivityId(tileId)).length, 2);
      assert.equal(
        (await d.activitiesByActivityId(tileId)).length,
        2,
        'a shared activity id is not cached: no row stands for it',
      );
      assert.deepEqual(
        queries,
        [1, 2].map(() => ({ filter: `msdyncrm_activityid eq '${tileId}'`, top: 2 })),
      );
      found = 1;
      const other = 'a1000002-0000-4000-8000-000000000000';
      assert.deepEqual(await d.activitiesByActivityId(other), [{ activityRowId: `${other}/0` }]);
      await d.activitiesByActivityId(other);
      assert.equal(queries.length, 3, 'a single row is cached');
      await d.activityByRowId(other);
      assert.equal(queries.length, 4, 'the row id and the activity id are cached apart');
    });
    it('refuses a bad cache size', () => {
      assert.throws(() => cached({ max: -1 }), TypeError);
    });
  });
  it('refuses an address field that is not a column name', async () => {
    await assert.rejects(directory.contactsByAddress('mobilephone eq 1 or x', '1', []), TypeError);
  });
  it('reads the newest activities of one message table of a contact', async () => {
    await directory.latestActivities('11111111-2222-4333-8444-555555555555', 'sample_sms', 1);
    const call = calls[0]!;
    assert.equal(call['collection'], 'msdyncrm_customerjourneycustomchannelactivities');
    assert.equal(
      call['filter'],
      "_msdyncrm_contact_value eq 11111111-2222-4333-8444-555555555555 and msdyncrm_entitytype eq 'sample_sms'",
    );
    assert.deepEqual(call['orderBy'], ['createdon desc']);
    assert.equal(call['top'], 1);
  });
  it('asks nothing for an id that is not a GUID', async () => {
    assert.deepEqual(await directory.latestActivities("x' or 1 eq 1", 'sample_sms', 1), []);
    assert.equal(await directory.activityByRowId('nope'), undefined);
    assert.deepEqual(await directory.activitiesByActivityId("x' or 1 eq 1"), []);
    assert.equal(calls.length, 0);
  });
  it('patches one contact column', async () => {
    await directory.updateContact('11111111-2222-4333-8444-555555555555', { sample_optout: true });
    assert.deepEqual(calls[0], {
      op: 'update',
      collection: 'contacts',
      key: '11111111-2222-4333-8444-555555555555',
      data: { sample_optout: true },
    });
  });
  it('reads the activity columns the callbacks use, a lookup or column that is empty left out', async () => {
    const row = {
      msdyncrm_customerjourneycustomchannelactivityid: 'b1000001-0000-4000-8000-000000000000',
      msdyncrm_activityid: 'a1000001-0000-4000-8000-000000000000',
      msdyncrm_entitytype: 'sample_sms',
      msdyncrm_entityid: 'e1000001-0000-4000-8000-000000000000',
      _msdyncrm_contact_value: '11111111-2222-4333-8444-555555555555',
      _msdyncrm_customerjourney_value: 'c1000001-0000-4000-8000-000000000000',
      _msdyncrm_customerjourneyiteration_value: null,
      msdyncrm_name: 'not read',
    };
    assert.deepEqual(activityRecord(row), {
      activityRowId: 'b1000001-0000-4000-8000-000000000000',
      activityId: 'a1000001-0000-4000-8000-000000000000',
      entityType: 'sample_sms',
      entityId: 'e1000001-0000-4000-8000-000000000000',
      contactId: '11111111-2222-4333-8444-555555555555',
      journeyId: 'c1000001-0000-4000-8000-000000000000',
    });
    await directory.latestActivities('11111111-2222-4333-8444-555555555555', 'sample_sms', 1);
    assert.deepEqual(calls[0]!['select'], [
      'msdyncrm_customerjourneycustomchannelactivityid',
      'msdyncrm_activityid',
      'msdyncrm_entitytype',
      'msdyncrm_entityid',
      '_msdyncrm_contact_value',
      '_msdyncrm_customerjourney_value',
      '_msdyncrm_customerjourneyiteration_value',
    ]);
  });
});
