import assert from 'node:assert/strict';
import sinon from 'sinon';
import { DataverseError, EventError } from '../../../src/errors.js';
import { fakeDelivery, settledAs, type FakeDelivery } from '../../helpers/fake-delivery.js';
import { activity, activityRow, contact, harness, realtime, truncated, type Harness } from './intake-fakes.js';

const GOOD = activity(1);

function deadLetterOf(d: FakeDelivery | undefined): { reason: string; description: string } {
  const s = d?.settlements[0];
  assert.ok(s?.how === 'deadLetter', `dead-lettered, not ${JSON.stringify(d?.settlements)}`);
  return { reason: s.reason, description: s.description };
}

describe('pipeline: IntakeStage, bad events and failures', () => {
  describe('dead-letters each bad event with a reason that says what was wrong, and sends the rest of the batch', () => {
    const cases: Array<{ name: string; body: unknown; setup?: (h: Harness) => void; reason: string; description: string }> = [
      {
        name: 'broken JSON',
        body: new EventError('EventUndecodable', "activities message: the body is not JSON (Unexpected token 'o', \"not json\" is not valid JSON)"),
        reason: 'EventUndecodable',
        description: "activities message: the body is not JSON (Unexpected token 'o', \"not json\" is not valid JSON)",
      },
      {
        name: 'another message format',
        body: new EventError('EventUnsupportedFormat', 'activities message: content type application/msbin1 (.NET Binary XML); the service endpoint must post JSON (messageformat 2)'),
        reason: 'EventUnsupportedFormat',
        description: 'activities message: content type application/msbin1 (.NET Binary XML); the service endpoint must post JSON (messageformat 2)',
      },
      {
        name: 'an unknown table',
        body: new EventError('EventUnknownTable', "activities message: Create of 'account' is not handled"),
        reason: 'EventUnknownTable',
        description: "activities message: Create of 'account' is not handled",
      },
      {
        name: 'a missing attribute',
        body: new EventError('EventMissingAttribute', "activities message: Target attribute 'msdyncrm_contact' is missing"),
        reason: 'EventMissingAttribute',
        description: "activities message: Target attribute 'msdyncrm_contact' is missing",
      },
      {
        name: 'a decoder that fails unexpectedly',
        body: new TypeError("Cannot read properties of undefined (reading 'key')"),
        reason: 'EventUndecodable',
        description: "the decoder failed on this body: Cannot read properties of undefined (reading 'key')",
      },
      {
        name: 'an entity type no channel has',
        body: activity(9, { entityType: 'sample_other' }),
        reason: 'EventUnknownChannel',
        description: "no channel is configured for entity type 'sample_other' (msdyncrm_entitytype of activity act-9); the channels' tiles have: sample_specialmessage, sample_multimessage",
      },
      {
        name: 'a shared-tile record naming an unknown channel',
        body: activity(9, { entityType: 'sample_multimessage', entityId: 'r-x' }),
        setup: (h) => h.reads.addRecord('sample_multimessages', 'r-x', { sample_body: 'x', sample_channel: 'whatsapp' }),
        reason: 'EventUnknownChannel',
        description: 'message record sample_multimessages(r-x) of activity act-9 names no configured channel (sample_channel = "whatsapp"); the channels for \'sample_multimessage\' are: sms-shared, telegram',
      },
      {
        name: 'a shared-tile record naming no channel',
        body: activity(9, { entityType: 'sample_multimessage', entityId: 'r-y' }),
        setup: (h) => h.reads.addRecord('sample_multimessages', 'r-y', { sample_body: 'x', sample_channel: null }),
        reason: 'EventUnknownChannel',
        description: "message record sample_multimessages(r-y) of activity act-9 names no configured channel (sample_channel = nothing); the channels for 'sample_multimessage' are: sms-shared, telegram",
      },
      {
        name: 'a real-time channel definition no channel serves',
        body: realtime('req-9', { channelDefinitionId: 'cd-404' }),
        reason: 'EventUnknownChannel',
        description: 'no channel is configured for channel definition cd-404 (ChannelDefinitionId of request req-9); configured channel definitions: cd-1, cd-2',
      },
      {
        name: 'a real-time From no channel of the definition has',
        body: realtime('req-9', { channelDefinitionId: 'cd-2', from: 'S9' }),
        reason: 'EventUnknownChannel',
        description: "channel definition cd-2 (request req-9) has 2 channels and none has the sender 'S9' (From); their senders: rt-a: 'S1', rt-b: 'S2'",
      },
      {
        name: 'a real-time payload without message parts',
        body: realtime('req-9', { message: {} }),
        reason: 'MessageTextMissing',
        description: 'request req-9 has no message parts (Message is empty)',
      },
      {
        name: 'a truncated event whose activity row is gone',
        body: truncated('row-9'),
        reason: 'ActivityNotFound',
        description: 'the event was truncated by Dataverse (MessageMaxSizeExceeded) and activity row row-9 (msdyncrm_customerjourneycustomchannelactivities) does not exist',
      },
      {
        name: 'a truncated event whose activity row lacks an attribute',
        body: truncated('row-9'),
        setup: (h) => h.reads.activities.set('row-9', activityRow(9, { msdyncrm_activityid: null })),
        reason: 'EventMissingAttribute',
        description: "activity row row-9 (read because the event was truncated by Dataverse): activity row: 'msdyncrm_activityid' must be a non-empty string, found nothing",
      },
      {
        name: 'a message record that does not exist',
        body: activity(9, { entityId: 'msg-404' }),
        reason: 'MessageRecordNotFound',
        description: "message record sample_specialmessages(msg-404) does not exist (msdyncrm_entitytype 'sample_specialmessage', msdyncrm_entityid 'msg-404' of activity act-9)",
      },
      {
        name: 'a message record without text',
        body: activity(9, { entityId: 'msg-empty' }),
        setup: (h) => h.reads.addRecord('sample_specialmessages', 'msg-empty', { sample_text: '  ' }),
        reason: 'MessageTextMissing',
        description: 'message record sample_specialmessages(msg-empty) of activity act-9 has no text in sample_text (the text column of channel sms)',
      },
      {
        name: 'a contact that does not exist',
        body: activity(9),
        reason: 'ContactNotFound',
        description: 'contact c-9 (msdyncrm_contact of activity act-9) does not exist',
      },
      {
        name: 'a contact without an address',
        body: activity(9),
        setup: (h) => h.reads.addContacts(contact(9, { mobilephone: null })),
        reason: 'RecipientAddressMissing',
        description: 'contact c-9 (activity act-9) has no mobilephone (the address column of channel sms)',
      },
      {
        name: 'a permanent Dataverse error for a message record',
        body: activity(9, { entityId: 'msg-gone' }),
        setup: (h) => {
          h.reads.fail.messageRecord = (_set, id) =>
            id === 'msg-gone' ? new DataverseError('DataverseNotFound', 'sample_specialmessage With Id = msg-gone Does Not Exist', { upstream: { status: 404, code: '0x80040217' } }) : undefined;
        },
        reason: 'DataverseNotFound',
        description: 'reading message record sample_specialmessages(msg-gone) failed: sample_specialmessage With Id = msg-gone Does Not Exist (Dataverse code 0x80040217)',
      },
      {
        name: 'a text naming a column the contact table does not have',
        body: activity(9, { entityId: 'msg-bad' }),
        setup: (h) => {
          h.reads.addRecord('sample_specialmessages', 'msg-bad', { sample_text: 'Hi {nosuchcolumn}' }).addContacts(contact(9));
          h.reads.fail.contacts = (_ids, columns) =>
            columns.includes('nosuchcolumn')
              ? new DataverseError('DataverseBadRequest', "Could not find a property named 'nosuchcolumn' on type 'Microsoft.Dynamics.CRM.contact'.", { upstream: { status: 400, code: '0x80060888' } })
              : undefined;
        },
        reason: 'DataverseBadRequest',
        description:
          "reading the contacts of 1 activity with columns firstname, lastname, mobilephone, donotphone, nosuchcolumn failed: Could not find a property named 'nosuchcolumn' on type 'Microsoft.Dynamics.CRM.contact'. (Dataverse code 0x80060888)",
      },
    ];

    for (const c of cases) {
      it(c.name, async () => {
        const h = harness();
        h.reads.addContacts(contact(1));
        c.setup?.(h);
        const deliveries = await h.run([c.body, GOOD]);
        assert.deepEqual(settledAs(deliveries), ['deadLetter', 'complete']);
        assert.deepEqual(deadLetterOf(deliveries[0]), { reason: c.reason, description: c.description });
        assert.deepEqual(h.outbound.messages.map((m) => m.messageId), ['act-1']);
        const stats = h.stage.stats();
        assert.equal(stats.deadLettered, 1);
        assert.deepEqual(stats.deadLetterReasons, { [c.reason]: 1 });
        assert.match(await h.registry.metrics(), new RegExp(`channel_relay_intake_events_total\\{outcome="dead_lettered"\\} 1`));
      });
    }
  });

  it('abandons every delivery of a failed outbound send (the bus redelivers; duplicates are dropped by messageId)', async () => {
    const h = harness();
    h.reads.addContacts(contact(1), contact(2));
    h.outbound.failure = new Error('ServiceBusError: ServiceUnavailable');
    const deliveries = await h.run([activity(1), realtime('req-1'), activity(2), new EventError('EventUndecodable', 'broken')]);
    assert.deepEqual(settledAs(deliveries), ['abandon', 'abandon', 'abandon', 'deadLetter']);
    assert.equal(h.outbound.sends.length, 1);
    assert.deepEqual(h.stage.stats(), { batches: 1, received: 4, sent: 0, skippedByCompliance: 0, deadLettered: 1, deadLetterReasons: { EventUndecodable: 1 }, abandoned: 3 });
    assert.match(await h.registry.metrics(), /channel_relay_intake_events_total\{outcome="abandoned"\} 3/);
  });

  it('abandons at once on a retryable Dataverse error other than throttling', async () => {
    const sleep = sinon.fake.resolves(undefined);
    const h = harness({ sleep });
    h.reads.fail.contacts = () => new DataverseError('DataverseUnavailable', 'Service Unavailable', { upstream: { status: 503 } });
    const deliveries = await h.run([activity(1), activity(2), realtime('req-1')]);
    assert.deepEqual(settledAs(deliveries), ['abandon', 'abandon', 'complete']);
    assert.equal(sleep.callCount, 0);
  });

  it('abandons on an unexpected read failure rather than dead-lettering a good event', async () => {
    const h = harness();
    h.reads.fail.messageRecord = () => new TypeError('fetch failed');
    const deliveries = await h.run([activity(1)]);
    assert.deepEqual(settledAs(deliveries), ['abandon']);
  });

  it("abandons after a pause, not dead-letters, when Dataverse refuses the relay's identity", async () => {
    const sleep = sinon.fake.resolves(undefined);
    const h = harness({ sleep, unauthorizedPauseMs: 15_000 });
    h.reads.addContacts(contact(1));
    h.reads.fail.contacts = () => new DataverseError('DataverseUnauthorized', 'Principal user is missing prvReadContact privilege', { upstream: { status: 403 } });
    const deliveries = await h.run([activity(1)]);
    assert.deepEqual(settledAs(deliveries), ['abandon']);
    assert.deepEqual(sleep.firstCall.args[0], 15_000);
  });

  it('never rejects: an unexpected failure inside the stage abandons what is not settled', async () => {
    const h = harness({
      now: () => {
        throw new Error('clock broke');
      },
    });
    h.reads.addContacts(contact(1));
    const deliveries = await h.run([new EventError('EventUndecodable', 'broken'), activity(1), realtime('req-1')]);
    assert.deepEqual(settledAs(deliveries), ['deadLetter', 'abandon', 'abandon']);
    assert.equal(h.outbound.sends.length, 0);
  });

  it('does not reject when a settlement fails', async () => {
    const h = harness();
    h.reads.addContacts(contact(1));
    const d = { ...fakeDelivery(GOOD), complete: () => Promise.reject(new Error('lock lost')) };
    await h.stage.handle([d], new AbortController().signal);
    assert.equal(h.stage.stats().sent, 1);
    assert.equal(h.outbound.messages.length, 1);
  });

  describe('throttling (fake timers)', () => {
    let clock: sinon.SinonFakeTimers;
    beforeEach(() => (clock = sinon.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })));
    afterEach(() => clock.restore());

    const throttled = (ms: number | undefined): DataverseError =>
      new DataverseError('DataverseThrottled', 'Number of requests exceeded the limit of 6000 over time window of 300 seconds.', {
        ...(ms === undefined ? {} : { retryAfterMs: ms }),
        upstream: { status: 429, code: '0x80072322' },
      });

    it('abandons the deliveries of a throttled contacts read after Retry-After, and sends the others first', async () => {
      const h = harness();
      h.reads.fail.contacts = () => throttled(5000);
      const run = h.run([activity(1), activity(2), realtime('req-1')]);
      let done = false;
      void run.then(() => (done = true));
      await clock.tickAsync(4999);
      assert.equal(done, false, 'still waiting out Retry-After');
      assert.deepEqual(h.outbound.messages.map((m) => m.messageId), ['req-1']);
      assert.equal(h.stage.stats().sent, 1);
      assert.equal(h.stage.stats().abandoned, 0);
      await clock.tickAsync(1);
      assert.deepEqual(settledAs(await run), ['abandon', 'abandon', 'complete']);
      assert.equal(h.reads.calls.contacts.length, 1);
    });

    it('makes no further read in the batch once throttled, and caps the wait', async () => {
      const h = harness({ readConcurrency: 1, maxThrottleWaitMs: 30_000 });
      h.reads.addRecord('sample_specialmessages', 'msg-2', { sample_text: 'two' });
      h.reads.activities.set('row-3', activityRow(3, { msdyncrm_entityid: 'msg-2' }));
      h.reads.fail.messageRecord = (_set, id) => (id === 'msg-1' ? throttled(120_000) : undefined);
      const run = h.run([activity(1), activity(2, { entityId: 'msg-2' }), truncated('row-3')]);
      let done = false;
      void run.then(() => (done = true));
      await clock.tickAsync(29_999);
      assert.equal(done, false);
      await clock.tickAsync(1);
      assert.deepEqual(settledAs(await run), ['abandon', 'abandon', 'abandon']);
      assert.deepEqual(h.reads.calls.activity, ['row-3'], 'the truncated read came before the throttle');
      assert.deepEqual(h.reads.calls.messageRecord.map((c) => c.id), ['msg-1']);
      assert.equal(h.reads.calls.contacts.length, 0);
    });

    it('waits a default second when Retry-After is missing', async () => {
      const h = harness();
      h.reads.fail.activity = () => throttled(undefined);
      const run = h.run([truncated('row-1')]);
      let done = false;
      void run.then(() => (done = true));
      await clock.tickAsync(999);
      assert.equal(done, false);
      await clock.tickAsync(1);
      assert.deepEqual(settledAs(await run), ['abandon']);
    });

    it('stops waiting when aborted', async () => {
      const h = harness();
      h.reads.fail.contacts = () => throttled(60_000);
      const controller = new AbortController();
      const run = h.run([activity(1)], controller.signal);
      await clock.tickAsync(10);
      controller.abort();
      assert.deepEqual(settledAs(await run), ['abandon']);
    });
  });

  describe('abort', () => {
    it('abandons what is not settled when aborted during the contacts read (even if the read ignores the signal)', async () => {
      const h = harness();
      const controller = new AbortController();
      h.reads.hang.contacts = true;
      h.reads.onRead = (kind) => kind === 'contacts' && controller.abort();
      const deliveries = await h.run([activity(1), new EventError('EventUnknownTable', 'account'), realtime('req-1'), activity(2)], controller.signal);
      assert.deepEqual(settledAs(deliveries), ['abandon', 'deadLetter', 'abandon', 'abandon']);
      assert.equal(h.outbound.sends.length, 0);
    });

    it('abandons everything when aborted during the outbound send', async () => {
      const h = harness();
      h.reads.addContacts(contact(1));
      const controller = new AbortController();
      h.outbound.hang = true;
      h.outbound.onSend = () => controller.abort();
      const deliveries = await h.run([activity(1), realtime('req-1')], controller.signal);
      assert.deepEqual(settledAs(deliveries), ['abandon', 'abandon']);
    });

    it('abandons a whole batch received after the stop, without reading', async () => {
      const h = harness();
      const controller = new AbortController();
      controller.abort();
      const deliveries = await h.run([activity(1), truncated('row-2'), realtime('req-1')], controller.signal);
      assert.deepEqual(settledAs(deliveries), ['abandon', 'abandon', 'abandon']);
      assert.deepEqual(h.reads.calls, { contacts: [], messageRecord: [], activity: [] });
    });

    it('abandons when aborted during a message-record read', async () => {
      const h = harness();
      const controller = new AbortController();
      h.reads.hang.messageRecord = true;
      h.reads.onRead = () => controller.abort();
      const deliveries = await h.run([activity(1), activity(2)], controller.signal);
      assert.deepEqual(settledAs(deliveries), ['abandon', 'abandon']);
      assert.equal(h.reads.calls.contacts.length, 0);
    });
  });
});
