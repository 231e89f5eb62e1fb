/**
 * Intake's retries within a batch (Dataverse reads, the `outbound` send), the wait before abandoning, a message too
 * large for `outbound`, and the waits an abort or `stop()` cuts short. Fake timers throughout (setTimeout and Date):
 * every wait is the stage's own `delayUnlessAborted`.
 */
import assert from 'node:assert/strict';
import sinon from 'sinon';
import { DataverseError, EventError } from '../../../../src/errors.js';
import type { FakeDelivery } from '../../../helpers/fake-delivery.js';
import { settledAs } from '../../../helpers/fake-delivery.js';
import { activity, activityRow, contact, harness, realtime, truncated } from './fakes.js';

const unavailable = (): DataverseError =>
  new DataverseError('DataverseUnavailable', 'Service Unavailable', { upstream: { status: 503 } });
const timedOut = (): DataverseError =>
  new DataverseError('DataverseTimeout', 'Dataverse did not answer within 30000 ms');
const throttled = (ms: number | undefined): DataverseError =>
  new DataverseError(
    'DataverseThrottled',
    'Number of requests exceeded the limit of 6000 over time window of 300 seconds.',
    {
      ...(ms === undefined ? {} : { retryAfterMs: ms }),
      upstream: { status: 429, code: '0x80072322' },
    },
  );

/** Fails the first `n` calls with `error()`, then answers. */
function failing(n: number, error: () => unknown): () => unknown {
  let left = n;
  return () => (left-- > 0 ? error() : undefined);
}

/** A run whose end can be observed while the fake clock moves. */
function track(run: Promise<FakeDelivery[]>): { done: () => boolean; result: Promise<FakeDelivery[]> } {
  let done = false;
  void run.then(() => (done = true));
  return { done: () => done, result: run };
}

