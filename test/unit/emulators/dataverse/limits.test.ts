import assert from 'node:assert/strict';
import { isFault } from '../../../../src/emulators/dataverse/faults.js';
import { Governor, loadLimits, resolveLimits, type LimitsConfig } from '../../../../src/emulators/dataverse/limits.js';

function governor(partial: Partial<LimitsConfig>): { g: Governor; clock: { now: number } } {
  const clock = { now: 1_000_000 };
  return { g: new Governor(resolveLimits({ enabled: true, ...partial }), () => clock.now), clock };
}

function refusal(fn: () => unknown): { code: string; retryAfter: number } {
  try {
    fn();
  } catch (err) {
    if (isFault(err)) return { code: err.code, retryAfter: Number(err.headers['Retry-After']) };
    throw err;
  }
  throw new Error('expected a refusal');
}

describe('service protection governor', () => {
  it('slides the request window: Retry-After is when the oldest request leaves it', () => {
    const { g, clock } = governor({ windowMs: 10_000, maxRequests: 3 });
    for (let i = 0; i < 3; i += 1) {
      g.finish(g.admit('a'), 1);
      clock.now += 1000;
    }
    const r = refusal(() => g.admit('a'));
    assert.deepEqual(r, { code: '0x80072322', retryAfter: 7 });
    g.finish(g.admit('b'), 1); // another identity is not affected
    clock.now += 7000;
    g.finish(g.admit('a'), 1);
  });

  it('adds the execution time of every operation and refuses over the budget', () => {
    const { g, clock } = governor({ windowMs: 60_000, maxExecutionMs: 1000, operationCostMs: 100 });
    g.finish(g.admit('a'), 10);
    const r = refusal(() => g.admit('a'));
    assert.equal(r.code, '0x80072321');
    assert.equal(r.retryAfter, 60);
    clock.now += 60_001;
    g.finish(g.admit('a'), 1);
    assert.equal(g.stats()['a']!.executionMsTotal, 1100);
    assert.equal(g.stats()['a']!.throttled.executionTime, 1);
  });

  it('refuses beyond the concurrency limit until a slot is freed', () => {
    const { g } = governor({ maxConcurrent: 2 });
    const first = g.admit('a');
    g.admit('a');
    assert.equal(refusal(() => g.admit('a')).code, '0x80072326');
    g.finish(first, 1);
    g.admit('a');
  });

  it('writes the budget headers as Dataverse does (time in seconds, en-US grouping, two decimals), also on a 429', () => {
    const { g } = governor({ maxConcurrent: 1 });
    const first = g.admit('a');
    assert.deepEqual(first.headers, { 'x-ms-ratelimit-burst-remaining-xrm-requests': '5999', 'x-ms-ratelimit-time-remaining-xrm-requests': '1,200.00' });
    try {
      g.admit('a');
      assert.fail('expected the concurrency refusal');
    } catch (err) {
      assert.ok(isFault(err));
      assert.equal(err.headers['x-ms-ratelimit-burst-remaining-xrm-requests'], '5999', 'a refusal does not use up the budget');
      assert.equal(err.headers['Retry-After'], '1');
    }
    g.finish(first, 1);
    assert.equal(g.admit('a').headers['x-ms-ratelimit-time-remaining-xrm-requests'], '1,199.99');
  });

  it('counts but never refuses when disabled', () => {
    const g = new Governor(loadLimits('off'));
    for (let i = 0; i < 10_000; i += 1) g.finish(g.admit('a'), 1000);
    assert.equal(g.stats()['a']!.served, 10_000);
  });

  const bad: Array<[Partial<LimitsConfig>, RegExp]> = [
    [{ windowMs: -1 }, /'windowMs' must be a number >= 0, found -1/],
    [{ maxRequests: 'many' as unknown as number }, /'maxRequests' must be a number/],
    [{ nonsense: 1 } as Partial<LimitsConfig>, /unknown key 'nonsense'/],
  ];
  for (const [partial, message] of bad) {
    it(`refuses the limits ${JSON.stringify(partial)}`, () => assert.throws(() => resolveLimits(partial, 'limits.json'), message));
  }
});
