import assert from 'node:assert/strict';
import sinon from 'sinon';
import { DataverseError, EventError } from '../../../../src/errors.js';
import { fakeDelivery, settledAs, type FakeDelivery } from '../../../helpers/fake-delivery.js';
import { activity, activityRow, contact, harness, realtime, truncated, type Harness } from './fakes.js';

const GOOD = activity(1);

function deadLetterOf(d: FakeDelivery | undefined): { reason: string; description: string } {
  const s = d?.settlements[0];
  assert.ok(s?.how === 'deadLetter', `dead-lettered, not ${JSON.stringify(d?.settlements)}`);
  return { reason: s.reason, description: s.description };
}

describe('pipeline: IntakeStage, bad events and failures', () => {
  describe('dead-letters each bad event with a reason that says what was wrong, and sends the rest of the batch', () => {
    const cases: Array<{
      name: string;
      body: unknown;
      setup?: (h: Harness) => void;
      reason: string;
      description: string;
    }> = [
      {
        name: 'broken JSON',
        body: new EventError(
          'EventUndecodable',
          'activities message: the body is not JSON (Unexpected token \'o\', "not json" is not valid JSON)',
        ),
        reason: 'EventUndecodable',
        description: 'activities message: the body is not JSON (Unexpected token \'o\', "not json" is not valid JSON)',
      },
      {
        name: 'another message format',
        body: new EventError(
          'EventUnsupportedFormat',
          'activities message: content type application/msbin1 (.NET Binary XML); the service endpoint must post JSON (messageformat 2)',
        ),
        reason: 'EventUnsupportedFormat',
        description:
          'activities message: content type application/msbin1 (.NET Binary XML); the service endpoint must post JSON (messageformat 2)',
      },
      {
        name: 'an unknown table',
        body: new EventError('EventUnknownTable', "activities message: Create of 'account' is not handled"),
        reason: 'EventUnknownTable',
        description: "activities message: Create of 'account' is not handled",
      },
      {
        name: 'a missing attribute',
        body: new EventError(
          'EventMissingAttribute',
          "activities message: Target attribute 'msdyncrm_contact' is missing",
        ),
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
        description:
          "no channel is configured for entity type 'sample_other' (msdyncrm_entitytype of activity row row-9); the channels' tiles have: sample_specialmessage, sample_multimessage",
      },
      {
        name: 'a shared-tile record naming an unknown channel',
        body: activity(9, { entityType: 'sample_multimessage', entityId: 'r-x' }),
        setup: (h) =>
          h.reads.addRecord('sample_multimessages', 'r-x', { sample_body: 'x', sample_channel: 'whatsapp' }),
        reason: 'EventUnknownChannel',
        description:
          'message record sample_multimessages(r-x) of activity row row-9 names no configured channel (sample_channel = "whatsapp"); the channels for \'sample_multimessage\' are: sms-shared, telegram',
      },
      {
        name: 'a shared-tile record naming no channel',
        body: activity(9, { entityType: 'sample_multimessage', entityId: 'r-y' }),
        setup: (h) => h.reads.addRecord('sample_multimessages', 'r-y', { sample_body: 'x', sample_channel: null }),
        reason: 'EventUnknownChannel',
        description:
          "message record sample_multimessages(r-y) of activity row row-9 names no configured channel (sample_channel = nothing); the channels for 'sample_multimessage' are: sms-shared, telegram",
      },
      {
        name: 'a real-time channel definition no channel serves',
        body: realtime('req-9', { channelDefinitionId: 'cd-404' }),
        reason: 'EventUnknownChannel',
        description:
          'no channel is configured for channel definition cd-404 (ChannelDefinitionId of request req-9); configured channel definitions: cd-1, cd-2',
      },
      {
        name: 'a real-time From no channel of the definition has',
        body: realtime('req-9', { channelDefinitionId: 'cd-2', from: 'S9' }),
        reason: 'EventUnknownChannel',
        description:
          "channel definition cd-2 (request req-9) has 2 channels and none has the sender 'S9' (From); their senders: rt-a: 'S1', rt-b: 'S2'",
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
        description:
          'the event was truncated by Dataverse (MessageMaxSizeExceeded) and activity row row-9 (msdyncrm_customerjourneycustomchannelactivities) does not exist',
      },
      {
        name: 'a truncated event whose activity row lacks an attribute',
        body: truncated('row-9'),
        setup: (h) => h.reads.activityRows.set('row-9', activityRow(9, { msdyncrm_activityid: null })),
        reason: 'EventMissingAttribute',
        description:
          "activity row row-9 (read because the event was truncated by Dataverse (MessageMaxSizeExceeded)): activity row: 'msdyncrm_activityid' must be a non-empty string, found nothing",
      },
      {
        name: 'a message record that does not exist',
        body: activity(9, { entityId: 'msg-404' }),
        reason: 'MessageRecordNotFound',
        description:
          "message record sample_specialmessages(msg-404) does not exist (msdyncrm_entitytype 'sample_specialmessage', msdyncrm_entityid 'msg-404' of activity row row-9)",
      },
      {
        name: 'a message record without text',
        body: activity(9, { entityId: 'msg-empty' }),
        setup: (h) => h.reads.addRecord('sample_specialmessages', 'msg-empty', { sample_text: '  ' }),
        reason: 'MessageTextMissing',
        description:
          'message record sample_specialmessages(msg-empty) of activity row row-9 has no text in sample_text (the text column of channel sms)',
      },
      {
        name: 'a contact that does not exist',
        body: activity(9),
        reason: 'ContactNotFound',
        description: 'contact c-9 (msdyncrm_contact of activity row row-9) does not exist',
      },
      {
        name: 'a contact without an address',
        body: activity(9),
        setup: (h) => h.reads.addContacts(contact(9, { mobilephone: null })),
        reason: 'RecipientAddressMissing',
        description: 'contact c-9 (activity row row-9) has no mobilephone (the address column of channel sms)',
      },
      {
        name: 'a permanent Dataverse error for a message record',
        body: activity(9, { entityId: 'msg-gone' }),
        setup: (h) => {
          h.reads.fail.messageRecord = (_set, id) =>
            id === 'msg-gone'
              ? new DataverseError('DataverseNotFound', 'sample_specialmessage With Id = msg-gone Does Not Exist', {
                  upstream: { status: 404, code: '0x80040217' },
                })
              : undefined;
        },
        reason: 'DataverseNotFound',
        description:
          'reading message record sample_specialmessages(msg-gone) failed: sample_specialmessage With Id = msg-gone Does Not Exist (Dataverse code 0x80040217)',
      },
      {
        name: 'a text naming a column the contact table does not have',
        body: activity(9, { entityId: 'msg-bad' }),
        setup: (h) => {
          h.reads
            .addRecord('sample_specialmessages', 'msg-bad', { sample_text: 'Hi {nosuchcolumn}' })
            .addContacts(contact(9));
          h.reads.fail.contacts = (_ids, columns) =>
            columns.includes('nosuchcolumn')
              ? new DataverseError(
                  'DataverseBadRequest',
                  "Could not find a property named 'nosuchcolumn' on type 'Microsoft.Dynamics.CRM.contact'.",
                  { upstream: { status: 400, code: '0x80060888' } },
                )
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
        assert.deepEqual(
          h.outbound.messages.map((m) => m.messageId),
          ['row-1'],
        );
        const stats = h.stage.stats();
        assert.equal(stats.deadLettered, 1);
        assert.deepEqual(stats.deadLetterReasons, { [c.reason]: 1 });
        assert.match(
          await h.registry.metrics(),
          new RegExp(`channel_relay_intake_events_total\\{outcome="dead_lettered"\\} 1`),
        );
      });
    }
  });

  it('abandons on an unexpected read failure, after a wait that grows with the delivery count, rather than dead-lettering a good event', async () => {
    const sleep = sinon.fake.resolves(undefined);
    const h = harness({ sleep, abandonDelayMs: 1500 });
    h.reads.fail.messageRecord = () => new TypeError('fetch failed');
    const deliveries = await h.run([activity(1)], undefined, 4);
    assert.deepEqual(settledAs(deliveries), ['abandon']);
    assert.equal(h.reads.calls.messageRecord.length, 1, 'not retried within the batch: not a Dataverse error');
    assert.deepEqual(
      sleep.args.map((a) => a[0]),
      [6000],
    );
  });

  it("abandons after a pause, not dead-letters, when Dataverse refuses the relay's identity", async () => {
    const sleep = sinon.fake.resolves(undefined);
    const h = harness({ sleep, identityPauseMs: 15_000 });
    h.reads.addContacts(contact(1));
    h.reads.fail.contacts = () =>
      new DataverseError('DataverseUnauthorized', 'Principal user is missing prvReadContact privilege', {
        upstream: { status: 403 },
      });
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

  describe('abort', () => {
    it('abandons what is not settled when aborted during the contacts read (even if the read ignores the signal)', async () => {
      const h = harness();
      const controller = new AbortController();
      h.reads.hang.contacts = true;
      h.reads.onRead = (kind) => kind === 'contacts' && controller.abort();
      const deliveries = await h.run(
        [activity(1), new EventError('EventUnknownTable', 'account'), realtime('req-1'), activity(2)],
        controller.signal,
      );
      // The real-time message needs no read: it went out while the activities were being read.
      assert.deepEqual(settledAs(deliveries), ['abandon', 'deadLetter', 'complete', 'abandon']);
      assert.deepEqual(
        h.outbound.sends.map((s) => s.map((m) => m.messageId)),
        [['req-1']],
      );
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
