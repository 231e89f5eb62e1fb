import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import sinon from 'sinon';
import { DataverseError } from '../../../../src/errors.js';
import { silentLogger } from '../../../../src/log.js';
import type { InteractionMessage } from '../../../../src/pipeline/messages.js';
import { marketingInteraction } from '../../../helpers/fixtures.js';
import type { InteractionWriter, WriteResult } from '../../../../src/pipeline/ports.js';
import { RecorderStage, type RecorderOptions } from '../../../../src/pipeline/recorder/stage.js';
import { fakeDelivery, settledAs, type FakeDelivery } from '../../../helpers/fake-delivery.js';

/** A writer that answers each call from a script and records what it was asked. */
function scriptedWriter(
  script: Array<(items: readonly InteractionMessage[]) => WriteResult[]>,
): InteractionWriter & { calls: string[][] } {
  const calls: string[][] = [];
  return {
    calls,
    write: async (items) => {
      calls.push(items.map((i) => (i.context.kind === 'marketing' ? i.context.activityId : i.context.requestId)));
      const next = script.shift();
      if (!next) throw new Error('writer called more often than scripted');
      return next(items);
    },
  };
}

const ok = (items: readonly unknown[]): WriteResult[] => items.map(() => ({ ok: true }));
const throttled = (ms: number): DataverseError =>
  new DataverseError(
    'DataverseThrottled',
    'Number of requests exceeded the limit of 6000 over time window of 300 seconds.',
    { retryAfterMs: ms, upstream: { status: 429, code: '0x80072322' } },
  );

