import assert from 'node:assert/strict';
import type { ServiceBusClient, ServiceBusReceivedMessage } from '@azure/service-bus';
import sinon from 'sinon';
import type { Delivery } from '../../../src/pipeline/index.js';
import { startBatchLoop, type BatchLoopOptions, type ReceiveLoop } from '../../../src/servicebus/index.js';
import { receiveSize } from '../../../src/servicebus/batch-loop.js';

/** A receiver on a full queue: every receive gets at once as many messages as it asks for, each with `bodyBytes` bytes. */
function fullQueue(bodyBytes: number) {
  let next = 0;
  const asked: number[] = [];
  const settle = async (): Promise<void> => undefined;
  return {
    asked,
    isClosed: false,
    async receiveMessages(max: number): Promise<ServiceBusReceivedMessage[]> {
      asked.push(max);
      return Array.from(
        { length: max },
        () =>
          ({ body: Buffer.alloc(bodyBytes), messageId: String(next++), deliveryCount: 0 }) as ServiceBusReceivedMessage,
      );
    },
    completeMessage: settle,
    abandonMessage: settle,
    deadLetterMessage: settle,
    close: settle,
  };
}

/** A handler that keeps each batch until `release()`, recording the most messages and bytes held at once. */
function holdingHandler() {
  const held = new Set<Delivery[]>();
  const waiting: Array<() => void> = [];
  const most = { batches: 0, messages: 0, bytes: 0 };
  const count = (f: (d: Delivery) => number): number => [...held].flat().reduce((sum, d) => sum + f(d), 0);
  return {
    most,
    held,
    handler: async (ds: Delivery[]): Promise<void> => {
      held.add(ds);
      most.batches = Math.max(most.batches, held.size);
      most.messages = Math.max(
        most.messages,
        count(() => 1),
      );
      most.bytes = Math.max(
        most.bytes,
        count((d) => (d.body as Buffer).length),
      );
      await new Promise<void>((resolve) => waiting.push(resolve));
      for (const d of ds) await d.complete();
      held.delete(ds);
    },
    /** Ends the oldest batch held. */
    release: () => waiting.shift()?.(),
  };
}

describe('batch loop: what it holds in flight on a full queue (fake SDK, fake timers)', () => {
  let clock: sinon.SinonFakeTimers;
  let loop: ReceiveLoop | undefined;
  beforeEach(() => (clock = sinon.useFakeTimers()));
  /** A batch loop on the fake queue, its batches handed to the holding handler. */
  const start = (
    queue: ReturnType<typeof fullQueue>,
    h: ReturnType<typeof holdingHandler>,
    options: Omit<BatchLoopOptions, 'client' | 'queue' | 'handler'>,
  ): ReceiveLoop =>
    startBatchLoop({
      client: { createReceiver: () => queue } as unknown as ServiceBusClient,
      queue: 'q',
      handler: h.handler,
      ...options,
    });
  afterEach(async () => {
    const closing = loop?.close();
    await clock.tickAsync(10_000);
    await closing;
    loop = undefined;
    clock.restore();
  });

  it('maxBytesInFlight: the bodies held never pass the bound, and receives shrink to what fits', async () => {
    const queue = fullQueue(10_000);
    const h = holdingHandler();
    loop = start(queue, h, { maxBatch: 50, concurrency: 8, maxBytesInFlight: 200_000 });
    for (let round = 0; round < 20; round++) {
      await clock.tickAsync(50);
      h.release();
    }
    await clock.tickAsync(50);
    // 8 batches of 50 bodies of 10 kB would hold 4 MB.
    assert.ok(h.most.bytes <= 200_000, `held ${h.most.bytes} bytes at most`);
    assert.ok(h.most.messages >= 10, `it still works in batches: ${h.most.messages} messages held at most`);
    assert.equal(queue.asked[0], 1, 'the first receive, before any size is known, asks for one');
    assert.ok(
      queue.asked.slice(1).every((n) => n <= 20),
      `no receive asks for more than 20 at 10 kB each: ${queue.asked.join(', ')}`,
    );
    assert.ok(queue.asked.length > 20, 'it went on receiving as batches ended');
  });

  it('maxBytesInFlight: full batches only while others are in flight, as many as fit the bound', async () => {
    const queue = fullQueue(10_000);
    const h = holdingHandler();
    loop = start(queue, h, { maxBatch: 10, concurrency: 8, maxBytesInFlight: 200_000 });
    for (let round = 0; round < 10; round++) {
      await clock.tickAsync(50);
      h.release();
    }
    assert.equal(h.most.batches, 2, 'a third batch of 100 kB does not fit beside two');
    assert.ok(h.most.bytes <= 200_000, `held ${h.most.bytes} bytes at most`);
    assert.deepEqual(new Set(queue.asked.slice(1)), new Set([10]), `receives: ${queue.asked.join(', ')}`);
  });

  it('without maxBytesInFlight it holds concurrency × maxBatch (what the bound changes)', async () => {
    const queue = fullQueue(10_000);
    const h = holdingHandler();
    loop = start(queue, h, { maxBatch: 50, concurrency: 8 });
    await clock.tickAsync(1_000);
    assert.equal(h.most.messages, 400);
  });

  it('ready: while the handler is not ready, no batch is received beyond the first; then it receives again', async () => {
    const queue = fullQueue(100);
    const h = holdingHandler();
    let ready = false;
    loop = start(queue, h, { maxBatch: 10, concurrency: 4, ready: () => ready });
    await clock.tickAsync(1_000);
    assert.equal(h.held.size, 1, 'one batch: with none in flight the loop receives anyway');
    h.release();
    await clock.tickAsync(1_000);
    assert.equal(h.held.size, 1, 'the next one once that one ended');
    ready = true;
    h.release();
    await clock.tickAsync(1_000);
    assert.equal(h.held.size, 4, 'ready again: up to concurrency');
    assert.equal(h.most.batches, 4);
  });

  it('receiveSize: maxBatch without a bound or for parsed bodies; one until a size is known; what fits, at least one', () => {
    assert.equal(receiveSize(250, Infinity, 0, 1000, 6_000_000), 250);
    assert.equal(receiveSize(250, 4_000_000, 0, 0, 0), 1);
    assert.equal(receiveSize(250, 4_000_000, 0, 1000, 0), 250);
    assert.equal(receiveSize(250, 4_000_000, 0, 1000, 6_000_000), 250);
    assert.equal(receiveSize(250, 4_000_000, 3_400_000, 1000, 6_000_000), 100);
    assert.equal(receiveSize(250, 4_000_000, 3_999_000, 1000, 6_000_000), 1);
  });
});
