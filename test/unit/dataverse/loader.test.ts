import assert from 'node:assert/strict';
import sinon from 'sinon';
import { BatchLoader } from '../../../src/dataverse/loader.js';

/** A `load` whose answers the test gives: each call is recorded with its keys, signal and a way to answer it. */
function scripted() {
  const calls: Array<{
    keys: string[];
    signal: AbortSignal;
    answer(found: Map<string, string | Error>): void;
    fail(err: Error): void;
  }> = [];
  const load = (keys: readonly string[], signal: AbortSignal): Promise<Map<string, string | Error>> =>
    new Promise((resolve, reject) => calls.push({ keys: [...keys], signal, answer: resolve, fail: reject }));
  return { calls, load };
}

/** Lets the next tick's work (a batch sent at once) and the promise callbacks after it run. */
const ticks = async (): Promise<void> => {
  for (let i = 0; i < 5; i++) await new Promise((r) => process.nextTick(r));
};

describe('dataverse: the batching loader', () => {
  let clock: sinon.SinonFakeTimers;
  // The timers of the window only: a batch sent at once goes on the next tick, which stays real.
  beforeEach(() => (clock = sinon.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] })));
  afterEach(() => clock.restore());

  it('a key asked while idle goes at once: no window waited for', async () => {
    const { calls, load } = scripted();
    const loader = new BatchLoader({ load });
    const a = loader.load('a');
    await ticks();
    assert.deepEqual(
      calls.map((c) => c.keys),
      [['a']],
      'sent without the clock moving',
    );
    calls[0]!.answer(new Map([['a', 'A']]));
    assert.equal(await a, 'A');
  });

  it('the keys of one synchronous burst share one batch', async () => {
    const { calls, load } = scripted();
    const loader = new BatchLoader({ load });
    const answers = ['a', 'b', 'c'].map((k) => loader.load(k));
    await ticks();
    assert.deepEqual(
      calls.map((c) => c.keys),
      [['a', 'b', 'c']],
    );
    calls[0]!.answer(
      new Map([
        ['a', 'A'],
        ['c', 'C'],
      ]),
    );
    assert.deepEqual(await Promise.all(answers), ['A', undefined, 'C'], 'a key absent from the answer: not found');
  });

  it('keys asked while a batch is in flight wait up to the window, de-duplicated, then go together', async () => {
    const { calls, load } = scripted();
    const loader = new BatchLoader({ load, windowMs: 5 });
    const a = loader.load('a');
    await ticks();
    const b1 = loader.load('b');
    const c = loader.load('c');
    await ticks();
    const b2 = loader.load('b');
    const again = loader.load('a');
    assert.equal(calls.length, 1, 'nothing more sent before the window ends');
    assert.equal(loader.queued, 2, "'b' once, 'c'; 'a' shares the batch in flight");
    await clock.tickAsync(4);
    assert.equal(calls.length, 1);
    await clock.tickAsync(1);
    assert.deepEqual(
      calls.map((c) => c.keys),
      [['a'], ['b', 'c']],
    );
    calls[0]!.answer(new Map([['a', 'A']]));
    calls[1]!.answer(
      new Map([
        ['b', 'B'],
        ['c', 'C'],
      ]),
    );
    assert.deepEqual(await Promise.all([a, again, b1, b2, c]), ['A', 'A', 'B', 'B', 'C']);
  });

  it('keys waiting go as soon as the batch in flight ends, before their window', async () => {
    const { calls, load } = scripted();
    const loader = new BatchLoader({ load, windowMs: 1000 });
    void loader.load('a');
    await ticks();
    const b = loader.load('b');
    calls[0]!.answer(new Map());
    await ticks();
    assert.deepEqual(
      calls.map((c) => c.keys),
      [['a'], ['b']],
      'the clock did not move',
    );
    calls[1]!.answer(new Map([['b', 'B']]));
    assert.equal(await b, 'B');
  });

  it('at most maxBatch keys a batch; a full batch does not wait for the window', async () => {
    const { calls, load } = scripted();
    const loader = new BatchLoader({ load, windowMs: 1000, maxBatch: 2 });
    void loader.load('a');
    await ticks();
    for (const k of ['b', 'c', 'd']) void loader.load(k);
    await ticks();
    assert.deepEqual(
      calls.map((c) => c.keys),
      [['a'], ['b', 'c']],
    );
    await clock.tickAsync(1000);
    assert.deepEqual(
      calls.map((c) => c.keys),
      [['a'], ['b', 'c'], ['d']],
    );
  });

  it('errors per key: an error for one key fails that key alone; a failed request fails the keys of its batch only', async () => {
    const { calls, load } = scripted();
    const loader = new BatchLoader({ load });
    const [a, b] = [loader.load('a'), loader.load('b')];
    await ticks();
    const c = loader.load('c');
    calls[0]!.answer(
      new Map<string, string | Error>([
        ['a', new Error('bad a')],
        ['b', 'B'],
      ]),
    );
    await assert.rejects(a, /bad a/);
    assert.equal(await b, 'B');
    await ticks();
    const d = loader.load('d');
    calls[1]!.fail(new Error('429 past its retries'));
    await assert.rejects(c, /429/);
    await ticks();
    assert.deepEqual(calls[2]?.keys, ['d']);
    calls[2]!.answer(new Map([['d', 'D']]));
    assert.equal(await d, 'D', 'the next batch is not touched by the failure');
  });

  it("a caller's signal ends its own wait; the request is aborted only when no caller waits", async () => {
    const { calls, load } = scripted();
    const loader = new BatchLoader({ load });
    const first = new AbortController();
    const second = new AbortController();
    const a1 = loader.load('a', first.signal);
    const a2 = loader.load('a', second.signal);
    await ticks();
    first.abort(new Error('first gone'));
    await assert.rejects(a1, /first gone/);
    assert.equal(calls[0]!.signal.aborted, false, 'one caller still waits');
    second.abort(new Error('second gone'));
    await assert.rejects(a2, /second gone/);
    assert.equal(calls[0]!.signal.aborted, true);
    // A caller asking the key now does not join the aborted batch: it waits for the next one.
    const a3 = loader.load('a');
    await clock.tickAsync(5);
    assert.deepEqual(
      calls.map((c) => c.keys),
      [['a'], ['a']],
    );
    calls[1]!.answer(new Map([['a', 'A']]));
    assert.equal(await a3, 'A');
    await assert.rejects(loader.load('x', AbortSignal.abort(new Error('already'))), /already/);
  });

  it('refuses bad options, naming them', () => {
    const load = async () => new Map<string, string>();
    assert.throws(() => new BatchLoader({ load, windowMs: -1, name: 'X' }), /X\.windowMs must be a number >= 0/);
    assert.throws(() => new BatchLoader({ load, maxBatch: 0, name: 'X' }), /X\.maxBatch must be an integer >= 1/);
  });
});
