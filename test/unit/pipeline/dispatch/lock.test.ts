/**
 * The dispatch stage against the session lock (`AcceptedSession.lockedUntil`): no provider call and no wait that would
 * end past the lock deadline, what could not be sent handed back and the session's release asked for at once, a 429
 * pause capped, and the hold after a failed state save bounded by the lock.
 */
import assert from 'node:assert/strict';
import sinon from 'sinon';
import { DispatchStage, type DispatchOptions } from '../../../../src/pipeline/dispatch/index.js';
import type { AcceptedSession, SessionRelease } from '../../../../src/pipeline/ports.js';
import { decodeSessionState } from '../../../../src/pipeline/dispatch/session-state.js';
import type { Provider } from '../../../../src/providers/provider.js';
import { createLogger } from '../../../../src/log.js';
import { CaptureStream } from '../../../helpers/capture.js';
import {
  channel,
  delivery,
  errors,
  FakeInteractions,
  FakeProvider,
  lookup,
  outbound,
  session,
  type FakeDelivery,
} from './fakes.js';

const SESSION = 'twilio:+15550000000';

describe('dispatch stage and the session lock', () => {
  let clock: sinon.SinonFakeTimers;
  beforeEach(() => {
    clock = sinon.useFakeTimers({
      now: 1_000_000,
      toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'],
    });
  });
  afterEach(() => {
    sinon.restore();
    clock.restore();
  });

  function stage(provider: Provider, options: Partial<DispatchOptions> = {}) {
    const interactions = new FakeInteractions();
    const s = new DispatchStage({
      channels: options.channels ?? lookup(channel()),
      provider: () => provider,
      interactions,
      ...options,
      retry: { initialDelayMs: 100, maxDelayMs: 1000, ...options.retry },
    });
    return { stage: s, interactions };
  }

  /** A session the loop accepted, whose lock is held until `lockedUntil` (ms since the epoch). */
  function locked(
    lockedUntil: number | (() => number),
    state?: Buffer,
    setState?: (b: Buffer) => Promise<void>,
  ): AcceptedSession & { saved: Buffer[] } {
    const s = session(SESSION, state);
    return {
      ...s,
      ...(setState ? { setState } : {}),
      lockedUntil: typeof lockedUntil === 'function' ? lockedUntil : () => lockedUntil,
    };
  }

  type Handler = { onBatch(d: FakeDelivery[], s: AbortSignal): Promise<void | SessionRelease> };

  /** Runs a batch; returns when onBatch returned (fake time), with what it returned. */
  async function batch(
    handler: Handler,
    deliveries: FakeDelivery[],
    ms: number,
  ): Promise<{ returnedAt: () => number | undefined; result: void | SessionRelease }> {
    let returnedAt: number | undefined;
    const done = handler.onBatch(deliveries, new AbortController().signal).then((r) => ((returnedAt = Date.now()), r));
    await clock.tickAsync(ms);
    const result = await done;
    return { returnedAt: () => returnedAt, result };
  }

  /**
   * Runs a batch until it returns, no further: when it returned, what it returned, and when each timer set meanwhile
   * was due (ms since the epoch; the limiter's rate window and pauses among them).
   */
  async function batchUntilReturned(
    handler: Handler,
    deliveries: FakeDelivery[],
  ): Promise<{ returnedAt: number; result: void | SessionRelease; timersDue: number[] }> {
    const timersDue: number[] = [];
    const fakeSetTimeout = globalThis.setTimeout;
    globalThis.setTimeout = ((fn: () => void, ms?: number) => (
      timersDue.push(Date.now() + (ms ?? 0)),
      fakeSetTimeout(fn, ms)
    )) as typeof setTimeout;
    try {
      let returned = false;
      const done = handler.onBatch(deliveries, new AbortController().signal).then((r) => ((returned = true), r));
      // Timer by timer, so that fake time stops where the batch returned.
      for (let i = 0; i < 10_000 && !returned; i++) {
        await clock.tickAsync(0);
        if (!returned) clock.next();
      }
      const result = await done;
      return { returnedAt: Date.now(), result, timersDue };
    } finally {
      globalThis.setTimeout = fakeSetTimeout;
    }
  }

  /** Closes the handler (the loop releasing the session): it returns at once and leaves no timer behind. */
  async function closeAtOnce(h: { onClose(reason?: 'released'): Promise<void> }): Promise<void> {
    let closed = false;
    const closing = h.onClose('released').then(() => (closed = true));
    await clock.tickAsync(0);
    assert.equal(closed, true, 'onClose does not wait');
    await closing;
    assert.equal(clock.countTimers(), 0, 'no timer left once the session is released');
  }

  const released = (r: void | SessionRelease): boolean =>
    typeof r === 'object' && r.release === true && r.reason.length > 0;

  const kinds = (ds: FakeDelivery[]) => ds.map((d) => d.settled.map((x) => x.kind).join('+'));

  it('starts no call that could end past the lock deadline: the rest of a long batch is handed back, the batch then asks for the release at once', async () => {
    // 1 call per second; the lock is held for 20 s; a call may take 2 s and 5 s are kept to settle: last start at 13 s.
    const p = new FakeProvider();
    const { stage: s, interactions } = stage(p, {
      channels: lookup(channel({ timeoutMs: 2000, rateLimit: { messages: 1 } })),
      lockMarginMs: 5000,
    });
    const t0 = Date.now();
    const lockedUntil = t0 + 20_000;
    const h = await s.sessionHandler(locked(lockedUntil));
    const deliveries = Array.from({ length: 20 }, () => delivery(outbound()));
    const { returnedAt, result, timersDue: due } = await batchUntilReturned(h, deliveries);
    const callBy = lockedUntil - 2000 - 5000;
    assert.equal(p.calls.length, 13, 'calls at 0, 1.04, … 12.48 s: the last one that can start by 13 s');
    assert.ok(
      p.calls.every((c) => c.at <= callBy),
      `every call started by ${callBy - t0} ms: ${p.calls.map((c) => c.at - t0).join(', ')}`,
    );
    const sent = deliveries.slice(0, p.calls.length);
    const rest = deliveries.slice(p.calls.length);
    assert.deepEqual(
      kinds(sent),
      sent.map(() => 'complete'),
    );
    assert.deepEqual(
      kinds(rest),
      rest.map(() => 'abandon'),
      'handed back, once each',
    );
    assert.ok(
      rest.every((d) => (d.settledAt ?? Infinity) <= callBy),
      'handed back by the last start',
    );
    assert.ok(
      [...sent, ...rest].every((d) => (d.settledAt ?? Infinity) < lockedUntil - 5000),
      'all settled while the lock is held',
    );
    assert.ok(released(result), `the batch asks the loop to release the session: ${JSON.stringify(result)}`);
    assert.equal(
      returnedAt,
      Math.max(...deliveries.map((d) => d.settledAt ?? Infinity)),
      'returned as soon as the last delivery was settled, not in the lock margin',
    );
    // The outbox's own deadlines and call timeouts fall in the margin; the wait that was removed was due exactly at its start.
    assert.ok(
      !due.includes(lockedUntil - 5000),
      `no timer set to wait for the lock margin: ${due.map((t) => t - t0).join(', ')}`,
    );
    await closeAtOnce(h);
    assert.equal(interactions.all.length, p.calls.length);
    const stats = s.stats();
    assert.equal(stats.handedBackAtLockDeadline, rest.length);
    assert.equal(stats.abandoned, rest.length);
  });

  it('a 429 pause past the deadline hands back what waits at once; the pause is capped at maxThrottleWaitMs and handed over', async () => {
    // Telegram-like: retry after 10 minutes.
    const p = new FakeProvider('twilio', (_r, n) =>
      n === 1 ? errors.rateLimited(600_000) : { providerMessageId: '', status: 'queued' },
    );
    const { stage: s } = stage(p, { channels: lookup(channel({ timeoutMs: 10_000, rateLimit: { messages: 1 } })) });
    const t0 = Date.now();
    const lockedUntil = t0 + 120_000;
    const first = locked(lockedUntil);
    const h = await s.sessionHandler(first);
    const deliveries = Array.from({ length: 4 }, () => delivery(outbound()));
    let returnedAt: number | undefined;
    const done = h.onBatch(deliveries, new AbortController().signal).then((r) => ((returnedAt = Date.now()), r));
    await clock.tickAsync(100);
    // The pause (capped: 60 s) ends at ~60 s, before the last start (120 - 10 - 5 = 105 s): everything waits for it.
    assert.deepEqual(kinds(deliveries), ['', '', '', ''], 'a capped pause that ends in time is waited');
    await clock.tickAsync(59_900);
    assert.equal(p.calls.length, 1, 'nothing during the pause');
    await clock.tickAsync(10_000);
    assert.ok(p.calls.length >= 2, 'called again once the capped pause (60 s, not 600 s) has passed');
    assert.ok(
      (p.calls[1]?.at ?? 0) - t0 >= 60_030 && (p.calls[1]?.at ?? 0) - t0 < 61_000,
      `after 60 s: ${(p.calls[1]?.at ?? 0) - t0}`,
    );
    await clock.tickAsync(60_000);
    assert.equal(await done, undefined, 'nothing handed back: no release asked for');
    assert.deepEqual(kinds(deliveries), ['complete', 'complete', 'complete', 'complete']);
    assert.equal(returnedAt !== undefined && returnedAt < lockedUntil - 5000, true);

    // Another 429 late in the hold: its pause would end past the last start, so what waits goes back at once.
    const p2 = new FakeProvider('twilio', (_r, n) =>
      n === 1 ? errors.rateLimited(600_000) : { providerMessageId: '', status: 'queued' },
    );
    const { stage: s2 } = stage(p2, { channels: lookup(channel({ timeoutMs: 10_000, rateLimit: { messages: 1 } })) });
    const t1 = Date.now();
    const second = locked(t1 + 40_000);
    const h2 = await s2.sessionHandler(second);
    const later = Array.from({ length: 4 }, () => delivery(outbound()));
    const run = batchUntilReturned(h2, later);
    const { returnedAt: returned2, result: result2, timersDue: due2 } = await run;
    assert.deepEqual(
      kinds(later),
      ['abandon', 'abandon', 'abandon', 'abandon'],
      'handed back as soon as the 429 answered',
    );
    assert.equal(p2.calls.length, 1);
    assert.ok(released(result2), 'the release asked for');
    assert.equal(returned2, Math.max(...later.map((d) => d.settledAt ?? Infinity)), 'at once, not in the lock margin');
    assert.ok(returned2 < t1 + 1000, `within the first second: ${returned2 - t1} ms`);
    assert.ok(!due2.includes(t1 + 40_000 - 5000), 'no timer set to wait for the lock margin');
    const closedAt = Date.now();
    await closeAtOnce(h2);
    await clock.tickAsync(40_000);
    assert.equal(p2.calls.length, 1, 'no call after');
    const state = decodeSessionState(second.saved.at(-1));
    assert.ok(state.ok && state.state?.v === 3);
    assert.equal(
      state.state.pauseMs,
      t1 + 30 + 60_000 - closedAt,
      'the next holder gets what is left of the (capped) pause',
    );
    assert.equal(s2.stats().handedBackAtLockDeadline, 4);
  });

  it('a handed-over pause past the deadline: the first batch hands everything back without a call', async () => {
    const p = new FakeProvider();
    const { stage: s } = stage(p);
    const t0 = Date.now();
    const state = Buffer.from(JSON.stringify({ v: 1, sentAt: [], pausedUntil: t0 + 60_000 }));
    const h = await s.sessionHandler(locked(t0 + 30_000, state));
    const deliveries = [delivery(outbound()), delivery(outbound())];
    const { returnedAt, result, timersDue: due } = await batchUntilReturned(h, deliveries);
    assert.deepEqual(kinds(deliveries), ['abandon', 'abandon']);
    assert.equal(returnedAt, t0, 'at once');
    assert.ok(released(result), 'the release asked for');
    assert.ok(
      !due.includes(t0 + 25_000),
      `no timer set to wait for the lock margin: ${due.map((t) => t - t0).join(', ')}`,
    );
    await closeAtOnce(h);
    assert.equal(p.calls.length, 0);
  });

  it('a backoff that would end past the deadline is not waited: handed back at once', async () => {
    sinon.stub(Math, 'random').returns(0.9); // the backoff's jitter at its top: 4000 ms
    const p = new FakeProvider('twilio', () => errors.unavailable());
    const { stage: s } = stage(p, {
      channels: lookup(channel({ timeoutMs: 1000 })),
      retry: { initialDelayMs: 4000, maxDelayMs: 4000 },
    });
    const t0 = Date.now();
    const h = await s.sessionHandler(locked(t0 + 8000)); // last start: 8000 - 1000 - 5000 = 2 s; a backoff of ~4 s ends past it
    const d = delivery(outbound());
    const run = batch(h, [d], 10_000);
    await clock.tickAsync(31);
    assert.deepEqual(kinds([d]), ['abandon'], 'handed back when the call failed, not after the backoff');
    assert.ok(released((await run).result), 'the release asked for');
    assert.equal(p.calls.length, 1, 'not called again');
    assert.equal(d.settled.length, 1);
  });

  it("waits for a recipient's turn only when it comes before the deadline", async () => {
    const p = new FakeProvider('telegram');
    const tg = channel({
      name: 'tg',
      senderKey: SESSION,
      timeoutMs: 1000,
      rateLimit: { messages: 30, perRecipientMs: 1000 },
    });
    const { stage: s } = stage(p, { channels: lookup(tg), lockMarginMs: 500 });
    const t0 = Date.now();
    const h = await s.sessionHandler(locked(t0 + 3000)); // last start: 1.5 s
    const same = Array.from({ length: 3 }, () => delivery(outbound({ channel: 'tg', to: '100' })));
    const { result } = await batch(h, same, 5000);
    assert.deepEqual(
      p.calls.map((c) => c.at - t0),
      [0, 1040],
      'the second turn (1.04 s) is in time, the third (2.08 s) is not',
    );
    assert.deepEqual(kinds(same), ['complete', 'complete', 'abandon']);
    assert.ok(released(result), 'the release asked for');
  });

  it('without lockedUntil there is no deadline', async () => {
    const p = new FakeProvider();
    const { stage: s } = stage(p, { channels: lookup(channel({ rateLimit: { messages: 1 } })) });
    const h = await s.sessionHandler(session());
    const deliveries = Array.from({ length: 30 }, () => delivery(outbound()));
    const { result } = await batch(h, deliveries, 40_000);
    assert.equal(p.calls.length, 30);
    assert.equal(result, undefined, 'no release asked for');
    assert.equal(s.stats().handedBackAtLockDeadline, 0);
  });

  it('a 429 whose pause ends past the deadline: the batch returns the release request at once, no timer left waiting, and onClose hands the pause over', async () => {
    const p = new FakeProvider('twilio', () => errors.rateLimited(600_000));
    const { stage: s } = stage(p);
    const t0 = Date.now();
    const accepted = locked(t0 + 60_000);
    const h = await s.sessionHandler(accepted);
    const d = delivery(outbound());
    const { returnedAt, result, timersDue: due } = await batchUntilReturned(h, [d]);
    assert.deepEqual(kinds([d]), ['abandon']);
    assert.ok(released(result), 'the release asked for');
    assert.ok(returnedAt < t0 + 1000, `at once, not in the lock margin (55 s): ${returnedAt - t0} ms`);
    assert.deepEqual(
      due.filter((t) => t >= t0 + 55_000 && t < t0 + 60_000),
      [],
      `no timer due in the lock margin: ${due.map((t) => t - t0).join(', ')}`,
    );
    const closedAt = Date.now();
    await closeAtOnce(h);
    const state = decodeSessionState(accepted.saved.at(-1));
    assert.ok(state.ok && state.state?.v === 3);
    assert.equal(
      state.state.pauseMs,
      (p.calls[0]?.end ?? 0) + 60_000 - closedAt,
      'the next holder gets what is left of the (capped) pause',
    );
  });

  it('records within the lock: an interaction that cannot be sent is dead-lettered before the lock ends, not retried past it', async () => {
    const p = new FakeProvider();
    const interactions = new FakeInteractions(() => true);
    const s = new DispatchStage({
      channels: lookup(channel({ timeoutMs: 2000 })),
      provider: () => p,
      interactions,
      interactionBatching: { attempts: 101, timeoutMs: 10_000 },
    });
    const t0 = Date.now();
    const lockedUntil = t0 + 20_000;
    const h = await s.sessionHandler(locked(lockedUntil));
    const d = delivery(outbound());
    await batch(h, [d], 60_000);
    assert.equal(p.calls.length, 1);
    const settled = d.settled[0];
    assert.equal(settled?.kind === 'deadLetter' && settled.reason, 'InteractionNotSent');
    assert.equal(d.settled.length, 1);
    assert.ok(
      (d.settledAt ?? Infinity) <= lockedUntil - 1000,
      `settled ${lockedUntil - (d.settledAt ?? 0)} ms before the lock ends`,
    );
    assert.ok(
      interactions.attempts > 1 && interactions.attempts < 100,
      `retried while there was time: ${interactions.attempts}`,
    );
  });

  it('rejects a bad lockMarginMs', () => {
    assert.throws(
      () => stage(new FakeProvider(), { lockMarginMs: -1 }),
      /lockMarginMs must be an integer >= 0, found -1/,
    );
  });

  describe('the hold after a failed state save', () => {
    function capture() {
      const stream = new CaptureStream();
      return { stream, log: createLogger({ level: 'warn', stream, pretty: false }) };
    }

    /** Three calls in a 10 s window, then onClose with a setState that fails; the lock (at close) ends `lockedUntilFromNow` after the start. */
    async function sendThenClose(lockedUntilFromNow: number, reason?: 'lockLost' | 'renewalBudget') {
      const p = new FakeProvider();
      const { stream, log } = capture();
      const { stage: s } = stage(p, {
        log,
        channels: lookup(channel({ timeoutMs: 100, rateLimit: { messages: 5, intervalMs: 10_000 } })),
        lockMarginMs: 0,
      });
      const t0 = Date.now();
      let closing = false;
      // The write before the batch's calls succeeds, the one at close fails.
      const h = await s.sessionHandler(
        locked(
          () => (closing ? t0 + lockedUntilFromNow : t0 + 600_000),
          undefined,
          async () => (closing ? Promise.reject(new Error('link detached')) : undefined),
        ),
      );
      await batch(
        h,
        Array.from({ length: 3 }, () => delivery(outbound())),
        100,
      );
      assert.equal(p.calls.length, 3);
      closing = true;
      const timers = sinon.spy(globalThis, 'setTimeout');
      let closedAt: number | undefined;
      const closed = h.onClose(reason).then(() => (closedAt = Date.now()));
      return {
        stream,
        closing: closed,
        closedAt: () => closedAt,
        timers,
        t0,
        lastEnded: Math.max(...p.calls.map((c) => c.end)),
      };
    }

    it('ends at the lock deadline when the window lasts longer (holding past the lock protects nothing)', async () => {
      const c = await sendThenClose(3000, 'renewalBudget');
      await clock.tickAsync(2899);
      assert.equal(c.closedAt(), undefined, 'still holding');
      await clock.tickAsync(101);
      await c.closing;
      assert.equal(c.closedAt(), c.t0 + 3000, 'released when the lock ends, not at the end of the 10 s window');
      const warning = c.stream.lines().find((l) => /holding the session/.test(String(l['message'])));
      assert.equal(warning?.['holdMs'], 2900);
      assert.equal(warning?.['boundByLock'], true);
    });

    it('holds with a timer that does not keep the process alive', async () => {
      const c = await sendThenClose(60_000);
      await clock.tickAsync(0);
      const hold = c.timers.getCalls().find((call) => call.args[1] === c.lastEnded + 10_010 - Date.now());
      assert.ok(
        hold,
        `a hold timer was set: ${c.timers
          .getCalls()
          .map((call) => String(call.args[1]))
          .join(', ')}`,
      );
      const handle = hold.returnValue as { hasRef(): boolean };
      assert.equal(handle.hasRef(), false, "unref'd");
      await clock.tickAsync(10_100);
      await c.closing;
      assert.ok((c.closedAt() ?? 0) >= c.lastEnded + 10_010, 'held until the window passed (the lock lasts longer)');
    });

    it('does not hold when the lock has already ended, nor when it is lost', async () => {
      const ended = await sendThenClose(50);
      await clock.tickAsync(0);
      await ended.closing;
      assert.equal(ended.closedAt(), ended.t0 + 100, 'released at once');
      assert.match(ended.stream.text, /session lock is ending: the next holder may start within/);
      ended.timers.restore();
      const lost = await sendThenClose(60_000, 'lockLost');
      await clock.tickAsync(0);
      await lost.closing;
      assert.equal(lost.closedAt(), lost.t0 + 100);
    });
  });
});