describe('pipeline: IntakeStage, retries within the batch (fake timers)', () => {
  let clock: sinon.SinonFakeTimers;
  beforeEach(() => (clock = sinon.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] })));
  afterEach(() => clock.restore());

  describe('Dataverse reads', () => {
    it('Dataverse unavailable for 5 s, then back: every activity is sent once and completed, none abandoned or dead-lettered', async () => {
      const h = harness();
      h.reads.addContacts(contact(1), contact(2), contact(3));
      const backAt = Date.now() + 5000;
      const outage = (): unknown => (Date.now() < backAt ? unavailable() : undefined);
      h.reads.fail.messageRecord = outage;
      h.reads.fail.contacts = outage;
      const run = track(h.run([activity(1), activity(2), activity(3)]));

      await clock.tickAsync(4999);
      assert.equal(run.done(), false);
      assert.equal(h.reads.calls.messageRecord.length, 4, 'tried at 0, 0.5, 1.5 and 3.5 s');
      assert.deepEqual(
        h.stage.stats().abandoned + h.stage.stats().deadLettered + h.stage.stats().sent,
        0,
        'nothing settled while retrying',
      );

      await clock.tickAsync(2501);
      const deliveries = await run.result;
      assert.deepEqual(settledAs(deliveries), ['complete', 'complete', 'complete']);
      assert.equal(h.reads.calls.messageRecord.length, 5, 'the fifth attempt, at 7.5 s, was answered');
      assert.equal(h.reads.calls.contacts.length, 1);
      assert.deepEqual(
        h.outbound.sent.map((m) => m.messageId),
        ['row-1', 'row-2', 'row-3'],
      );
      assert.deepEqual(h.stage.stats(), {
        batches: 1,
        received: 3,
        sent: 3,
        skippedByCompliance: 0,
        deadLettered: 0,
        deadLetterReasons: {},
        abandoned: 0,
        retries: 4,
      });
    });

    it('retries every read of the batch: a truncated event’s row and the contacts (timeouts)', async () => {
      const h = harness();
      h.reads.activityRows.set('row-7', activityRow(7));
      h.reads.addContacts(contact(7), contact(8));
      h.reads.fail.activity = failing(1, unavailable);
      h.reads.fail.contacts = failing(2, timedOut);
      const run = track(h.run([truncated('row-7'), activity(8)]));
      // activity row: 0 and 0.5 s; message record at 0.5 s; contacts at 0.5, 1 and 2 s.
      await clock.tickAsync(1999);
      assert.equal(run.done(), false);
      assert.equal(h.reads.calls.contacts.length, 2);
      await clock.tickAsync(1);
      assert.deepEqual(settledAs(await run.result), ['complete', 'complete']);
      assert.deepEqual(h.reads.calls.activity, [['row-7'], ['row-7']]);
      assert.equal(h.reads.calls.contacts.length, 3);
      assert.deepEqual(h.outbound.sent.map((m) => m.messageId).sort(), ['row-7', 'row-8']);
      assert.equal(h.stage.stats().retries, 3);
    });

    it('attempts exhausted: abandons each delivery after a wait that grows with its delivery count (capped), with no further read', async () => {
      const h = harness({ maxAbandonDelayMs: 5000 });
      h.reads.fail.messageRecord = () => unavailable();
      const run = track(h.run([activity(1), activity(2), activity(3), realtime('req-1')], undefined, [1, 2, 9, 1]));

      // Six attempts (readRetry.attempts): at 0, 0.5, 1.5, 3.5, 7.5 and 15.5 s.
      await clock.tickAsync(15_499);
      assert.equal(h.reads.calls.messageRecord.length, 5);
      await clock.tickAsync(1);
      assert.equal(h.reads.calls.messageRecord.length, 6);
      assert.equal(h.stage.stats().sent, 1, 'the real-time message went out at once');

      // Then abandonDelayMs (2 s) × deliveryCount: 2 s, 4 s, and 18 s capped at 5 s.
      await clock.tickAsync(1999);
      assert.equal(h.stage.stats().abandoned, 0);
      await clock.tickAsync(1);
      assert.equal(h.stage.stats().abandoned, 1);
      await clock.tickAsync(2000);
      assert.equal(h.stage.stats().abandoned, 2);
      assert.equal(run.done(), false);
      await clock.tickAsync(1000);
      const deliveries = await run.result;
      assert.deepEqual(settledAs(deliveries), ['abandon', 'abandon', 'abandon', 'complete']);
      assert.equal(h.reads.calls.messageRecord.length, 6);
      assert.equal(h.reads.calls.contacts.length, 0);
      assert.deepEqual(h.stage.stats(), {
        batches: 1,
        received: 4,
        sent: 1,
        skippedByCompliance: 0,
        deadLettered: 0,
        deadLetterReasons: {},
        abandoned: 3,
        retries: 5,
      });
    });

    it('throttled: waits out Retry-After, then reads again, while the real-time message is sent at once', async () => {
      const h = harness();
      h.reads.addContacts(contact(1), contact(2));
      h.reads.fail.contacts = failing(1, () => throttled(5000));
      const run = track(h.run([activity(1), activity(2), realtime('req-1')]));
      await clock.tickAsync(4999);
      assert.equal(h.reads.calls.contacts.length, 1);
      assert.deepEqual(
        h.outbound.sent.map((m) => m.messageId),
        ['req-1'],
      );
      assert.equal(h.stage.stats().sent, 1);
      await clock.tickAsync(1);
      assert.deepEqual(settledAs(await run.result), ['complete', 'complete', 'complete']);
      assert.equal(h.reads.calls.contacts.length, 2);
      assert.deepEqual(
        h.outbound.sent.map((m) => m.messageId),
        ['req-1', 'row-1', 'row-2'],
      );
      assert.equal(h.stage.stats().abandoned, 0);
    });

    it('starts no read of the batch while a Retry-After runs', async () => {
      const h = harness({ readConcurrency: 2 });
      h.reads.addRecord('sample_specialmessages', 'msg-2', { sample_text: 'two' }).addContacts(contact(1), contact(2));
      const once = new Map<string, () => unknown>([
        ['msg-1', failing(1, () => throttled(3000))],
        ['msg-2', failing(1, unavailable)],
      ]);
      h.reads.fail.messageRecord = (_set, id) => once.get(id)?.();
      const run = track(h.run([activity(1), activity(2, { entityId: 'msg-2' })]));
      // msg-2's backoff (0.5 s) ends long before msg-1's Retry-After: it waits for the Retry-After too.
      await clock.tickAsync(2999);
      assert.deepEqual(
        h.reads.calls.messageRecord.map((c) => c.id),
        ['msg-1', 'msg-2'],
      );
      await clock.tickAsync(1);
      assert.deepEqual(settledAs(await run.result), ['complete', 'complete']);
      assert.deepEqual(h.reads.calls.messageRecord.map((c) => c.id).sort(), ['msg-1', 'msg-1', 'msg-2', 'msg-2']);
    });

    it('waits a default second when Retry-After is missing, then reads again', async () => {
      const h = harness();
      h.reads.activityRows.set('row-1', activityRow(1));
      h.reads.addContacts(contact(1));
      h.reads.fail.activity = failing(1, () => throttled(undefined));
      const run = track(h.run([truncated('row-1')]));
      await clock.tickAsync(999);
      assert.deepEqual(h.reads.calls.activity, [['row-1']]);
      await clock.tickAsync(1);
      assert.deepEqual(settledAs(await run.result), ['complete']);
      assert.deepEqual(h.reads.calls.activity, [['row-1'], ['row-1']]);
    });

    it('a Retry-After beyond maxThrottleWaitMs ends the batch’s reads: its deliveries are abandoned after maxThrottleWaitMs', async () => {
      const h = harness({ readConcurrency: 1, maxThrottleWaitMs: 30_000 });
      h.reads.addRecord('sample_specialmessages', 'msg-2', { sample_text: 'two' });
      h.reads.activityRows.set('row-3', activityRow(3, { msdyncrm_entityid: 'msg-2' }));
      h.reads.fail.messageRecord = (_set, id) => (id === 'msg-1' ? throttled(120_000) : undefined);
      const run = track(h.run([activity(1), activity(2, { entityId: 'msg-2' }), truncated('row-3')]));
      await clock.tickAsync(29_999);
      assert.equal(run.done(), false);
      await clock.tickAsync(1);
      assert.deepEqual(settledAs(await run.result), ['abandon', 'abandon', 'abandon']);
      assert.deepEqual(h.reads.calls.activity, [['row-3']], 'the truncated read came before the throttle');
      assert.deepEqual(
        h.reads.calls.messageRecord.map((c) => c.id),
        ['msg-1'],
      );
      assert.equal(h.reads.calls.contacts.length, 0);
    });

    it('throttled on every attempt: abandons after the attempts and the wait, like any retryable error', async () => {
      const h = harness({ readRetry: { attempts: 3 } });
      h.reads.fail.contacts = () => throttled(2000);
      const run = track(h.run([activity(1)], undefined, 2));
      await clock.tickAsync(4000);
      assert.equal(h.reads.calls.contacts.length, 3);
      await clock.tickAsync(3999);
      assert.equal(run.done(), false);
      await clock.tickAsync(1);
      assert.deepEqual(settledAs(await run.result), ['abandon']);
      assert.equal(h.reads.calls.contacts.length, 3);
    });
  });

  describe('the outbound send', () => {
    it('failing transiently, then OK: sent once, every delivery completed', async () => {
      const h = harness();
      h.reads.addContacts(contact(1), contact(2));
      h.outbound.failures.push(
        new Error('ServiceBusError: ServerBusy'),
        new Error('ServiceBusError: the operation timed out'),
      );
      const run = track(h.run([activity(1), activity(2), new EventError('EventUndecodable', 'broken')]));
      await clock.tickAsync(1499);
      assert.equal(h.outbound.sends.length, 2, 'tried at 0 and 0.5 s');
      assert.equal(h.stage.stats().sent, 0);
      await clock.tickAsync(1);
      assert.deepEqual(settledAs(await run.result), ['complete', 'complete', 'deadLetter']);
      assert.equal(h.outbound.sends.length, 3);
      assert.deepEqual(
        h.outbound.sent.map((m) => m.messageId),
        ['row-1', 'row-2'],
      );
      assert.deepEqual(h.stage.stats(), {
        batches: 1,
        received: 3,
        sent: 2,
        skippedByCompliance: 0,
        deadLettered: 1,
        deadLetterReasons: { EventUndecodable: 1 },
        abandoned: 0,
        retries: 2,
      });
    });

    it('failing on every attempt: abandons after sendRetry.attempts and a wait that grows with the delivery count', async () => {
      const h = harness({ sendRetry: { attempts: 3 } });
      h.reads.addContacts(contact(1), contact(2));
      h.outbound.failure = new Error('ServiceBusError: ServiceUnavailable');
      const run = track(h.run([activity(1), activity(2), new EventError('EventUndecodable', 'broken')], undefined, 3));
      await clock.tickAsync(1500);
      assert.equal(h.outbound.sends.length, 3);
      await clock.tickAsync(5999);
      assert.equal(run.done(), false);
      await clock.tickAsync(1);
      assert.deepEqual(settledAs(await run.result), ['abandon', 'abandon', 'deadLetter']);
      assert.equal(h.outbound.sends.length, 3);
      assert.deepEqual(h.stage.stats(), {
        batches: 1,
        received: 3,
        sent: 0,
        skippedByCompliance: 0,
        deadLettered: 1,
        deadLetterReasons: { EventUndecodable: 1 },
        abandoned: 2,
        retries: 2,
      });
      assert.match(await h.registry.metrics(), /channel_relay_intake_events_total\{outcome="abandoned"\} 2/);
    });

    it('an error that says it is not retryable: no second attempt, abandoned after the wait', async () => {
      const h = harness();
      h.outbound.failure = Object.assign(new Error("The messaging entity 'outbound' could not be found."), {
        code: 'MessagingEntityNotFound',
        retryable: false,
      });
      const run = track(h.run([realtime('req-1')]));
      await clock.tickAsync(1999);
      assert.equal(run.done(), false);
      await clock.tickAsync(1);
      assert.deepEqual(settledAs(await run.result), ['abandon']);
      assert.equal(h.outbound.sends.length, 1);
    });
  });

  describe('abort and stop', () => {
    it('abort during a retry wait: everything not settled is abandoned at once', async () => {
      const h = harness();
      h.reads.fail.messageRecord = () => unavailable();
      h.outbound.failures.push(new Error('ServiceBusError: ServerBusy'));
      const controller = new AbortController();
      const run = h.run(
        [activity(1), realtime('req-1'), activity(2), new EventError('EventUndecodable', 'broken')],
        controller.signal,
        5,
      );
      await clock.tickAsync(200); // the read and the real-time send are both in their first backoff
      controller.abort();
      // No further tick: only a stage that waits for nothing more can end.
      assert.deepEqual(settledAs(await run), ['abandon', 'abandon', 'abandon', 'deadLetter']);
      assert.equal(h.reads.calls.messageRecord.length, 1);
      assert.equal(h.outbound.sends.length, 1);
      assert.equal(h.stage.stats().retries, 2);
    });

    it('abort during the wait before abandoning: abandoned at once', async () => {
      const h = harness({ readRetry: { attempts: 1 } });
      h.reads.fail.messageRecord = () => unavailable();
      const controller = new AbortController();
      const run = h.run([activity(1)], controller.signal, 9);
      await clock.tickAsync(100);
      assert.equal(h.stage.stats().abandoned, 0);
      controller.abort();
      assert.deepEqual(settledAs(await run), ['abandon']);
    });

    it('stop() during a Retry-After: the wait ends, the deliveries are abandoned at once and not read again', async () => {
      const h = harness();
      h.reads.fail.contacts = () => throttled(30_000);
      const run = h.run([activity(1), activity(2), realtime('req-1')]);
      await clock.tickAsync(100);
      h.stage.stop();
      assert.deepEqual(settledAs(await run), ['abandon', 'abandon', 'complete']);
      assert.equal(h.reads.calls.contacts.length, 1);
    });

    it('stop() during a backoff, and during the pause of a refused identity: abandoned at once', async () => {
      const h = harness();
      h.reads.fail.messageRecord = () => unavailable();
      const backoff = h.run([activity(1)], undefined, 3);
      await clock.tickAsync(100);
      const h2 = harness({ identityPauseMs: 20_000 });
      h2.reads.fail.contacts = () =>
        new DataverseError('DataverseUnauthorized', 'Principal user is missing prvReadContact privilege', {
          upstream: { status: 403 },
        });
      const paused = h2.run([activity(1)]);
      await clock.tickAsync(100);
      h.stage.stop();
      h2.stage.stop();
      assert.deepEqual(settledAs(await backoff), ['abandon']);
      assert.deepEqual(settledAs(await paused), ['abandon']);
      assert.equal(h.reads.calls.messageRecord.length, 1);
    });

    it('after stop(), a batch is still read and sent, once, without retries or waits', async () => {
      const h = harness();
      h.stage.stop();
      h.stage.stop();
      h.reads.addRecord('sample_specialmessages', 'msg-2', { sample_text: 'two' }).addContacts(contact(1), contact(2));
      h.reads.fail.messageRecord = (_set, id) => (id === 'msg-1' ? unavailable() : undefined);
      const deliveries = await h.run(
        [activity(1), activity(2, { entityId: 'msg-2' }), realtime('req-1')],
        undefined,
        4,
      );
      assert.deepEqual(settledAs(deliveries), ['abandon', 'complete', 'complete']);
      assert.deepEqual(h.reads.calls.messageRecord.map((c) => c.id).sort(), ['msg-1', 'msg-2']);
      assert.equal(h.stage.stats().retries, 0);
    });
  });
});

