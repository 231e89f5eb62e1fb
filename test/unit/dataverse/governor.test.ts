/** The service-protection governor, on sinon fake timers: Retry-After, probe, pacing from headers, AIMD, timeouts. */
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
    const g = createGovernor({ initialConcurrency: 2 });
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

  it('grows concurrency by one per `concurrency` successes, up to maxConcurrency', async () => {
    const g = createGovernor({ initialConcurrency: 2, maxConcurrency: 3 });
    for (let i = 0; i < 2; i++) await g.run(async () => 'x');
    assert.equal(g.state().concurrency, 3);
    for (let i = 0; i < 10; i++) await g.run(async () => 'x');
    assert.equal(g.state().concurrency, 3, 'capped');
  });

  it('paces from x-ms-ratelimit-burst-remaining-xrm-requests below half of the largest seen: windowMs / remaining', async () => {
    const g = createGovernor({ initialConcurrency: 10, windowMs: 1000 });
    g.observe({ status: 200, headers: { 'x-ms-ratelimit-burst-remaining-xrm-requests': '10', 'x-ms-ratelimit-time-remaining-xrm-requests': '1,200.00' } });
    assert.equal(g.state().intervalMs, 0, 'the burst is free');
    g.observe({ status: 200, headers: { 'x-ms-ratelimit-burst-remaining-xrm-requests': '4', 'x-ms-ratelimit-time-remaining-xrm-requests': '1,199.90' } });
    assert.equal(g.state().intervalMs, 250);
    const h = harness(g);
    h.start(3);
    for (let i = 0; i < 3; i++) {
      await clock.tickAsync(0);
      h.calls.at(-1)?.resolve();
      await clock.tickAsync(250);
    }
    assert.deepEqual(h.calls.map((c) => c.started - h.calls[0]!.started), [0, 250, 500]);
  });

  it('paces from the execution time left (commas stripped): windowMs × average cost / time left', () => {
    const g = createGovernor({ windowMs: 300_000 });
    g.observe({ status: 200, headers: { 'x-ms-ratelimit-burst-remaining-xrm-requests': '6000', 'x-ms-ratelimit-time-remaining-xrm-requests': '1,200.00' } });
    // 100 requests used 900 s: 9 s each; 300 s left → 300000 × 9000 / 300000 = 9000 ms between starts.
    g.observe({ status: 200, headers: { 'x-ms-ratelimit-burst-remaining-xrm-requests': '5900', 'x-ms-ratelimit-time-remaining-xrm-requests': '300.00' } });
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
    await assert.rejects(g.run(async () => 1), /governor is closed/);
  });

  it('validates its options once', () => {
    assert.throws(() => createGovernor({ maxConcurrency: 53 }), /maxConcurrency must be an integer 1-52, found 53/);
    assert.throws(() => createGovernor({ initialConcurrency: 20, maxConcurrency: 10 }), /initialConcurrency must be an integer 1-10/);
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
    assert.ok(isDataverseError(err) && err.code === 'DataverseThrottled' && (err.retryAfterMs ?? 0) >= 1000, String(err));
    assert.match((err as DataverseError).message, /waited 5000 ms for the service protection limits/);
    assert.equal(governor.state().waiting, 0, 'it left the queue');
    h.calls[0]?.resolve('done');
    await clock.tickAsync(0);
    assert.equal(h.calls.length, 1, 'the call that gave up never started');
    assert.throws(() => createGovernor({ maxQueueMs: 0 }), /maxQueueMs must be > 0/);
  });
});
