import assert from 'node:assert/strict';
import { AvailableQueue } from '../../../../src/emulators/servicebus/available-queue.js';
import type { StoredMessage } from '../../../../src/emulators/servicebus/message.js';

const msg = (seq: number): StoredMessage => ({ seq }) as StoredMessage;

describe('Service Bus emulator available queue', () => {
  it('hands out messages by sequence number, returned ones before newer ones', () => {
    const q = new AvailableQueue();
    const m = [1, 2, 3, 4, 5].map(msg);
    for (const x of m) q.push(x);
    assert.equal(q.take()!.seq, 1);
    assert.equal(q.take()!.seq, 2);
    assert.equal(q.take()!.seq, 3);
    q.putBack(m[2]!);
    q.putBack(m[0]!);
    assert.equal(q.size, 4);
    assert.deepEqual(
      [q.take(), q.take(), q.take(), q.take()].map((x) => x!.seq),
      [1, 3, 4, 5],
    );
    assert.equal(q.take(), undefined);
    assert.equal(q.size, 0);
  });

  it('skips removed messages and never hands one out twice', () => {
    const q = new AvailableQueue();
    const m = [1, 2, 3].map(msg);
    for (const x of m) q.push(x);
    q.remove(m[1]!);
    assert.equal(q.has(m[1]!), false);
    assert.equal(q.size, 2);
    const first = q.take()!;
    q.putBack(first);
    assert.deepEqual(
      [q.take(), q.take(), q.take()].map((x) => x?.seq),
      [1, 3, undefined],
    );
  });

  it('stays correct over many cycles (FIFO compaction)', () => {
    const q = new AvailableQueue();
    let seq = 1;
    const seen: number[] = [];
    for (let round = 0; round < 50; round++) {
      for (let i = 0; i < 100; i++) q.push(msg(seq++));
      for (let i = 0; i < 100; i++) seen.push(q.take()!.seq);
    }
    assert.deepEqual(
      seen,
      Array.from({ length: 5000 }, (_, i) => i + 1),
    );
  });
});
