import assert from 'node:assert/strict';
import { SegmentQueue, smsSegments } from '../../../../src/emulators/providers/segments.js';

describe('Twilio simulator: segments and the sender queue', () => {
  const cases: Array<[string, string, number]> = [
    ['GSM-7 160', 'a'.repeat(160), 1],
    ['GSM-7 161', 'a'.repeat(161), 2],
    ['extension characters count two: 80 × {', '{'.repeat(80), 1],
    ['81 × { is 162 septets', '{'.repeat(81), 2],
    ['an escape stays with its character: 152 + ] + 152', `${'a'.repeat(152)}]${'a'.repeat(152)}`, 3],
    ['UCS-2 70', 'ж'.repeat(70), 1],
    ['UCS-2 71', 'ж'.repeat(71), 2],
    ['a surrogate pair stays whole: 66 + 😀 + 66', `${'a'.repeat(66)}\u{1F600}${'a'.repeat(66)}`, 3],
    ['a grapheme stays whole: 61 + 👨‍👩‍👧 + 65', `${'a'.repeat(61)}\u{1F468}\u200D\u{1F469}\u200D\u{1F467}${'a'.repeat(65)}`, 3],
  ];
  for (const [name, body, n] of cases) it(`counts ${name}: ${n}`, () => assert.equal(smsSegments(body), n));

  it('queues segments over the MPS in arrival order and says how much later than from an idle sender each goes', () => {
    const q = new SegmentQueue(1000);
    assert.deepEqual(q.enqueue(0, 2, 2), { firstAt: 0, queuedMs: 0 });
    // The window is full until 1000: the next segment goes then.
    assert.deepEqual(q.enqueue(500, 1, 2), { firstAt: 1000, queuedMs: 500 });
    assert.equal(q.waiting(500), 1);
    // 5 segments from an idle sender at 2 a second: 3 windows, not queued.
    const idle = new SegmentQueue(1000);
    assert.deepEqual(idle.enqueue(0, 5, 2), { firstAt: 0, queuedMs: 0 });
    assert.equal(idle.waiting(0), 3);
    assert.deepEqual(idle.place(3000, 2, 2), { firstAt: 3000, queuedMs: 0 }, 'free again 3 windows later');
    assert.equal(idle.waiting(3000), 0);
  });
});
