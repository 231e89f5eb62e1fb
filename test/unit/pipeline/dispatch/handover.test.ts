import assert from 'node:assert/strict';
import sinon from 'sinon';
import { DispatchStage } from '../../../../src/pipeline/dispatch/index.js';
import { decodeSessionState } from '../../../../src/pipeline/dispatch/session-state.js';
import type { AcceptedSession } from '../../../../src/pipeline/ports.js';
import {
  channel,
  delivery,
  FakeInteractions,
  FakeProvider,
  lookup,
  outbound,
  session,
  type FakeDelivery,
} from './fakes.js';

const SESSION = 'twilio:+15550000000';
/** 3 GSM-7 segments (153 a part). */
const LONG = 'a'.repeat(400);
/** A window of the sender (1000 ms and the 10 ms guard). */
const WINDOW = 1010;

/**
 * The hand-over of a sender whose calls cost several windows: a Twilio long code (1 segment a second) sending a
 * 3-segment message holds the sender three windows after the call ends, and so must the next holder, on any replica,
 * whatever its clock says.
 */
describe('dispatch hand-over of a call that costs several windows', () => {
  let clock: sinon.SinonFakeTimers;
  beforeEach(() => {
    // A real date: a clock an hour behind it must still read after 1970.
    clock = sinon.useFakeTimers({
      now: Date.UTC(2026, 11, 7),
      toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'],
    });
  });
  afterEach(() => clock.restore());

  /** A replica of its own, whose clock reads `skewMs` ahead of the test's (behind when negative). */
  function replica(provider: FakeProvider, skewMs = 0): DispatchStage {
    return new DispatchStage({
      channels: lookup(channel({ rateLimit: { messages: 1 } })),
      provider: () => provider,
      interactions: new FakeInteractions(),
      now: () => Date.now() + skewMs,
    });
  }

  /** The successor's first call: it takes the session with `state` now and sends one new message. */
  async function successorFirstCall(p: FakeProvider, state: Buffer | undefined): Promise<number> {
    const before = p.calls.length;
    const h = await replica(p).sessionHandler(session(SESSION, state));
    const done = h.onBatch([delivery(outbound())], new AbortController().signal);
    await clock.tickAsync(10_000);
    await done;
    assert.equal(p.calls.length, before + 1);
    return p.calls[before]?.at ?? 0;
  }

  /** A holder that sends the 3-segment message and releases the session cleanly once its call ended. */
  async function cleanAfterLongCall(
    p: FakeProvider,
    skewMs = 0,
  ): Promise<{ state: Buffer | undefined; ended: number }> {
    const first = session();
    const h = await replica(p, skewMs).sessionHandler(first);
    const d: FakeDelivery = delivery(outbound({ text: LONG }));
    const done = h.onBatch([d], new AbortController().signal);
    await clock.tickAsync(100);
    await done;
    assert.deepEqual(d.settled, [{ kind: 'complete' }]);
    await h.onClose();
    const state = first.saved.at(-1);
    const decoded = decodeSessionState(state);
    assert.ok(decoded.ok && decoded.state?.clean === true, 'a clean hand-over');
    return { state, ended: p.calls[0]?.end ?? 0 };
  }

  it('after a clean release: the successor waits three windows from the end of the 3-segment call, not one', async () => {
    const p = new FakeProvider();
    const { state, ended } = await cleanAfterLongCall(p);
    const takenAt = Date.now();
    assert.ok(takenAt < ended + WINDOW, 'taken over within the first window');
    const first = await successorFirstCall(p, state);
    assert.ok(
      first >= ended + 3 * WINDOW,
      `the first call ${first - ended} ms after the 3-segment call ended (3 windows: ${3 * WINDOW})`,
    );
    assert.ok(first <= ended + 3 * WINDOW + 20, `and not much later: ${first - ended} ms`);
  });

  /** A holder killed 40 ms into `batch`: it wrote the state before the calls, and makes no call after the kill. */
  async function killedDuring(
    p: FakeProvider,
    batch: FakeDelivery[],
    skewMs = 0,
  ): Promise<AcceptedSession & { saved: Buffer[] }> {
    const first = session();
    const h = await replica(p, skewMs).sessionHandler(first);
    const kill = new AbortController();
    void h.onBatch(batch, kill.signal);
    await clock.tickAsync(40);
    kill.abort(new Error('kill -9'));
    return first;
  }

  it('killed during a batch whose costliest message is 3 segments: the successor waits three windows from the takeover', async () => {
    const p = new FakeProvider();
    const first = await killedDuring(p, [delivery(outbound({ text: LONG })), delivery(outbound())]);
    assert.equal(p.calls.length, 1, 'the dead holder made the 3-segment call');
    const decoded = decodeSessionState(first.saved.at(-1));
    assert.ok(
      decoded.ok && decoded.state?.v === 3 && decoded.state.clean !== true,
      'it left the state written before its calls',
    );
    assert.equal(decoded.state.callHoldMs, 3 * WINDOW, "naming the hold of the batch's costliest call");
    // Never closed: the successor takes the session at once.
    const takenAt = Date.now();
    const firstAfter = await successorFirstCall(p, first.saved.at(-1));
    assert.ok(
      firstAfter >= takenAt + 3 * WINDOW,
      `the first call ${firstAfter - takenAt} ms after the takeover (3 windows: ${3 * WINDOW})`,
    );
    assert.ok(firstAfter <= takenAt + 3 * WINDOW + 20, `and not much later: ${firstAfter - takenAt} ms`);
  });

  it('when the clean state cannot be saved, the holder keeps the session for the three windows, not one', async () => {
    const p = new FakeProvider();
    let writes = 0;
    // The write before the batch lands; the one at release fails.
    const held = {
      ...session(),
      setState: async () => {
        if (++writes > 1) throw new Error('the link is gone');
      },
    };
    const h = await replica(p).sessionHandler(held);
    const done = h.onBatch([delivery(outbound({ text: LONG }))], new AbortController().signal);
    await clock.tickAsync(100);
    await done;
    const ended = p.calls[0]?.end ?? 0;
    let releasedAt: number | undefined;
    const closing = h.onClose().then(() => (releasedAt = Date.now()));
    await clock.tickAsync(2 * WINDOW);
    assert.equal(releasedAt, undefined, 'still holding after two windows');
    await clock.tickAsync(2 * WINDOW);
    await closing;
    assert.equal(writes, 2);
    assert.ok(
      (releasedAt ?? 0) >= ended + 3 * WINDOW && (releasedAt ?? Infinity) <= ended + 3 * WINDOW + 20,
      `released ${(releasedAt ?? 0) - ended} ms after the call ended`,
    );
  });

  for (const [name, skewMs] of [
    ['an hour ahead of', 3_600_000],
    ['an hour behind', -3_600_000],
  ] as const) {
    it(`a clean release written by a replica whose clock is ${name} the successor's: still three windows, no more`, async () => {
      const p = new FakeProvider();
      const { state, ended } = await cleanAfterLongCall(p, skewMs);
      const first = await successorFirstCall(p, state);
      assert.ok(first >= ended + 3 * WINDOW, `the first call ${first - ended} ms after the 3-segment call ended`);
      assert.ok(first <= ended + 3 * WINDOW + 20, `and not an hour later: ${first - ended} ms`);
    });

    it(`a takeover of a replica whose clock is ${name} the successor's, killed mid-batch: three windows from the takeover`, async () => {
      const p = new FakeProvider();
      const first = await killedDuring(p, [delivery(outbound()), delivery(outbound({ text: LONG }))], skewMs);
      assert.equal(p.calls.length, 1, 'the dead holder made the 1-segment call; the 3-segment one may have followed');
      const takenAt = Date.now();
      const firstAfter = await successorFirstCall(p, first.saved.at(-1));
      assert.ok(
        firstAfter >= takenAt + 3 * WINDOW && firstAfter <= takenAt + 3 * WINDOW + 20,
        `the first call ${firstAfter - takenAt} ms after the takeover`,
      );
    });
  }
});
