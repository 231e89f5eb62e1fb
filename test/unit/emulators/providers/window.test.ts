import assert from 'node:assert/strict';
import { SlidingWindow, SlidingWindows } from '../../../../src/emulators/providers/window.js';

describe('provider simulators: sliding window', () => {
  it('holds the events of the last windowMs: two events exactly windowMs apart are in different windows', () => {
    const w = new SlidingWindow(1000);
    w.add(0);
    assert.equal(w.count(999), 1);
    assert.equal(w.count(1000), 0);
  });

  it('waitMs is the time until an event leaves so that fewer than limit remain', () => {
    const w = new SlidingWindow(1000);
    for (const t of [0, 100, 200]) w.add(t);
    assert.equal(w.waitMs(200, 4), 0);
    assert.equal(w.waitMs(250, 3), 750, 'the event at 0 leaves at 1000');
    assert.equal(w.waitMs(250, 2), 850, 'two must leave: the one at 100 leaves at 1100');
    assert.equal(w.waitMs(1150, 2), 0);
  });

  it('maxInAnyWindow is the most events any window held, whatever was pruned since', () => {
    const w = new SlidingWindow(1000);
    for (const t of [0, 10, 20, 1500, 2400, 2499, 2499, 2500]) w.add(t);
    assert.equal(w.maxInAnyWindow, 4, '1500, 2400, 2499, 2499 (2500 is 1000 ms after 1500: another window)');
    assert.equal(w.count(5000), 0);
    assert.equal(w.maxInAnyWindow, 4);
  });

  it('treats a clock that goes backwards as standing still', () => {
    const w = new SlidingWindow(1000);
    w.add(5000);
    w.add(4000);
    assert.equal(w.count(5999), 2);
    assert.equal(w.count(6000), 0);
  });

  it('one window per key; bad sizes are refused', () => {
    const ws = new SlidingWindows(1000);
    ws.get('a').add(0);
    assert.equal(ws.get('a').count(1), 1);
    assert.equal(ws.get('b').count(1), 0);
    assert.throws(() => new SlidingWindow(0), /windowMs must be > 0/);
  });
});
