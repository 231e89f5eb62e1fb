import assert from 'node:assert/strict';
import sinon from 'sinon';
import {
  IN_FLIGHT_KEEP_MS,
  InFlightLedger,
  MAX_IN_FLIGHT_ENTRIES,
} from '../../../../src/pipeline/dispatch/inflight.js';
import { DispatchStage } from '../../../../src/pipeline/dispatch/index.js';
import { decodeSessionState } from '../../../../src/pipeline/dispatch/session-state.js';
import {
  channel,
  delivery,
  FakeInteractions,
  FakeProvider,
  lookup,
  LookupProvider,
  outbound,
  session,
  worstCaseInWindow,
  type FakeDelivery,
} from './fakes.js';

const SESSION = 'twilio:+15550000000';

/**
 * A holder killed with kill -9: it wrote the state before its batch and made its calls, and neither its `onClose` nor
 * its settlements happen; the successor takes the session at once (a dropped connection releases it), with the
 * batch delivered again.
 */
describe('dispatch through a crash of the session holder', () => {
  let clock: sinon.SinonFakeTimers;
  beforeEach(() => {
    clock = sinon.useFakeTimers({
      now: 1_000_000,
      toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'],
    });
  });
  afterEach(() => clock.restore());

  function stage(provider: FakeProvider, interactions = new FakeInteractions()) {
    return {
      stage: new DispatchStage({
        channels: lookup(channel()),
        provider: () => provider,
        interactions,
        retry: { initialDelayMs: 100, maxDelayMs: 1000 },
      }),
      interactions,
    };
  }

  /**
   * The dead holder, on a replica of its own (its interactions go nowhere the test looks): takes the session, sends
   * `messages` for `ms`, and is never closed.
   */
  async function crashAfter(provider: FakeProvider, messages: FakeDelivery[], ms: number) {
    const { stage: dead } = stage(provider);
    const first = session();
    const h1 = await dead.sessionHandler(first);
    void h1.onBatch(messages, new AbortController().signal);
    await clock.tickAsync(ms);
    return { state: first.saved.at(-1), dead };
  }

  const again = (d: FakeDelivery): FakeDelivery => delivery(d.body, SESSION, 2);

  it('killed right after a burst: the successor waits one full window from the takeover, so no window holds more than the limit', async () => {
    const p = new FakeProvider();
    const { stage: s } = stage(p);
    const burst = Array.from({ length: 5 }, () => delivery(outbound()));
    const { state } = await crashAfter(p, burst, 40);
    assert.equal(p.calls.length, 5, 'the dead holder used its whole window (5 per 1000 ms)');
    const decoded = decodeSessionState(state);
    assert.ok(
      decoded.ok && decoded.state !== undefined && decoded.state.clean !== true,
      'it left a state written before its calls, not a clean hand-over',
    );

    const takenAt = Date.now();
    const h2 = await s.sessionHandler(session(SESSION, state));
    const next = Array.from({ length: 5 }, () => delivery(outbound()));
    const done = h2.onBatch(next, new AbortController().signal);
    await clock.tickAsync(3000);
    await done;
    assert.equal(p.calls.length, 10);
    const firstAfter = p.calls[5]?.at ?? 0;
    assert.ok(
      firstAfter >= takenAt + 1010,
      `the successor waited one window (1000 + 10 guard) from the takeover: ${firstAfter - takenAt} ms`,
    );
    assert.ok(firstAfter <= takenAt + 1010 + 50, `and not much more than one window: ${firstAfter - takenAt} ms`);
    assert.ok(worstCaseInWindow(p.calls, 1000) <= 5, `at most 5 in any window: ${worstCaseInWindow(p.calls, 1000)}`);
    assert.equal(s.stats().takenOverWithoutRelease, 1);
  });

  it('killed mid-burst: the same; and a clean hand-over keeps the fast path', async () => {
    const p = new FakeProvider('twilio', undefined, 200);
    const { stage: s } = stage(p);
    const { state, dead } = await crashAfter(
      p,
      Array.from({ length: 5 }, () => delivery(outbound())),
      100,
    );
    assert.equal(p.calls.length, 5);
    assert.equal(dead.stats().inFlight, 5, 'killed while its calls were in flight');
    const takenAt = Date.now();
    const h2 = await s.sessionHandler(session(SESSION, state));
    const done = h2.onBatch([delivery(outbound())], new AbortController().signal);
    await clock.tickAsync(3000);
    await done;
    assert.ok(
      (p.calls[5]?.at ?? 0) >= takenAt + 1010,
      `waited one window from the takeover: ${(p.calls[5]?.at ?? 0) - takenAt} ms`,
    );
    // A process killed sends nothing more: its requests reached the provider by the takeover at the latest.
    const arrivals = p.calls.map((c, i) => (i < 5 ? { at: c.at, end: Math.min(c.end, takenAt) } : c));
    assert.ok(worstCaseInWindow(arrivals, 1000) <= 5, `at most 5 in any window: ${worstCaseInWindow(arrivals, 1000)}`);

    // A holder that releases the session cleanly long after its last call: the next one starts at once.
    const sess = session();
    const h3 = await s.sessionHandler(sess);
    const d = delivery(outbound());
    const sent = h3.onBatch([d], new AbortController().signal);
    await clock.tickAsync(3000);
    await sent;
    const closing = h3.onClose();
    await clock.tickAsync(2000);
    await closing;
    const cleanAt = Date.now();
    const h4 = await s.sessionHandler(session(SESSION, sess.saved.at(-1)));
    const fast = h4.onBatch([delivery(outbound())], new AbortController().signal);
    await clock.tickAsync(2000);
    await fast;
    assert.equal(p.calls.at(-1)?.at, cleanAt, 'no hold after a clean hand-over whose window has passed');
  });

  it('a message in flight that the provider has is recorded with its id and not sent again; one it does not have is sent', async () => {
    const p = new LookupProvider((q) =>
      q.text === 'reached' ? { providerMessageId: 'SM-found', status: 'queued' } : undefined,
    );
    const { stage: s, interactions } = stage(p);
    const reached = delivery(outbound({ text: 'reached' }));
    const lost = delivery(outbound({ text: 'lost' }));
    const { state } = await crashAfter(p, [reached, lost], 10);
    const decoded = decodeSessionState(state);
    assert.ok(decoded.ok);
    assert.deepEqual(
      decoded.state?.inFlight?.map(([key]) => key),
      [String((reached.body as { key: string }).key), String((lost.body as { key: string }).key)],
    );
    const startedAt = decoded.state?.inFlight?.[0]?.[1] ?? 0;
    const callsBefore = p.calls.length;

    const successor = session(SESSION, state);
    const takenAt = Date.now();
    const h2 = await s.sessionHandler(successor);
    const redelivered = [again(reached), again(lost)];
    const done = h2.onBatch(redelivered, new AbortController().signal);
    await clock.tickAsync(3000);
    await done;
    assert.deepEqual(
      p.lookups.map((q) => q.text),
      ['reached', 'lost'],
      'both looked up before any send',
    );
    assert.ok(
      p.lookups.every((q) => q.at >= takenAt + 1010),
      'after the hold: a call made just before the crash has had a window to be created',
    );
    assert.ok(
      p.lookups.every((q) => q.since === startedAt && q.to === '+15551234567' && q.from === '+15550000000'),
      'from the time the dead holder listed them',
    );
    assert.equal(p.calls.length - callsBefore, 1, 'only the one the provider does not have is sent');
    assert.equal(p.calls.at(-1)?.request.text, 'lost');
    assert.deepEqual(
      redelivered.map((d) => d.settled),
      [[{ kind: 'complete' }], [{ kind: 'complete' }]],
    );
    const found = interactions.all.find(
      (i) =>
        i.body.context.kind === 'marketing' && i.body.context.activityRowId === (reached.body as { key: string }).key,
    );
    assert.equal(found?.body.providerMessageId, 'SM-found', 'the found message recorded as sent, with its id');
    const stats = s.stats();
    assert.equal(stats.inFlightFound, 1);
    assert.equal(stats.inFlightNotFound, 1);
    const closing = h2.onClose();
    await clock.tickAsync(100);
    await closing;
    const closed = decodeSessionState(successor.saved.at(-1));
    assert.ok(closed.ok && closed.state?.clean === true);
    assert.equal(closed.state?.inFlight, undefined, 'both settled: nothing left in flight');
  });

  it('a failed lookup hands the message back unsent and keeps it in flight for the next try', async () => {
    const p = new LookupProvider(() => new Error('twilio 503'));
    const { stage: s } = stage(p);
    const d = delivery(outbound());
    const { state } = await crashAfter(p, [d], 10);
    const calls = p.calls.length;
    const successor = session(SESSION, state);
    const h2 = await s.sessionHandler(successor);
    const back = again(d);
    const done = h2.onBatch([back], new AbortController().signal);
    await clock.tickAsync(3000);
    await done;
    assert.equal(p.calls.length, calls, 'not sent: a duplicate is worse than a delay');
    assert.deepEqual(back.settled, [{ kind: 'abandon' }]);
    assert.equal(s.stats().inFlightLookupFailed, 1);
    const closing = h2.onClose();
    await clock.tickAsync(100);
    await closing;
    const closed = decodeSessionState(successor.saved.at(-1));
    assert.ok(closed.ok);
    assert.deepEqual(
      closed.state?.inFlight?.map(([key]) => key),
      [(d.body as { key: string }).key],
      'still listed: the next holder looks it up again',
    );
  });

  it('a provider that cannot be asked (contract: same RequestId) sends it again, counted', async () => {
    const p = new FakeProvider('contract');
    const { stage: s } = stage(p);
    const d = delivery(outbound());
    const { state } = await crashAfter(p, [d], 10);
    const h2 = await s.sessionHandler(session(SESSION, state));
    const done = h2.onBatch([again(d)], new AbortController().signal);
    await clock.tickAsync(3000);
    await done;
    assert.equal(p.calls.length, 2);
    assert.equal(
      p.calls[1]?.request.idempotencyKey,
      p.calls[0]?.request.idempotencyKey,
      "the same idempotency key (the contract's RequestId)",
    );
    assert.equal(s.stats().inFlightResent, 1);
  });

  it('Telegram (it cannot be asked, it has no idempotency key) sends again what was in flight: a repeat only of what reached it', async () => {
    const BOT = 'telegram:bot';
    const tg = channel({
      name: 'tg',
      senderKey: BOT,
      provider: { type: 'telegram', botToken: 'x' },
      sender: 'bot',
      rateLimit: { messages: 30, perRecipientMs: 1000 },
    });
    const p = new FakeProvider('telegram');
    const replica = () =>
      new DispatchStage({ channels: lookup(tg), provider: () => p, interactions: new FakeInteractions() });
    // One chat: the first message is called at once, the other two wait for the chat's turn (1 s each) when it dies.
    const batch = Array.from({ length: 3 }, () => delivery(outbound({ channel: 'tg', to: '100' }), BOT));
    const first = session(BOT);
    const h1 = await replica().sessionHandler(first);
    const kill = new AbortController();
    void h1.onBatch(batch, kill.signal);
    await clock.tickAsync(10);
    kill.abort(new Error('kill -9')); // it makes no call after this
    assert.equal(p.calls.length, 1, 'one call reached Telegram');
    const decoded = decodeSessionState(first.saved.at(-1));
    assert.ok(decoded.ok);
    const listed = decoded.state?.inFlight?.map(([key]) => key) ?? [];
    const keys = batch.map((d) => (d.body as { key: string }).key);
    assert.deepEqual(listed, keys, 'the whole batch listed in flight');

    const s = replica();
    const h2 = await s.sessionHandler(session(BOT, first.saved.at(-1)));
    const redelivered = batch.map((d) => delivery(d.body, BOT, 2));
    const done = h2.onBatch(redelivered, new AbortController().signal);
    await clock.tickAsync(5000);
    await done;
    assert.deepEqual(
      redelivered.map((d) => d.settled),
      [[{ kind: 'complete' }], [{ kind: 'complete' }], [{ kind: 'complete' }]],
    );
    const sends = keys.map((key) => p.calls.filter((c) => c.request.idempotencyKey === key).length);
    assert.deepEqual(
      sends,
      [2, 1, 1],
      'the message that reached Telegram repeats; the two that never left are sent once',
    );
    assert.ok(sends.filter((n) => n > 1).length <= listed.length, 'at most what was in flight repeats');
    assert.equal(s.stats().inFlightResent, 3, 'each listed message sent again without a lookup, counted');
  });

  it("writes the state before the batch's first call, and sends nothing when that write fails", async () => {
    const p = new FakeProvider();
    const { stage: s } = stage(p);
    const writes: number[] = [];
    const sess = { ...session(), setState: async () => void writes.push(p.calls.length) };
    const h = await s.sessionHandler(sess);
    const done = h.onBatch([delivery(outbound()), delivery(outbound())], new AbortController().signal);
    await clock.tickAsync(1000);
    await done;
    assert.deepEqual(writes, [0], 'written once, before any call');

    const failing = { ...session(), setState: async () => Promise.reject(new Error('lock lost')) };
    const h2 = await s.sessionHandler(failing);
    const ds = [delivery(outbound()), delivery(outbound())];
    const result = await h2.onBatch(ds, new AbortController().signal);
    assert.equal(p.calls.length, 2, 'no call');
    assert.deepEqual(
      ds.map((d) => d.settled),
      [[{ kind: 'abandon' }], [{ kind: 'abandon' }]],
    );
    assert.ok(result && result.release, 'the session is released');
  });

  describe('the in-flight list', () => {
    it('a key listed before (inherited, or handed back after a call) is reconciled; one settled is gone', () => {
      const ledger = new InFlightLedger([['old', 100]]);
      assert.deepEqual(ledger.begin(['old', 'new'], 500), ['new'], 'only the new key is listed now');
      assert.equal(ledger.reconcileSince('old'), 100, 'from when the last holder listed it');
      assert.equal(ledger.reconcileSince('new'), undefined);
      ledger.reconciled('old');
      assert.equal(ledger.reconcileSince('old'), undefined);
      assert.deepEqual(
        ledger.entries(600).entries,
        [
          ['old', 100],
          ['new', 500],
        ],
        'still listed until settled',
      );
      ledger.settled('old');
      ledger.begin(['new'], 700);
      assert.equal(ledger.reconcileSince('new'), 500, 'listed in an earlier batch of this hold: reconciled too');
    });

    it(`keeps the newest ${MAX_IN_FLIGHT_ENTRIES} and none older than a day, and says how many the cap dropped`, () => {
      const ledger = new InFlightLedger([['ancient', 0]]);
      ledger.begin(
        Array.from({ length: MAX_IN_FLIGHT_ENTRIES + 5 }, (_, i) => `k${i}`),
        IN_FLIGHT_KEEP_MS,
      );
      ledger.begin(['last'], IN_FLIGHT_KEEP_MS + 1);
      const { entries, dropped } = ledger.entries(IN_FLIGHT_KEEP_MS + 1);
      assert.equal(entries.length, MAX_IN_FLIGHT_ENTRIES);
      assert.equal(dropped, 6, 'the 6 oldest of 1,006');
      assert.ok(!entries.some(([key]) => key === 'ancient'), 'older than a day: dropped, not counted');
      assert.deepEqual(entries.at(-1), ['last', IN_FLIGHT_KEEP_MS + 1]);
    });
  });
});
