import assert from 'node:assert/strict';
import type { DataverseEmulator } from '../../../../src/emulators/dataverse/index.js';
import { client, contactId, rejection, smallSeed, startEmulator } from './helpers.js';

async function count(url: string, set: string): Promise<number> {
  const stats = (await (await fetch(`${url}/_emulator/stats`)).json()) as { rows: Record<string, number> };
  return stats.rows[set]!;
}

describe('Dataverse emulator: $batch through dynamics-web-api', () => {
  let emulator: DataverseEmulator;
  afterEach(async () => emulator?.close());

  it('runs a change set atomically with Content-ID references, and mixes it with GETs', async () => {
    emulator = await startEmulator({ seed: smallSeed(2) });
    const api = client(emulator.url);
    api.startBatch();
    api.create({ collection: 'contacts', data: { firstname: 'Batch', lastname: 'One' }, contentId: '1' });
    api.create({
      collection: 'msdyncrm_customerjourneycustomchannelactivities',
      data: { msdyncrm_activityid: 'ref-1', 'msdyncrm_Contact@odata.bind': '$1' },
    });
    api.retrieveMultiple({ collection: 'contacts', select: ['firstname'], filter: "firstname eq 'Batch'" });
    const results = await api.executeBatch();
    assert.equal(results.length, 3);
    const list = results[2] as { value: Array<{ contactid: string }> };
    assert.equal(list.value.length, 1);
    const activities = await api.retrieveMultiple({
      collection: 'msdyncrm_customerjourneycustomchannelactivities',
      select: ['_msdyncrm_contact_value'],
      filter: "msdyncrm_activityid eq 'ref-1'",
    });
    assert.equal(activities.value[0]!._msdyncrm_contact_value, list.value[0]!.contactid);
  });

  it('rolls a failing change set back and stops the batch (400), as Dataverse does without continue-on-error', async () => {
    emulator = await startEmulator({ seed: smallSeed(2) });
    const api = client(emulator.url);
    const before = await count(emulator.url, 'contacts');
    api.startBatch();
    api.create({ collection: 'contacts', data: { firstname: 'Kept?' } });
    api.create({ collection: 'contacts', data: { firstname: 'Also kept?' } });
    api.create({ collection: 'contacts', data: { nosuchcolumn: 'boom' } });
    const errors = (await rejection(api.executeBatch())) as unknown as Array<Record<string, unknown>>;
    assert.ok(Array.isArray(errors), 'dynamics-web-api rejects with the parsed parts');
    assert.equal(errors.length, 1);
    assert.equal(errors[0]!.status, 400);
    // Inside a batch, dynamics-web-api keeps Dataverse's body as is: the code is under `error`.
    const body = errors[0]!.error as { code: string; message: string };
    assert.equal(body.code, '0x80048d19');
    assert.match(body.message, /nosuchcolumn/);
    assert.equal(await count(emulator.url, 'contacts'), before, 'nothing of the change set is kept');
  });

  it('goes on after errors with Prefer: odata.continue-on-error, returning each result in order', async () => {
    emulator = await startEmulator({ seed: smallSeed(2) });
    const api = client(emulator.url);
    const before = await count(emulator.url, 'contacts');
    api.startBatch();
    api.create({ collection: 'contacts', data: { firstname: 'A' } });
    api.create({ collection: 'contacts', data: { nosuchcolumn: 'boom' } });
    api.update({ collection: 'contacts', key: contactId(0), data: { lastname: 'Updated' } });
    api.retrieve({ collection: 'contacts', key: contactId(0), select: ['lastname'] });
    const results = await api.executeBatch({ continueOnError: true, inChangeSet: false });
    assert.equal(results.length, 4);
    assert.ok(!(results[0] instanceof Error));
    assert.ok(results[1] instanceof Error);
    assert.equal((results[1] as unknown as Record<string, unknown>).status, 400);
    assert.equal((results[3] as { lastname: string }).lastname, 'Updated');
    assert.equal(await count(emulator.url, 'contacts'), before + 1);
  });

  it('refuses a batch of more than 1,000 operations', async () => {
    emulator = await startEmulator();
    const api = client(emulator.url);
    api.startBatch();
    for (let i = 0; i < 1001; i += 1) api.create({ collection: 'contacts', data: { firstname: `n${i}` } });
    const err = await rejection(api.executeBatch());
    assert.equal(err.status, 400);
    assert.match(String(err.message), /1001 operations.*maximum.*1000/);
    assert.equal(await count(emulator.url, 'contacts'), 0);
  });
});
