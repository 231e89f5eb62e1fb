/**
 * The conversations stage on the real SDK and the project's Service Bus emulator (sessions, session state, scheduled
 * polls), with an in-memory Direct Line: customer messages reach their conversation once and in order, the agents'
 * replies come back through `outbound` by scheduled polls, and a second loop (another replica, after the first
 * stopped) resumes every conversation from the session state instead of starting new ones.
 */
import assert from 'node:assert/strict';
import type { ServiceBusReceivedMessage } from '@azure/service-bus';
import { ConversationsStage } from '../../../src/pipeline/conversations/index.js';
import {
  conversationMessageId,
  conversationSessionId,
  type ConversationMessage,
  type OutboundMessage,
} from '../../../src/pipeline/messages.js';
import { createQueueSender, startSessionLoop, type SessionReceiveLoop } from '../../../src/servicebus/index.js';
import { createLogger } from '../../../src/log.js';
import { channelLookup } from '../../helpers/channels.js';
import {
  FakeDirectLine,
  FakeMedia,
  messagingChannel,
  registry,
  smsChannel,
} from '../../unit/pipeline/conversations/fakes.js';
import { closedAfterEach, relayClient, startBus, waitFor } from '../servicebus/helpers.js';

const QUEUE_PROPS = { RequiresSession: true, RequiresDuplicateDetection: true, MaxDeliveryCount: 10 };

describe('conversations stage through the real SDK', function () {
  this.timeout(60_000);
  const track = closedAfterEach();

  it('customers in parallel: each message reaches the agents once and in order, replies come back by polls, a new replica resumes', async () => {
    const bus = track(await startBus({ queues: { conversations: QUEUE_PROPS, outbound: { RequiresSession: true } } }));
    const client = track(relayClient(bus, 1_000));
    const dl = new FakeDirectLine();
    const conversations = track(createQueueSender<ConversationMessage>(client, 'conversations'));
    const outboundSender = track(createQueueSender<OutboundMessage>(client, 'outbound'));
    const log = createLogger({ level: process.env['TEST_LOG'] === '1' ? 'debug' : 'error' });
    const makeStage = (): ConversationsStage =>
      new ConversationsStage({
        log,
        channels: channelLookup([smsChannel()]),
        messaging: registry(messagingChannel()),
        directLine: () => dl,
        media: () => new FakeMedia(),
        conversations,
        outbound: outboundSender,
        pollIntervalMs: 200,
        maxPollIntervalMs: 400,
      });
    const stage = makeStage();
    const loop = (owner: ConversationsStage): SessionReceiveLoop =>
      startSessionLoop({
        client,
        queue: 'conversations',
        maxSessions: 16,
        maxBatch: 5,
        maxWaitMs: 100,
        sessionIdleMs: 100,
        createSessionHandler: owner.sessionHandler,
        log,
      });
    // As many sessions as customers: a broker may hand out the sessions with messages in a fixed order (the project's
    // emulator does), so a customer beyond them could wait while the others poll (docs/conversations.md).
    const customers = Array.from({ length: 12 }, (_, i) => `+1555000${String(i).padStart(4, '0')}`);
    const customerSender = track(createQueueSender<ConversationMessage>(client, 'conversations'));
    const send = async (round: number): Promise<void> =>
      customerSender.send(
        customers.map((customer) => {
          const body: ConversationMessage = {
            v: 1,
            kind: 'customer',
            channel: 'sms',
            customer,
            messageId: `SM-${customer}-${round}`,
            text: `message ${round}`,
            receivedAt: Date.now(),
          };
          return {
            body,
            messageId: conversationMessageId('sms', body.messageId),
            sessionId: conversationSessionId('sms', customer),
          };
        }),
      );
    const first = loop(stage);
    for (const round of [1, 2, 3]) await send(round);
    // Sent twice: the provider's webhook retried (dropped by duplicate detection).
    await send(3);
    const byCustomer = (): Map<string, string[]> => {
      const map = new Map<string, string[]>();
      for (const [id, conv] of dl.conversations) {
        const posted = conv.activities.filter((a) => a.from.id !== 'bot');
        const who = (posted[0]?.channelData?.['customercontext'] as { phone?: string } | undefined)?.phone ?? id;
        map.set(who, [...(map.get(who) ?? []), ...posted.map((a) => a.text ?? '')]);
      }
      return map;
    };
    await waitFor(
      'every customer message posted',
      () => ([...byCustomer().values()].flat().length >= 36 ? true : undefined),
      20_000,
    );
    assert.equal(dl.conversations.size, 12, 'one conversation per customer');
    for (const customer of customers)
      assert.deepEqual(byCustomer().get(customer), ['message 1', 'message 2', 'message 3'], customer);

    // The agents answer each conversation; the replies reach outbound by the scheduled polls, in order.
    for (const id of dl.conversations.keys()) {
      dl.agent(id, { text: 'reply A' });
      dl.agent(id, { text: 'reply B' });
    }
    // Every reply is on the sender's session of outbound (one session per sender: dispatch's rate limit).
    const out = await client.acceptSession('outbound', 'twilio:+15550000000', { receiveMode: 'receiveAndDelete' });
    const received: ServiceBusReceivedMessage[] = [];
    const sessions = new Set<string>();
    await waitFor(
      'the agents replies on outbound',
      async () => {
        received.push(...(await out.receiveMessages(50, { maxWaitTimeInMs: 200 })));
        return received.length >= 24 ? true : undefined;
      },
      20_000,
    );
    await out.close();
    for (const m of received) sessions.add(String(m.sessionId));
    assert.deepEqual([...sessions], ['twilio:+15550000000']);
    const replies = new Map<string, string[]>();
    for (const m of received) {
      const body = m.body as OutboundMessage;
      replies.set(body.to, [...(replies.get(body.to) ?? []), body.text]);
    }
    for (const customer of customers) assert.deepEqual(replies.get(customer), ['reply A', 'reply B'], customer);

    // Another replica takes over after the first stopped: the conversations go on, none started again.
    await first.close();
    const replica = makeStage();
    const second = track(loop(replica));
    await send(4);
    await waitFor(
      'the fourth messages posted',
      () => ([...byCustomer().values()].flat().length >= 48 ? true : undefined),
      20_000,
    );
    assert.equal(dl.count('start'), 12, 'no conversation started again');
    for (const customer of customers)
      assert.deepEqual(byCustomer().get(customer), ['message 1', 'message 2', 'message 3', 'message 4'], customer);
    assert.equal(replica.stats().resumed, 12);
    assert.equal(replica.stats().started, 0);
    await second.close();
  });
});
