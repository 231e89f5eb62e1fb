import assert from 'node:assert/strict';
import type { ServiceBusReceivedMessage } from '@azure/service-bus';
import Long from 'long';
import { TestBed, errorCode, waitFor } from './helpers.js';

describe('Service Bus emulator: queues, through the real SDK', function () {
  this.timeout(20_000);
  let bed: TestBed;

  afterEach(async () => {
    await bed?.close();
  });

  it('sends single messages and batches, and receives them in order with their properties', async () => {
    bed = await TestBed.start({ queues: { orders: {} } });
    const client = bed.client();
    const sender = client.createSender('orders');
    await sender.sendMessages({
      body: { n: 1 },
      messageId: 'm1',
      subject: 'first',
      applicationProperties: { kind: 'a', count: 7 },
      contentType: 'application/json',
    });
    await sender.sendMessages([{ body: 'two' }, { body: Buffer.from('three') }]);
    const batch = await sender.createMessageBatch();
    assert.ok(batch.tryAddMessage({ body: 'four' }));
    assert.ok(batch.tryAddMessage({ body: 'five' }));
    await sender.sendMessages(batch);

    const receiver = client.createReceiver('orders', { receiveMode: 'receiveAndDelete' });
    const got: ServiceBusReceivedMessage[] = [];
    await waitFor('5 messages', async () => {
      got.push(...(await receiver.receiveMessages(10, { maxWaitTimeInMs: 300 })));
      return got.length >= 5 ? true : undefined;
    });
    assert.deepEqual(
      got.map((m) => m.body),
      [{ n: 1 }, 'two', Buffer.from('three'), 'four', 'five'],
    );
    assert.deepEqual(
      got.map((m) => Number(m.sequenceNumber)),
      [1, 2, 3, 4, 5],
    );
    const first = got[0]!;
    assert.equal(first.messageId, 'm1');
    assert.equal(first.subject, 'first');
    assert.equal(first.contentType, 'application/json');
    assert.deepEqual(first.applicationProperties, { kind: 'a', count: 7 });
    assert.ok(first.enqueuedTimeUtc instanceof Date && Math.abs(first.enqueuedTimeUtc.getTime() - Date.now()) < 5000);
    assert.ok(got[1]!.messageId, 'the broker assigns a message id when the sender gave none');
    assert.equal(first.deliveryCount, 0);
    assert.equal(
      await receiver.receiveMessages(1, { maxWaitTimeInMs: 200 }).then((m) => m.length),
      0,
      'receive-and-delete removed them',
    );
  });

  it('peek-locks, completes, abandons with properties to modify, and redelivers with deliveryCount + 1', async () => {
    bed = await TestBed.start({ queues: { work: { LockDuration: 'PT30S' } } });
    const client = bed.client();
    await client.createSender('work').sendMessages([{ body: 'a' }, { body: 'b' }]);
    const receiver = client.createReceiver('work');
    const [a, b] = await receiver.receiveMessages(2, { maxWaitTimeInMs: 2000 });
    assert.equal(a!.body, 'a');
    assert.ok(a!.lockToken && a!.lockedUntilUtc!.getTime() > Date.now() + 20_000);
    await receiver.completeMessage(a!);
    await receiver.abandonMessage(b!, { retried: true, reason: 'busy' });
    const [again] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 2000 });
    assert.equal(again!.body, 'b');
    assert.equal(again!.deliveryCount, 1);
    assert.equal(again!.applicationProperties?.['retried'], true);
    assert.equal(again!.applicationProperties?.['reason'], 'busy');
    await receiver.completeMessage(again!);
    assert.deepEqual(await receiver.peekMessages(10), []);
  });

  it('dead-letters with reason and description into the dead-letter sub-queue', async () => {
    bed = await TestBed.start({ queues: { dl: {} } });
    const client = bed.client();
    await client.createSender('dl').sendMessages({ body: 'poison', messageId: 'p1' });
    const receiver = client.createReceiver('dl');
    const [m] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 2000 });
    await receiver.deadLetterMessage(m!, {
      deadLetterReason: 'Unparseable',
      deadLetterErrorDescription: 'body is not JSON',
    });
    const dlq = client.createReceiver('dl', { subQueueType: 'deadLetter' });
    const [dead] = await dlq.receiveMessages(1, { maxWaitTimeInMs: 2000 });
    assert.equal(dead!.body, 'poison');
    assert.equal(dead!.messageId, 'p1');
    assert.equal(dead!.deadLetterReason, 'Unparseable');
    assert.equal(dead!.deadLetterErrorDescription, 'body is not JSON');
    assert.equal(dead!.deadLetterSource, 'dl');
    await dlq.completeMessage(dead!);
    assert.equal((await dlq.peekMessages(5)).length, 0);
  });

  it('defers a message and receives it by sequence number; renews locks', async () => {
    bed = await TestBed.start({ queues: { later: { LockDuration: 'PT5S' } } });
    const client = bed.client();
    await client.createSender('later').sendMessages({ body: 'deferred one' });
    const receiver = client.createReceiver('later');
    const [m] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 2000 });
    const before = m!.lockedUntilUtc!.getTime();
    await new Promise((r) => setTimeout(r, 20));
    const renewed = await receiver.renewMessageLock(m!);
    assert.ok(renewed.getTime() > before, 'the lock moved forward');
    await receiver.deferMessage(m!);
    assert.deepEqual(
      await receiver.receiveMessages(1, { maxWaitTimeInMs: 200 }),
      [],
      'a deferred message is not delivered',
    );
    const [peeked] = await receiver.peekMessages(1);
    assert.equal(peeked!.state, 'deferred');
    const [deferred] = await receiver.receiveDeferredMessages([m!.sequenceNumber!]);
    assert.equal(deferred!.body, 'deferred one');
    assert.equal(deferred!.state, 'deferred');
    await receiver.renewMessageLock(deferred!);
    await receiver.completeMessage(deferred!);
    assert.equal((await receiver.peekMessages(5)).length, 0);
    assert.equal(await errorCode(receiver.receiveDeferredMessages([m!.sequenceNumber!])), 'MessageNotFound');
  });

  it('redelivers when a lock expires, with deliveryCount + 1, and dead-letters past MaxDeliveryCount', async () => {
    bed = await TestBed.start({ queues: { flaky: { LockDuration: 'PT0.2S', MaxDeliveryCount: 2 } } });
    const client = bed.client();
    await client.createSender('flaky').sendMessages({ body: 'x' });
    const receiver = client.createReceiver('flaky', { maxAutoLockRenewalDurationInMs: 0 });
    const [first] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 2000 });
    assert.equal(first!.deliveryCount, 0);
    const [second] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 3000 });
    assert.equal(second!.body, 'x');
    assert.equal(second!.deliveryCount, 1);
    assert.equal(await errorCode(receiver.completeMessage(first!)), 'MessageLockLost');
    const dlq = client.createReceiver('flaky', { subQueueType: 'deadLetter' });
    const [dead] = await dlq.receiveMessages(1, { maxWaitTimeInMs: 3000 });
    assert.equal(dead!.body, 'x');
    assert.equal(dead!.deadLetterReason, 'MaxDeliveryCountExceeded');
    assert.equal(await errorCode(receiver.completeMessage(second!)), 'MessageLockLost');
  });

  it('expires messages after their time to live, dead-lettering them when the queue says so', async () => {
    bed = await TestBed.start({
      queues: {
        ttl: { DefaultMessageTimeToLive: 'PT0.15S' },
        ttldl: { DefaultMessageTimeToLive: 'PT5M', DeadLetteringOnMessageExpiration: true },
      },
    });
    const client = bed.client();
    await client.createSender('ttl').sendMessages({ body: 'short' });
    await client.createSender('ttldl').sendMessages({ body: 'own ttl', timeToLive: 150 });
    const receiver = client.createReceiver('ttl');
    // Each peek from the start: the receiver's own peek goes on after the last message it peeked, and would find
    // nothing once it had seen the message (before it expired) while it is still there.
    await waitFor('the message to expire', async () =>
      (await receiver.peekMessages(1, { fromSequenceNumber: Long.ZERO })).length === 0 ? true : undefined,
    );
    assert.deepEqual(await receiver.receiveMessages(1, { maxWaitTimeInMs: 200 }), []);
    const dlq = client.createReceiver('ttldl', { subQueueType: 'deadLetter' });
    const [dead] = await dlq.receiveMessages(1, { maxWaitTimeInMs: 4000 });
    assert.equal(dead!.body, 'own ttl');
    assert.equal(dead!.deadLetterReason, 'TTLExpiredException');
  });

  it('schedules messages, shows them in peek, cancels one and delivers the other on time', async () => {
    bed = await TestBed.start({ queues: { sched: {} } });
    const client = bed.client();
    const sender = client.createSender('sched');
    const at = new Date(Date.now() + 1500);
    const [keep, cancel] = await sender.scheduleMessages([{ body: 'keep' }, { body: 'cancel' }], at);
    const peeked = await client.createReceiver('sched').peekMessages(10);
    assert.deepEqual(
      peeked.map((m) => [m.body, m.state]),
      [
        ['keep', 'scheduled'],
        ['cancel', 'scheduled'],
      ],
    );
    assert.equal(peeked[0]!.scheduledEnqueueTimeUtc?.getTime(), at.getTime());
    await sender.cancelScheduledMessages(cancel!);
    const receiver = client.createReceiver('sched', { receiveMode: 'receiveAndDelete' });
    const [m] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 5000 });
    assert.equal(m!.body, 'keep');
    assert.equal(Number(m!.sequenceNumber), Number(keep));
    assert.ok(Date.now() >= at.getTime());
    assert.deepEqual(await receiver.receiveMessages(1, { maxWaitTimeInMs: 300 }), [], 'the cancelled one never comes');
  });

  it('peeks from a sequence number without locking', async () => {
    bed = await TestBed.start({ queues: { peek: {} } });
    const client = bed.client();
    await client.createSender('peek').sendMessages([1, 2, 3, 4].map((n) => ({ body: n })));
    const receiver = client.createReceiver('peek');
    assert.deepEqual(
      (await receiver.peekMessages(2)).map((m) => m.body),
      [1, 2],
    );
    assert.deepEqual(
      (await receiver.peekMessages(10)).map((m) => m.body),
      [3, 4],
      'peek continues where it stopped',
    );
    assert.deepEqual(await receiver.peekMessages(10), [], 'nothing after the last one');
    const all = await bed.client().createReceiver('peek').peekMessages(10);
    const fromSecond = await receiver.peekMessages(2, { fromSequenceNumber: all[1]!.sequenceNumber! });
    assert.deepEqual(
      fromSecond.map((m) => m.body),
      [2, 3],
    );
    const fresh = bed.client().createReceiver('peek');
    assert.deepEqual(
      (await fresh.peekMessages(10)).map((m) => m.body),
      [1, 2, 3, 4],
    );
    const [m] = await fresh.receiveMessages(1, { maxWaitTimeInMs: 1000 });
    assert.equal(m!.body, 1, 'peeked messages are still available');
  });

  it('gives back what was sent, properties, body and settlements, from a queue deep enough to keep its messages deflated', async () => {
    // deflateAboveBytes: 4 KB, so that the first two messages are kept as they came and the others deflated.
    bed = await TestBed.start({ queues: { deep: { LockDuration: 'PT30S' } } }, { deflateAboveBytes: 4096 });
    const client = bed.client();
    const bodies = Array.from({ length: 6 }, (_, n) => ({
      n,
      Target: Array.from({ length: 30 }, (_, i) => ({ key: `column_${i}`, value: `value ${n}.${i}` })),
    }));
    const sender = client.createSender('deep');
    const batch = await sender.createMessageBatch();
    for (const [n, body] of bodies.entries())
      assert.ok(batch.tryAddMessage({ body, messageId: `m${n}`, applicationProperties: { n }, contentType: 'json' }));
    await sender.sendMessages(batch);
    const receiver = client.createReceiver('deep');
    assert.deepEqual(
      (await receiver.peekMessages(10)).map((m) => m.body),
      bodies,
    );
    const got = await receiver.receiveMessages(6, { maxWaitTimeInMs: 2000 });
    assert.deepEqual(
      got.map((m) => [m.messageId, m.body, m.applicationProperties, m.contentType, Number(m.sequenceNumber)]),
      bodies.map((b, n) => [`m${n}`, b, { n }, 'json', n + 1]),
    );
    await receiver.abandonMessage(got[4]!, { retried: true });
    await receiver.deadLetterMessage(got[5]!, { deadLetterReason: 'Poison', deadLetterErrorDescription: 'test' });
    for (const m of got.slice(0, 4)) await receiver.completeMessage(m);
    const [again] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 2000 });
    assert.deepEqual(
      [again!.body, again!.applicationProperties, again!.deliveryCount],
      [bodies[4], { n: 4, retried: true }, 1],
    );
    const [dead] = await client.createReceiver('deep', { subQueueType: 'deadLetter' }).receiveMessages(1);
    assert.deepEqual(
      [dead!.body, dead!.deadLetterReason, dead!.applicationProperties?.['n']],
      [bodies[5], 'Poison', 5],
    );
  });

  it('drops duplicates by messageId within the detection window only', async () => {
    bed = await TestBed.start({
      queues: { dedupe: { RequiresDuplicateDetection: true, DuplicateDetectionHistoryTimeWindow: 'PT0.3S' } },
    });
    const client = bed.client();
    const sender = client.createSender('dedupe');
    await sender.sendMessages({ body: 'one', messageId: 'same' });
    await sender.sendMessages([
      { body: 'dup', messageId: 'same' },
      { body: 'other', messageId: 'other' },
    ]);
    const receiver = client.createReceiver('dedupe', { receiveMode: 'receiveAndDelete' });
    assert.deepEqual(
      (await receiver.peekMessages(10)).map((m) => m.body),
      ['one', 'other'],
    );
    await new Promise((r) => setTimeout(r, 350));
    await sender.sendMessages({ body: 'after window', messageId: 'same' });
    assert.deepEqual(
      (await receiver.peekMessages(10, { fromSequenceNumber: undefined })).map((m) => m.body).slice(-1),
      ['after window'],
    );
  });

  it('refuses messages over 256 KB with MessageSizeExceeded and unknown entities with MessagingEntityNotFound', async () => {
    bed = await TestBed.start({ queues: { small: {} } });
    const client = bed.client();
    const sender = client.createSender('small');
    assert.equal(await errorCode(sender.sendMessages({ body: Buffer.alloc(300 * 1024) })), 'MessageSizeExceeded');
    await sender.sendMessages({ body: Buffer.alloc(200 * 1024) });
    assert.equal(await errorCode(client.createSender('missing').sendMessages({ body: 1 })), 'MessagingEntityNotFound');
    assert.equal(
      await errorCode(client.createReceiver('missing').receiveMessages(1, { maxWaitTimeInMs: 500 })),
      'MessagingEntityNotFound',
    );
    assert.equal((await client.createReceiver('small').peekMessages(5)).length, 1, 'the emulator goes on');
  });

  it('shares a queue between competing consumers on several clients, each message once', async () => {
    bed = await TestBed.start({ queues: { shared: {} } });
    const total = 300;
    await bed
      .client()
      .createSender('shared')
      .sendMessages(Array.from({ length: total }, (_, i) => ({ body: i })));
    const seen: number[] = [];
    const perReceiver = [0, 0, 0];
    const receivers = [bed.client(), bed.client(), bed.client()].map((c) => c.createReceiver('shared'));
    const subs = receivers.map((r, i) =>
      r.subscribe(
        {
          processMessage: async (m) => {
            seen.push(m.body as number);
            perReceiver[i]!++;
          },
          processError: async () => undefined,
        },
        { maxConcurrentCalls: 5 },
      ),
    );
    await waitFor('every message', () => (seen.length >= total ? true : undefined), 10_000);
    for (const s of subs) await s.close();
    assert.equal(new Set(seen).size, total, 'no message twice');
    assert.equal(seen.length, total);
    assert.ok(perReceiver.filter((n) => n > 0).length >= 2, `work was shared: ${perReceiver.join(', ')}`);
    assert.equal((await receivers[0]!.peekMessages(10)).length, 0, 'subscribe auto-completed everything');
  });
});
