import assert from 'node:assert/strict';
import { resolveRetry, retryDelay } from '../../src/retry.js';

describe('retry vocabulary (src/retry.ts)', () => {
  const defaults = { attempts: 6, initialDelayMs: 500, maxDelayMs: 30_000 };

  it('fills in the defaults and keeps what is given', () => {
    assert.deepEqual(resolveRetry('C', 'retry', undefined, defaults), defaults);
    assert.deepEqual(resolveRetry('C', 'retry', { attempts: 1, maxDelayMs: 800 }, defaults), {
      attempts: 1,
      initialDelayMs: 500,
      maxDelayMs: 800,
    });
  });

  it('names the component, the key and the field of a bad value', () => {
    assert.throws(
      () => resolveRetry('C', 'readRetry', { attempts: 0 }, defaults),
      /^TypeError: C: readRetry\.attempts must be an integer >= 1, found 0$/,
    );
    assert.throws(
      () => resolveRetry('C', 'readRetry', { initialDelayMs: -1 }, defaults),
      /C: readRetry\.initialDelayMs must be a finite number of at least 0, found -1/,
    );
    assert.throws(
      () => resolveRetry('C', 'retry', { initialDelayMs: 0.5 }, defaults, true),
      /C: retry\.initialDelayMs must be an integer >= 1, found 0\.5/,
    );
    assert.throws(
      () => resolveRetry('C', 'retry', { initialDelayMs: 500, maxDelayMs: 100 }, defaults),
      /C: retry\.maxDelayMs \(100\) must be >= initialDelayMs \(500\)/,
    );
  });

  it('doubles the delay from initialDelayMs after each failure, up to maxDelayMs', () => {
    const delays = { initialDelayMs: 500, maxDelayMs: 3000 };
    assert.deepEqual(
      [1, 2, 3, 4, 5].map((n) => retryDelay(n, delays)),
      [500, 1000, 2000, 3000, 3000],
    );
  });
});
