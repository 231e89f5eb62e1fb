import assert from 'node:assert/strict';
import sinon from 'sinon';
import { Backoff } from '../../../src/servicebus/backoff.js';

describe('servicebus backoff', () => {
  let clock: sinon.SinonFakeTimers;
  beforeEach(() => (clock = sinon.useFakeTimers()));
  afterEach(() => clock.restore());

  it('doubles from initialDelayMs up to maxDelayMs, and starts again after reset', () => {
    const b = new Backoff({ initialDelayMs: 100, maxDelayMs: 1000, jitter: 0 });
    assert.deepEqual([b.next(), b.next(), b.next(), b.next(), b.next(), b.next()], [100, 200, 400, 800, 1000, 1000]);
    assert.equal(b.attempt, 6);
    b.reset();
    assert.equal(b.next(), 100);
  });

  it('takes up to the jitter share off each delay', () => {
    assert.equal(new Backoff({ initialDelayMs: 1000, jitter: 0.2, random: () => 1 }).next(), 800);
    assert.equal(new Backoff({ initialDelayMs: 1000, jitter: 0.2, random: () => 0 }).next(), 1000);
  });

  it('rejects bad options with the option named', () => {
    assert.throws(() => new Backoff({ initialDelayMs: 0 }), /backoff: initialDelayMs must be an integer >= 1, found 0/);
    assert.throws(() => new Backoff({ initialDelayMs: 100, maxDelayMs: 50 }), /maxDelayMs must be an integer >= 100/);
    assert.throws(() => new Backoff({ jitter: 1 }), /jitter/);
    assert.throws(() => new Backoff({ factor: 0.5 }), /factor/);
  });
});
