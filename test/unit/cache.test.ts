import assert from 'node:assert/strict';
import { TtlCache } from '../../src/cache.js';

describe('TtlCache', () => {
  let time: number;
  const now = (): number => time;
  beforeEach(() => (time = 1_000));

  it('returns what was set until its time to live has passed, then drops it', () => {
    const cache = new TtlCache<string, number>({ max: 10, ttlMs: 100, now });
    assert.equal(cache.get('a'), undefined);
    cache.set('a', 1);
    time += 99;
    assert.equal(cache.get('a'), 1);
    time += 1;
    assert.equal(cache.get('a'), undefined);
    assert.equal(cache.size, 0);
  });

  it('a set again starts a new time to live with the new value', () => {
    const cache = new TtlCache<string, number>({ max: 10, ttlMs: 100, now });
    cache.set('a', 1);
    time += 60;
    cache.set('a', 2);
    time += 60;
    assert.equal(cache.get('a'), 2);
  });

  it('delete drops one entry and leaves the others (an absent key is no error)', () => {
    const cache = new TtlCache<string, number>({ max: 10, ttlMs: 100, now });
    cache.set('a', 1);
    cache.set('b', 2);
    cache.delete('a');
    cache.delete('z');
    assert.equal(cache.get('a'), undefined);
    assert.equal(cache.get('b'), 2);
    assert.equal(cache.size, 1);
  });

  it('keeps at most max entries, evicting the least recently used (a get or a set counts as a use)', () => {
    const cache = new TtlCache<string, string>({ max: 2, ttlMs: 1_000, now });
    cache.set('a', 'A');
    cache.set('b', 'B');
    assert.equal(cache.get('a'), 'A');
    cache.set('c', 'C');
    assert.equal(cache.size, 2);
    assert.equal(cache.get('b'), undefined);
    assert.equal(cache.get('a'), 'A');
    assert.equal(cache.get('c'), 'C');
    cache.set('a', 'A2');
    cache.set('d', 'D');
    assert.equal(cache.get('c'), undefined);
    assert.equal(cache.get('a'), 'A2');
    assert.equal(cache.get('d'), 'D');
  });

  it('keeps nothing when max or ttlMs is 0', () => {
    for (const options of [
      { max: 0, ttlMs: 100 },
      { max: 10, ttlMs: 0 },
    ]) {
      const cache = new TtlCache<string, number>({ ...options, now });
      cache.set('a', 1);
      assert.equal(cache.get('a'), undefined);
      assert.equal(cache.size, 0);
    }
  });

  it('uses Date.now when no clock is given', () => {
    const cache = new TtlCache<string, number>({ max: 1, ttlMs: 60_000 });
    cache.set('a', 1);
    assert.equal(cache.get('a'), 1);
  });

  it("refuses a bad max or ttlMs, naming it with the caller's name", () => {
    assert.throws(
      () => new TtlCache({ max: 1.5, ttlMs: 1 }),
      /^TypeError: TtlCache\.max must be an integer >= 0, found 1\.5$/,
    );
    assert.throws(
      () => new TtlCache({ max: -1, ttlMs: 1, name: 'reads: messageCache' }),
      /^TypeError: reads: messageCache\.max must be an integer >= 0, found -1$/,
    );
    assert.throws(
      () => new TtlCache({ max: 1, ttlMs: Number.NaN, name: 'directory: activityCache' }),
      /^TypeError: directory: activityCache\.ttlMs must be >= 0, found NaN$/,
    );
    assert.throws(() => new TtlCache({ max: 1, ttlMs: -1 }), /ttlMs must be >= 0, found -1/);
  });
});
