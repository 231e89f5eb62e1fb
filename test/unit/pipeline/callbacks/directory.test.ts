import assert from 'node:assert/strict';
import { createCallbackDirectory, type DirectoryClient } from '../../../../src/pipeline/callbacks/index.js';

describe('callbacks: Dataverse directory', () => {
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
  };
  const directory = createCallbackDirectory({ client, messageRecord: async () => undefined });
  beforeEach(() => (calls.length = 0));

  it('finds contacts by address with the quote escaped', async () => {
    await directory.contactsByAddress('mobilephone', "+1555'0", ['sample_optout']);
    assert.deepEqual(calls[0], { op: 'query', collection: 'contacts', select: ['contactid', 'mobilephone', 'sample_optout'], filter: "mobilephone eq '+1555''0'" });
  });
  it('reads every contact holding an address, page after page', async () => {
    const links: Array<string | undefined> = [];
    const pages: Record<string, { value: unknown[]; oDataNextLink?: string }> = {
      first: { value: [{ contactid: 'c1' }, { contactid: 'c2' }], oDataNextLink: 'https://org/api/data/v9.2/contacts?$skiptoken=2' },
      'https://org/api/data/v9.2/contacts?$skiptoken=2': { value: [{ contactid: 'c3' }] },
    };
    const paging = createCallbackDirectory({
      client: { retrieveMultiple: async (_request, link) => (links.push(link), pages[link ?? 'first']!), update: async () => undefined },
      messageRecord: async () => undefined,
    });
    const found = await paging.contactsByAddress('mobilephone', '+15550001111', []);
    assert.deepEqual(found.map((c) => c.contactId), ['c1', 'c2', 'c3']);
    assert.deepEqual(links, [undefined, 'https://org/api/data/v9.2/contacts?$skiptoken=2']);
  });
  describe('activity cache', () => {
    const activityId = 'a1000001-0000-4000-8000-000000000000';
    let t = 0;
    let queries = 0;
    let found = true;
    const cached = (activityCache?: { max?: number; ttlMs?: number }) =>
      createCallbackDirectory({
        client: {
          retrieveMultiple: async (request) => {
            queries++;
            const id = /'([^']+)'/.exec(request.filter ?? '')?.[1];
            return { value: found ? [{ msdyncrm_activityid: id }] : [] };
          },
          update: async () => undefined,
        },
        messageRecord: async () => undefined,
        now: () => t,
        ...(activityCache ? { activityCache } : {}),
      });
    beforeEach(() => {
      t = 0;
      queries = 0;
      found = true;
    });
    it('reads an activity once for repeated clicks (case of the id ignored), again after 10 minutes', async () => {
      const d = cached();
      assert.deepEqual(await d.activityByActivityId(activityId), { msdyncrm_activityid: activityId });
      assert.deepEqual(await d.activityByActivityId(activityId.toUpperCase()), { msdyncrm_activityid: activityId });
      assert.equal(queries, 1);
      t = 600_000;
      await d.activityByActivityId(activityId);
      assert.equal(queries, 2);
    });
    it('keeps the most recently used entries up to max', async () => {
      const d = cached({ max: 2 });
      const id = (n: number): string => `a100000${n}-0000-4000-8000-000000000000`;
      await d.activityByActivityId(id(1));
      await d.activityByActivityId(id(2));
      await d.activityByActivityId(id(1));
      await d.activityByActivityId(id(3));
      assert.equal(queries, 3);
      await d.activityByActivityId(id(1));
      assert.equal(queries, 3, 'id 1 was used recently: still cached');
      await d.activityByActivityId(id(2));
      assert.equal(queries, 4, 'id 2 was the least recently used: evicted');
    });
    it('does not cache an activity that does not exist', async () => {
      const d = cached();
      found = false;
      assert.equal(await d.activityByActivityId(activityId), undefined);
      found = true;
      assert.ok(await d.activityByActivityId(activityId));
      assert.equal(queries, 2);
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
    assert.equal(call['filter'], "_msdyncrm_contact_value eq 11111111-2222-4333-8444-555555555555 and msdyncrm_entitytype eq 'sample_sms'");
    assert.deepEqual(call['orderBy'], ['createdon desc']);
    assert.equal(call['top'], 1);
  });
  it('asks nothing for an id that is not a GUID', async () => {
    assert.deepEqual(await directory.latestActivities("x' or 1 eq 1", 'sample_sms', 1), []);
    assert.equal(await directory.activityByActivityId('nope'), undefined);
    assert.equal(calls.length, 0);
  });
  it('patches one contact column', async () => {
    await directory.updateContact('11111111-2222-4333-8444-555555555555', { sample_optout: true });
    assert.deepEqual(calls[0], { op: 'update', collection: 'contacts', key: '11111111-2222-4333-8444-555555555555', data: { sample_optout: true } });
  });
});
