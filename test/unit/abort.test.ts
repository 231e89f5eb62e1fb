import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import sinon from 'sinon';
import {
  abortReason,
  delayUnlessAborted,
  linkedController,
  raceAbort,
  sleepOrReject,
  whenAborted,
} from '../../src/abort.js';

/** `abort` listeners on a signal, and the signals `AbortSignal.any` made from it (Node 20 internals; 0 where absent). */
function traces(signal: AbortSignal): { listeners: number; dependants: number } {
  const symbol = Object.getOwnPropertySymbols(signal).find((s) => s.description === 'kDependantSignals');
  const set =
    symbol === undefined ? undefined : (signal as unknown as Record<symbol, { size?: number } | undefined>)[symbol];
  return { listeners: getEventListeners(signal, 'abort').length, dependants: set?.size ?? 0 };
}

describe('abort: waiting with a signal', () => {
  let clock: sinon.SinonFakeTimers;
  beforeEach(() => (clock = sinon.useFakeTimers()));
  afterEach(() => clock.restore());

  it('delayUnlessAborted resolves after the delay, or at once when its signal aborts, and leaves no timer', async () => {
    let done = false;
    void delayUnlessAborted(1000).then(() => (done = true));
    await clock.tickAsync(999);
    assert.equal(done, false);
    await clock.tickAsync(1);
    assert.equal(done, true);

    const abort = new AbortController();
    let early = false;
    void delayUnlessAborted(60_000, abort.signal).then(() => (early = true));
    await clock.tickAsync(10);
    abort.abort();
    await clock.tickAsync(0);
    assert.equal(early, true);
    assert.equal(clock.countTimers(), 0, 'the timer was cleared');
    await delayUnlessAborted(1000, abort.signal); // already aborted: resolves without a timer
    assert.equal(clock.countTimers(), 0);
  });

  it('sleepOrReject resolves after the delay or rejects with the reason on abort', async () => {
    const controller = new AbortController();
    const slept = sleepOrReject(1000, controller.signal);
    slept.catch(() => undefined);
    controller.abort(new Error('stop'));
    await assert.rejects(slept, /stop/);
    assert.equal(clock.countTimers(), 0);
    await assert.rejects(sleepOrReject(10, controller.signal), /stop/);
    const ok = sleepOrReject(10);
    await clock.tickAsync(10);
    await ok;
  });

  it('raceAbort settles as the promise does, or rejects when the signal aborts first, removing its listener', async () => {
    const controller = new AbortController();
    const listeners = sinon.spy(controller.signal, 'removeEventListener');
    assert.equal(await raceAbort(Promise.resolve(7), controller.signal), 7);
    await assert.rejects(raceAbort(Promise.reject(new Error('boom')), controller.signal), /boom/);
    assert.equal(listeners.callCount, 2, 'each settled race removed its listener');
    const never = new Promise<never>(() => undefined);
    const raced = raceAbort(never, controller.signal);
    controller.abort('plain reason');
    await assert.rejects(raced, (err: Error) => err.name === 'AbortError');
    assert.equal(await raceAbort(Promise.resolve('no signal')), 'no signal');
  });

  it('abortReason keeps an Error reason and makes an AbortError of anything else', () => {
    const a = new AbortController();
    a.abort(new RangeError('budget'));
    assert.ok(abortReason(a.signal) instanceof RangeError);
    const b = new AbortController();
    b.abort();
    assert.equal(abortReason(b.signal).name, 'AbortError');
  });

  describe('linkedController', () => {
    it('aborts with the reason of whichever parent aborts first', () => {
      const a = new AbortController();
      const b = new AbortController();
      const linked = linkedController(a.signal, b.signal);
      assert.equal(linked.signal.aborted, false);
      b.abort(new Error('drain budget'));
      assert.equal(linked.signal.aborted, true);
      assert.match((linked.signal.reason as Error).message, /drain budget/);
      a.abort(new Error('later'));
      assert.match((linked.signal.reason as Error).message, /drain budget/);
      assert.deepEqual(traces(a.signal), { listeners: 0, dependants: 0 }, 'the other parent let go once it fired');
    });

    it('starts aborted when a parent already is, and leaves no listener', () => {
      const a = new AbortController();
      const b = new AbortController();
      b.abort('stopped');
      const linked = linkedController(a.signal, b.signal, undefined);
      assert.equal(linked.signal.aborted, true);
      assert.equal(linked.signal.reason, 'stopped');
      assert.deepEqual(traces(a.signal), { listeners: 0, dependants: 0 });
    });

    it('dispose() leaves nothing on a long-lived parent, however many were linked', () => {
      const parent = new AbortController();
      for (let i = 0; i < 1000; i++) {
        const linked = linkedController(parent.signal, parent.signal);
        assert.equal(traces(parent.signal).listeners, 1);
        linked.signal.addEventListener('abort', () => undefined);
        linked.dispose();
        linked.dispose();
      }
      assert.deepEqual(traces(parent.signal), { listeners: 0, dependants: 0 });
      const linked = linkedController(parent.signal);
      linked.dispose();
      parent.abort();
      assert.equal(linked.signal.aborted, false, 'once disposed, no longer linked');
    });

    it('keeps one listener on a parent however many are linked at once, and aborts them all', () => {
      const parent = new AbortController();
      const many = Array.from({ length: 50 }, () => linkedController(parent.signal));
      assert.equal(
        traces(parent.signal).listeners,
        1,
        'no MaxListeners warning with many sessions under one loop signal',
      );
      many[0]?.dispose();
      parent.abort(new Error('shutdown'));
      assert.equal(many[0]?.signal.aborted, false, 'disposed before the abort');
      assert.ok(many.slice(1).every((l) => l.signal.aborted && (l.signal.reason as Error).message === 'shutdown'));
      for (const l of many) l.dispose();
      assert.deepEqual(traces(parent.signal), { listeners: 0, dependants: 0 });
      const late = linkedController(parent.signal);
      assert.equal(late.signal.aborted, true, 'linked to a parent that already fired');
      const other = new AbortController();
      const some = Array.from({ length: 3 }, () => linkedController(other.signal));
      for (const l of some) l.dispose();
      assert.equal(traces(other.signal).listeners, 0, 'the last dispose removes the listener');
    });

    it('abort() aborts only its own signal and lets go of the parents', () => {
      const parent = new AbortController();
      const linked = linkedController(parent.signal);
      linked.abort(new Error('closing'));
      assert.match((linked.signal.reason as Error).message, /closing/);
      assert.equal(parent.signal.aborted, false);
      assert.deepEqual(traces(parent.signal), { listeners: 0, dependants: 0 });
    });
  });

  it('whenAborted: many listeners share one abort listener on the signal, and none is left once they stop', () => {
    const controller = new AbortController();
    const calls: unknown[] = [];
    const stops = Array.from({ length: 20 }, (_, i) =>
      whenAborted(controller.signal, (reason) => calls.push([i, reason])),
    );
    assert.equal(getEventListeners(controller.signal, 'abort').length, 1);
    for (const stop of stops.slice(0, 18)) stop();
    controller.abort('bye');
    assert.deepEqual(calls, [
      [18, 'bye'],
      [19, 'bye'],
    ]);
    assert.equal(getEventListeners(controller.signal, 'abort').length, 0);
    const late: unknown[] = [];
    whenAborted(controller.signal, (reason) => late.push(reason))();
    assert.deepEqual(late, ['bye'], 'an aborted signal calls at once');
    const idle = new AbortController();
    for (const stop of Array.from({ length: 5 }, () => whenAborted(idle.signal, () => undefined))) stop();
    assert.equal(getEventListeners(idle.signal, 'abort').length, 0);
  });

  it('whenAborted: a listener that throws does not keep the others from being told; its error surfaces afterwards', async () => {
    clock.restore();
    const controller = new AbortController();
    const told: number[] = [];
    whenAborted(controller.signal, () => told.push(1));
    whenAborted(controller.signal, () => {
      throw new Error('listener bug');
    });
    let stopLast = (): void => undefined;
    whenAborted(controller.signal, () => {
      told.push(3);
      stopLast(); // removes the next listener while the parent aborts: it is not told
    });
    stopLast = whenAborted(controller.signal, () => told.push(4));
    const linked = linkedController(controller.signal);
    // Mocha treats an uncaught exception as a failure: take it over for this test.
    const mochas = process.listeners('uncaughtException');
    process.removeAllListeners('uncaughtException');
    const surfaced = new Promise<Error>((resolve) => process.once('uncaughtException', resolve));
    try {
      controller.abort('stop');
      assert.equal((await surfaced).message, 'listener bug');
    } finally {
      for (const l of mochas) process.on('uncaughtException', l);
    }
    assert.deepEqual(told, [1, 3]);
    assert.equal(linked.signal.aborted, true, 'a linked controller after the throwing listener still aborts');
    clock = sinon.useFakeTimers();
  });

  it('delayUnlessAborted, sleepOrReject and raceAbort share one abort listener on a long-lived signal', async () => {
    const controller = new AbortController();
    const waits = Array.from({ length: 15 }, () => delayUnlessAborted(1000, controller.signal));
    const sleeps = Array.from({ length: 15 }, () => sleepOrReject(1000, controller.signal).catch(() => 'aborted'));
    const races = Array.from({ length: 15 }, () =>
      raceAbort(new Promise<never>(() => undefined), controller.signal).catch(() => 'aborted'),
    );
    assert.equal(getEventListeners(controller.signal, 'abort').length, 1);
    controller.abort();
    await Promise.all([...waits, ...sleeps, ...races]);
    assert.equal(getEventListeners(controller.signal, 'abort').length, 0);
    assert.equal(clock.countTimers(), 0);
  });
});
