/**
 * The conversations stage with the relay's real Direct Line client against the project's Direct Line emulator (its
 * simulated agents answer each message, then send a survey and end the conversation), on the real Service Bus SDK:
 * under Direct Line's failures each customer message reaches the agents once and in order, and each customer gets
 * every agent message once: answers lost after Direct Line took the post (502), a burst of 429s, and tokens that
 * expire within the run. (A conversation Direct Line forgets, 404, is the unit tests' and the stage's `restart`.)
 */
import assert from 'node:assert/strict';
import type { ServiceBusReceivedMessage } from '@azure/service-bus';
import { createDirectLineClient } from '../../../src/directline/index.js';
import { startDirectLineEmulator, type DirectLineEmulatorOptions } from '../../../src/emulators/directline/index.js';
import { createLogger } from '../../../src/log.js';
import { ConversationsStage } from '../../../src/pipeline/conversations/index.js';
import {
  conversationMessageId,
  conversationSessionId,
  type ConversationMessage,
  type OutboundMessage,
} from '../../../src/pipeline/messages.js';
import { createQueueSender, startSessionLoop } from '../../../src/servicebus/index.js';
import { channelLookup } from '../../helpers/channels.js';
import { FakeMedia, messagingChannel, registry, smsChannel } from '../../unit/pipeline/conversations/fakes.js';
import { closedAfterEach, relayClient, startBus, waitFor } from '../servicebus/helpers.js';

const CUSTOMERS = Array.from({ length: 10 }, (_, i) => `+1555000${String(i).padStart(4, '0')}`);
const ROUNDS = [1, 2, 3];

describe('conversations through Direct Line failures (real client, Direct Line emulator, real SDK)', function () {
  this.timeout(90_000);
  const track = closedAfterEach();

  /** Runs 10 customers through three messages each and the agents' survey; returns what reached each side. */
  async function converse(emulator: DirectLineEmulatorOptions) {
    const bus = track(
      await startBus({
        queues: {
          conversations: { RequiresSession: true, RequiresDuplicateDetection: true, MaxDeliveryCount: 10 },
          outbound: { RequiresSession: true },
        },
      }),
    );
    const dlem = track(
      await startDirectLineEmulator({
        agents: { replyDelayMs: 5, endAfterTurns: 3, attachmentEvery: 0 },
        seed: 11,
        ...emulator,
      }),
    );
    const client = track(relayClient(bus, 1_000));
    const dl = createDirectLineClient({ baseUrl: dlem.url, secret: 'emulated-directline-secret', timeoutMs: 5_000 });
    track({ close: async () => dl.close() });
    const conversations = track(createQueueSender<ConversationMessage>(client, 'conversations'));
    const outbound = track(createQueueSender<OutboundMessage>(client, 'outbound'));
    const log = createLogger({ level: process.env['TEST_LOG'] === '1' ? 'debug' : 'error' });
    const stage = new ConversationsStage({
      channels: channelLookup([smsChannel()]),
      messaging: registry(messagingChannel({ channelId: 'sms' })),
      directLine: () => dl,
      media: () => new FakeMedia(),
      conversations,
      outbound,
      pollIntervalMs: 200,
      maxPollIntervalMs: 400,
      retry: { attempts: 3, initialDelayMs: 50, maxDelayMs: 500 },
      log,
    });
    track(
      startSessionLoop({
        client,
        queue: 'conversations',
        maxSessions: 16,
        maxBatch: 5,
        maxWaitMs: 100,
        sessionIdleMs: 100,
        createSessionHandler: stage.sessionHandler,
        log,
      }),
    );
    const out = await client.acceptSession('outbound', smsChannel().senderKey, { receiveMode: 'receiveAndDelete' });
    const received: ServiceBusReceivedMessage[] = [];
    const drain = async (): Promise<void> => {
      received.push(...(await out.receiveMessages(100, { maxWaitTimeInMs: 200 })));
    };
    for (const round of ROUNDS) {
      await conversations.send(
        CUSTOMERS.map((customer) => {
          const body: ConversationMessage = {
            v: 1,
            kind: 'customer',
            channel: 'sms',
            customer,
            messageId: `SM-${customer}-${round}`,
            text: `message ${round} of ${customer}`,
            receivedAt: Date.now(),
          };
          return {
            body,
            messageId: conversationMessageId('sms', body.messageId),
            sessionId: conversationSessionId('sms', customer),
          };
        }),
      );
      await waitFor(
        `the agents' answers to message ${round}`,
        async () => {
          await drain();
          const n = received.filter((m) => (m.body as OutboundMessage).text.includes(`message ${round} of`)).length;
          return n >= CUSTOMERS.length ? true : undefined;
        },
        30_000,
      );
    }
    await waitFor(
      'every survey',
      async () => {
        await drain();
        return received.filter((m) => /survey/i.test((m.body as OutboundMessage).text)).length >= CUSTOMERS.length
          ? true
          : undefined;
      },
      30_000,
    );
    await out.close();
    const toCustomer = new Map<string, OutboundMessage[]>();
    for (const m of received) {
      const body = m.body as OutboundMessage;
      toCustomer.set(body.to, [...(toCustomer.get(body.to) ?? []), body]);
    }
    return { records: dlem.conversations(), toCustomer };
  }

  /** What each side must have seen, whatever failed on the way. */
  function assertOnceInOrder(
    records: Awaited<ReturnType<typeof converse>>['records'],
    toCustomer: Map<string, OutboundMessage[]>,
  ): void {
    for (const customer of CUSTOMERS) {
      const fromCustomer = records
        .flatMap((c) => c.activities)
        .filter((a) => a.direction === 'customer' && a.text?.endsWith(`of ${customer}`))
        .map((a) => a.text);
      assert.deepEqual(
        fromCustomer,
        ROUNDS.map((r) => `message ${r} of ${customer}`),
        `${customer}: each message at the agents once, in order`,
      );
      const keys = (toCustomer.get(customer) ?? []).map((m) => m.key);
      assert.equal(new Set(keys).size, keys.length, `${customer}: no agent message twice`);
    }
  }

  it('answers lost after Direct Line took the post (502 after accept), and a burst of 429s', async () => {
    const { records, toCustomer } = await converse({
      faults: {
        directline: {
          errorRate: 0.2,
          errorStatus: 502,
          errorAfterAccept: true,
          rateLimitBurst: { count: 15, retryAfterSeconds: 1 },
        },
      },
    });
    assertOnceInOrder(records, toCustomer);
    // Greeting, three answers and the survey, each once.
    for (const customer of CUSTOMERS) assert.equal(toCustomer.get(customer)?.length, 5, customer);
    // A start answered 502 after Direct Line made the conversation leaves an empty one behind (nothing reaches the
    // agents in it); every customer talks in exactly one.
    const talkedIn = records.filter((c) => c.activities.some((a) => a.direction === 'customer'));
    assert.equal(talkedIn.length, CUSTOMERS.length, 'one conversation per customer');
  });

  it('tokens that expire within the run are refreshed or renewed, not lost', async () => {
    const { records, toCustomer } = await converse({ tokenLifetimeSeconds: 2 });
    assertOnceInOrder(records, toCustomer);
    assert.equal(records.length, CUSTOMERS.length, 'one conversation per customer: a token expiry starts none');
  });
});
