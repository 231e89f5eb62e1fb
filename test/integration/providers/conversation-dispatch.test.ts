import assert from 'node:assert/strict';
import { DispatchStage } from '../../../src/pipeline/dispatch/index.js';
import type { OutboundMessage } from '../../../src/pipeline/messages.js';
import { createProvider } from '../../../src/providers/index.js';
import { channel, delivery, FakeInteractions, lookup, session } from '../../unit/pipeline/dispatch/fakes.js';
import { BOT_TOKEN, simulators } from './helpers.js';

/** An agent's reply with a file, as the conversations stage puts it on `outbound`. */
const reply = (n: number, to: string): OutboundMessage => ({
  v: 1,
  key: `dl:conv-${to}:act-${n}`,
  channel: 'tg',
  to,
  text: `Reply ${n}`,
  purpose: 'conversation',
  conversation: { account: 'contoso', conversationId: `conv-${to}`, activityId: `act-${n}` },
  attachments: [{ url: `https://blob.example/${n}.pdf`, contentType: 'application/pdf', name: `${n}.pdf` }],
  acceptedAt: Date.now(),
});

describe('dispatch of agents’ replies with files through the Telegram adapter and simulator', () => {
  const start = simulators();

  it('every text and file arrives, in order per chat, within the per-chat and per-bot limits; nothing recorded', async () => {
    const sim = await start({ windowToleranceMs: 50 });
    const tg = channel({
      name: 'tg',
      provider: { type: 'telegram', botToken: BOT_TOKEN, baseUrl: sim.urls.telegram },
      senderKey: 'telegram:bot',
      rateLimit: { messages: 30, perRecipientMs: 1000, concurrency: 10 },
      timeoutMs: 5000,
    });
    const provider = createProvider({ type: 'telegram', botToken: BOT_TOKEN, baseUrl: sim.urls.telegram });
    const interactions = new FakeInteractions();
    const stage = new DispatchStage({ channels: lookup(tg), provider: () => provider, interactions });
    const handler = await stage.sessionHandler(session('telegram:bot'));
    const messages = [reply(1, '100'), reply(2, '200'), reply(3, '100'), reply(4, '200')];
    const deliveries = messages.map((m) => delivery(m, 'telegram:bot'));
    await handler.onBatch(deliveries, new AbortController().signal);
    assert.deepEqual(
      deliveries.map((d) => d.settled),
      messages.map(() => [{ kind: 'complete' }]),
    );
    for (const chat of ['100', '200']) {
      const logged = sim.messages({ provider: 'telegram', recipient: chat });
      const n = chat === '100' ? [1, 3] : [2, 4];
      assert.deepEqual(
        logged.map((m) => m.text || m.attachments?.[0]?.url),
        n.flatMap((i) => [`Reply ${i}`, `https://blob.example/${i}.pdf`]),
      );
    }
    const stats = sim.stats().telegram;
    assert.equal(stats.rateLimited, 0, 'no 429: the sends were spaced as Telegram asks');
    assert.equal(stats.repeatedKeys, 0);
    assert.equal(interactions.attempts, 0);
  });
});
