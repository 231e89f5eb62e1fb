import assert from 'node:assert/strict';
import type { ServiceBusReceiver } from '@azure/service-bus';
import { TestBed, errorCode } from './helpers.js';

async function bodies(receiver: ServiceBusReceiver): Promise<unknown[]> {
  return (await receiver.receiveMessages(20, { maxWaitTimeInMs: 300 })).map((m) => m.body);
}

describe('Service Bus emulator: topics and subscriptions, through the real SDK', function () {
  this.timeout(20_000);
  let bed: TestBed;

  afterEach(async () => {
    await bed?.close();
  });

  it('fans messages out to subscriptions by correlation filters on system and user properties', async () => {
    bed = await TestBed.start({
      topics: {
        events: {
          Subscriptions: [
            { Name: 'all' },
            {
              Name: 'sms',
              Rules: [{ Name: 'sms', Properties: { FilterType: 'Correlation', CorrelationFilter: { Label: 'sms' } } }],
            },
            {
              Name: 'urgent-email',
              Rules: [
                {
                  Name: 'u',
                  Properties: {
                    FilterType: 'Correlation',
                    CorrelationFilter: { CorrelationId: 'email', Properties: { priority: 'high' } },
                  },
                },
              ],
            },
            {
              Name: 'either',
              Rules: [
                { Name: 'to-a', Properties: { FilterType: 'Correlation', CorrelationFilter: { To: 'a' } } },
                { Name: 'tg', Properties: { FilterType: 'Correlation', CorrelationFilter: { Label: 'telegram' } } },
              ],
            },
          ],
        },
      },
    });
    const client = bed.client();
    await client.createSender('events').sendMessages([
      { body: 1, subject: 'sms' },
      { body: 2, correlationId: 'email', applicationProperties: { priority: 'high' } },
      { body: 3, correlationId: 'email', applicationProperties: { priority: 'low' } },
      { body: 4, subject: 'telegram', to: 'b' },
      { body: 5, to: 'a' },
    ]);
    const rad = { receiveMode: 'receiveAndDelete' } as const;
    assert.deepEqual(await bodies(client.createReceiver('events', 'all', rad)), [1, 2, 3, 4, 5]);
    assert.deepEqual(await bodies(client.createReceiver('events', 'sms', rad)), [1]);
    assert.deepEqual(await bodies(client.createReceiver('events', 'urgent-email', rad)), [2]);
    assert.deepEqual(
      await bodies(client.createReceiver('EVENTS', 'Either', rad)),
      [4, 5],
      'addresses are case-insensitive',
    );
  });

  it('keeps settlement and dead-lettering per subscription', async () => {
    bed = await TestBed.start({ topics: { t: { Subscriptions: [{ Name: 'one' }, { Name: 'two' }] } } });
    const client = bed.client();
    await client.createSender('t').sendMessages({ body: 'shared', messageId: 'x' });
    const one = client.createReceiver('t', 'one');
    const [m1] = await one.receiveMessages(1, { maxWaitTimeInMs: 2000 });
    await one.deadLetterMessage(m1!, { deadLetterReason: 'no', deadLetterErrorDescription: 'just one' });
    const two = client.createReceiver('t', 'two');
    const [m2] = await two.receiveMessages(1, { maxWaitTimeInMs: 2000 });
    assert.equal(m2!.body, 'shared');
    await two.completeMessage(m2!);
    const dlq = client.createReceiver('t', 'one', { subQueueType: 'deadLetter' });
    const [dead] = await dlq.receiveMessages(1, { maxWaitTimeInMs: 2000 });
    assert.equal(dead!.deadLetterReason, 'no');
    assert.equal(dead!.deadLetterSource, 't/Subscriptions/one');
  });

  it('schedules on a topic and cancels by the returned sequence number', async () => {
    bed = await TestBed.start({ topics: { st: { Subscriptions: [{ Name: 's' }] } } });
    const client = bed.client();
    const sender = client.createSender('st');
    const [, cancelled] = await sender.scheduleMessages([{ body: 'go' }, { body: 'stop' }], new Date(Date.now() + 300));
    await sender.cancelScheduledMessages(cancelled!);
    const receiver = client.createReceiver('st', 's', { receiveMode: 'receiveAndDelete' });
    const [m] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 3000 });
    assert.equal(m!.body, 'go');
    assert.deepEqual(await bodies(receiver), []);
  });

  it('refuses a message without a session id when a session subscription would take it', async () => {
    bed = await TestBed.start({
      topics: {
        mixed: {
          Subscriptions: [
            { Name: 'plain' },
            {
              Name: 'sessions',
              Properties: { RequiresSession: true },
              Rules: [{ Name: 'r', Properties: { FilterType: 'Correlation', CorrelationFilter: { Label: 'chat' } } }],
            },
          ],
        },
      },
    });
    const client = bed.client();
    const sender = client.createSender('mixed');
    await sender.sendMessages({ body: 'not for the session subscription', subject: 'news' });
    assert.equal(
      await errorCode(sender.sendMessages({ body: 'no session', subject: 'chat' })),
      'GeneralError',
      'amqp:not-allowed (InvalidOperationError)',
    );
    await sender.sendMessages({ body: 'with session', subject: 'chat', sessionId: 'c1' });
    const session = await client.acceptSession('mixed', 'sessions', 'c1');
    assert.deepEqual(
      (await session.receiveMessages(5, { maxWaitTimeInMs: 300 })).map((m) => m.body),
      ['with session'],
    );
    assert.deepEqual(await bodies(client.createReceiver('mixed', 'plain', { receiveMode: 'receiveAndDelete' })), [
      'not for the session subscription',
      'with session',
    ]);
  });
});
