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

  it("a burst that fits what believed headers say is left is not paced by them (they count the identity's other use)", async () => {
    const g = createGovernor({ initialConcurrency: 4, maxConcurrency: 4, windowMs: 300_000 });
    for (const remaining of ['6000', '2500'])
      g.observe({ status: 200, headers: { 'x-ms-ratelimit-burst-remaining-xrm-requests': remaining } });
    assert.equal(g.state().intervalMs, 120, 'below half of what was seen: 300 s / 2,500 apart');
    const h = harness(g);
    h.start(16);
    for (let round = 0; round < 4; round++) {
      await clock.tickAsync(0);
      for (const c of h.calls.slice(round * 4)) c.resolve();
    }
    await clock.tickAsync(0);
    // 16 calls and 8 readings' lag fit the 2,500 less the reserve (600): four at a time, no 120 ms apart.
    assert.deepEqual(
      h.calls.map((c) => c.started - h.calls[0]!.started),
      Array.from({ length: 16 }, () => 0),
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
    assert.throws(() => createGovernor({ burstReserve: -0.1 }), /burstReserve must be between 0 and 1, found -0.1/);
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

    /**
     * Runs `n` calls of `durationMs` for `operations`, `inSight` at a time, starting the next when one ends, as the
     * recorder does (the governor sees only those); returns when each started.
     */
    async function streamed(
      g: Governor,
      n: number,
      inSight: number,
      durationMs: number,
      operations: number,
    ): Promise<number[]> {
      const starts: number[] = [];
      let next = 0;
      const lane = async (): Promise<void> => {
        while (next < n) {
          next++;
          await g.run(
            async () => {
              starts.push(Date.now());
              await new Promise((resolve) => setTimeout(resolve, durationMs));
            },
            { operations },
          );
        }
      };
      const lanes = Promise.all(Array.from({ length: inSight }, lane));
      await clock.tickAsync(60 * 60_000);
      await lanes;
      return starts;
    }

    /** The most calls that started within any `windowMs` (each call costs the same). */
    function mostInAnyWindow(starts: number[], windowMs: number): number {
      return Math.max(...starts.map((t) => starts.filter((u) => u >= t && u < t + windowMs).length));
    }

    // Calls of 10 operations of 10 ms (100 ms each) against 2,000 ms of execution per 10 s: 20 calls a window.
    const BUDGET = {
      initialConcurrency: 4,
      maxConcurrency: 4,
      windowMs: 10_000,
      executionBudgetMs: 2000,
      maxQueueMs: 3_600_000,
    };

    it('a burst that fits what the window has left runs at full concurrency, unpaced, past half the budget', async () => {
      // 16 calls, 1,600 ms of the 2,000: within the budget less the 10 % reserve. Paced below half the budget, the
      // 7th to 16th would start a sustained interval apart (10.2 s × 100 / 2,000 = 510 ms): over 5 s.
      const g = createGovernor(BUDGET);
      const starts = await sequential(g, 16, 100, 10);
      assert.deepEqual(
        starts.map((t) => t - starts[0]!),
        [0, 0, 0, 0, 100, 100, 100, 100, 200, 200, 200, 200, 300, 300, 300, 300],
        'four at a time, back to back',
      );
      assert.ok(g.state().executionUsedMs <= 2000);
    });

    it('a backlog in sight that does not fit is paced as before: half at once, then the sustained rate, never over the budget', async () => {
      const g = createGovernor(BUDGET);
      const starts = await sequential(g, 60, 100, 10);
      assert.ok(mostInAnyWindow(starts, 10_000) <= 20, `at most 20 calls in any window of 10 s`);
      // Pacing starts once half the budget is counted (with the calls in flight), not at the reserve: 10 calls in
      // the first burst, then starts a sustained interval apart.
      const burst = starts.filter((t) => t - starts[0]! < 510).length;
      assert.ok(burst <= 12, `${burst} calls started in the first 510 ms: the backlog was not paced`);
      assert.ok(starts[59]! - starts[0]! >= 2 * 10_000, '60 calls need three windows');
    });

    it('a backlog streamed a few calls at a time bursts once, then keeps the sustained pacing: never over the budget in any window, >= 85 % of it', async () => {
      const g = createGovernor(BUDGET);
      const starts = await streamed(g, 200, 4, 100, 10);
      assert.ok(mostInAnyWindow(starts, 10_000) <= 20, 'at most 20 calls in any window of 10 s');
      // The first window: the governor sees 4 calls at a time, so the burst runs until the reserve (18 calls).
      const first = starts.filter((t) => t - starts[0]! < 1000).length;
      assert.ok(first >= 18, `${first} calls in the first second: the burst was paced`);
      // After the first window: held back once, so paced from half the budget on (no second burst to the reserve).
      const later = starts.filter((t) => t >= starts[0]! + 10_200);
      const secondBurst = later.filter((t) => t - later[0]! < 510).length;
      assert.ok(secondBurst <= 12, `${secondBurst} calls in the 510 ms after the first window: not paced`);
      const windows = (starts.at(-1)! - starts[0]!) / 10_000;
      assert.ok(windows <= 9 / 0.85, `200 calls took ${windows.toFixed(2)} windows: less than 85 % of the budget`);
    });

    it('after a burst, what comes later in the window waits for the burst to leave it: no window overspent', async () => {
      const g = createGovernor(BUDGET);
      const burst = await sequential(g, 18, 100, 10);
      assert.equal(burst.at(-1)! - burst[0]!, 400, 'the burst (1,800 of 2,000 ms) ran unpaced');
      // 3 s later, a backlog: only the reserve is left until the burst slides out of the (2 % wider) window.
      await clock.tickAsync(3000);
      const later = await sequential(g, 40, 100, 10);
      const starts = [...burst, ...later];
      assert.ok(mostInAnyWindow(starts, 10_000) <= 20, 'at most 20 calls in any window of 10 s');
      const beforeBurstLeft = later.filter((t) => t < burst[0]! + 10_000).length;
      assert.ok(beforeBurstLeft <= 2, `${beforeBurstLeft} later calls started while the burst was in the window`);
    });

    it('after a 429 no burst for a window: what would fit the own count is paced', async () => {
      const g = createGovernor(BUDGET);
      await sequential(g, 4, 100, 10);
      await assert.rejects(g.run(async () => Promise.reject(throttled(1))));
      await clock.tickAsync(1000);
      // 16 calls (1,600 ms) fit the 1,800 the reserve leaves: unpaced they would take 800 ms at the halved
      // concurrency; paced, those past half the budget start 510 ms apart.
      const starts = await sequential(g, 16, 100, 10);
      assert.ok(starts.at(-1)! - starts[0]! >= 2000, `16 calls took ${starts.at(-1)! - starts[0]!} ms: not paced`);
    });

    it('bursts again once a window has passed without holding a call back', async () => {
      const g = createGovernor(BUDGET);
      await sequential(g, 40, 100, 10);
      // Held back during the backlog; a window and its slack later, with nothing counted, a burst is unpaced again.
      await clock.tickAsync(10_200);
      const starts = await sequential(g, 16, 100, 10);
      assert.equal(starts.at(-1)! - starts[0]!, 300, 'four at a time, back to back');
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

    it("weighs each call's duration by its operations: a slow small call does not make a $batch of 100 look dear", async () => {
      const g = createGovernor({ windowMs: 10_000, executionBudgetMs: 100_000 });
      await sequential(g, 1, 300, 1);
      assert.equal(g.state().operationEstimateMs, 300);
      await sequential(g, 1, 2000, 100);
      // 20 ms an operation for the batch; the one slow read weighs 1 against 100 (averaging per call: 272 ms).
      const estimate = g.state().operationEstimateMs;
      assert.ok(estimate > 20 && estimate < 25, `estimate ${estimate} ms`);
      // A dearer batch raises it fast, past half-way at once.
      await sequential(g, 1, 4000, 100);
      assert.ok(g.state().operationEstimateMs > 30, `estimate ${g.state().operationEstimateMs} ms`);
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