describe('pipeline: RecorderStage', () => {
  const sleeps: number[] = [];
  const sleep = async (ms: number): Promise<void> => void sleeps.push(ms);
  beforeEach(() => (sleeps.length = 0));
  const run = async (
    stage: RecorderStage,
    deliveries: FakeDelivery[],
    signal = new AbortController().signal,
  ): Promise<void> => stage.handle(deliveries, signal);

  it('an interaction delivered again after its write (its completion failed) is completed, not written twice', async () => {
    const writer = scriptedWriter([ok, ok]);
    const registry = new Registry();
    const stage = new RecorderStage({ writer, log: silentLogger(), registry, sleep });
    // The lock was lost while the process was starved: Dataverse has 'a', the bus does not know it.
    const first = fakeDelivery(marketingInteraction('a'));
    first.complete = async () => {
      throw new Error('The lock supplied is invalid. Either the lock expired, or the message has already been removed');
    };
    await run(stage, [first, fakeDelivery(marketingInteraction('b'))]);
    const again = [
      fakeDelivery(marketingInteraction('a'), { deliveryCount: 2 }),
      fakeDelivery(marketingInteraction('c')),
    ];
    await run(stage, again);
    assert.deepEqual(writer.calls, [['a', 'b'], ['c']], "'a' written once");
    assert.deepEqual(settledAs(again), ['complete', 'complete']);
    assert.deepEqual(stage.stats(), { written: 2, alreadyWritten: 1, deadLettered: 0, abandoned: 0, retries: 0 });
    assert.match(await registry.metrics(), /channel_relay_recorder_interactions_total\{outcome="already_written"\} 1/);
    // Another response type of the same activity is another interaction.
    await run(stage, [fakeDelivery(marketingInteraction('a', 'delivered'))]);
    assert.deepEqual(writer.calls.at(-1), ['a']);
  });

  it('a completion that resolved with a lost lock (as the Service Bus delivery settles one) is remembered too', async () => {
    const writer = scriptedWriter([ok]);
    const stage = new RecorderStage({ writer, log: silentLogger(), sleep });
    await run(stage, [fakeDelivery(marketingInteraction('a'), { lockLost: true })]);
    const again = [fakeDelivery(marketingInteraction('a'), { deliveryCount: 2 })];
    await run(stage, again);
    assert.deepEqual(writer.calls, [['a']], "'a' written once");
    assert.deepEqual(settledAs(again), ['complete']);
  });

  it('forgets an interaction once the broker confirmed its completion: remember.max is spent on failed settlements only', async () => {
    const writer = scriptedWriter([ok, ok, ok, ok]);
    // Room for 'a' and one write in flight.
    const stage = new RecorderStage({ writer, log: silentLogger(), sleep, remember: { max: 2, ttlMs: 3_600_000 } });
    await run(stage, [fakeDelivery(marketingInteraction('a'), { lockLost: true })]);
    // Completed for sure: gone from the queue, nothing to remember (remembered, 'b' and 'c' would push 'a' out).
    await run(stage, [fakeDelivery(marketingInteraction('b'))]);
    await run(stage, [fakeDelivery(marketingInteraction('c'))]);
    await run(stage, [
      fakeDelivery(marketingInteraction('a'), { deliveryCount: 2 }),
      fakeDelivery(marketingInteraction('d')),
    ]);
    assert.deepEqual(writer.calls, [['a'], ['b'], ['c'], ['d']], "'a' written once");
    assert.deepEqual(stage.stats(), { written: 4, alreadyWritten: 1, deadLettered: 0, abandoned: 0, retries: 0 });
  });

  it('remembers nothing with remember.max 0: a redelivery is written again (at least once)', async () => {
    const writer = scriptedWriter([ok, ok]);
    const stage = new RecorderStage({ writer, log: silentLogger(), sleep, remember: { max: 0, ttlMs: 3_600_000 } });
    await run(stage, [fakeDelivery(marketingInteraction('a'), { lockLost: true })]);
    await run(stage, [fakeDelivery(marketingInteraction('a'), { deliveryCount: 2 })]);
    assert.deepEqual(writer.calls, [['a'], ['a']]);
  });

  it('writes a batch in one call and completes each delivery', async () => {
    const writer = scriptedWriter([ok]);
    const registry = new Registry();
    const stage = new RecorderStage({ writer, log: silentLogger(), registry, sleep });
    const deliveries = ['a', 'b', 'c'].map((id) => fakeDelivery(marketingInteraction(id)));
    await run(stage, deliveries);
    assert.deepEqual(writer.calls, [['a', 'b', 'c']]);
    assert.deepEqual(settledAs(deliveries), ['complete', 'complete', 'complete']);
    assert.deepEqual(stage.stats(), { written: 3, alreadyWritten: 0, deadLettered: 0, abandoned: 0, retries: 0 });
    assert.match(await registry.metrics(), /channel_relay_recorder_interactions_total\{outcome="written"\} 3/);
  });

  it('two stages on one registry share its counter', async () => {
    const registry = new Registry();
    const first = new RecorderStage({ writer: scriptedWriter([ok]), log: silentLogger(), registry, sleep });
    const second = new RecorderStage({ writer: scriptedWriter([ok]), log: silentLogger(), registry, sleep });
    await run(first, [fakeDelivery(marketingInteraction('a'))]);
    await run(second, [fakeDelivery(marketingInteraction('b')), fakeDelivery(marketingInteraction('c'))]);
    assert.match(await registry.metrics(), /channel_relay_recorder_interactions_total\{outcome="written"\} 3/);
  });

  it('dead-letters an unreadable body with the field that is wrong, and writes the rest', async () => {
    const writer = scriptedWriter([ok]);
    const stage = new RecorderStage({ writer, log: silentLogger(), sleep });
    const bad = fakeDelivery({
      v: 1,
      context: { kind: 'marketing' },
      responseType: 'sent',
      channel: 'sms',
      occurredAt: 1,
    });
    const broken = fakeDelivery(Buffer.from('{not json'));
    const good = fakeDelivery(marketingInteraction('a'));
    await run(stage, [bad, broken, good]);
    assert.deepEqual(settledAs([bad, broken, good]), ['deadLetter', 'deadLetter', 'complete']);
    assert.deepEqual(bad.settlements[0], {
      how: 'deadLetter',
      reason: 'EventMissingAttribute',
      description: "interaction message: 'context.activityId' must be a non-empty string, found nothing",
    });
    assert.equal(broken.settlements[0]?.how === 'deadLetter' && broken.settlements[0].reason, 'EventUndecodable');
    assert.deepEqual(writer.calls, [['a']]);
  });

  it("dead-letters one permanent refusal with Dataverse's message and code", async () => {
    const refusal = new DataverseError(
      'DataverseBadRequest',
      "'ResponseType' must be one of sent, delivered, failed, opened, keyword.",
      { upstream: { status: 400, code: '0x80040203' } },
    );
    const writer = scriptedWriter([
      (items) => items.map((_, i) => (i === 1 ? { ok: false, error: refusal } : { ok: true })),
    ]);
    const stage = new RecorderStage({ writer, log: silentLogger(), sleep });
    const deliveries = [
      fakeDelivery(marketingInteraction('a')),
      fakeDelivery(marketingInteraction('b', 'bogus')),
      fakeDelivery(marketingInteraction('c')),
    ];
    await run(stage, deliveries);
    assert.deepEqual(settledAs(deliveries), ['complete', 'deadLetter', 'complete']);
    const dl = deliveries[1]?.settlements[0];
    assert.ok(dl?.how === 'deadLetter');
    assert.equal(dl.reason, 'DataverseBadRequest');
    assert.equal(
      dl.description,
      "interaction 'bogus' of activity row b (msdyncrm_activityid b, contact c-1, journey j-1): 'ResponseType' must be one of sent, delivered, failed, opened, keyword. (Dataverse code 0x80040203)",
    );
  });

  it('retries throttled items after Retry-After without abandoning them', async () => {
    const writer = scriptedWriter([
      (items) => items.map((_, i) => (i === 0 ? { ok: true } : { ok: false, error: throttled(2000) })),
      ok,
    ]);
    const stage = new RecorderStage({ writer, log: silentLogger(), sleep, retry: { initialDelayMs: 100 } });
    const deliveries = ['a', 'b', 'c'].map((id) => fakeDelivery(marketingInteraction(id)));
    await run(stage, deliveries);
    assert.deepEqual(writer.calls, [
      ['a', 'b', 'c'],
      ['b', 'c'],
    ]);
    assert.deepEqual(sleeps, [2000]);
    assert.deepEqual(settledAs(deliveries), ['complete', 'complete', 'complete']);
    assert.equal(stage.stats().retries, 2);
  });

  it('backs off exponentially and abandons after retry.attempts', async () => {
    const unavailable = (items: readonly unknown[]): WriteResult[] =>
      items.map(() => ({ ok: false, error: new DataverseError('DataverseUnavailable', 'socket hang up') }));
    const writer = scriptedWriter([unavailable, unavailable, unavailable]);
    const stage = new RecorderStage({
      writer,
      log: silentLogger(),
      sleep,
      retry: { attempts: 3, initialDelayMs: 100 },
    });
    const deliveries = [fakeDelivery(marketingInteraction('a'))];
    await run(stage, deliveries);
    assert.deepEqual(sleeps, [100, 200]);
    assert.deepEqual(settledAs(deliveries), ['abandon']);
  });

  it('abandons (does not dead-letter) when the relay identity is refused', async () => {
    const writer = scriptedWriter([
      (items) =>
        items.map(() => ({
          ok: false,
          error: new DataverseError('DataverseUnauthorized', 'Principal user is missing prvCreate privilege'),
        })),
    ]);
    const stage = new RecorderStage({ writer, log: silentLogger(), sleep, identityPauseMs: 5000 });
    const deliveries = [fakeDelivery(marketingInteraction('a')), fakeDelivery(marketingInteraction('b'))];
    await run(stage, deliveries);
    assert.deepEqual(settledAs(deliveries), ['abandon', 'abandon']);
    assert.deepEqual(sleeps, [5000]);
  });

  it('abandons everything when stopped, and when the writer fails as a whole', async () => {
    const aborted = new AbortController();
    aborted.abort();
    const stage = new RecorderStage({ writer: scriptedWriter([]), log: silentLogger(), sleep });
    const first = [fakeDelivery(marketingInteraction('a'))];
    await run(stage, first, aborted.signal);
    assert.deepEqual(settledAs(first), ['abandon']);

    const failing = new RecorderStage({
      writer: { write: async () => Promise.reject(new Error('aborted')) },
      log: silentLogger(),
      sleep,
    });
    const second = [fakeDelivery(marketingInteraction('b')), fakeDelivery(marketingInteraction('c'))];
    await run(failing, second);
    assert.deepEqual(settledAs(second), ['abandon', 'abandon']);
  });

  it('counts a failed settlement as not settled (the bus redelivers it)', async () => {
    const stage = new RecorderStage({ writer: scriptedWriter([ok]), log: silentLogger(), sleep });
    const d = fakeDelivery(marketingInteraction('a'));
    d.complete = async () => Promise.reject(new Error('MessageLockLost'));
    await run(stage, [d]);
    assert.deepEqual(stage.stats(), { written: 0, alreadyWritten: 0, deadLettered: 0, abandoned: 0, retries: 0 });
  });

  it('refuses bad numbers at construction', () => {
    const make = (o: Partial<RecorderOptions>): RecorderStage =>
      new RecorderStage({ writer: scriptedWriter([]), log: silentLogger(), ...o });
    assert.throws(() => make({ retry: { attempts: 0 } }), /retry.attempts must be an integer >= 1, found 0/);
    assert.throws(
      () => make({ maxThrottleWaitMs: -1 }),
      /maxThrottleWaitMs must be a finite number of at least 0, found -1/,
    );
    assert.throws(
      () => make({ retry: { initialDelayMs: Number.NaN } }),
      /retry.initialDelayMs must be a finite number of at least 0, found NaN/,
    );
    assert.throws(() => make({ batchBudgetMs: 0 }), /batchBudgetMs must be a finite number above 0, found 0/);
    assert.throws(
      () => make({ callTimeoutMs: Infinity }),
      /callTimeoutMs must be a finite number above 0, found Infinity/,
    );
    assert.throws(
      () => make({ batchBudgetMs: 10_000 }),
      /batchBudgetMs \(10000\) must be at least callTimeoutMs \(30000\)/,
    );
  });

  it('hands back (abandons) a body the parser fails on unexpectedly, and writes the rest', async () => {
    const writer = scriptedWriter([ok]);
    const stage = new RecorderStage({ writer, log: silentLogger(), sleep });
    const odd = fakeDelivery(marketingInteraction('x'));
    Object.defineProperty(odd, 'body', {
      get: () => {
        throw new RangeError('a bug');
      },
    });
    const good = fakeDelivery(marketingInteraction('a'));
    await run(stage, [odd, good]);
    assert.deepEqual(settledAs([odd, good]), ['abandon', 'complete']);
  });
});

