/**
 * The queue sender through the real SDK against the project's emulator: JSON bodies and properties, batching of
 * 1,000 messages, splitting on the size limit, a message too large for any batch, the abort signal, and the client
 * factory's connection-string path.
 */
import assert from 'node:assert/strict';
import type { ServiceBusClient, ServiceBusSender } from '@azure/service-bus';
import sinon from 'sinon';
import { createMetricsRegistry } from '../../../src/health/metrics.js';
import { isMessageTooLargeError } from '../../../src/errors.js';
import { createQueueSender, serviceBusClientFromConfig } from '../../../src/servicebus/index.js';
import { closedAfterEach, relayClient, startBus, takeAll } from './helpers.js';

/** Counts the batches the SDK sender sends, by spying on the senders the client creates. */
function countBatches(client: ServiceBusClient): number[] {
  const sizes: number[] = [];
  const create = client.createSender.bind(client);
  sinon.stub(client, 'createSender').callsFake((queue: string) => {
    const sender: ServiceBusSender = create(queue);
    const send = sender.sendMessages.bind(sender);
    sender.sendMessages = async (batch, options) => {
      sizes.push((batch as { count: number }).count);
      return send(batch, options);
    };
    return sender;
  });
  return sizes;
}

describe('servicebus queue sender, through the real SDK', function () {
  this.timeout(20_000);
  const track = closedAfterEach();
  afterEach(() => sinon.restore());

  it('sends 1,000 messages as JSON with messageId, sessionId and subject, in few batches, and counts them', async () => {
    const bus = track(await startBus({ queues: { outbound: { RequiresSession: true } } }));
    const client = track(relayClient(bus));
    const batches = countBatches(client);
    const registry = createMetricsRegistry({ defaultMetrics: false });
    const sender = track(
      createQueueSender<{ activityId: string; text: string }>(client, 'outbound', { metrics: registry }),
    );
    const messages = Array.from({ length: 1000 }, (_, i) => ({
      body: { activityId: `a${i}`, text: `hello ${i}` },
      messageId: `a${i}`,
      sessionId: `sender-${i % 4}`,
      subject: 'sms',
    }));
    await sender.send(messages);
    assert.ok(batches.length >= 1 && batches.length <= 5, `${batches.length} batches`);
    assert.equal(
      batches.reduce((a, b) => a + b, 0),
      1000,
    );
    const metric = await registry.getSingleMetric('channel_relay_messages_sent_total')!.get();
    assert.equal(metric.values[0]!.value, 1000);

    const received = [];
    for (let s = 0; s < 4; s++) {
      const r = await client.acceptSession('outbound', `sender-${s}`, { receiveMode: 'receiveAndDelete' });
      while (received.length < 250 * (s + 1))
        received.push(...(await r.receiveMessages(250, { maxWaitTimeInMs: 500 })));
      await r.close();
    }
    assert.equal(received.length, 1000);
    const first = received.find((m) => m.messageId === 'a5')!;
    assert.deepEqual(first.body, { activityId: 'a5', text: 'hello 5' });
    assert.equal(first.contentType, 'application/json');
    assert.equal(first.sessionId, 'sender-1');
    assert.equal(first.subject, 'sms');
    assert.equal(new Set(received.map((m) => m.messageId)).size, 1000);
  });

  it('schedules a message with scheduledAt on a plain send: invisible until then, on its session', async () => {
    const bus = track(await startBus({ queues: { conversations: { RequiresSession: true } } }));
    const client = track(relayClient(bus));
    const sender = track(createQueueSender<{ n: number }>(client, 'conversations'));
    const sentAt = Date.now();
    const dueAt = sentAt + 1_500;
    await sender.send([
      { body: { n: 1 }, messageId: 'later', sessionId: 'customer-1', scheduledAt: dueAt },
      { body: { n: 2 }, messageId: 'now', sessionId: 'customer-1' },
    ]);
    const receiver = await client.acceptSession('conversations', 'customer-1', { receiveMode: 'receiveAndDelete' });
    const first = await receiver.receiveMessages(10, { maxWaitTimeInMs: 500 });
    assert.deepEqual(
      first.map((m) => m.messageId),
      ['now'],
    );
    const later = [];
    while (later.length === 0 && Date.now() < dueAt + 5_000)
      later.push(...(await receiver.receiveMessages(10, { maxWaitTimeInMs: 500 })));
    const receivedAt = Date.now();
    await receiver.close();
    assert.deepEqual(
      later.map((m) => [m.messageId, m.body]),
      [['later', { n: 1 }]],
    );
    assert.ok(receivedAt >= dueAt, `received ${dueAt - receivedAt} ms before it was due`);
    assert.equal(later[0]!.scheduledEnqueueTimeUtc?.getTime(), dueAt);
  });

  it('splits into batches at the size limit, and refuses a message too large for any batch before sending anything', async () => {
    const bus = track(await startBus({ queues: { interactions: {} } }, { maxMessageSizeBytes: 16 * 1024 }));
    const client = track(relayClient(bus));
    const batches = countBatches(client);
    const sender = track(createQueueSender<{ i: number; pad: string }>(client, 'interactions'));
    await sender.send(
      Array.from({ length: 40 }, (_, i) => ({ body: { i, pad: 'x'.repeat(2_000) }, messageId: `m${i}` })),
    );
    assert.ok(batches.length >= 5, `40 messages of 2 kB in ${batches.length} batches of at most 16 kB`);
    assert.equal(
      batches.reduce((a, b) => a + b, 0),
      40,
    );
    const got = await takeAll(client, 'interactions', 40);
    assert.deepEqual(
      got.map((m) => (m.body as { i: number }).i).sort((a, b) => a - b),
      Array.from({ length: 40 }, (_, i) => i),
    );

    batches.length = 0;
    const tooLarge = sender.send([
      { body: { i: 1, pad: 'small' }, messageId: 'ok-1' },
      { body: { i: 2, pad: 'y'.repeat(20_000) }, messageId: 'huge-2' },
    ]);
    await assert.rejects(tooLarge, (err: unknown) => {
      assert.ok(isMessageTooLargeError(err));
      assert.equal(err.messageId, 'huge-2');
      assert.match(
        err.message,
        /message huge-2 is too large for interactions: its JSON body is 200\d\d bytes and a batch holds at most 16384 bytes/,
      );
      return true;
    });
    assert.deepEqual(batches, [], 'nothing was sent');
  });

  it('honours an aborted signal and sends nothing; an empty send does nothing', async () => {
    const bus = track(await startBus({ queues: { interactions: {} } }));
    const client = track(relayClient(bus));
    const sender = track(createQueueSender<string>(client, 'interactions'));
    await sender.send([]);
    const abort = new AbortController();
    abort.abort();
    await assert.rejects(sender.send([{ body: 'x', messageId: 'x' }], abort.signal), { name: 'AbortError' });
    assert.deepEqual(await client.createReceiver('interactions').peekMessages(1), []);
  });

  it('serviceBusClientFromConfig connects with the configured connection string', async () => {
    const bus = track(await startBus({ queues: { activities: {} } }));
    const client = track(
      serviceBusClientFromConfig({
        serviceBus: {
          connectionString: bus.connectionString,
          queues: {
            activities: 'activities',
            outbound: 'outbound',
            interactions: 'interactions',
            conversations: 'conversations',
          },
        },
      }),
    );
    await track(createQueueSender(client, 'activities')).send([{ body: { ok: true }, messageId: 'one' }]);
    const [m] = await takeAll(client, 'activities', 1);
    assert.deepEqual(m!.body, { ok: true });
  });
});
