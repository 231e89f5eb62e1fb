/**
 * The service-protection governor, on sinon fake timers: Retry-After, probe, pacing from headers and from its own count
 * (headers absent or inconsistent), x-ms-dop-hint, AIMD, timeouts.
 */
import assert from 'node:assert/strict';
import sinon from 'sinon';
import { isDataverseError, type DataverseError } from '../../../src/errors.js';
import { createGovernor, parseTimeRemaining, type Governor } from '../../../src/dataverse/index.js';

interface Pending {
  started: number;
  signal: AbortSignal;
  resolve(value?: unknown): void;
  reject(err: unknown): void;
}

/** Starts `n` runs whose calls wait until the test settles them; `calls` lists the calls that started. */
function harness(governor: Governor) {
  const calls: Pending[] = [];
  const outcomes: Array<{ ok: boolean; value: unknown }> = [];
  const start = (n: number, signal?: AbortSignal): Array<Promise<unknown>> =>
    Array.from({ length: n }, () => {
      const p = governor.run(
        (s) =>
          new Promise((resolve, reject) => {
            calls.push({ started: Date.now(), signal: s, resolve, reject });
          }),
        { signal },
      );
      p.then(
        (value) => outcomes.push({ ok: true, value }),
        (value: unknown) => outcomes.push({ ok: false, value }),
      );
      return p;
    });
  return { calls, outcomes, start };
}

function throttled(retryAfterSeconds: number): Error {
  return Object.assign(new Error('Number of requests exceeded the limit of 6000 over time window of 300 seconds.'), {
    status: 429,
    code: '0x80072322',
    headers: { 'retry-after': String(retryAfterSeconds) },
  });
}

