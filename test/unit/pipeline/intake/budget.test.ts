/**
 * Intake's time budget per batch (`batchBudgetMs`, `callTimeoutMs`): a batch ends, every delivery settled, before its
 * deadline, however its reads and sends fail, so that no message's lock (renewed for `maxLockRenewalMs`, 5 minutes by
 * default) runs out while intake still works on it. Fake timers throughout (setTimeout and Date); the fakes' calls
 * take `latencyMs` of fake time, as calls that time out do.
 */
import assert from 'node:assert/strict';
import sinon from 'sinon';
import { DataverseError } from '../../../../src/errors.js';
import { fakeDelivery, settledAs, type FakeDelivery } from '../../../helpers/fake-delivery.js';
import {
  activity,
  activityRow,
  contact,
  decode,
  activityFromRow,
  FakeOutbound,
  FakeReads,
  harness,
  realtime,
  truncated,
  type Harness,
} from './fakes.js';
import { IntakeStage } from '../../../../src/pipeline/intake/stage.js';
import { channelLookup } from '../../../helpers/channels.js';

const timedOut = (): DataverseError =>
  new DataverseError('DataverseTimeout', 'Dataverse did not answer within 30000 ms');
const throttled = (ms: number): DataverseError =>
  new DataverseError('DataverseThrottled', 'Number of requests exceeded the limit', {
    retryAfterMs: ms,
    upstream: { status: 429 },
  });

/** Fails the first `n` calls with `error()`, then answers. */
function failing(n: number, error: () => unknown): () => unknown {
  let left = n;
  return () => (left-- > 0 ? error() : undefined);
}

/** Deliveries that record when (fake `Date.now()`) each was settled. */
function timedDeliveries(
  bodies: readonly unknown[],
  deliveryCount = 1,
): { deliveries: FakeDelivery[]; settledAt: number[] } {
  const settledAt: number[] = [];
  const deliveries = bodies.map((body, i) => {
    const d = fakeDelivery(body, { messageId: `m-${i}`, deliveryCount });
    for (const how of ['complete', 'abandon'] as const) {
      const settle = d[how];
      d[how] = async () => {
        settledAt.push(Date.now());
        await settle();
      };
    }
    const deadLetter = d.deadLetter;
    d.deadLetter = async (reason, description) => {
      settledAt.push(Date.now());
      await deadLetter(reason, description);
    };
    return d;
  });
  return { deliveries, settledAt };
}

/** Starts one batch; `endedAt` is the fake time at which handle() resolved (undefined while it runs). */
function start(
  h: Harness,
  bodies: readonly unknown[],
  deliveryCount = 1,
): {
  deliveries: FakeDelivery[];
  settledAt: number[];
  started: number;
  endedAt: () => number | undefined;
  done: Promise<void>;
} {
  const { deliveries, settledAt } = timedDeliveries(bodies, deliveryCount);
  const started = Date.now();
  let ended: number | undefined;
  const done = h.stage.handle(deliveries, new AbortController().signal).then(() => void (ended = Date.now()));
  return { deliveries, settledAt, started, endedAt: () => ended, done };
}

