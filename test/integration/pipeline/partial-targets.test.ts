/**
 * Targets without the attributes the relay needs, end to end: the Dataverse emulator posts every Create with a
 * Target that lacks the contact; intake reads those rows through dynamics-web-api, one request per batch for all of
 * the batch's rows (watched on the wire), and every activity is sent and recorded once.
 */
import assert from 'node:assert/strict';
import diagnostics from 'node:diagnostics_channel';
import type { ClientRequest } from 'node:http';
import { closedAfterEach } from '../../helpers/fixtures.js';
import { SEED, startSystem, until } from './harness.js';

const ACTIVITY_SET = 'msdyncrm_customerjourneycustomchannelactivities';
const GUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi;

describe('partial Targets end to end', function () {
  this.timeout(60_000);
  const track = closedAfterEach();

  it('reads the rows of a batch in one request and sends every activity once', async () => {
    const s = track(
      await startSystem({ partialTargets: { omit: ['msdyncrm_contact', 'msdyncrm_customerjourney'], share: 1 } }),
    );
    // The activity rows intake asks for, one entry per request (the ids in its In filter).
    const reads: string[][] = [];
    const onStart = (m: unknown): void => {
      const { request } = m as { request: ClientRequest };
      const path = decodeURIComponent(request.path);
      if (path.startsWith(`/api/data/v9.2/${ACTIVITY_SET}`)) reads.push(path.match(GUID) ?? []);
    };
    diagnostics.subscribe('http.client.request.start', onStart);
    track({ close: async () => void diagnostics.unsubscribe('http.client.request.start', onStart) });

    const run = await s.runJourney(SEED.journey, 40);
    assert.ok(run.created.length >= 30, `activities created: ${run.created.length}`);
    const relay = s.relay(['intake', 'dispatch', 'recorder']);
    await until(`${run.created.length} sent interactions`, async () =>
      (await s.interactions()).filter((i) => i.responseType === 'sent').length >= run.created.length ? true : undefined,
    );

    const intake = relay.stats().intake!;
    assert.equal(intake.deadLettered, 0, JSON.stringify(intake.deadLetterReasons));
    assert.equal(
      reads.length,
      intake.batches,
      `one activity read per intake batch (${reads.length} reads, ${intake.batches} batches)`,
    );
    const asked = reads.flat().map((id) => id.toLowerCase());
    assert.deepEqual(
      new Set(asked),
      new Set(run.created.map((c) => c.activityRowId.toLowerCase())),
      'every row read, in those requests',
    );
    assert.equal(asked.length, run.created.length, 'each once');
    assert.ok(
      reads.some((ids) => ids.length > 1),
      `a read asks for several rows: ${reads.map((r) => r.length).join(', ')}`,
    );

    const sent = (await s.interactions()).filter((i) => i.responseType === 'sent');
    assert.deepEqual(
      new Set(sent.map((i) => i.activityRowId)),
      new Set(run.created.map((c) => c.activityRowId)),
      'every activity row has its sent interaction',
    );
    assert.equal(sent.length, run.created.length, 'one interaction per activity');
    assert.equal(
      new Set(s.messages().map((m) => m.idempotencyKey)).size,
      s.messages().length,
      'no activity sent twice',
    );
  });
});
