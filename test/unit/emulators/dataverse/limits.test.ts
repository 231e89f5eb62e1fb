import assert from 'node:assert/strict';
import { isFault } from '../../../../src/emulators/dataverse/faults.js';
import { Governor, loadLimits, resolveLimits, type LimitsConfig } from '../../../../src/emulators/dataverse/limits.js';

function governor(partial: Partial<LimitsConfig>): { g: Governor; clock: { now: number } } {
  const clock = { now: 1_000_000 };
  return { g: new Governor(resolveLimits({ enabled: true, ...partial }), () => clock.now), clock };
}

/** `n` read operations. */
function reads(n: number): { reads: number; writes: number } {
  return { reads: n, writes: 0 };
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
      g.finish(g.admit('a'), reads(1));
      clock.now += 1000;
    }
    const r = refusal(() => g.admit('a'));
    assert.deepEqual(r, { code: '0x80072322', retryAfter: 7 });
    g.finish(g.admit('b'), reads(1)); // another identity is not affected
    clock.now += 7000;
    g.finish(g.admit('a'), reads(1));
  });

  it('adds the execution time of every operation and refuses over the budget', () => {
    const { g, clock } = governor({ windowMs: 60_000, maxExecutionMs: 1000, operationCostMs: 100 });
    g.finish(g.admit('a'), reads(10));
    const r = refusal(() => g.admit('a'));
    assert.equal(r.code, '0x80072321');
    assert.equal(r.retryAfter, 60);
    clock.now += 60_001;
    g.finish(g.admit('a'), reads(1));
    assert.equal(g.stats()['a']!.executionMsTotal, 1100);
    assert.equal(g.stats()['a']!.throttled.executionTime, 1);
  });

  it('refuses beyond the concurrency limit until a slot is freed', () => {
    const { g } = governor({ maxConcurrent: 2 });
    const first = g.admit('a');
    g.admit('a');
    assert.equal(refusal(() => g.admit('a')).code, '0x80072326');
    g.finish(first, reads(1));
    g.admit('a');
  });

  it('writes the budget headers as Dataverse does (time in seconds, en-US grouping, two decimals), also on a 429', () => {
    const { g } = governor({ maxConcurrent: 1 });
    const first = g.admit('a');
    assert.deepEqual(first.headers, {
      'x-ms-ratelimit-burst-remaining-xrm-requests': '5999',
      'x-ms-ratelimit-time-remaining-xrm-requests': '1,200.00',
    });
    try {
      g.admit('a');
      assert.fail('expected the concurrency refusal');
    } catch (err) {
      assert.ok(isFault(err));
      assert.equal(
        err.headers['x-ms-ratelimit-burst-remaining-xrm-requests'],
        '5999',
        'a refusal does not use up the budget',
      );
      assert.equal(err.headers['Retry-After'], '1');
    }
    g.finish(first, reads(1));
    assert.equal(g.admit('a').headers['x-ms-ratelimit-time-remaining-xrm-requests'], '1,199.99');
  });

  it('counts but never refuses when disabled', () => {
    const g = new Governor(loadLimits('off'));
    for (let i = 0; i < 10_000; i += 1) g.finish(g.admit('a'), reads(1000));
    assert.equal(g.stats()['a']!.served, 10_000);
  });

  it('charges reads operationCostMs and writes writeCostMs (operationCostMs alone sets both); the held time is that cost', () => {
    const { g } = governor({ operationCostMs: 10, writeCostMs: 20 });
    assert.equal(g.cost({ reads: 3, writes: 100 }), 2030);
    g.finish(g.admit('a'), { reads: 0, writes: 100 });
    assert.equal(g.stats()['a']!.executionMsInWindow, 2000);
    assert.equal(resolveLimits({ operationCostMs: 7 }).writeCostMs, 7);
    assert.equal(resolveLimits({}).writeCostMs, 20, 'realistic: 20 ms a write (EXECUTION_COSTS)');
  });

  it('headers: omitted (Retry-After stays on a 429), or scrambled as another server would count (never less left than the truth)', () => {
    const omit = governor({ headers: 'omit', maxConcurrent: 1, dopHint: 4 }).g;
    const first = omit.admit('a');
    assert.deepEqual(first.headers, { 'x-ms-dop-hint': '4' });
    try {
      omit.admit('a');
      assert.fail('expected the concurrency refusal');
    } catch (err) {
      assert.ok(isFault(err));
      assert.deepEqual(err.headers, { 'Retry-After': '1' });
    }
    let draw = 0;
    const shares = [0.5, 0, 0.9];
    const clock = { now: 1_000_000 };
    const g = new Governor(
      resolveLimits({ headers: 'scramble', maxRequests: 100, maxExecutionMs: 100_000, operationCostMs: 1000 }),
      () => clock.now,
      () => shares[draw++ % shares.length]!,
    );
    for (let i = 0; i < 10; i++) g.finish(g.admit('a'), reads(1));
    // The truth now: 10 requests (each admitted one adds its own) and 10 s used. Each answer sees its own share.
    draw = 0;
    const seen = [0, 1, 2].map(() => g.admit('a').headers);
    assert.deepEqual(
      seen.map((h) => [
        h['x-ms-ratelimit-burst-remaining-xrm-requests'],
        h['x-ms-ratelimit-time-remaining-xrm-requests'],
      ]),
      [
        ['94', '95.00'],
        ['100', '100.00'],
        ['88', '91.00'],
      ],
    );
  });

  it('configure() changes the limits while running and keeps what was counted', () => {
    const { g } = governor({ maxRequests: 2 });
    g.finish(g.admit('a'), reads(1));
    g.configure({ headers: 'omit' });
    assert.deepEqual(g.admit('a').headers, {});
    assert.equal(g.config.maxRequests, 2, 'the rest stays');
    assert.equal(refusal(() => g.admit('a')).code, '0x80072322');
    assert.throws(
      () => g.configure({ headers: 'loud' as 'omit' }, 'PATCH'),
      /PATCH: 'headers' must be all, omit, scramble, found "loud"/,
    );
  });

  const bad: Array<[Partial<LimitsConfig>, RegExp]> = [
    [{ windowMs: -1 }, /'windowMs' must be a number >= 0, found -1/],
    [{ maxRequests: 'many' as unknown as number }, /'maxRequests' must be a number/],
    [{ nonsense: 1 } as Partial<LimitsConfig>, /unknown key 'nonsense'/],
  ];
  for (const [partial, message] of bad) {
    it(`refuses the limits ${JSON.stringify(partial)}`, () =>
      assert.throws(() => resolveLimits(partial, 'limits.json'), message));
  }
});
