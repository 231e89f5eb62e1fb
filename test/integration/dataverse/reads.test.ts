/**
 * DataverseReads against the Dataverse emulator through the real dynamics-web-api: contacts in as few requests as
 * the Web API allows (counted with /_emulator/stats), the message record cache, activity rows.
 */
import assert from 'node:assert/strict';
import { createDataverseReads } from '../../../src/dataverse/index.js';
import { closedAfterEach } from '../../helpers/fixtures.js';
import { contactId, IDS, runJourney, smallSeed, startEmulator } from '../emulators/dataverse/helpers.js';
import { stack, stats } from './helpers.js';

describe('DataverseReads against the Dataverse emulator', function () {
  this.timeout(30_000);
  const track = closedAfterEach();

  it('reads 500 contacts in one request (a $batch of In queries of 100 ids); 40 in one plain GET; unknown ids are absent', async () => {
    const dv = track(await startEmulator({ seed: smallSeed(500, 10) }));
    const s = track(stack(dv.url, 'reader'));
    const reads = createDataverseReads(s.client, { governor: s.governor });
    const ids = Array.from({ length: 500 }, (_, i) => contactId(i));
    const before = await stats(dv.url);
    const rows = await reads.contacts(
      [...ids, ids[0]!, '00000000-0000-4000-8000-999999999999', 'not-a-guid'],
      ['mobilephone', 'donotphone'],
    );
    const after = await stats(dv.url);
    assert.equal(after.traffic.requests - before.traffic.requests, 1, 'one request for 500 contacts');
    assert.equal(
      after.traffic.batchOperations - before.traffic.batchOperations,
      6,
      '501 distinct GUIDs (500 + an unknown one): six GETs of at most 100 ids inside it',
    );
    assert.equal(rows.size, 500, 'the unknown and the malformed ids are absent');
    assert.deepEqual(
      Object.keys(rows.get(ids[9]!)!)
        .filter((k) => !k.startsWith('@'))
        .sort(),
      ['contactid', 'donotphone', 'mobilephone'],
    );
    assert.equal(rows.get(ids[9]!)!['donotphone'], true);
    assert.equal(rows.get(ids[8]!)!['mobilephone'], '+491511000008');

    const few = await reads.contacts(ids.slice(0, 40), ['mobilephone']);
    const last = await stats(dv.url);
    assert.equal(few.size, 40);
    assert.equal(last.traffic.requests - after.traffic.requests, 1);
    assert.equal(last.traffic.batches - after.traffic.batches, 0, '40 ids fit a plain GET under 2,000 characters');
    assert.equal(reads.stats().requests, 2);
  });

  it('caches message records: 100 concurrent asks make one request, the next ask is a hit, a missing record is undefined and not cached', async () => {
    const dv = track(await startEmulator({ seed: smallSeed(1) }));
    const s = track(stack(dv.url, 'reader'));
    const reads = createDataverseReads(s.client, { governor: s.governor });
    const before = await stats(dv.url);
    const rows = await Promise.all(
      Array.from({ length: 100 }, () => reads.messageRecord('sample_specialmessages', IDS.message, ['sample_text'])),
    );
    assert.ok(rows.every((r) => r?.['sample_text'] === 'Hi {firstname}'));
    assert.equal(
      (await reads.messageRecord('sample_specialmessages', IDS.message.toUpperCase(), ['sample_text']))?.[
        'sample_text'
      ],
      'Hi {firstname}',
    );
    const after = await stats(dv.url);
    assert.equal(after.traffic.requests - before.traffic.requests, 1);
    assert.deepEqual(reads.stats(), {
      requests: 1,
      messageCacheHits: 1,
      messageCacheMisses: 1,
      messageInFlightShared: 99,
    });

    const missing = '00000000-0000-4000-8000-00000000dead';
    assert.equal(await reads.messageRecord('sample_specialmessages', missing, ['sample_text']), undefined);
    assert.equal(await reads.messageRecord('sample_specialmessages', missing, ['sample_text']), undefined);
    assert.equal(reads.stats().messageCacheMisses, 3);
    // An unknown entity set is an error, not "no such record".
    await assert.rejects(
      reads.messageRecord('nosuch_tables', IDS.message, ['x']),
      (err: Error & { code?: string }) => err.code === 'DataverseNotFound',
    );
  });

  it('expires cached records after ttlMs', async () => {
    const dv = track(await startEmulator({ seed: smallSeed(1) }));
    const s = track(stack(dv.url, 'reader'));
    let now = 0;
    const reads = createDataverseReads(s.client, {
      governor: s.governor,
      messageCache: { ttlMs: 1000 },
      now: () => now,
    });
    await reads.messageRecord('sample_specialmessages', IDS.message, ['sample_text']);
    now = 999;
    await reads.messageRecord('sample_specialmessages', IDS.message, ['sample_text']);
    now = 1000;
    await reads.messageRecord('sample_specialmessages', IDS.message, ['sample_text']);
    assert.deepEqual([reads.stats().messageCacheHits, reads.stats().messageCacheMisses], [1, 2]);
  });

  it('reads the activity rows of a batch in one request, with the columns activityFromRow needs; a missing one is absent', async () => {
    const dv = track(await startEmulator({ seed: smallSeed(3) }));
    const s = track(stack(dv.url, 'reader'));
    const reads = createDataverseReads(s.client, { governor: s.governor });
    const run = await runJourney(dv.url, { count: 3 });
    assert.equal(run.created.length, 3);
    const dead = '00000000-0000-4000-8000-00000000dead';
    const asked = [...run.created.map((c) => c.activityRowId.toUpperCase()), dead];
    const rows = await reads.activities(asked);
    assert.equal(reads.stats().requests, 1);
    assert.deepEqual([...rows.keys()].sort(), asked.slice(0, 3).sort(), 'keyed by the id as asked');
    for (const [i, created] of run.created.entries()) {
      const row = rows.get(created.activityRowId.toUpperCase());
      assert.equal(row?.['_msdyncrm_contact_value'], created.contactId);
      assert.equal(row?.['msdyncrm_activityid'], run.created[i]!.activityId);
    }
    assert.equal(rows.has(dead), false);
  });

  it('a call that does not answer within the timeout fails as DataverseTimeout (retryable); the caller’s abort rethrows its reason', async () => {
    const dv = track(await startEmulator({ seed: smallSeed(1), responseDelayMs: 400 }));
    const s = track(stack(dv.url, 'slow', {}, { timeoutMs: 100 }));
    const reads = createDataverseReads(s.client, { governor: s.governor });
    await assert.rejects(
      reads.activities(['00000000-0000-4000-8000-000000000001']),
      (err: Error & { code?: string; retryable?: boolean }) => {
        assert.equal(err.code, 'DataverseTimeout');
        assert.equal(err.retryable, true);
        assert.match(err.message, /read 1 msdyncrm_customerjourneycustomchannelactivities.*: no answer within 100 ms/);
        return true;
      },
    );
    const controller = new AbortController();
    const pending = createDataverseReads(track(stack(dv.url, 'slow2')).client, { governor: s.governor }).contacts(
      ['00000000-0000-4000-8000-000000000001'],
      [],
      controller.signal,
    );
    controller.abort(new Error('shutting down'));
    await assert.rejects(pending, /shutting down/);
  });

  it("a governor sees its own identity's responses only (same emulator, two identities)", async () => {
    const dv = track(await startEmulator({ seed: smallSeed(1), limits: 'realistic' }));
    const a = track(stack(dv.url, 'identity-a'));
    const b = track(stack(dv.url, 'identity-b'));
    const readsA = createDataverseReads(a.client, { governor: a.governor });
    const readsB = createDataverseReads(b.client, { governor: b.governor });
    await readsA.activities(['00000000-0000-4000-8000-00000000dead']);
    for (let i = 0; i < 3; i++) await readsB.activities(['00000000-0000-4000-8000-00000000dead']);
    assert.equal(a.governor.state().requestsRemaining, 5999);
    assert.equal(b.governor.state().requestsRemaining, 5997);
  });
});
