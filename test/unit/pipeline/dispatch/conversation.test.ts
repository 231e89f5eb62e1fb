import assert from 'node:assert/strict';
import sinon from 'sinon';
import { DispatchStage } from '../../../../src/pipeline/dispatch/index.js';
import { rateCost, sendTimeoutMs } from '../../../../src/pipeline/dispatch/send.js';
import type { OutboundMessage } from '../../../../src/pipeline/messages.js';
import type { SessionHandler } from '../../../../src/pipeline/ports.js';
import type { ProviderType } from '../../../../src/providers/provider.js';
import {
  channel,
  delivery,
  errors,
  FakeInteractions,
  FakeProvider,
  lookup,
  PHONE,
  session,
  type FakeDelivery,
} from './fakes.js';

/** A fake provider that carries `maxAttachments` files per message. */
class CarryingProvider extends FakeProvider {
  constructor(
    type: ProviderType,
    readonly maxAttachments: number,
  ) {
    super(type);
  }
}

/** An agent's message in an Omnichannel conversation, as the conversations stage puts it on `outbound`. */
function agentMessage(overrides: Partial<OutboundMessage> = {}): OutboundMessage {
  return {
    v: 1,
    key: `dl:conv-1:${Math.random().toString(36).slice(2)}`,
    channel: 'sms',
    to: PHONE,
    text: 'Here is the form',
    purpose: 'conversation',
    conversation: { account: 'contoso', conversationId: 'conv-1', activityId: 'act-1' },
    attachments: [
      { url: 'https://blob.example/form.pdf', contentType: 'application/pdf', name: 'form.pdf' },
      { url: 'https://blob.example/map.png', contentType: 'image/png', name: 'map.png' },
    ],
    acceptedAt: 0,
    ...overrides,
  };
}

describe('dispatch: conversation messages (agents’ replies)', () => {
  let clock: sinon.SinonFakeTimers;
  beforeEach(() => {
    clock = sinon.useFakeTimers({
      now: 1_000_000,
      toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'],
    });
  });
  afterEach(() => clock.restore());

  async function run(handler: SessionHandler, deliveries: FakeDelivery[], ms = 30_000): Promise<void> {
    const done = handler.onBatch(deliveries, new AbortController().signal);
    await clock.tickAsync(ms);
    await done;
  }

  it('sends the text with its attachments and records no interaction', async () => {
    const p = new CarryingProvider('twilio', 10);
    const interactions = new FakeInteractions();
    const s = new DispatchStage({ channels: lookup(channel()), provider: () => p, interactions });
    const d = delivery(agentMessage());
    await run(await s.sessionHandler(session()), [d]);
    assert.equal(p.calls.length, 1);
    assert.deepEqual(p.calls[0]!.request.attachments, agentMessage().attachments);
    assert.equal(p.calls[0]!.request.text, 'Here is the form');
    assert.equal(p.calls[0]!.request.statusCallbackUrl, undefined);
    assert.deepEqual(d.settled, [{ kind: 'complete' }]);
    assert.equal(interactions.attempts, 0);
  });

  it("one customer's messages reach the provider in the order they came, retries included; other customers' at once", async () => {
    // The first call fails once (transient, Twilio without a lookup): its retry still goes before the next message to
    // the same customer; another customer's message does not wait.
    const p = new FakeProvider('twilio', (_r, n) =>
      n === 1 ? errors.unavailable() : { providerMessageId: '', status: 'queued' },
    );
    const s = new DispatchStage({
      channels: lookup(channel()),
      provider: () => p,
      interactions: new FakeInteractions(),
      retry: { attempts: 3, initialDelayMs: 100, maxDelayMs: 100 },
    });
    const ds = [
      delivery(agentMessage({ text: 'greeting', attachments: undefined })),
      delivery(agentMessage({ text: 'reply 1', attachments: undefined })),
      delivery(agentMessage({ text: 'other customer', to: '+15550009999', attachments: undefined })),
      delivery(agentMessage({ text: 'reply 2', attachments: undefined })),
    ];
    await run(await s.sessionHandler(session()), ds);
    assert.deepEqual(
      p.calls.map((c) => c.request.text),
      ['greeting', 'other customer', 'greeting', 'reply 1', 'reply 2'],
    );
    assert.deepEqual(
      ds.map((d) => d.settled),
      ds.map(() => [{ kind: 'complete' }]),
    );
  });

  it('a message with more attachments than the provider carries is dead-lettered unsent, with the numbers', async () => {
    const p = new CarryingProvider('contract', 0);
    const ct = channel({
      name: 'ct',
      provider: { type: 'contract', url: 'https://p.example', signingSecret: 'x' },
      senderKey: 'contract:ct',
    });
    const s = new DispatchStage({ channels: lookup(ct), provider: () => p, interactions: new FakeInteractions() });
    const d = delivery(agentMessage({ channel: 'ct' }), 'contract:ct');
    await run(await s.sessionHandler(session('contract:ct')), [d]);
    assert.equal(p.calls.length, 0);
    assert.equal(d.settled.length, 1);
    const settled = d.settled[0]!;
    assert.ok(settled.kind === 'deadLetter');
    assert.equal(settled.reason, 'AttachmentsUnsupported');
    assert.match(settled.description, /carries at most 0 attachments per message, this one has 2/);
  });

  it('a Telegram message with attachments counts one per Telegram message against the sender rate', async () => {
    // 3 per second: a message of text + 2 files takes the whole window, so the next waits a window after it ends.
    const tg = channel({ name: 'tg', provider: { type: 'telegram', botToken: '1:a' }, senderKey: 'telegram:bot' });
    const limited = { ...tg, rateLimit: { ...tg.rateLimit, messages: 3 } };
    const p = new CarryingProvider('telegram', 10);
    const s = new DispatchStage({ channels: lookup(limited), provider: () => p, interactions: new FakeInteractions() });
    const first = agentMessage({ channel: 'tg', to: '100' });
    const second = agentMessage({ channel: 'tg', to: '200' });
    assert.equal(rateCost(limited, first), 3);
    assert.equal(rateCost(limited, { text: '', attachments: first.attachments }), 2);
    assert.equal(rateCost(limited, { text: 'no files' }), 1);
    await run(await s.sessionHandler(session('telegram:bot')), [
      delivery(first, 'telegram:bot'),
      delivery(second, 'telegram:bot'),
    ]);
    assert.equal(p.calls.length, 2);
    const [a, b] = p.calls;
    assert.ok(b!.at >= a!.end + 1000, `the second send waits the first's window: ${b!.at - a!.end} ms`);
  });

  it('a multi-message Telegram send gets a timeout per message and the spacing between them', () => {
    const tg = channel({ name: 'tg', provider: { type: 'telegram', botToken: '1:a' }, timeoutMs: 5000 });
    assert.equal(sendTimeoutMs(tg, agentMessage({ to: '100' })), 3 * 5000 + 2 * 1000);
    assert.equal(sendTimeoutMs(tg, agentMessage({ to: '-100200' })), 3 * 5000 + 2 * 3000);
    assert.equal(sendTimeoutMs(tg, { to: '100', text: 'x' }), 5000);
    assert.equal(sendTimeoutMs(channel({ timeoutMs: 5000 }), agentMessage()), 5000);
  });

  it('an MMS costs its body’s SMS segments, at least one (an empty body with media too)', () => {
    const sms = channel();
    assert.equal(rateCost(sms, { text: '', attachments: agentMessage().attachments }), 1);
    assert.equal(rateCost(sms, { text: 'x'.repeat(161), attachments: agentMessage().attachments }), 2);
  });
});
