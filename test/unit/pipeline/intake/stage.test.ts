import assert from 'node:assert/strict';
import { ConfigError, EventError } from '../../../../src/errors.js';
import { createLogger } from '../../../../src/log.js';
import { IntakeStage } from '../../../../src/pipeline/intake/stage.js';
import { parseOutboundMessage } from '../../../../src/pipeline/messages.js';
import { CaptureStream } from '../../../helpers/capture.js';
import { fakeDelivery, settledAs } from '../../../helpers/fake-delivery.js';
import {
  activity,
  activityFromRow,
  activityRow,
  ALL_CHANNELS,
  contact,
  decode,
  FakeOutbound,
  FakeReads,
  harness,
  NOW,
  realtime,
  SHARED_SMS,
  SHARED_TELEGRAM,
  SMS,
  truncated,
} from './fakes.js';
import { channelLookup } from '../../../helpers/channels.js';

describe('pipeline: IntakeStage', () => {
  it('turns a batch of 100 activities into 1 contacts read, 1 message-record read and 1 outbound send of 100 messages', async () => {
    const h = harness();
    for (let i = 0; i < 100; i++) h.reads.addContacts(contact(i));
    const deliveries = await h.run(Array.from({ length: 100 }, (_, i) => activity(i)));

    assert.deepEqual(settledAs(deliveries), Array(100).fill('complete'));
    assert.equal(h.reads.calls.contacts.length, 1);
    assert.equal(h.reads.calls.contacts[0]!.ids.length, 100);
    assert.deepEqual([...h.reads.calls.contacts[0]!.columns].sort(), [
      'donotphone',
      'firstname',
      'lastname',
      'mobilephone',
    ]);
    assert.deepEqual(h.reads.calls.messageRecord, [
      { entitySetName: 'sample_specialmessages', id: 'msg-1', columns: ['sample_text'] },
    ]);
    assert.equal(h.reads.calls.activity.length, 0);

    assert.equal(h.outbound.sends.length, 1);
    const sent = h.outbound.sends[0]!;
    assert.equal(sent.length, 100);
    sent.forEach((m, i) => {
      assert.equal(m.messageId, `row-${i}`);
      assert.equal(m.sessionId, 'twilio:+15550100');
      assert.deepEqual(m.body, {
        v: 1,
        key: `row-${i}`,
        channel: 'sms',
        to: `+1555000${String(i).padStart(4, '0')}`,
        text: `Hi Ann${i}!`,
        purpose: 'journey',
        context: {
          kind: 'marketing',
          activityId: 'tile-1',
          activityRowId: `row-${i}`,
          contactId: `c-${i}`,
          journeyId: 'j-1',
          iterationId: 'it-1',
          entityType: 'sample_specialmessage',
          entityId: 'msg-1',
        },
        acceptedAt: NOW,
      });
      // What dispatch reads back is what intake wrote.
      assert.deepEqual(parseOutboundMessage(JSON.parse(JSON.stringify(m.body))), m.body);
    });
    assert.deepEqual(h.stage.stats(), {
      batches: 1,
      received: 100,
      sent: 100,
      skippedByCompliance: 0,
      deadLettered: 0,
      deadLetterReasons: {},
      abandoned: 0,
      retries: 0,
    });
    assert.match(await h.registry.metrics(), /channel_relay_intake_events_total\{outcome="sent"\} 100/);
  });

  it('lets every body go once decoded, before its reads: a batch in flight holds no body (#15 §3)', async () => {
    const h = harness();
    for (let i = 0; i < 3; i++) h.reads.addContacts(contact(i));
    const bodies = [activity(0), activity(1), new EventError('EventUndecodable', 'not JSON'), activity(2)];
    const dropped = new Set<number>();
    const deliveries = bodies.map((body, i) => ({
      ...fakeDelivery(body, { messageId: `m-${i}` }),
      dropBody: () => void dropped.add(i),
    }));
    const droppedAtRead: number[] = [];
    h.reads.onRead = () => droppedAtRead.push(dropped.size);
    await h.stage.handle(deliveries, new AbortController().signal);
    assert.deepEqual(droppedAtRead, [4, 4], 'the message-record read and the contacts read');
    assert.deepEqual(settledAs(deliveries), ['complete', 'complete', 'deadLetter', 'complete']);
  });

  it('rows of one tile (one msdyncrm_activityid): one outbound message each, keyed on the row id; the tile id passed on as is', async () => {
    const h = harness();
    h.reads.addContacts(contact(1), contact(2));
    const deliveries = await h.run([activity(1), activity(2)]);
    assert.deepEqual(settledAs(deliveries), ['complete', 'complete']);
    assert.deepEqual(
      h.outbound.messages.map((m) => [
        m.messageId,
        m.body.key,
        m.body.to,
        m.body.context?.kind === 'marketing' ? m.body.context.activityId : undefined,
      ]),
      [
        ['row-1', 'row-1', '+15550000001', 'tile-1'],
        ['row-2', 'row-2', '+15550000002', 'tile-1'],
      ],
    );
  });

  it('reads each distinct message record once per batch and the placeholder columns with the contacts', async () => {
    const h = harness();
    h.reads.addRecord('sample_specialmessages', 'msg-2', {
      sample_text: '{{VIP}} {FirstName} {lastname}, your points: {sample_points}{nickname}',
    });
    h.reads.addContacts(contact(1), contact(2), contact(3, { sample_points: 7 }));
    await h.run([activity(1), activity(2, { entityId: 'msg-2' }), activity(3, { entityId: 'MSG-2' })]);
    assert.deepEqual(
      h.reads.calls.messageRecord.map((c) => c.id),
      ['msg-1', 'msg-2'],
    );
    assert.equal(h.reads.calls.contacts.length, 1);
    assert.deepEqual([...h.reads.calls.contacts[0]!.columns].sort(), [
      'donotphone',
      'firstname',
      'lastname',
      'mobilephone',
      'nickname',
      'sample_points',
    ]);
    assert.deepEqual(
      h.outbound.messages.map((m) => m.body.text),
      ['Hi Ann1!', '{VIP} Ann2 Lee, your points: ', '{VIP} Ann3 Lee, your points: 7'],
    );
  });

  it('completes an opted-out contact without a message, counts it and logs the activity id (no phone number)', async () => {
    const stream = new CaptureStream();
    const h = harness({ log: createLogger({ stream, pretty: false, level: 'info' }) });
    h.reads.addContacts(contact(1, { donotphone: true }), contact(2));
    const deliveries = await h.run([activity(1), activity(2)]);
    assert.deepEqual(settledAs(deliveries), ['complete', 'complete']);
    assert.deepEqual(
      h.outbound.messages.map((m) => m.messageId),
      ['row-2'],
    );
    assert.equal(h.stage.stats().skippedByCompliance, 1);
    assert.match(await h.registry.metrics(), /channel_relay_intake_events_total\{outcome="skipped_compliance"\} 1/);
    const line = stream.lines().find((l) => l['activityRowId'] === 'row-1');
    assert.ok(line, 'an info line names the activity');
    assert.equal(line['level'], 'info');
    assert.equal(line['area'], 'intake');
    assert.equal(line['correlationId'], 'corr-1');
    assert.equal(line['complianceField'], 'donotphone');
    assert.ok(!stream.text.includes('+15550000001'), 'no phone number in the logs');
  });

  it('completes a truncated event by reading its activity row', async () => {
    const h = harness();
    h.reads.activityRows.set('row-7', activityRow(7));
    h.reads.addContacts(contact(7));
    const deliveries = await h.run([truncated('row-7')]);
    assert.deepEqual(settledAs(deliveries), ['complete']);
    assert.deepEqual(h.reads.calls.activity, [['row-7']]);
    assert.deepEqual(
      h.outbound.messages.map((m) => [m.messageId, m.body.text, m.body.context]),
      [
        [
          'row-7',
          'Hi Ann7!',
          {
            kind: 'marketing',
            activityId: 'tile-1',
            activityRowId: 'row-7',
            contactId: 'c-7',
            journeyId: 'j-1',
            iterationId: 'it-1',
            entityType: 'sample_specialmessage',
            entityId: 'msg-1',
          },
        ],
      ],
    );
  });

  it('reads the rows of every partial-Target and truncated event of a batch in one call; a row that lacks what the Target lacked is dead-lettered', async () => {
    const h = harness();
    for (const i of [1, 2, 3]) h.reads.activityRows.set(`row-${i}`, activityRow(i));
    h.reads.activityRows.set('row-4', activityRow(4, { _msdyncrm_contact_value: null }));
    h.reads.addContacts(contact(1), contact(2), contact(3), contact(5));
    const deliveries = await h.run([
      truncated('row-1', ['msdyncrm_contact']),
      activity(5),
      truncated('row-2', ['msdyncrm_entityid', 'msdyncrm_activityid']),
      truncated('row-3'),
      truncated('row-4', ['msdyncrm_contact']),
      truncated('row-6', ['msdyncrm_contact']),
    ]);
    assert.deepEqual(h.reads.calls.activity, [['row-1', 'row-2', 'row-3', 'row-4', 'row-6']], 'one read for the batch');
    assert.deepEqual(h.reads.calls.contacts.length, 1, 'and one contacts read for all of it');
    assert.deepEqual(settledAs(deliveries), [
      'complete',
      'complete',
      'complete',
      'complete',
      'deadLetter',
      'deadLetter',
    ]);
    assert.deepEqual(h.outbound.messages.map((m) => m.messageId).sort(), ['row-1', 'row-2', 'row-3', 'row-5']);
    assert.deepEqual(deliveries[4]!.settlements[0], {
      how: 'deadLetter',
      reason: 'EventMissingAttribute',
      description:
        "activity row row-4 (read because the event's Target lacked msdyncrm_contact): activity row: '_msdyncrm_contact_value' must be a non-empty string, found nothing",
    });
    assert.deepEqual(deliveries[5]!.settlements[0], {
      how: 'deadLetter',
      reason: 'ActivityNotFound',
      description:
        "the event's Target lacked msdyncrm_contact and activity row row-6 (msdyncrm_customerjourneycustomchannelactivities) does not exist",
    });
  });

  it('sends a real-time journeys event without any Dataverse read', async () => {
    const h = harness();
    const deliveries = await h.run([
      realtime('req-1'),
      realtime('req-2', {
        channelDefinitionId: 'cd-2',
        from: 'S2',
        message: { body: 'first part', other: 'x' },
        journeyId: undefined,
      }),
    ]);
    assert.deepEqual(settledAs(deliveries), ['complete', 'complete']);
    assert.deepEqual(h.reads.calls, { contacts: [], messageRecord: [], activity: [] });
    assert.equal(h.outbound.sends.length, 1);
    const [first, second] = h.outbound.messages;
    assert.deepEqual(first, {
      messageId: 'req-1',
      sessionId: 'contract:relay',
      body: {
        v: 1,
        key: 'req-1',
        channel: 'rt',
        to: '+15557654321',
        text: 'Your code is 1234',
        parts: { title: 'Hi', text: 'Your code is 1234' },
        purpose: 'journey',
        context: {
          kind: 'realtime',
          channelDefinitionId: 'cd-1',
          requestId: 'req-1',
          from: 'relay',
          organizationId: 'org-1',
          journeyId: 'rtj-1',
        },
        acceptedAt: NOW,
      },
    });
    assert.equal(second?.sessionId, 'contract:S2');
    assert.equal(second?.body.channel, 'rt-b');
    assert.equal(second?.body.text, 'first part', 'without a text part, the first part is the text');
    assert.deepEqual(second?.body.context, {
      kind: 'realtime',
      channelDefinitionId: 'cd-2',
      requestId: 'req-2',
      from: 'S2',
      organizationId: 'org-1',
    });
  });

  it("picks the channel a shared tile's record names in its channel column", async () => {
    const h = harness();
    h.reads
      .addRecord('sample_multimessages', 'r-sms', { sample_body: 'SMS for {firstname}', sample_channel: 'sms-shared' })
      .addRecord('sample_multimessages', 'r-tg', {
        sample_body: 'Telegram for {firstname}',
        sample_channel: 'telegram',
      })
      .addContacts(contact(1), contact(2, { sample_telegramchatid: '4242', donotbulkemail: false }));
    const deliveries = await h.run([
      activity(1, { entityType: 'sample_multimessage', entityId: 'r-sms' }),
      activity(2, { entityType: 'sample_multimessage', entityId: 'r-tg' }),
    ]);
    assert.deepEqual(settledAs(deliveries), ['complete', 'complete']);
    assert.deepEqual(
      h.reads.calls.messageRecord.map((c) => c.columns),
      [
        ['sample_body', 'sample_channel'],
        ['sample_body', 'sample_channel'],
      ],
    );
    assert.deepEqual([...h.reads.calls.contacts[0]!.columns].sort(), [
      'donotbulkemail',
      'donotphone',
      'firstname',
      'lastname',
      'mobilephone',
      'sample_telegramchatid',
    ]);
    assert.deepEqual(
      h.outbound.messages.map((m) => [m.body.channel, m.sessionId, m.body.to, m.body.text]),
      [
        ['sms-shared', SHARED_SMS.senderKey, '+15550000001', 'SMS for Ann1'],
        ['telegram', SHARED_TELEGRAM.senderKey, '4242', 'Telegram for Ann2'],
      ],
    );
  });

  it('sends an event delivered twice in one batch once and completes both deliveries', async () => {
    const h = harness();
    h.reads.addContacts(contact(1));
    const deliveries = await h.run([activity(1), activity(1), realtime('req-1'), realtime('req-1')]);
    assert.deepEqual(settledAs(deliveries), ['complete', 'complete', 'complete', 'complete']);
    assert.deepEqual(h.reads.calls.contacts[0]!.ids, ['c-1']);
    assert.deepEqual(
      h.outbound.messages.map((m) => m.messageId),
      ['req-1', 'row-1'],
    );
  });

  it('keeps counting across batches and registers its counters once per registry', async () => {
    const h = harness();
    h.reads.addContacts(contact(1), contact(2));
    await h.run([activity(1)]);
    await h.run([activity(2), new Error('not an event')]);
    const again = new IntakeStage({
      decode,
      activityFromRow,
      reads: new FakeReads(),
      outbound: new FakeOutbound(),
      channels: channelLookup([SMS]),
      registry: h.registry,
    });
    assert.equal(again.stats().batches, 0);
    assert.deepEqual(h.stage.stats(), {
      batches: 2,
      received: 3,
      sent: 2,
      skippedByCompliance: 0,
      deadLettered: 1,
      deadLetterReasons: { EventUndecodable: 1 },
      abandoned: 0,
      retries: 0,
    });
    assert.match(await h.registry.metrics(), /channel_relay_intake_dead_letters_total\{reason="EventUndecodable"\} 1/);
  });

  describe('options and channels', () => {
    const base = { decode, activityFromRow, reads: new FakeReads(), outbound: new FakeOutbound() };
    it('refuses channels that share a tile without a channel column', () => {
      const bare = { ...SHARED_TELEGRAM, channelField: undefined };
      assert.throws(
        () => new IntakeStage({ ...base, channels: channelLookup([SHARED_SMS, bare]) }),
        (err: unknown) =>
          err instanceof ConfigError &&
          /telegram\.channelField: expected the message record's column naming the channel \(channels sms-shared, telegram share the tile of 'sample_multimessage'\), found nothing/.test(
            err.message,
          ),
      );
    });
    it('refuses two channels on one channel definition with the same sender', () => {
      const twin = { ...ALL_CHANNELS[4]!, name: 'rt-twin' };
      assert.throws(
        () => new IntakeStage({ ...base, channels: channelLookup([ALL_CHANNELS[4]!, twin]) }),
        /rt-a\.sender, rt-twin\.sender: expected distinct senders/,
      );
    });
    it('refuses bad numbers', () => {
      assert.throws(
        () => new IntakeStage({ ...base, channels: channelLookup([]), readConcurrency: 0 }),
        /readConcurrency must be an integer >= 1, found 0/,
      );
      assert.throws(
        () => new IntakeStage({ ...base, channels: channelLookup([]), maxThrottleWaitMs: -1 }),
        /maxThrottleWaitMs must be a finite number of at least 0, found -1/,
      );
      assert.throws(
        () => new IntakeStage({ ...base, channels: channelLookup([]), readRetry: { attempts: 0 } }),
        /readRetry.attempts must be an integer >= 1, found 0/,
      );
      assert.throws(
        () => new IntakeStage({ ...base, channels: channelLookup([]), sendRetry: { attempts: 1.5 } }),
        /sendRetry.attempts must be an integer >= 1, found 1.5/,
      );
      assert.throws(
        () => new IntakeStage({ ...base, channels: channelLookup([]), readRetry: { initialDelayMs: -1 } }),
        /readRetry.initialDelayMs must be a finite number of at least 0, found -1/,
      );
      assert.throws(
        () => new IntakeStage({ ...base, channels: channelLookup([]), sendRetry: { maxDelayMs: Infinity } }),
        /sendRetry.maxDelayMs must be a finite number of at least 0, found Infinity/,
      );
      assert.throws(
        () => new IntakeStage({ ...base, channels: channelLookup([]), abandonDelayMs: Number.NaN }),
        /abandonDelayMs must be a finite number of at least 0, found NaN/,
      );
      assert.throws(
        () => new IntakeStage({ ...base, channels: channelLookup([]), maxAbandonDelayMs: -5 }),
        /maxAbandonDelayMs must be a finite number of at least 0, found -5/,
      );
    });
  });
});
