/**
 * The intake worker's reads through dynamics-web-api: contacts by many ids at once (which the client turns into a
 * `$batch` with the GET inside once the URL passes 2,000 characters), the custom message row and the activity row by
 * id.
 */
import assert from 'node:assert/strict';
import type { DataverseEmulator } from '../../../../src/emulators/dataverse/index.js';
import { client, contactId, IDS, rejection, runJourney, smallSeed, startEmulator } from './helpers.js';

interface Traffic {
  requests: number;
  batches: number;
  batchOperations: number;
}

async function traffic(url: string): Promise<Traffic> {
  return ((await (await fetch(`${url}/_emulator/stats`)).json()) as { traffic: Traffic }).traffic;
}

function inFilter(ids: readonly string[]): string {
  return `Microsoft.Dynamics.CRM.In(PropertyName='contactid',PropertyValues=[${ids.map((id) => `'${id}'`).join(',')}])`;
}

const SELECT = ['fullname', 'mobilephone', 'donotphone'];

describe('Dataverse emulator: intake reads through dynamics-web-api', () => {
  let emulator: DataverseEmulator;
  afterEach(async () => emulator?.close());

  it('answers an In filter of 40, 50 and 200 GUIDs (any case), directly or inside the $batch the client makes of a long URL', async () => {
    emulator = await startEmulator({ seed: smallSeed(250, 7) });
    const api = client(emulator.url);
    // dynamics-web-api sends a GET whose path (below /api/data/v9.2/) is over 2,000 characters as a $batch.
    const cases: Array<{ n: number; batched: boolean }> = [
      { n: 40, batched: false },
      { n: 50, batched: true },
      { n: 200, batched: true },
    ];
    for (const { n, batched } of cases) {
      const ids = Array.from({ length: n }, (_, i) => (i % 2 === 0 ? contactId(i * 1).toUpperCase() : contactId(i)));
      const filter = inFilter(ids);
      assert.equal(
        `contacts?$select=${SELECT.join(',')}&$filter=${encodeURIComponent(filter)}`.length > 2000,
        batched,
        `n=${n}`,
      );
      const before = await traffic(emulator.url);
      const result = await api.retrieveMultiple({ collection: 'contacts', select: SELECT, filter });
      const after = await traffic(emulator.url);
      assert.equal(after.batches - before.batches, batched ? 1 : 0, `n=${n}: sent as a $batch`);
      assert.ok(!(result instanceof Error) && Array.isArray(result.value), `n=${n}: a list, not ${String(result)}`);
      assert.equal(result.value.length, n);
      assert.deepEqual(
        new Set(result.value.map((r) => r.contactid as string)),
        new Set(ids.map((id) => id.toLowerCase())),
        'ids come back lower-case',
      );
      const row = result.value.find((r) => r.contactid === contactId(6))!;
      assert.deepEqual(
        { fullname: row.fullname, mobilephone: row.mobilephone, donotphone: row.donotphone },
        { fullname: 'First6 Last0006', mobilephone: '+491511000006', donotphone: true },
      );
      assert.deepEqual(Object.keys(row).sort(), ['@odata.etag', 'contactid', 'donotphone', 'fullname', 'mobilephone']);
    }
  });

  it('reports an error inside the converted $batch as a rejection with the Dataverse code (not as a resolved Error)', async () => {
    emulator = await startEmulator({ seed: smallSeed(60) });
    const api = client(emulator.url);
    const ids = Array.from({ length: 60 }, (_, i) => contactId(i));
    const err = await rejection(
      api.retrieveMultiple({ collection: 'contacts', select: ['nosuchcolumn'], filter: inFilter(ids) }),
    );
    assert.equal(err.status, 400);
    assert.equal(err.code, '0x80060888');
    assert.match(String(err.message), /Could not find a property named 'nosuchcolumn'/);
    const missing = await rejection(api.retrieveMultiple({ collection: 'nosuchentities', filter: inFilter(ids) }));
    assert.equal(missing.status, 404, 'the batch answers with the status of the failing part, as Dataverse does');
  });

  it('pages a long In filter inside the batch: the next link works and every id is returned once', async () => {
    emulator = await startEmulator({ seed: smallSeed(120) });
    const api = client(emulator.url);
    const ids = Array.from({ length: 120 }, (_, i) => contactId(i));
    const all = await api.retrieveAll({
      collection: 'contacts',
      select: ['fullname'],
      filter: inFilter(ids),
      maxPageSize: 50,
    });
    assert.equal(all.value.length, 120);
    assert.equal(new Set(all.value.map((r) => r.contactid)).size, 120);
  });

  it("matches quotes in strings ('O''Brien'), and retrieves the custom message row and the activity row by id (GUID in any case)", async () => {
    const seed = smallSeed(3);
    seed.rows!['contacts']!.push({ firstname: "D'Arcy", lastname: "O'Brien", mobilephone: '+353861234567' });
    emulator = await startEmulator({ seed });
    const api = client(emulator.url);
    const obrien = await api.retrieveMultiple({
      collection: 'contacts',
      select: ['fullname'],
      filter: "lastname eq 'O''Brien' and startswith(firstname,'d''a')",
    });
    assert.deepEqual(
      obrien.value.map((r) => r.fullname),
      ["D'Arcy O'Brien"],
    );

    const message = await api.retrieve({
      collection: 'sample_specialmessages',
      key: IDS.message.toUpperCase(),
      select: ['sample_name', 'sample_text'],
    });
    assert.deepEqual(
      [message.sample_name, message.sample_text, message.sample_specialmessageid],
      ['Offer', 'Hi {firstname}', IDS.message],
    );
    const braced = await api.retrieve({
      collection: 'sample_specialmessages',
      key: `{${IDS.message}}`,
      select: ['sample_name'],
    });
    assert.equal(braced.sample_name, 'Offer');

    const run = await runJourney(emulator.url, { count: 1 });
    const activity = await api.retrieve({
      collection: 'msdyncrm_customerjourneycustomchannelactivities',
      key: run.created[0]!.activityRowId,
      select: [
        'msdyncrm_activityid',
        'msdyncrm_entitytype',
        'msdyncrm_entityid',
        '_msdyncrm_contact_value',
        '_msdyncrm_customerjourney_value',
        '_msdyncrm_customerjourneyiteration_value',
      ],
    });
    assert.deepEqual(
      [
        activity.msdyncrm_activityid,
        activity.msdyncrm_entitytype,
        activity.msdyncrm_entityid,
        activity._msdyncrm_contact_value,
        activity._msdyncrm_customerjourney_value,
        activity._msdyncrm_customerjourneyiteration_value,
      ],
      [run.created[0]!.activityId, 'sample_specialmessage', IDS.message, contactId(0), IDS.journey, IDS.iteration],
    );
    assert.match(String(activity['@odata.etag']), /^W\/"\d+"$/);
    const gone = await rejection(
      api.retrieve({ collection: 'msdyncrm_customerjourneycustomchannelactivities', key: IDS.journey }),
    );
    assert.equal(gone.status, 404);
    assert.equal(gone.code, '0x80040217');
  });
});
