import assert from 'node:assert/strict';
import sinon from 'sinon';
import { abortReason, delay, raceAbort, sleep } from '../../src/abort.js';

describe('abort: waiting with a signal', () => {
  let clock: sinon.SinonFakeTimers;
  beforeEach(() => (clock = sinon.useFakeTimers()));
  afterEach(() => clock.restore());

  it('delay resolves after the delay, or at once when its signal aborts, and leaves no timer', async () => {
    let done = false;
    void delay(1000).then(() => (done = true));
    await clock.tickAsync(999);
    assert.equal(done, false);
    await clock.tickAsync(1);
    assert.equal(done, true);

    const abort = new AbortController();
    let early = false;
    void delay(60_000, abort.signal).then(() => (early = true));
    await clock.tickAsync(10);
    abort.abort();
    await clock.tickAsync(0);
    assert.equal(early, true);
    assert.equal(clock.countTimers(), 0, 'the timer was cleared');
    await delay(1000, abort.signal); // already aborted: resolves without a timer
    assert.equal(clock.countTimers(), 0);
  });

  it('sleep resolves after the delay or rejects with the reason on abort', async () => {
    const controller = new AbortController();
    const slept = sleep(1000, controller.signal);
    slept.catch(() => undefined);
    controller.abort(new Error('stop'));
    await assert.rejects(slept, /stop/);
    assert.equal(clock.countTimers(), 0);
    await assert.rejects(sleep(10, controller.signal), /stop/);
    const ok = sleep(10);
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
});
