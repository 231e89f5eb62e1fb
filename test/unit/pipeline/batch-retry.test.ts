import assert from 'node:assert/strict';
import { noRoomLeft, retryWithinBatch, type BatchRetry, type Verdict } from '../../../src/pipeline/batch-retry.js';

/** The helper on its own: what the stages' tests (intake, recorder) assert through it, one rule at a time. */
describe('pipeline: retryWithinBatch', () => {
  const FAR = (): number => Date.now() + 3_600_000;

  function run<T>(outcomes: Array<T | Error>, over: Partial<BatchRetry<T>> = {}) {
    const waits: number[] = [];
    let calls = 0;
    const stop = new AbortController();
    const options: BatchRetry<T> = {
      retry: { attempts: 4, initialDelayMs: 100, maxDelayMs: 300 },
      deadline: FAR(),
      callTimeoutMs: 1000,
      signal: new AbortController().signal,
      waits: stop.signal,
      sleep: async (ms) => void waits.push(ms),
      attempt: async () => {
        const next = outcomes[calls++];
        if (next instanceof Error) throw next;
        return next as T;
      },
      judge: (_failure, { delayMs }): Verdict => ({ waitMs: delayMs }),
      ...over,
    };
    return { result: retryWithinBatch(options), waits, calls: () => calls, stop };
  }

  it('tries again after the doubling delay until an attempt succeeds', async () => {
    const r = run([new Error('a'), new Error('b'), new Error('c'), 'ok']);
    assert.deepEqual(await r.result, { ok: true, value: 'ok' });
    assert.deepEqual(r.waits, [100, 200, 300]);
  });

  it('waits what the judge says (a Retry-After), and ends with the last failure when every attempt failed', async () => {
    const last = new Error('d');
    const r = run([new Error('a'), new Error('b'), new Error('c'), last], {
      judge: (_f, { delayMs }) => ({ waitMs: Math.max(delayMs, 250) }),
    });
    assert.deepEqual(await r.result, { ok: false, end: 'spent', failures: 4, failure: { error: last } });
    assert.deepEqual(r.waits, [250, 250, 300]);
  });

  it('a value that is not done is tried again like an error', async () => {
    const r = run([1, 1, 0], { unfinished: (n: number) => n > 0 });
    assert.deepEqual(await r.result, { ok: true, value: 0 });
    assert.equal(r.calls(), 3);
  });

  it('ends without a wait when the judge refuses or says throttled', async () => {
    const refused = run([new Error('bad')], { judge: () => false });
    assert.deepEqual(await refused.result, {
      ok: false,
      end: 'refused',
      failures: 1,
      failure: { error: new Error('bad') },
    });
    const throttled = run([new Error('429')], { judge: () => 'throttled' });
    assert.deepEqual(await throttled.result, {
      ok: false,
      end: 'throttled',
      failures: 1,
      failure: { error: new Error('429') },
    });
    assert.deepEqual([...refused.waits, ...throttled.waits], []);
  });

  it('starts no attempt, and no wait, that could not end before the deadline', async () => {
    const none = run(['ok'], { deadline: Date.now() + 500 });
    assert.deepEqual(await none.result, { ok: false, end: 'noRoom', failures: 0, failure: undefined });
    assert.equal(none.calls(), 0);
    const noRetry = run([new Error('a'), 'ok'], { deadline: Date.now() + 1050 });
    assert.equal(((await noRetry.result) as { end: string }).end, 'noRoomToRetry');
    assert.deepEqual(noRetry.waits, []);
  });

  it('a stop before the wait ends the retries; a stop during it cuts it short and no attempt follows', async () => {
    const before = run([new Error('a'), 'ok']);
    before.stop.abort();
    assert.equal(((await before.result) as { end: string }).end, 'stopped');
    const stop = new AbortController();
    const during = run([new Error('a'), 'ok'], { waits: stop.signal, sleep: async () => stop.abort() });
    assert.equal(((await during.result) as { end: string }).end, 'cut');
    assert.equal(during.calls(), 1);
  });

  it('noRoomLeft() inside an attempt ends with noRoom, not counted as a failure', async () => {
    const r = run<string>([new Error('a')], {
      attempt: async (n) => {
        if (n === 1) throw new Error('a');
        return noRoomLeft();
      },
    });
    assert.deepEqual(await r.result, { ok: false, end: 'noRoom', failures: 1, failure: { error: new Error('a') } });
  });
});
