import assert from 'node:assert/strict';
import sinon from 'sinon';
import { isStartDeadlineError } from '../../../../src/errors.js';
import { SenderLimiter } from '../../../../src/pipeline/dispatch/sender-limiter.js';
import { worstCaseInWindow } from './fakes.js';

const calls = (r: { starts: number[]; ends: number[] }): Array<{ at: number; end: number }> =>
  r.starts.map((at, i) => ({ at, end: r.ends[i] as number }));

describe('sender limiter', () => {
  let clock: sinon.SinonFakeTimers;
  beforeEach(() => {
    clock = sinon.useFakeTimers({
      now: 5_000_000,
      toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'],
    });
  });
  afterEach(() => clock.restore());

  /** A call that records its start and takes `ms` of fake time. */
  function recorder(ms = 10) {
    const starts: number[] = [];
    const ends: number[] = [];
    let inFlight = 0;
    let maxInFlight = 0;
    const call = async (): Promise<number> => {
      starts.push(Date.now());
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      const n = starts.length;
      await new Promise((r) => setTimeout(r, ms));
      ends.push(Date.now());
      inFlight--;
      return n;
    };
    return { starts, ends, call, maxInFlight: () => maxInFlight };
  }

  it('keeps to the limit in every window however late or early each request arrives', async () => {
    const limiter = new SenderLimiter({ messages: 3, intervalMs: 1000, guardMs: 10 });
    const r = recorder(40);
    const all = Promise.all(Array.from({ length: 30 }, (_, i) => limiter.run(`to-${i}`, r.call)));
    await clock.tickAsync(20_000);
    await all;
    assert.equal(r.starts.length, 30);
    assert.equal(worstCaseInWindow(calls(r), 1000), 3);
    // A slot is free again one interval (+ guard) after its call ended: 40 + 1010 ms per round of 3; from the second
    // round on, one call is in flight at a time (3 a second at 40 ms need 0.12: concurrency.ts), so a round's calls
    // follow each other, 40 ms apart.
    assert.equal(Math.max(...r.starts) - Math.min(...r.starts), 9 * 1050 + 2 * 40, 'no slower than the limit allows');
  });

  it('counts from the end of a slow call, so that a late arrival is not counted twice in one window', async () => {
    const limiter = new SenderLimiter({ messages: 1, intervalMs: 1000, guardMs: 0 });
    const r = recorder(300);
    await Promise.all([limiter.run('a', r.call), limiter.run('b', r.call), clock.tickAsync(5000)]);
    assert.deepEqual(
      r.starts.map((t) => t - (r.starts[0] as number)),
      [0, 1300],
    );
    assert.equal(worstCaseInWindow(calls(r), 1000), 1);
  });

  it('keeps to the limit with calls arriving at scattered times and taking very different times', async () => {
    const limiter = new SenderLimiter({ messages: 3, intervalMs: 1000, guardMs: 0, maxConcurrency: 10 });
    const spans: Array<{ at: number; end: number }> = [];
    const durations = [5, 400, 40, 900, 150];
    const all: Array<Promise<unknown>> = [];
    for (let i = 0; i < 30; i++) {
      // Arrivals scattered over the first 4 s; each call records its own start and end.
      setTimeout(
        () => {
          all.push(
            limiter.run(`to-${i}`, async () => {
              const span = { at: Date.now(), end: Date.now() };
              spans.push(span);
              await new Promise((r) => setTimeout(r, durations[i % durations.length]));
              span.end = Date.now();
            }),
          );
        },
        (i * 137) % 4000,
      );
    }
    await clock.tickAsync(60_000);
    await Promise.all(all);
    assert.equal(spans.length, 30);
    assert.ok(
      worstCaseInWindow(spans, 1000) <= 3,
      `at most 3 wherever each request arrived: ${worstCaseInWindow(spans, 1000)}`,
    );
  });

  it('keeps to the concurrency', async () => {
    const limiter = new SenderLimiter({ messages: 100, maxConcurrency: 2 });
    const r = recorder(500);
    const all = Promise.all(Array.from({ length: 10 }, (_, i) => limiter.run(`to-${i}`, r.call)));
    await clock.tickAsync(900);
    assert.equal(limiter.stats().inFlight, 2);
    assert.equal(limiter.stats().waiting, 6);
    await clock.tickAsync(5000);
    await all;
    assert.equal(r.maxInFlight(), 2);
  });

  it('pauses calls not yet started, extends a pause, and resumes', async () => {
    const limiter = new SenderLimiter({ messages: 100 });
    const r = recorder();
    const t0 = Date.now();
    limiter.pauseFor(1000);
    limiter.pauseFor(500); // shorter: no effect
    const first = limiter.run('a', r.call);
    await clock.tickAsync(600);
    limiter.pauseUntil(t0 + 2000);
    assert.equal(limiter.stats().pausedUntil, t0 + 2000);
    await clock.tickAsync(1500);
    await first;
    assert.deepEqual(r.starts, [t0 + 2000]);
    assert.equal(limiter.paused, false);
    assert.equal(limiter.pausedUntil, undefined);
  });

  it('spaces calls to one recipient from the end of the previous one, in arrival order', async () => {
    const limiter = new SenderLimiter({ messages: 100, perRecipientMs: 1000, guardMs: 0 });
    const order: string[] = [];
    const t0 = Date.now();
    const at: Record<string, number> = {};
    const call = (name: string) => async () => {
      order.push(name);
      at[name] = Date.now() - t0;
    };
    const all = Promise.all([
      limiter.run('chat', call('a')),
      limiter.run('chat', call('b')),
      limiter.run('other', call('x')),
      limiter.run('chat', call('c')),
    ]);
    await clock.tickAsync(5000);
    await all;
    assert.deepEqual(order, ['a', 'x', 'b', 'c']);
    assert.deepEqual(at, { a: 0, x: 0, b: 1000, c: 2000 });
  });

  it('spaces calls to a group recipient by perGroupMs (Telegram: 20 a minute per group), others by perRecipientMs', async () => {
    const limiter = new SenderLimiter({
      messages: 100,
      perRecipientMs: 1000,
      perGroupMs: 3000,
      isGroup: (r) => r.startsWith('-'),
      guardMs: 0,
    });
    const at: string[] = [];
    const t0 = Date.now();
    const call = (name: string) => async () => {
      at.push(`${name}@${Date.now() - t0}`);
    };
    const all = Promise.all([
      limiter.run('-100', call('g1')),
      limiter.run('-100', call('g2')),
      limiter.run('42', call('p1')),
      limiter.run('42', call('p2')),
      limiter.run('-100', call('g3')),
    ]);
    await clock.tickAsync(10_000);
    await all;
    assert.deepEqual(at.sort(), ['g1@0', 'g2@3000', 'g3@6000', 'p1@0', 'p2@1000'].sort());
    assert.equal(limiter.handOverWindowMs, 3000, 'a hand-over waits the longest spacing');
  });

  it('drops a waiting call when its signal fires; the next call to that recipient keeps its turn', async () => {
    const limiter = new SenderLimiter({ messages: 100, perRecipientMs: 1000, guardMs: 0 });
    const r = recorder();
    const t0 = Date.now();
    const first = limiter.run('chat', r.call);
    const controller = new AbortController();
    const second = limiter.run('chat', r.call, { signal: controller.signal });
    const third = limiter.run('chat', r.call);
    second.catch(() => undefined);
    await clock.tickAsync(100);
    controller.abort(new Error('stop'));
    await assert.rejects(second, /stop/);
    await clock.tickAsync(3000);
    await Promise.all([first, third]);
    assert.deepEqual(
      r.starts.map((t) => t - t0),
      [0, 1010],
      'the third waits 1000 ms after the first ended',
    );
  });

  it('never interrupts a started call when its signal fires', async () => {
    const limiter = new SenderLimiter({ messages: 1 });
    const controller = new AbortController();
    const started = limiter.run('a', () => new Promise<string>((r) => setTimeout(() => r('done'), 500)), {
      signal: controller.signal,
    });
    const waiting = limiter.run('b', async () => 'never', { signal: controller.signal });
    waiting.catch(() => undefined);
    await clock.tickAsync(100);
    controller.abort(new Error('shutdown'));
    await assert.rejects(waiting, /shutdown/);
    await clock.tickAsync(500);
    assert.equal(await started, 'done');
  });

  it('reports how long its calls keep limiting the next ones: the latest end of their holds', async () => {
    const limiter = new SenderLimiter({ messages: 10, intervalMs: 1000, guardMs: 50 });
    const r = recorder();
    assert.equal(limiter.holdLeftMs(), 0, 'no call yet');
    const calls = [limiter.run('a', r.call), limiter.run('b', r.call)];
    await clock.tickAsync(600);
    calls.push(limiter.run('c', r.call));
    await clock.tickAsync(20);
    await Promise.all(calls);
    // c ended 10 ms ago: a window (1000 + 50) from its end.
    assert.equal(limiter.holdLeftMs(), 1040);
    await clock.tickAsync(500);
    assert.equal(limiter.holdLeftMs(), 540);
    assert.equal(limiter.stats().inWindow, 1);
    await clock.tickAsync(540);
    assert.equal(limiter.holdLeftMs(), 0);
  });

  it('a costly call holds the sender for its windows, counted from now while it is in flight', async () => {
    const limiter = new SenderLimiter({ messages: 1, intervalMs: 1000, guardMs: 10 });
    assert.deepEqual([limiter.holdMsOf(1), limiter.holdMsOf(3), limiter.handOverWindowMs], [1010, 3030, 1010]);
    const r = recorder(200);
    const call = limiter.run('a', r.call, { cost: 3 });
    await clock.tickAsync(100);
    assert.equal(limiter.largestCostInFlight, 3);
    assert.equal(limiter.holdLeftMs(), 3030, 'in flight: as if it ended now');
    await clock.tickAsync(100);
    await call;
    assert.equal(limiter.largestCostInFlight, 0);
    await clock.tickAsync(1000);
    assert.equal(limiter.holdLeftMs(), 2030, 'three windows from its end, not one');
    // The recipient spacing, when longer than the windows, is the hold.
    const spaced = new SenderLimiter({ messages: 1, intervalMs: 1000, guardMs: 10, perRecipientMs: 5000 });
    assert.deepEqual([spaced.holdMsOf(1), spaced.holdMsOf(3), spaced.holdMsOf(6)], [5010, 5010, 6060]);
  });

  it('clear() releases the slots held for their window: no timer is left', async () => {
    const limiter = new SenderLimiter({ messages: 3, intervalMs: 10_000, perRecipientMs: 500 });
    const r = recorder(50);
    const session = new AbortController();
    const runs = ['a', 'b', 'a', 'c'].map((to) => limiter.run(to, r.call, { signal: session.signal }));
    for (const run of runs) run.catch(() => undefined);
    await clock.tickAsync(100);
    assert.equal(r.starts.length, 3, 'the second call to a waits for its turn');
    assert.equal(limiter.stats().inWindow, 3, 'slots held for their window');
    limiter.pauseFor(60_000);
    // As dispatch closes a session: abort what waits, then clear.
    session.abort(new Error('closing'));
    limiter.clear();
    await clock.tickAsync(0);
    assert.deepEqual(await Promise.all(runs.map((run) => run.then(String, (err: Error) => err.message))), [
      '1',
      '2',
      'closing',
      '3',
    ]);
    assert.equal(limiter.stats().inWindow, 0);
    assert.equal(clock.countTimers(), 0, 'no timer left');
  });

  it('a call in flight at clear() finishes and holds no slot after', async () => {
    const limiter = new SenderLimiter({ messages: 1, intervalMs: 10_000 });
    const r = recorder(500);
    const inFlight = limiter.run('a', r.call);
    await clock.tickAsync(100);
    limiter.clear();
    await clock.tickAsync(400);
    assert.equal(await inFlight, 1);
    await clock.tickAsync(0);
    assert.equal(clock.countTimers(), 0);
  });

  describe('start deadline (startBy)', () => {
    /** Settles `p` into what happened to it, without an unhandled rejection. */
    function outcome<T>(p: Promise<T>): { value: () => T | Error | undefined } {
      let v: T | Error | undefined;
      p.then(
        (x) => (v = x),
        (err: Error) => (v = err),
      );
      return { value: () => v };
    }

    it('rejects at once when the deadline has passed or a pause ends past it; nothing is called', async () => {
      const limiter = new SenderLimiter({ messages: 5 });
      const r = recorder();
      const t0 = Date.now();
      await assert.rejects(
        limiter.run('a', r.call, { startBy: t0 - 1 }),
        (err) => isStartDeadlineError(err) && /deadline has passed/.test(err.message),
      );
      limiter.pauseFor(5000);
      await assert.rejects(
        limiter.run('a', r.call, { startBy: t0 + 4999 }),
        (err) => isStartDeadlineError(err) && /paused until/.test(err.message),
      );
      const ok = limiter.run('a', r.call, { startBy: t0 + 5000 });
      await clock.tickAsync(6000);
      assert.equal(await ok, 1, 'a pause that ends by the deadline is waited');
      assert.equal(r.starts.length, 1);
      assert.equal(r.starts[0], t0 + 5000);
    });

    it("rejects at once when the recipient's next turn is past the deadline, and keeps the turn order", async () => {
      const limiter = new SenderLimiter({ messages: 5, perRecipientMs: 1000, guardMs: 10 });
      const r = recorder(20);
      const t0 = Date.now();
      const first = limiter.run('chat', r.call);
      const late = outcome(limiter.run('chat', r.call, { startBy: t0 + 500 }));
      const third = limiter.run('chat', r.call);
      await clock.tickAsync(20);
      assert.ok(
        isStartDeadlineError(late.value()),
        'known as soon as the first call ended (its turn: 1030 ms > 500 ms)',
      );
      await clock.tickAsync(3000);
      assert.equal(await first, 1);
      assert.equal(await third, 2);
      assert.deepEqual(
        r.starts.map((t) => t - t0),
        [0, 1030],
        'the third took the turn after the first',
      );
    });

    it('starts a call that need not wait at once, watching neither its deadline nor its signal; one that waits, both', async () => {
      const limiter = new SenderLimiter({ messages: 1, intervalMs: 1000, guardMs: 0 });
      const r = recorder(100);
      const t0 = Date.now();
      const controller = new AbortController();
      const listeners = sinon.spy(controller.signal, 'addEventListener');
      const first = limiter.run('a', r.call, { startBy: t0 + 2000, signal: controller.signal });
      assert.equal(r.starts.length, 1, 'started within run()');
      assert.equal(clock.countTimers(), 1, "only the call's own timer: no deadline timer");
      assert.equal(listeners.callCount, 0, 'no listener on its signal');
      const second = limiter.run('b', r.call, { startBy: t0 + 2000, signal: controller.signal });
      assert.equal(r.starts.length, 1, 'the second waits for the slot');
      assert.equal(clock.countTimers(), 2, 'its deadline is watched');
      assert.equal(listeners.callCount, 1, 'and its signal');
      await clock.tickAsync(3000);
      assert.deepEqual([await first, await second], [1, 2]);
      assert.deepEqual(
        r.starts.map((t) => t - t0),
        [0, 1100],
      );
      await clock.tickAsync(2000);
      assert.equal(clock.countTimers(), 0);
      assert.deepEqual(limiter.stats(), { waiting: 0, inFlight: 0, inWindow: 0 });
    });

    it('drops a call still waiting for a slot when its deadline comes, and holds no slot for it', async () => {
      const limiter = new SenderLimiter({ messages: 1, intervalMs: 1000, guardMs: 0 });
      const r = recorder(100);
      const t0 = Date.now();
      const first = limiter.run('a', r.call, { startBy: t0 + 2000 });
      const second = outcome(limiter.run('b', r.call, { startBy: t0 + 700 }));
      const third = limiter.run('c', r.call, { startBy: t0 + 2000 });
      await clock.tickAsync(699);
      assert.equal(second.value(), undefined, 'still waiting');
      await clock.tickAsync(1);
      assert.ok(isStartDeadlineError(second.value()), 'dropped at its deadline');
      assert.match(String(second.value()), /still waiting for a slot/);
      await clock.tickAsync(2000);
      assert.equal(await first, 1);
      assert.equal(await third, 2);
      assert.deepEqual(
        r.starts.map((t) => t - t0),
        [0, 1100],
        'the dropped call took no slot',
      );
      assert.equal(limiter.stats().waiting, 0);
    });

    it('a pause that begins while calls wait drops those whose deadline is before its end, at once', async () => {
      const limiter = new SenderLimiter({ messages: 1, intervalMs: 1000, guardMs: 0 });
      const r = recorder(100);
      const t0 = Date.now();
      const first = limiter.run('a', r.call);
      const soon = outcome(limiter.run('b', r.call, { startBy: t0 + 3000 }));
      const later = limiter.run('c', r.call, { startBy: t0 + 60_000 });
      await clock.tickAsync(200);
      limiter.pauseFor(10_000);
      await clock.tickAsync(0);
      assert.ok(
        isStartDeadlineError(soon.value()) && /paused until/.test(String(soon.value())),
        'dropped when the pause began',
      );
      await clock.tickAsync(20_000);
      assert.equal(await first, 1);
      assert.equal(await later, 2);
      assert.equal(r.starts[1], t0 + 10_200, 'the other waited for the pause');
      assert.equal(clock.countTimers(), 0, 'no deadline timer left');
    });
  });

  describe('cost (Twilio segments)', () => {
    /** The most cost any window of `windowMs` may have seen, each call arriving anywhere between its start and end. */
    const worstCostInWindow = (
      spans: ReadonlyArray<{ at: number; end: number; cost: number }>,
      windowMs: number,
    ): number =>
      Math.max(
        0,
        ...spans
          .flatMap((c) => [c.at, c.end])
          .map((t) => spans.filter((c) => c.at < t + windowMs && c.end >= t).reduce((sum, c) => sum + c.cost, 0)),
      );

    it('charges each call its cost: at 6 per second, 3-cost calls go 2 per second', async () => {
      const limiter = new SenderLimiter({ messages: 6, intervalMs: 1000, guardMs: 0 });
      const cheap = recorder(20);
      const costly = recorder(20);
      const all = Promise.all(Array.from({ length: 12 }, (_, i) => limiter.run(`a-${i}`, costly.call, { cost: 3 })));
      await clock.tickAsync(10_000);
      await all;
      const spans = calls(costly).map((c) => ({ ...c, cost: 3 }));
      assert.equal(worstCostInWindow(spans, 1000), 6, 'never more than 6 per window');
      // 12 calls, 2 per window of 1000 + 20 ms: the last pair starts 5 windows after the first, its second call when
      // the first ended (one call in flight is what 2 calls a second at 20 ms need: concurrency.ts).
      assert.equal(Math.max(...costly.starts) - Math.min(...costly.starts), 5 * 1020 + 20);
      // The same limiter with cost 1 lets 6 go in one window (one after another: one call in flight is what the rate
      // needs at 20 ms).
      const ones = Promise.all(Array.from({ length: 6 }, (_, i) => limiter.run(`b-${i}`, cheap.call)));
      await clock.tickAsync(200);
      await ones;
      assert.equal(Math.max(...cheap.starts) - Math.min(...cheap.starts), 5 * 20, 'six calls of cost 1 in one window');
    });

    it('a call costing more than the limit takes every slot for that many windows after it ends', async () => {
      const limiter = new SenderLimiter({ messages: 2, intervalMs: 1000, guardMs: 0 });
      const r = recorder(10);
      const all = Promise.all([
        limiter.run('a', r.call, { cost: 5 }),
        limiter.run('b', r.call),
        limiter.run('c', r.call),
      ]);
      await clock.tickAsync(10_000);
      await all;
      // 5 segments at 2 per window: 3 windows after the call ended, then the next two together.
      assert.deepEqual(
        r.starts.map((t) => t - (r.starts[0] as number)),
        [0, 3010, 3010],
      );
      assert.equal(limiter.holdLeftMs(), 0, 'nothing left after the windows passed');
    });

    it('serves waiting calls in order: a costly call is not overtaken by cheap ones that arrive after it', async () => {
      const limiter = new SenderLimiter({ messages: 3, intervalMs: 1000, guardMs: 0 });
      const order: string[] = [];
      const call = (name: string) => async () => {
        order.push(name);
        await new Promise((resolve) => setTimeout(resolve, 10));
      };
      const all = Promise.all([
        limiter.run('a', call('first'), { cost: 2 }),
        limiter.run('b', call('costly'), { cost: 3 }),
        limiter.run('c', call('cheap-1')),
        limiter.run('d', call('cheap-2')),
      ]);
      await clock.tickAsync(5000);
      await all;
      // After 'first' one slot is free, enough for 'cheap-1', but 'costly' waits ahead of it.
      assert.deepEqual(order, ['first', 'costly', 'cheap-1', 'cheap-2']);
    });

    it('rejects a cost that is not a whole number >= 1, calling nothing', async () => {
      const limiter = new SenderLimiter({ messages: 3 });
      const r = recorder();
      await assert.rejects(
        limiter.run('a', r.call, { cost: 0 }),
        /SenderLimiter run: cost must be an integer >= 1, found 0/,
      );
      await assert.rejects(limiter.run('a', r.call, { cost: 1.5 }), /cost must be an integer >= 1/);
      assert.equal(r.starts.length, 0);
    });
  });

  it('rejects bad options, naming them', () => {
    assert.throws(() => new SenderLimiter({ messages: 0 }), /messages must be an integer >= 1, found 0/);
    assert.throws(() => new SenderLimiter({ messages: 1, guardMs: -5 }), /guardMs must be an integer >= 0/);
    assert.throws(
      () => new SenderLimiter({ messages: 1, maxConcurrency: 0.5 }),
      /maxConcurrency must be an integer >= 1/,
    );
  });
});
