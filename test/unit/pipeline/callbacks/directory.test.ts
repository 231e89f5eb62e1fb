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

  it('finds contacts by address with the quote escaped, at most two', async () => {
    await directory.contactsByAddress('mobilephone', "+1555'0", ['sample_optout']);
    assert.deepEqual(calls[0], { op: 'query', collection: 'contacts', select: ['contactid', 'mobilephone', 'sample_optout'], filter: "mobilephone eq '+1555''0'", top: 2 });
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