/** A writer whose every call takes `latencyMs` of (fake) time, answers from `answer`, and keeps the signal it got. */
function slowWriter(
  latencyMs: number,
  answer: (items: readonly InteractionMessage[], call: number) => WriteResult[],
): InteractionWriter & { calls: number; startedAt: number[]; signals: Array<AbortSignal | undefined> } {
  const w = {
    calls: 0,
    startedAt: [] as number[],
    signals: [] as Array<AbortSignal | undefined>,
    write: async (items: readonly InteractionMessage[], signal?: AbortSignal): Promise<WriteResult[]> => {
      const call = ++w.calls;
      w.startedAt.push(Date.now());
      w.signals.push(signal);
      if (signal?.aborted) throw signal.reason;
      // As the real writer: aborted while writing, what did not answer is a retryable failure.
      const aborted = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), latencyMs);
        signal?.addEventListener('abort', () => {
          clearTimeout(timer);
          resolve(true);
        });
      });
      if (aborted)
        return items.map(() => ({
          ok: false,
          error: new DataverseError('DataverseUnavailable', 'stopped before Dataverse answered'),
        }));
      return answer(items, call);
    },
  };
  return w;
}

const allFail =
  (error: () => DataverseError) =>
  (items: readonly unknown[]): WriteResult[] =>
    items.map(() => ({ ok: false, error: error() }));
