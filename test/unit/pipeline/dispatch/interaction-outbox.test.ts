import assert from 'node:assert/strict';
import sinon from 'sinon';
import { InteractionOutbox } from '../../../../src/pipeline/dispatch/interaction-outbox.js';
import type { InteractionMessage } from '../../../../src/pipeline/messages.js';
import { FakeInteractions, signalTraces } from './fakes.js';

function interaction(id: string): { body: InteractionMessage; messageId: string } {
  return {
    body: {
      v: 1,
      context: { kind: 'realtime', channelDefinitionId: 'cd', requestId: id, from: 'f', organizationId: 'o' },
      responseType: 'Sent',
      channel: 'c',
      occurredAt: 1,
    },
    messageId: `${id}:Sent`,
  };
}

describe('interaction outbox', () => {
  let clock: sinon.SinonFakeTimers;
  beforeEach(() => (clock = sinon.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] })));
  afterEach(() => clock.restore());
  const signal = new AbortController().signal;

  it('groups what arrives within the linger time into one send', async () => {
    const sender = new FakeInteractions();
    const outbox = new InteractionOutbox({ sender, lingerMs: 20 });
    const sent = Promise.all(['a', 'b', 'c'].map((id) => outbox.add(interaction(id), signal)));
    assert.equal(outbox.pending, 3);
    await clock.tickAsync(19);
    assert.equal(sender.sends.length, 0, 'nothing sent before the linger time is up');
    await clock.tickAsync(1);
    await sent;
    assert.equal(sender.sends.length, 1);
    assert.deepEqual(
      sender.all.map((m) => m.messageId),
      ['a:Sent', 'b:Sent', 'c:Sent'],
    );
    assert.equal(outbox.pending, 0);
  });

  it('sends at once when a group is full, and on flush', async () => {
    const sender = new FakeInteractions();
    const outbox = new InteractionOutbox({ sender, maxBatch: 2, lingerMs: 1000 });
    const first = Promise.all([outbox.add(interaction('a'), signal), outbox.add(interaction('b'), signal)]);
    await clock.tickAsync(0);
    await first;
    const third = outbox.add(interaction('c'), signal);
    outbox.flush();
    await clock.tickAsync(0);
    await third;
    assert.deepEqual(
      sender.sends.map((s) => s.messages.length),
      [2, 1],
    );
  });

  it('retries a failed group, then gives up with the last error', async () => {
    const sender = new FakeInteractions(() => true);
    const failures: number[] = [];
    const outbox = new InteractionOutbox({
      sender,
      attempts: 3,
      initialDelayMs: 10,
      maxDelayMs: 20,
      onError: (_e, attempt) => failures.push(attempt),
    });
    const added = outbox.add(interaction('a'), signal);
    added.catch(() => undefined);
    await clock.tickAsync(1000);
    await assert.rejects(added, /interactions unavailable \(attempt 3\)/);
    assert.deepEqual(failures, [1, 2, 3]);
  });

  it('makes the first attempt even after the signal fired, but no retry', async () => {
    const sender = new FakeInteractions((n) => n === 1);
    const controller = new AbortController();
    controller.abort();
    const outbox = new InteractionOutbox({ sender, lingerMs: 0 });
    const added = outbox.add(interaction('a'), controller.signal);
    added.catch(() => undefined);
    await clock.tickAsync(5000);
    await assert.rejects(added, /attempt 1/);
    assert.equal(sender.attempts, 1);
    const ok = new FakeInteractions();
    const second = new InteractionOutbox({ sender: ok, lingerMs: 0 }).add(interaction('b'), controller.signal);
    await clock.tickAsync(0);
    await second;
    assert.equal(ok.all.length, 1);
  });

  it('times a send out', async () => {
    const outbox = new InteractionOutbox({
      sender: { send: () => new Promise(() => undefined) },
      attempts: 1,
      timeoutMs: 500,
      lingerMs: 0,
    });
    const added = outbox.add(interaction('a'), signal);
    added.catch(() => undefined);
    await clock.tickAsync(500);
    await assert.rejects(added, /did not finish within 500 ms/);
  });

  it("leaves nothing on the items' signals once their groups are sent, or failed", async () => {
    const sender = new FakeInteractions((n) => n % 3 === 0);
    const outbox = new InteractionOutbox({
      sender,
      maxBatch: 4,
      lingerMs: 5,
      attempts: 2,
      initialDelayMs: 10,
      maxDelayMs: 20,
    });
    const loop = new AbortController();
    const batches = [new AbortController(), new AbortController()];
    for (let i = 0; i < 50; i++) {
      // Items of two batches share groups: the group's retries listen to both of their signals.
      const added = [0, 1, 2].map((j) =>
        outbox.add(interaction(`i${i}-${j}`), (batches[j % 2] as AbortController).signal),
      );
      added.push(outbox.add(interaction(`i${i}-loop`), loop.signal));
      await clock.tickAsync(200);
      await Promise.allSettled(added);
    }
    assert.ok(sender.attempts > 50, 'some groups were sent again');
    for (const s of [loop.signal, ...batches.map((b) => b.signal)])
      assert.deepEqual(signalTraces(s), { listeners: 0, dependants: 0 });
  });

  it('stops retrying a group when the signal of any of its items fires', async () => {
    // The backoff's jitter at its top: the first retry comes after the whole 100 ms, not before the abort below.
    const random = sinon.stub(Math, 'random').returns(0.9);
    try {
      const sender = new FakeInteractions(() => true);
      const outbox = new InteractionOutbox({ sender, lingerMs: 10, attempts: 6, initialDelayMs: 100, maxDelayMs: 100 });
      const a = new AbortController();
      const b = new AbortController();
      const added = [outbox.add(interaction('a'), a.signal), outbox.add(interaction('b'), b.signal)];
      for (const x of added) x.catch(() => undefined);
      await clock.tickAsync(50);
      assert.equal(sender.attempts, 1);
      b.abort();
      await clock.tickAsync(5000);
      // The retry already waiting for its backoff runs (cockatiel does not cut a backoff short); none after it.
      assert.equal(sender.attempts, 2, 'of 6 attempts allowed');
      for (const x of added) await assert.rejects(x, /attempt 2/);
      assert.deepEqual(signalTraces(a.signal), { listeners: 0, dependants: 0 });
    } finally {
      random.restore();
    }
  });

  it("with a deadline: begins no retry that could end past it, and cuts an attempt's timeout to it", async () => {
    const sender = new FakeInteractions(() => true);
    // Backoff at most 100 ms, attempt at most 2000 ms: a retry is begun only 2100 ms or more before the deadline.
    const outbox = new InteractionOutbox({
      sender,
      lingerMs: 0,
      attempts: 11,
      initialDelayMs: 100,
      maxDelayMs: 100,
      timeoutMs: 2000,
    });
    const t0 = Date.now();
    const failed = outbox.add(interaction('a'), new AbortController().signal, t0 + 1000);
    failed.catch(() => undefined);
    await clock.tickAsync(5000);
    await assert.rejects(failed, /attempt 1/);
    assert.equal(sender.attempts, 1, 'no retry: it could not end by the deadline');

    // A send that hangs is cut at the deadline (at least 1 s), not after the whole timeout.
    const hanging = new InteractionOutbox({
      sender: { send: () => new Promise(() => undefined) },
      lingerMs: 0,
      timeoutMs: 10_000,
    });
    const t1 = Date.now();
    let settledAt: number | undefined;
    const hung = hanging.add(interaction('b'), new AbortController().signal, t1 + 3000);
    hung.catch(() => (settledAt = Date.now()));
    await clock.tickAsync(20_000);
    await assert.rejects(hung, /did not finish within 3000 ms/);
    assert.equal(settledAt, t1 + 3000);

    // Without a deadline, nothing changes: retried.
    const again = new FakeInteractions((n) => n <= 2);
    const free = new InteractionOutbox({
      sender: again,
      lingerMs: 0,
      initialDelayMs: 100,
      maxDelayMs: 100,
      timeoutMs: 2000,
    });
    const ok = free.add(interaction('c'), new AbortController().signal);
    await clock.tickAsync(5000);
    await ok;
    assert.equal(again.attempts, 3);
  });

  it('rejects bad options', () => {
    assert.throws(
      () => new InteractionOutbox({ sender: new FakeInteractions(), lingerMs: -1 }),
      /lingerMs must be an integer >= 0/,
    );
    assert.throws(
      () => new InteractionOutbox({ sender: new FakeInteractions(), initialDelayMs: 100, maxDelayMs: 50 }),
      /maxDelayMs must be an integer >= 100/,
    );
  });
});