describe('governor', () => {
  let clock: sinon.SinonFakeTimers;
  beforeEach(() => {
    clock = sinon.useFakeTimers({ now: 1_000_000 });
  });
  afterEach(() => clock.restore());

  it('runs at most `concurrency` calls at once and starts the next when one ends', async () => {
    const g = createGovernor({ initialConcurrency: 2, maxConcurrency: 2 });
    const h = harness(g);
    h.start(5);
    await clock.tickAsync(0);
    assert.equal(h.calls.length, 2);
    assert.deepEqual([g.state().inFlight, g.state().waiting], [2, 3]);
    h.calls[0]!.resolve('a');
    await clock.tickAsync(0);
    assert.equal(h.calls.length, 3);
    assert.deepEqual(h.outcomes, [{ ok: true, value: 'a' }]);
  });

  it('after a 429 no call starts until Retry-After has run out, then one probe, then the rest', async () => {
    const g = createGovernor({ initialConcurrency: 4 });
    const h = harness(g);
    h.start(6);
    await clock.tickAsync(0);
    assert.equal(h.calls.length, 4);
    const t429 = Date.now();
    h.calls[0]!.reject(throttled(3));
    await clock.tickAsync(0);
    const error = h.outcomes[0]!.value as DataverseError;
    assert.ok(isDataverseError(error) && error.code === 'DataverseThrottled' && error.retryAfterMs === 3000);
    // The other three in flight end meanwhile: nothing starts during the pause.
    for (const c of h.calls.slice(1, 4)) c.resolve();
    await clock.tickAsync(2999);
    assert.equal(h.calls.length, 4, 'no call during Retry-After');
    assert.equal(g.state().pausedUntil, t429 + 3000);
    await clock.tickAsync(1);
    assert.equal(h.calls.length, 5, 'one probe when the pause ends');
    assert.equal(h.calls[4]!.started, t429 + 3000);
    await clock.tickAsync(100);
    assert.equal(h.calls.length, 5, 'the others wait for the probe');
    h.calls[4]!.resolve();
    await clock.tickAsync(0);
    assert.equal(h.calls.length, 6);
    assert.equal(g.state().throttled, 1);
  });

  it('a probe that is throttled again starts another pause; concurrency halves once per pause', async () => {
    const g = createGovernor({ initialConcurrency: 8 });
    const h = harness(g);
    h.start(9);
    await clock.tickAsync(0);
    // Two 429s of calls already in flight are one event: halve once.
    h.calls[0]!.reject(throttled(1));
    h.calls[1]!.reject(throttled(1));
    for (const c of h.calls.slice(2, 8)) c.resolve();
    await clock.tickAsync(0);
    assert.equal(g.state().concurrency, 1, 'probing');
    await clock.tickAsync(1000);
    assert.equal(h.calls.length, 9);
    h.calls[8]!.reject(throttled(2));
    await clock.tickAsync(0);
    assert.equal(g.state().throttled, 3);
    const state = g.state();
    assert.ok(state.pausedUntil >= Date.now() + 1999);
    // 8 → 4 (first pause) → 2 (second pause).
    h.start(3);
    await clock.tickAsync(2000);
    assert.equal(h.calls.length, 10, 'one probe');
    h.calls[9]!.resolve();
    await clock.tickAsync(0);
    assert.equal(h.calls.length, 12, 'then two at once (4 halved to 2)');
  });

  it('grows concurrency by one per success until the first 429, then by one per `concurrency` successes, up to maxConcurrency', async () => {
    const g = createGovernor({ initialConcurrency: 2, maxConcurrency: 8 });
    for (let i = 0; i < 3; i++) await g.run(async () => 'x');
    assert.equal(g.state().concurrency, 5, 'slow start: one per success');
    for (let i = 0; i < 10; i++) await g.run(async () => 'x');
    assert.equal(g.state().concurrency, 8, 'capped');
    await assert.rejects(g.run(async () => Promise.reject(throttled(1))));
    await clock.tickAsync(1000);
    await g.run(async () => 'probe');
    assert.equal(g.state().concurrency, 4, 'halved by the 429');
    for (let i = 0; i < 2; i++) await g.run(async () => 'x');
    assert.equal(g.state().concurrency, 4, 'after a 429: one per `concurrency` successes');
    await g.run(async () => 'x');
    assert.equal(g.state().concurrency, 5);
  });

  it('paces from x-ms-ratelimit-burst-remaining-xrm-requests below half of the largest seen: windowMs / remaining', async () => {
    const g = createGovernor({ initialConcurrency: 10, windowMs: 1000 });
    g.observe({
      status: 200,
      headers: {
        'x-ms-ratelimit-burst-remaining-xrm-requests': '10',
        'x-ms-ratelimit-time-remaining-xrm-requests': '1,200.00',
      },
    });
    assert.equal(g.state().intervalMs, 0, 'the burst is free');
    g.observe({
      status: 200,
      headers: {
        'x-ms-ratelimit-burst-remaining-xrm-requests': '4',
        'x-ms-ratelimit-time-remaining-xrm-requests': '1,199.90',
      },
    });
    assert.equal(g.state().intervalMs, 250);
    const h = harness(g);
    h.start(3);
    for (let i = 0; i < 3; i++) {
      await clock.tickAsync(0);
      h.calls.at(-1)?.resolve();
      await clock.tickAsync(250);
    }
    assert.deepEqual(
      h.calls.map((c) => c.started - h.calls[0]!.started),
      [0, 250, 500],
    );
  });

  it('paces from the execution time left (commas stripped): windowMs × average cost / time left', () => {
    const g = createGovernor({ windowMs: 300_000 });
    g.observe({
      status: 200,
      headers: {
        'x-ms-ratelimit-burst-remaining-xrm-requests': '6000',
        'x-ms-ratelimit-time-remaining-xrm-requests': '1,200.00',
      },
    });
    // 100 requests used 900 s: 9 s each; 300 s left → 300000 × 9000 / 300000 = 9000 ms between starts.
    g.observe({
      status: 200,
      headers: {
        'x-ms-ratelimit-burst-remaining-xrm-requests': '5900',
        'x-ms-ratelimit-time-remaining-xrm-requests': '300.00',
      },
    });
    assert.equal(g.state().timeRemainingMs, 300_000);
    assert.equal(g.state().intervalMs, 9000);
    assert.equal(parseTimeRemaining('1,199.46'), 1_199_460);
    assert.equal(parseTimeRemaining('n/a'), undefined);
  });

  it('a 429 seen by observe (a call made elsewhere) pauses too', async () => {
    const g = createGovernor();
    g.observe({ status: 429, headers: { 'retry-after': '2' } });
    const h = harness(g);
    h.start(1);
    await clock.tickAsync(1999);
    assert.equal(h.calls.length, 0);
    await clock.tickAsync(1);
    assert.equal(h.calls.length, 1);
  });

  it('times a call out: its signal fires and the run rejects with DataverseTimeout', async () => {
    const g = createGovernor({ timeoutMs: 500 });
    const h = harness(g);
    h.start(1);
    await clock.tickAsync(499);
    assert.equal(h.outcomes.length, 0);
    await clock.tickAsync(1);
    assert.equal(h.calls[0]!.signal.aborted, true);
    const err = h.outcomes[0]!.value as DataverseError;
    assert.equal(err.code, 'DataverseTimeout');
    assert.match(err.message, /within 500 ms/);
    assert.equal(g.state().inFlight, 0);
  });

  it("the caller's abort: a waiting run leaves the queue, a running one rethrows the caller's reason", async () => {
    const g = createGovernor({ initialConcurrency: 1 });
    const h = harness(g);
    const running = new AbortController();
    const waiting = new AbortController();
    h.start(1, running.signal);
    h.start(1, waiting.signal);
    await clock.tickAsync(0);
    waiting.abort(new Error('stop waiting'));
    await clock.tickAsync(0);
    assert.equal(g.state().waiting, 0);
    assert.equal((h.outcomes[0]!.value as Error).message, 'stop waiting');
    running.abort(new Error('stop running'));
    await clock.tickAsync(0);
    assert.equal(h.calls[0]!.signal.aborted, true);
    assert.equal((h.outcomes[1]!.value as Error).message, 'stop running');
    assert.equal(g.state().inFlight, 0);
  });

  it('close() rejects the waiting callers and new ones; idempotent', async () => {
    const g = createGovernor({ initialConcurrency: 1 });
    const h = harness(g);
    h.start(2);
    await clock.tickAsync(0);
    g.close();
    g.close();
    await clock.tickAsync(0);
    assert.match((h.outcomes[0]!.value as Error).message, /governor is closed/);
    await assert.rejects(
      g.run(async () => 1),
      /governor is closed/,
    );
  });

  it('validates its options once', () => {
    assert.throws(() => createGovernor({ maxConcurrency: 53 }), /maxConcurrency must be an integer 1-52, found 53/);
    assert.throws(
      () => createGovernor({ initialConcurrency: 20, maxConcurrency: 10 }),
      /initialConcurrency must be an integer 1-10/,
    );
    assert.throws(() => createGovernor({ paceBelow: 2 }), /paceBelow must be between 0 and 1/);
  });

  it('a call that waits longer than maxQueueMs for the limits fails as throttled, so that the caller decides', async () => {
    const governor = createGovernor({ initialConcurrency: 1, maxConcurrency: 1, maxQueueMs: 5000, timeoutMs: 60_000 });
    const h = harness(governor);
    h.start(1); // holds the only slot
    const [waiting] = h.start(1);
    await clock.tickAsync(4999);
    assert.equal(h.calls.length, 1);
    assert.equal(h.outcomes.length, 0, 'still waiting just before maxQueueMs');
    await clock.tickAsync(1);
    const err = await (waiting as Promise<unknown>).catch((e: unknown) => e);
    assert.ok(
      isDataverseError(err) && err.code === 'DataverseThrottled' && (err.retryAfterMs ?? 0) >= 1000,
      String(err),
    );
    assert.match((err as DataverseError).message, /waited 5000 ms for the service protection limits/);
    assert.equal(governor.state().waiting, 0, 'it left the queue');
    h.calls[0]?.resolve('done');
    await clock.tickAsync(0);
    assert.equal(h.calls.length, 1, 'the call that gave up never started');
    assert.throws(() => createGovernor({ maxQueueMs: 0 }), /maxQueueMs must be > 0/);
  });
  describe('without headers, or with headers that do not agree', () => {
    /** Starts `n` calls at once (the governor decides when each runs), each taking `durationMs` for `operations`; returns when each started. */
    async function sequential(g: Governor, n: number, durationMs: number, operations: number): Promise<number[]> {
      const starts: number[] = [];
      const all = Array.from({ length: n }, () =>
        g.run(
          async () => {
            starts.push(Date.now());
            await new Promise((resolve) => setTimeout(resolve, durationMs));
          },
          { operations },
        ),
      );
      await clock.tickAsync(60 * 60_000);
      await Promise.all(all);
      return starts;
    }

    it('learns the execution time per operation from the durations and paces to its execution budget, headers or not', async () => {
      // 10 operations of 10 ms: 100 ms a call; 2,000 ms a window of 10 s allows 20 calls, pacing starts below half.
      const g = createGovernor({
        initialConcurrency: 1,
        maxConcurrency: 1,
        windowMs: 10_000,
        executionBudgetMs: 2000,
        maxQueueMs: 3_600_000,
      });
      const starts = await sequential(g, 60, 100, 10);
      assert.equal(g.state().operationEstimateMs, 10);
      // In any window, the calls that started there spent at most the budget.
      for (const [i, t] of starts.entries()) {
        const inWindow = starts.filter((u, j) => j >= i && u < t + 10_000).length;
        assert.ok(inWindow * 100 <= 2000, `at most 20 calls in the window from call ${i}, found ${inWindow}`);
      }
      // The first half of the budget goes at once (back to back), then starts spread out.
      assert.equal(starts[9]! - starts[0]!, 900, 'the burst');
      assert.ok(
        starts[59]! - starts[0]! >= 2 * 10_000,
        `60 calls of 100 ms need three windows, took ${starts[59]! - starts[0]!} ms`,
      );
      assert.equal(g.state().headersTrusted, true, 'no header came: nothing to distrust');
    });

    it('a busy identity spends nearly its whole budget window after window (at least 85 %), never more in any window', async () => {
      // Execution time: calls of 10 operations of 10 ms (100 ms), 2,000 ms a window of 10 s: 20 calls a window.
      const slow = createGovernor({
        initialConcurrency: 1,
        maxConcurrency: 1,
        windowMs: 10_000,
        executionBudgetMs: 2000,
        maxQueueMs: 3_600_000,
      });
      const starts = await sequential(slow, 200, 100, 10);
      for (const [i, t] of starts.entries()) {
        const inWindow = starts.filter((u, j) => j >= i && u < t + 10_000).length;
        assert.ok(inWindow <= 20, `at most 20 calls in the window from call ${i}, found ${inWindow}`);
      }
      // 200 calls are 10 budgets' worth: at the budget's rate they take 9 windows after the first (the slack aside).
      // Spreading only what is left over the window settles at half the budget: about 19 windows.
      const windows = (starts.at(-1)! - starts[0]!) / 10_000;
      assert.ok(windows <= 9 / 0.85, `200 calls took ${windows.toFixed(2)} windows: less than 85 % of the budget`);
      // Requests: 10 a window of 1 s.
      const many = createGovernor({ initialConcurrency: 4, windowMs: 1000, requestBudget: 10, maxQueueMs: 3_600_000 });
      const requestStarts = await sequential(many, 200, 1, 1);
      const requestWindows = (requestStarts.at(-1)! - requestStarts[0]!) / 1000;
      assert.ok(requestWindows <= 19 / 0.85, `200 requests took ${requestWindows.toFixed(2)} windows of 10`);
    });

    it('counts its own requests against requestBudget without headers', async () => {
      const g = createGovernor({ initialConcurrency: 4, windowMs: 1000, requestBudget: 10, maxQueueMs: 3_600_000 });
      const starts = await sequential(g, 30, 1, 1);
      for (const [i, t] of starts.entries()) {
        assert.ok(
          starts.filter((u, j) => j >= i && u < t + 1000).length <= 10,
          `at most 10 starts in the window from start ${i}`,
        );
      }
      assert.ok(g.state().requestsUsed <= 10);
    });

    it('an execution-time 429 raises the estimate per operation (the own count fell short); a requests 429 does not', async () => {
      const g = createGovernor({ windowMs: 10_000, executionBudgetMs: 10_000 });
      await sequential(g, 1, 100, 10);
      assert.equal(g.state().operationEstimateMs, 10);
      const time429 = Object.assign(
        new Error(
          'Combined execution time of incoming requests exceeded limit of 1200000 milliseconds over time window of 300 seconds.',
        ),
        {
          status: 429,
          code: '0x80072321',
          headers: { 'retry-after': '1' },
        },
      );
      await assert.rejects(g.run(async () => Promise.reject(throttled(1))));
      assert.equal(g.state().operationEstimateMs, 10, 'requests: the Retry-After is all');
      await clock.tickAsync(1000);
      await assert.rejects(g.run(async () => Promise.reject(time429)));
      // 100 ms counted of a 10,000 ms budget Dataverse says is spent: ×100, capped at ×10.
      assert.equal(g.state().operationEstimateMs, 100);
    });

    it('believes no header reading that went up: scrambled headers neither pace nor stop pacing, consistent ones do again', () => {
      const g = createGovernor({ windowMs: 1000 });
      const reading = (burst: number, time: string) =>
        g.observe({
          status: 200,
          headers: {
            'x-ms-ratelimit-burst-remaining-xrm-requests': String(burst),
            'x-ms-ratelimit-time-remaining-xrm-requests': time,
          },
        });
      reading(6000, '1,200.00');
      reading(5990, '1,199.00');
      assert.equal(g.state().headersTrusted, true);
      reading(2, '1,198.00'); // a server that says almost nothing is left …
      assert.equal(g.state().intervalMs, 500, 'believed while the readings go down');
      reading(5980, '1,197.00'); // … and another that says plenty: one of them is not this identity's view
      assert.deepEqual([g.state().headersTrusted, g.state().intervalMs], [false, 0]);
      reading(3, '1,196.00');
      reading(2, '1,195.00');
      assert.deepEqual([g.state().headersTrusted, g.state().intervalMs], [false, 0], 'not yet: two readings down');
      reading(1, '1,194.00');
      assert.deepEqual(
        [g.state().headersTrusted, g.state().intervalMs],
        [true, 1000],
        'three readings down: believed again',
      );
    });

    it('honours x-ms-dop-hint: the concurrency ceiling drops to the hint and grows no further', async () => {
      const g = createGovernor({ initialConcurrency: 8, maxConcurrency: 16 });
      g.observe({ status: 200, headers: { 'x-ms-dop-hint': '3' } });
      assert.deepEqual([g.state().concurrency, g.state().dopHint], [3, 3]);
      for (let i = 0; i < 20; i++) await g.run(async () => 'x');
      assert.equal(g.state().concurrency, 3);
      const h = harness(g);
      h.start(5);
      await clock.tickAsync(0);
      assert.equal(h.calls.length, 3);
      g.observe({ status: 200, headers: { 'x-ms-dop-hint': 'many' } });
      assert.equal(g.state().dopHint, 3, 'an unreadable hint is ignored');
      g.observe({ status: 200, headers: { 'x-ms-dop-hint': '6' } });
      for (const c of h.calls) c.resolve();
      for (let i = 0; i < 40; i++) await g.run(async () => 'x');
      assert.equal(g.state().concurrency, 6, 'a larger hint lets it grow to it');
    });
  });
});