const unavailable = (): DataverseError =>
  new DataverseError('DataverseUnavailable', 'Service Unavailable', { upstream: { status: 503 } });

/** One batch under a fake clock: when handle() ended, and when each delivery was settled. */
function start(
  stage: RecorderStage,
  ids: readonly string[],
  signal = new AbortController().signal,
): {
  deliveries: FakeDelivery[];
  started: number;
  endedAt: () => number | undefined;
  settledAt: number[];
  done: Promise<void>;
} {
  const settledAt: number[] = [];
  const deliveries = ids.map((id) => {
    const d = fakeDelivery(marketingInteraction(id));
    for (const how of ['complete', 'abandon'] as const) {
      const settle = d[how];
      d[how] = async () => {
        settledAt.push(Date.now());
        await settle();
      };
    }
    return d;
  });
  const started = Date.now();
  let ended: number | undefined;
  const done = stage.handle(deliveries, signal).then(() => void (ended = Date.now()));
  return { deliveries, started, endedAt: () => ended, settledAt, done };
}

describe('pipeline: RecorderStage, stop() and the time budget (fake timers)', () => {
  let clock: sinon.SinonFakeTimers;
  beforeEach(() => (clock = sinon.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] })));
  afterEach(() => clock.restore());

  it('stop() during a Retry-After: the wait ends, nothing is written again, the deliveries are abandoned at once', async () => {
    const writer = slowWriter(100, (items, call) =>
      call === 1 ? items.map((_, i) => (i === 0 ? { ok: true } : { ok: false, error: throttled(20_000) })) : ok(items),
    );
    const stage = new RecorderStage({ writer, log: silentLogger() });
    const run = start(stage, ['a', 'b', 'c']);
    await clock.tickAsync(1000);
    assert.equal(run.endedAt(), undefined, 'waiting out the Retry-After');
    stage.stop();
    stage.stop();
    await run.done; // no further tick: only a stage that waits for nothing more ends
    assert.deepEqual(settledAs(run.deliveries), ['complete', 'abandon', 'abandon']);
    assert.equal(writer.calls, 1);
    assert.deepEqual(stage.stats(), { written: 1, alreadyWritten: 0, deadLettered: 0, abandoned: 2, retries: 2 });
  });

  it('stop() during the pause of a refused identity: abandoned at once', async () => {
    const writer = slowWriter(
      100,
      allFail(
        () =>
          new DataverseError('DataverseUnauthorized', 'Principal user is missing prvCreate privilege', {
            upstream: { status: 403 },
          }),
      ),
    );
    const stage = new RecorderStage({ writer, log: silentLogger() });
    const run = start(stage, ['a']);
    await clock.tickAsync(5000);
    assert.equal(run.endedAt(), undefined, 'pausing (identityPauseMs, 30 s)');
    stage.stop();
    await run.done;
    assert.deepEqual(settledAs(run.deliveries), ['abandon']);
  });

  it('stop() while a write is in flight: the write finishes (stop does not abort it) and its results count; no retry', async () => {
    const writer = slowWriter(10_000, (items) =>
      items.map((_, i) => (i === 1 ? { ok: false, error: unavailable() } : { ok: true })),
    );
    const stage = new RecorderStage({ writer, log: silentLogger() });
    const run = start(stage, ['a', 'b', 'c']);
    await clock.tickAsync(1000);
    stage.stop();
    await clock.tickAsync(1000);
    assert.equal(writer.signals[0]?.aborted, false, 'the write in flight was not aborted');
    assert.equal(run.endedAt(), undefined);
    await clock.tickAsync(8000);
    await run.done;
    assert.deepEqual(settledAs(run.deliveries), ['complete', 'abandon', 'complete']);
    assert.equal(writer.calls, 1);
  });

  it('the handler’s signal (the drain budget) does abort a write in flight: what did not answer is abandoned', async () => {
    const writer = slowWriter(10_000, ok);
    const stage = new RecorderStage({ writer, log: silentLogger() });
    const controller = new AbortController();
    const run = start(stage, ['a', 'b'], controller.signal);
    await clock.tickAsync(1000);
    controller.abort();
    await run.done;
    assert.equal(writer.signals[0]?.aborted, true);
    assert.deepEqual(settledAs(run.deliveries), ['abandon', 'abandon']);
    assert.equal(writer.calls, 1);
  });

  it('after stop(), a batch is written once, without retries or waits', async () => {
    const writer = slowWriter(100, (items) =>
      items.map((_, i) => (i === 0 ? { ok: true } : { ok: false, error: throttled(5000) })),
    );
    const stage = new RecorderStage({ writer, log: silentLogger() });
    stage.stop();
    const run = start(stage, ['a', 'b']);
    await clock.tickAsync(100);
    await run.done;
    assert.deepEqual(settledAs(run.deliveries), ['complete', 'abandon']);
    assert.equal(writer.calls, 1);
  });

  it('a Retry-After longer than maxThrottleWaitMs is not waited out: abandoned after maxThrottleWaitMs, not written again', async () => {
    const writer = slowWriter(
      0,
      allFail(() => throttled(300_000)),
    );
    const stage = new RecorderStage({ writer, log: silentLogger(), maxThrottleWaitMs: 30_000 });
    const run = start(stage, ['a']);
    await clock.tickAsync(29_999);
    assert.equal(run.endedAt(), undefined);
    await clock.tickAsync(1);
    await run.done;
    assert.deepEqual(settledAs(run.deliveries), ['abandon']);
    assert.equal(writer.calls, 1);
  });

  it('writes that keep failing slowly: no write starts that could not end before the deadline; all settled within the default 240 s', async () => {
    const writer = slowWriter(30_000, allFail(unavailable));
    const stage = new RecorderStage({ writer, log: silentLogger(), retry: { attempts: 20 } });
    const run = start(stage, ['a', 'b']);
    await clock.tickAsync(240_000);
    await run.done;
    assert.ok(run.endedAt()! - run.started <= 240_000);
    assert.ok(run.settledAt.every((t) => t - run.started <= 240_000));
    assert.deepEqual(settledAs(run.deliveries), ['abandon', 'abandon']);
    // Writes at 0, 30.5, 61.5, 93.5, 127.5 and 165.5 s (ending at 195.5 s); the next after 16 s would end at 241.5 s.
    assert.deepEqual(
      writer.startedAt.map((t) => t - run.started),
      [0, 30_500, 61_500, 93_500, 127_500, 165_500],
    );
    assert.equal(run.endedAt()! - run.started, 195_500);
  });

  it('a Retry-After within maxThrottleWaitMs is waited out only when the write after it fits the budget', async () => {
    const writer = slowWriter(
      10_000,
      allFail(() => throttled(20_000)),
    );
    const stage = new RecorderStage({
      writer,
      log: silentLogger(),
      retry: { attempts: 100 },
      batchBudgetMs: 100_000,
      callTimeoutMs: 10_000,
    });
    const run = start(stage, ['a']);
    await clock.tickAsync(100_000);
    await run.done;
    // Writes at 0, 30 and 60 s (each 10 s, then 20 s of Retry-After); a fourth at 90 s would end at 100 s: it fits.
    assert.deepEqual(
      writer.startedAt.map((t) => t - run.started),
      [0, 30_000, 60_000, 90_000],
    );
    assert.equal(run.endedAt()! - run.started, 100_000);
    assert.deepEqual(settledAs(run.deliveries), ['abandon']);
  });

  it('the pause of a refused identity is capped by what is left of the budget', async () => {
    const writer = slowWriter(
      30_000,
      allFail(
        () =>
          new DataverseError('DataverseUnauthorized', 'Principal user is missing prvCreate privilege', {
            upstream: { status: 403 },
          }),
      ),
    );
    const stage = new RecorderStage({ writer, log: silentLogger(), batchBudgetMs: 45_000 });
    const run = start(stage, ['a']);
    await clock.tickAsync(44_999);
    assert.equal(run.endedAt(), undefined);
    await clock.tickAsync(1);
    await run.done;
    assert.deepEqual(
      run.settledAt.map((t) => t - run.started),
      [45_000],
    );
    assert.deepEqual(settledAs(run.deliveries), ['abandon']);
  });
});