describe('pipeline: IntakeStage, a message too large for outbound', () => {
  it('dead-letters only that activity, with the sizes, and sends and completes the rest of the batch', async () => {
    const h = harness();
    h.outbound.maxBodyBytes = 1000;
    const big = `${'x'.repeat(2000)} {firstname}`;
    h.reads
      .addRecord('sample_specialmessages', 'msg-big', { sample_text: big })
      .addContacts(contact(1), contact(2), contact(3), contact(4));
    const deliveries = await h.run([
      activity(1),
      activity(2, { entityId: 'msg-big' }),
      realtime('req-1'),
      activity(3),
      activity(4, { entityId: 'msg-big' }),
    ]);

    assert.deepEqual(settledAs(deliveries), ['complete', 'deadLetter', 'complete', 'complete', 'deadLetter']);
    assert.deepEqual(
      h.outbound.sent.map((m) => m.messageId),
      ['req-1', 'row-1', 'row-3'],
    );
    const bytes = (id: string): number =>
      Buffer.byteLength(JSON.stringify(h.outbound.messages.find((m) => m.messageId === id)!.body));
    for (const [i, id] of [
      [1, 'row-2'],
      [4, 'row-4'],
    ] as const) {
      assert.deepEqual(deliveries[i]!.settlements[0], {
        how: 'deadLetter',
        reason: 'OutboundMessageTooLarge',
        description:
          `the outbound message of activity row ${id} (channel sms, a text of ${big.length - '{firstname}'.length + 'Ann2'.length} characters) is too large for the outbound queue: ` +
          `its JSON body is ${bytes(id)} bytes and the queue takes at most 1000 bytes per batch`,
      });
    }
    // One call refused per message too large (the real sender refuses before sending anything), then the rest.
    assert.deepEqual(
      h.outbound.sends.map((s) => s.map((m) => m.messageId)),
      [['req-1'], ['row-1', 'row-3', 'row-2', 'row-4'], ['row-1', 'row-3', 'row-4'], ['row-1', 'row-3']],
    );
    assert.deepEqual(h.stage.stats(), {
      batches: 1,
      received: 5,
      sent: 3,
      skippedByCompliance: 0,
      deadLettered: 2,
      deadLetterReasons: { OutboundMessageTooLarge: 2 },
      abandoned: 0,
      retries: 0,
    });
    assert.match(
      await h.registry.metrics(),
      /channel_relay_intake_dead_letters_total\{reason="OutboundMessageTooLarge"\} 2/,
    );
  });

  it('dead-letters a real-time message too large, naming the request', async () => {
    const h = harness();
    h.outbound.maxBodyBytes = 600;
    const deliveries = await h.run([realtime('req-big', { message: { text: 'y'.repeat(700) } }), realtime('req-2')]);
    assert.deepEqual(settledAs(deliveries), ['deadLetter', 'complete']);
    assert.match(
      deliveries[0]!.settlements[0]!.how === 'deadLetter' ? deliveries[0]!.settlements[0]!.description : '',
      /^the outbound message of request req-big \(channel rt, a text of 700 characters\) is too large/,
    );
    assert.deepEqual(
      h.outbound.sent.map((m) => m.messageId),
      ['req-2'],
    );
  });
});
