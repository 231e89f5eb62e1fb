/**
 * The callbacks directory against the Dataverse emulator through the real dynamics-web-api: the lookups of concurrent
 * callbacks coalesced into one request each (an `In` filter, a `$batch` of GETs), counted with /_emulator/stats.
 */
import assert from 'node:assert/strict';
import { createCallbackDirectory, createDataverseReads } from '../../../src/dataverse/index.js';
import { closedAfterEach } from '../../helpers/fixtures.js';
import { runJourney, smallSeed, startEmulator } from '../emulators/dataverse/helpers.js';
import { stack, stats } from './helpers.js';

describe('the callbacks directory against the Dataverse emulator', function () {
  this.timeout(30_000);
  const track = closedAfterEach();

  it('concurrent lookups: contacts of 4 addresses in one In query, the latest activities of 3 contacts in one $batch, 3 rows in one In query', async () => {
    const dv = track(await startEmulator({ seed: smallSeed(4) }));
    const s = track(stack(dv.url, 'callbacks'));
    const directory = createCallbackDirectory({
      client: s.client,
      run: (call, signal, operation, operations) =>
        s.governor.run((x) => call(x), { signal, operation, ...(operations ? { operations } : {}) }),
      messageRecord: createDataverseReads(s.client, { governor: s.governor }).messageRecord,
    });
    const run = await runJourney(dv.url, { count: 3 });
    assert.equal(run.created.length, 3);
    const requests = async (): Promise<number> => (await stats(dv.url)).traffic.requests;

    let before = await requests();
    const holders = await Promise.all(
      ['+491511000000', '+491511000001', '+491511000003', '+49000'].map((a) =>
        directory.contactsByAddress('mobilephone', a, ['donotphone']),
      ),
    );
    assert.equal((await requests()) - before, 1, 'one request for four addresses');
    assert.deepEqual(
      holders.map((h) => h.map((c) => c.contactId)),
      [
        ['00000000-0000-4000-8000-000000000001'],
        ['00000000-0000-4000-8000-000000000002'],
        ['00000000-0000-4000-8000-000000000004'],
        [],
      ],
    );
    assert.equal(holders[0]![0]!.row['donotphone'], false);

    before = await requests();
    const latest = await Promise.all(
      run.created.map((c) => directory.latestActivities(c.contactId, 'sample_specialmessage', 1)),
    );
    assert.equal((await requests()) - before, 1, 'one $batch for three contacts');
    assert.deepEqual(
      latest.map((l) => l.map((a) => [a.activityRowId, a.contactId])),
      run.created.map((c) => [[c.activityRowId, c.contactId]]),
    );

    before = await requests();
    const rows = await Promise.all(run.created.map((c) => directory.activityByRowId(c.activityRowId)));
    assert.equal((await requests()) - before, 1, 'one In query for three rows');
    assert.deepEqual(
      rows.map((r) => r?.contactId),
      run.created.map((c) => c.contactId),
    );
  });
});