describe('pipeline: IntakeStage, the time budget of a batch (fake timers)', () => {
  let clock: sinon.SinonFakeTimers;
  beforeEach(() => (clock = sinon.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] })));
  afterEach(() => clock.restore());

  it('a truncated event whose reads time out 5 times each (the reviewer’s ~590 s case): ends, abandoned, within the default 240 s', async () => {
    const h = harness();
    h.reads.activityRows.set('row-1', activityRow(1));
    h.reads.addContacts(contact(1));
    for (const kind of ['activity', 'messageRecord', 'contacts'] as const) {
      h.reads.latencyMs[kind] = 30_000;
      h.reads.fail[kind] = failing(5, timedOut);
    }
    const run = start(h, [truncated('row-1')]);

    await clock.tickAsync(240_000);
    assert.notEqual(run.endedAt(), undefined, 'handle() ended within the budget');
    assert.ok(run.endedAt()! - run.started <= 240_000);
    assert.deepEqual(settledAs(run.deliveries), ['abandon']);
    assert.ok(
      run.settledAt.every((t) => t - run.started <= 240_000),
      `settled at ${run.settledAt.map((t) => t - run.started).join(', ')} ms`,
    );
    // Activity row: 6 attempts of 30 s (the sixth answered) with 15.5 s of backoff, done at 195.5 s; the message
    // record's first attempt (to 225.5 s) timed out, and a second after its backoff could not end by 240 s.
    assert.equal(h.reads.calls.activity.length, 6);
    assert.equal(h.reads.calls.messageRecord.length, 1);
    assert.equal(h.reads.calls.contacts.length, 0);
    assert.equal(h.outbound.sends.length, 0);
    assert.equal(h.stage.stats().abandoned, 1);
  });

  it('reads that keep timing out: no attempt starts that could not end before the deadline; the real-time message still goes', async () => {
    const h = harness({ batchBudgetMs: 100_000, callTimeoutMs: 30_000, readRetry: { attempts: 100 } });
    h.reads.latencyMs.messageRecord = 30_000;
    h.reads.fail.messageRecord = () => timedOut();
    const run = start(h, [activity(1), activity(2), realtime('req-1')]);

    // Attempts at 0, 30.5 and 61.5 s (ending at 91.5 s); the next, after a 2 s backoff, would end at 123.5 s.
    await clock.tickAsync(91_499);
    assert.equal(h.reads.calls.messageRecord.length, 3);
    assert.equal(run.endedAt(), undefined);
    // Then abandoned after the 2 s abandon delay (abandonDelayMs × 1), at 93.5 s.
    await clock.tickAsync(2000);
    assert.equal(run.endedAt(), undefined);
    await clock.tickAsync(1);
    await run.done;
    assert.equal(run.endedAt()! - run.started, 93_500);
    assert.deepEqual(settledAs(run.deliveries), ['abandon', 'abandon', 'complete']);
    assert.equal(h.reads.calls.messageRecord.length, 3);
    assert.deepEqual(
      h.outbound.sent.map((m) => m.messageId),
      ['req-1'],
    );
  });

  it('the outbound send: no retry whose attempt could not end before the deadline; the abandon delay is capped by what is left', async () => {
    const h = harness({
      batchBudgetMs: 100_000,
      callTimeoutMs: 10_000,
      readRetry: { initialDelayMs: 5000, maxDelayMs: 60_000 },
      sendRetry: { attempts: 10, initialDelayMs: 5000, maxDelayMs: 60_000 },
    });
    h.reads.addContacts(contact(1));
    h.outbound.latencyMs = 10_000;
    h.outbound.failure = new Error('ServiceBusError: ServerBusy');
    // Delivered 20 times: the abandon delay would be 30 s (2 s × 20, capped at maxAbandonDelayMs).
    const run = start(h, [activity(1)], 20);

    // Sends at 0, 15, 35 and 65 s, each failing after 10 s; the next after a 40 s backoff would end at 125 s.
    await clock.tickAsync(75_000);
    assert.equal(h.outbound.sends.length, 4);
    assert.equal(run.endedAt(), undefined);
    // 30 s of abandon delay from 75 s would end past the 100 s deadline: abandoned at the deadline.
    await clock.tickAsync(24_999);
    assert.equal(run.endedAt(), undefined);
    await clock.tickAsync(1);
    await run.done;
    assert.deepEqual(settledAs(run.deliveries), ['abandon']);
    assert.deepEqual(
      run.settledAt.map((t) => t - run.started),
      [100_000],
    );
    assert.equal(h.outbound.sends.length, 4);
    assert.equal(h.outbound.sent.length, 0);
  });

  it('a send that could not end before the deadline is not started after slow reads', async () => {
    const h = harness({ batchBudgetMs: 60_000, callTimeoutMs: 20_000 });
    h.reads.addContacts(contact(1));
    h.reads.latencyMs.messageRecord = 25_000;
    h.reads.latencyMs.contacts = 20_000;
    const run = start(h, [activity(1), realtime('req-1')]);
    // The record answers at 25 s, the contacts at 45 s: a send starting then could end at 65 s, past 60 s.
    await clock.tickAsync(45_000);
    assert.equal(h.reads.calls.contacts.length, 1);
    await clock.tickAsync(2000);
    await run.done;
    assert.deepEqual(settledAs(run.deliveries), ['abandon', 'complete']);
    assert.deepEqual(
      h.outbound.sends.map((s) => s.map((m) => m.messageId)),
      [['req-1']],
    );
    assert.ok(run.endedAt()! - run.started <= 60_000);
  });

  it('a Retry-After whose next read could not end before the deadline is not waited out', async () => {
    const h = harness({ batchBudgetMs: 100_000, callTimeoutMs: 10_000, readRetry: { attempts: 100 } });
    h.reads.fail.contacts = () => throttled(20_000);
    const run = start(h, [activity(1)]);
    // Reads at 0, 20, 40, 60 and 80 s; another after the 20 s Retry-After would end at 110 s.
    await clock.tickAsync(80_000);
    assert.equal(h.reads.calls.contacts.length, 5);
    await clock.tickAsync(1999);
    assert.equal(run.endedAt(), undefined);
    await clock.tickAsync(1);
    await run.done;
    assert.deepEqual(settledAs(run.deliveries), ['abandon']);
    assert.equal(h.reads.calls.contacts.length, 5);
    assert.equal(run.endedAt()! - run.started, 82_000);
  });

  it('within the budget nothing changes: slow reads that end in time are waited for and the batch is sent', async () => {
    const h = harness();
    h.reads.activityRows.set('row-1', activityRow(1));
    h.reads.addContacts(contact(1), contact(2));
    h.reads.latencyMs.activity = 29_000;
    h.reads.fail.activity = failing(2, timedOut);
    const run = start(h, [truncated('row-1'), activity(2)]);
    await clock.tickAsync(90_000);
    await run.done;
    assert.deepEqual(settledAs(run.deliveries), ['complete', 'complete']);
    assert.deepEqual(h.outbound.sent.map((m) => m.messageId).sort(), ['row-1', 'row-2']);
  });

  it('refuses a budget that is not a positive number or is shorter than one call', () => {
    const base = {
      decode,
      activityFromRow,
      reads: new FakeReads(),
      outbound: new FakeOutbound(),
      channels: channelLookup([]),
    };
    assert.throws(
      () => new IntakeStage({ ...base, batchBudgetMs: 0 }),
      /batchBudgetMs must be a finite number above 0, found 0/,
    );
    assert.throws(
      () => new IntakeStage({ ...base, batchBudgetMs: Infinity }),
      /batchBudgetMs must be a finite number above 0, found Infinity/,
    );
    assert.throws(
      () => new IntakeStage({ ...base, callTimeoutMs: Number.NaN }),
      /callTimeoutMs must be a finite number above 0, found NaN/,
    );
    assert.throws(
      () => new IntakeStage({ ...base, batchBudgetMs: 20_000 }),
      /batchBudgetMs \(20000\) must be at least callTimeoutMs \(30000\)/,
    );
    assert.doesNotThrow(() => new IntakeStage({ ...base, batchBudgetMs: 20_000, callTimeoutMs: 20_000 }));
  });
});
