import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import sinon from 'sinon';
import { DirectLineError } from '../../../../src/errors.js';
import { createLogger } from '../../../../src/log.js';
import { ConversationsStage, type ConversationsOptions } from '../../../../src/pipeline/conversations/index.js';
import { decodeState, encodeState, type ConversationState } from '../../../../src/pipeline/conversations/state.js';
import {
  conversationMessageId,
  conversationOutboundKey,
  conversationSessionId,
  type ConversationMessage,
  type OutboundMessage,
} from '../../../../src/pipeline/messages.js';
import type { SessionHandler } from '../../../../src/pipeline/ports.js';
import { CaptureStream } from '../../../helpers/capture.js';
import { channelLookup } from '../../../helpers/channels.js';
import { fakeDelivery, settledAs, type FakeDelivery } from '../../../helpers/fake-delivery.js';
import {
  CUSTOMER,
  FakeDirectLine,
  FakeMedia,
  FakeSender,
  messagingChannel,
  registry,
  session,
  smsChannel,
} from './fakes.js';

const SESSION = conversationSessionId('sms', CUSTOMER);
const START = 1_000_000;

describe('conversations stage', () => {
  let clock: sinon.SinonFakeTimers;
  beforeEach(() => {
    clock = sinon.useFakeTimers({ now: START, toFake: ['setTimeout', 'clearTimeout', 'Date'] });
  });
  afterEach(() => clock.restore());

  function setup(options: Partial<ConversationsOptions> = {}, bridge = messagingChannel(), dl = new FakeDirectLine()) {
    const outbound = new FakeSender<OutboundMessage>();
    const conversations = new FakeSender<ConversationMessage>();
    const media = new FakeMedia();
    const logs = new CaptureStream();
    const metrics = new Registry();
    const stage = new ConversationsStage({
      channels: channelLookup([smsChannel(), smsChannel({ name: 'plain', senderKey: 'twilio:+15550000009' })]),
      messaging: registry(bridge),
      directLine: () => dl,
      media: () => media,
      conversations,
      outbound,
      log: createLogger({ level: 'debug', stream: logs }),
      registry: metrics,
      retry: { attempts: 3, initialDelayMs: 100, maxDelayMs: 1000 },
      ...options,
    });
    return { stage, dl, outbound, conversations, media, logs, metrics };
  }

  let seq = 0;
  function customer(text = 'hello', extra: Partial<Extract<ConversationMessage, { kind: 'customer' }>> = {}) {
    seq++;
    return {
      v: 1,
      kind: 'customer',
      channel: 'sms',
      customer: CUSTOMER,
      messageId: `SM${seq}`,
      text,
      receivedAt: START,
      ...extra,
    };
  }
  function poll(dueAt: number) {
    return { v: 1, kind: 'poll', channel: 'sms', customer: CUSTOMER, dueAt };
  }
  function deliver(body: unknown, deliveryCount = 1): FakeDelivery {
    return fakeDelivery(body, { sessionId: SESSION, deliveryCount, messageId: 'm' });
  }

  async function run(handler: SessionHandler, deliveries: FakeDelivery[], ms = 120_000): Promise<void> {
    const done = handler.onBatch(deliveries, new AbortController().signal);
    await clock.tickAsync(ms);
    await done;
  }

  function lastState(s: { saved: Buffer[] }): ConversationState | undefined {
    const decoded = decodeState(s.saved.at(-1));
    assert.ok(decoded.ok);
    return decoded.state;
  }

  async function counter(metrics: Registry, name: string, labels: Record<string, string>): Promise<number> {
    const m = await metrics.getSingleMetric(name)?.get();
    return m?.values.find((v) => Object.entries(labels).every(([k, val]) => v.labels[k] === val))?.value ?? 0;
  }

  it('starts a conversation, posts with the routing context, saves it, schedules a poll', async () => {
    const { stage, dl, conversations, metrics } = setup();
    const s = session(SESSION);
    const msg = customer('I need help');
    const d = deliver(msg);
    await run(stage.sessionHandler(s), [d]);
    assert.deepEqual(settledAs([d]), ['complete']);
    assert.equal(dl.count('start'), 1);
    const [posted] = dl.posted('conv-1');
    const id = conversationMessageId('sms', msg.messageId);
    assert.equal(posted?.text, 'I need help');
    assert.deepEqual(posted?.channelData, {
      channeltype: 'sms-channel-id',
      conversationcontext: { source: 'sms' },
      customercontext: { phone: CUSTOMER },
      relayMessageId: id,
    });
    // The conversation is saved before the post (a started conversation is never lost), then with the post.
    const firstSave = decodeState(s.saved[0]);
    assert.equal(firstSave.ok && firstSave.state?.conversationId, 'conv-1');
    const state = lastState(s);
    assert.equal(state?.conversationId, 'conv-1');
    assert.deepEqual(state?.posted, [id]);
    assert.equal(state?.posting, undefined);
    assert.equal(state?.pollDueAt, START + 1000);
    assert.doesNotMatch(s.saved.at(-1)!.toString(), /I need help|5551234567/);
    assert.equal(conversations.sent.length, 1);
    assert.deepEqual(conversations.sent[0]?.body, poll(START + 1000));
    assert.equal(conversations.sent[0]?.scheduledAt, START + 1000);
    assert.equal(conversations.sent[0]?.sessionId, SESSION);
    assert.equal(await counter(metrics, 'channel_relay_conversations_total', { event: 'started' }), 1);
    assert.equal(await counter(metrics, 'channel_relay_conversation_messages_total', { direction: 'to_agent' }), 1);
  });

  it('resumes the saved conversation: no start, no routing context, counted as resumed', async () => {
    const { stage, dl } = setup();
    const first = session(SESSION);
    await run(stage.sessionHandler(first), [deliver(customer('one'))]);
    const next = session(SESSION, first.saved.at(-1));
    const d = deliver(customer('two'));
    await run(stage.sessionHandler(next), [d]);
    // The process that started it goes on with it: not a resume.
    assert.equal(stage.stats().resumed, 0);
    // Another replica (or this one after a restart) takes it over from the saved state.
    const { stage: replica } = setup({}, messagingChannel(), dl);
    const d3 = deliver(customer('three'));
    await run(replica.sessionHandler(session(SESSION, next.saved.at(-1))), [d3]);
    assert.deepEqual(settledAs([d3]), ['complete']);
    assert.equal(replica.stats().resumed, 1);
    assert.deepEqual(settledAs([d]), ['complete']);
    assert.equal(dl.count('start'), 1);
    const posted = dl.posted('conv-1');
    assert.deepEqual(
      posted.map((a) => a.text),
      ['one', 'two', 'three'],
    );
    assert.equal(posted[1]?.channelData?.['conversationcontext'], undefined);
    assert.equal(posted[1]?.from.id, posted[0]?.from.id);
  });

  it('renews an expired token with the secret, refreshes one about to expire', async () => {
    const { stage, dl } = setup({ tokenRefreshMarginMs: 60_000 });
    dl.tokenTtlMs = 600_000;
    const s = session(SESSION);
    await run(stage.sessionHandler(s), [deliver(customer('one'))]);
    // 9.5 minutes later: the token expires within the margin: refreshed before the post.
    clock.setSystemTime(START + 570_000);
    const s2 = session(SESSION, s.saved.at(-1));
    await run(stage.sessionHandler(s2), [deliver(customer('two'))], 1000);
    assert.equal(dl.count('refresh'), 1);
    assert.equal(dl.count('renew'), 0);
    // An hour later the token has expired: renewed with the secret.
    clock.setSystemTime(START + 3_600_000);
    const s3 = session(SESSION, s2.saved.at(-1));
    const d = deliver(customer('three'));
    await run(stage.sessionHandler(s3), [d], 1000);
    assert.deepEqual(settledAs([d]), ['complete']);
    assert.equal(dl.count('renew'), 1);
    assert.equal(dl.count('start'), 1);
    assert.deepEqual(
      dl.posted('conv-1').map((a) => a.text),
      ['one', 'two', 'three'],
    );
    assert.ok((lastState(s3)?.tokenExpiresAt ?? 0) > Date.now());
  });

  it('renews the token when Direct Line says it expired during a call', async () => {
    const { stage, dl } = setup();
    const s = session(SESSION);
    await run(stage.sessionHandler(s), [deliver(customer('one'))]);
    dl.fail('post', () => new DirectLineError('DirectLineTokenExpired', 'Token Expired'));
    const d = deliver(customer('two'));
    await run(stage.sessionHandler(session(SESSION, s.saved.at(-1))), [d]);
    assert.deepEqual(settledAs([d]), ['complete']);
    assert.equal(dl.count('renew'), 1);
    assert.deepEqual(
      dl.posted('conv-1').map((a) => a.text),
      ['one', 'two'],
    );
  });

  it('starts a new conversation when Direct Line no longer knows it, and says so', async () => {
    const { stage, dl, logs, metrics } = setup();
    const s = session(SESSION);
    await run(stage.sessionHandler(s), [deliver(customer('one'))]);
    dl.conversations.get('conv-1')!.gone = true;
    const s2 = session(SESSION, s.saved.at(-1));
    const d = deliver(customer('two'));
    await run(stage.sessionHandler(s2), [d]);
    assert.deepEqual(settledAs([d]), ['complete']);
    const posted = dl.posted('conv-2');
    assert.deepEqual(
      posted.map((a) => a.text),
      ['two'],
    );
    // The first message of the new conversation carries the routing context again.
    assert.deepEqual(posted[0]?.channelData?.['conversationcontext'], { source: 'sms' });
    assert.equal(lastState(s2)?.conversationId, 'conv-2');
    assert.ok(
      logs.lines().some((l) => l.message === 'conversation expired: started a new one' && l['previous'] === 'conv-1'),
    );
    assert.equal(await counter(metrics, 'channel_relay_conversations_total', { event: 'restarted' }), 1);
  });

  it('a redelivered message whose conversation is gone goes to a new conversation (not dead-lettered)', async () => {
    const { stage, dl } = setup();
    const s = session(SESSION);
    await run(stage.sessionHandler(s), [deliver(customer('one'))]);
    dl.conversations.get('conv-1')!.gone = true;
    // The token is still valid, so the first call to meet the 404 is the look-up of the redelivered message.
    const d = deliver(customer('two'), 2);
    const s2 = session(SESSION, s.saved.at(-1));
    await run(stage.sessionHandler(s2), [d]);
    assert.deepEqual(settledAs([d]), ['complete']);
    assert.deepEqual(
      dl.posted('conv-2').map((a) => a.text),
      ['two'],
    );
    assert.equal(lastState(s2)?.conversationId, 'conv-2');
    assert.equal(stage.stats().restarted, 1);
  });

  it('does not post twice a redelivered message that reached the conversation (relayMessageId)', async () => {
    const { stage, dl } = setup();
    const s = session(SESSION);
    await run(stage.sessionHandler(s), [deliver(customer('one'))]);
    const saved = lastState(s)!;
    // A holder posted 'two' and died before saving: the saved state does not list it as posted.
    const msg = customer('two');
    const handler = stage.sessionHandler(session(SESSION, encodeState(saved)));
    await run(handler, [deliver(msg)]);
    assert.equal(dl.posted('conv-1').length, 2);
    const again = deliver(msg, 2);
    const s3 = session(SESSION, encodeState(saved));
    await run(stage.sessionHandler(s3), [again]);
    assert.deepEqual(settledAs([again]), ['complete']);
    assert.deepEqual(
      dl.posted('conv-1').map((a) => a.text),
      ['one', 'two'],
    );
    assert.ok(lastState(s3)?.posted.includes(conversationMessageId('sms', msg.messageId)));
    assert.equal(stage.stats().duplicatesSkipped, 1);
  });

  it('looks first for a message the last holder listed as being posted, even on a first delivery', async () => {
    const { stage, dl } = setup();
    const s = session(SESSION);
    const msg = customer('one');
    const d = deliver(msg);
    // Save the "posting" state and then fail: the holder dies between its post and its final save.
    let writes = 0;
    s.setState = async (b) => {
      writes++;
      if (writes === 2) throw new Error('lock lost');
      s.saved.push(b);
    };
    await run(stage.sessionHandler(s), [d]);
    assert.deepEqual(settledAs([d]), ['abandon']);
    const left = lastState(s)!;
    assert.deepEqual(left.posting, [conversationMessageId('sms', msg.messageId)]);
    const d2 = deliver(msg, 1);
    const s2 = session(SESSION, s.saved.at(-1));
    await run(stage.sessionHandler(s2), [d2]);
    assert.deepEqual(settledAs([d2]), ['complete']);
    assert.deepEqual(
      dl.posted('conv-1').map((a) => a.text),
      ['one'],
    );
  });

  it('a failed post is looked for before it is tried again (an answer lost after Direct Line took it)', async () => {
    const { stage, dl } = setup();
    const s = session(SESSION);
    await run(stage.sessionHandler(s), [deliver(customer('one'))]);
    // The post reaches the conversation but its answer is a 502.
    const real = dl.post.bind(dl);
    let failOnce = true;
    dl.post = async (conv, activity) => {
      const id = await real(conv, activity);
      if (failOnce) {
        failOnce = false;
        throw new DirectLineError('DirectLineUnavailable', 'Bad Gateway', { upstream: { status: 502 } });
      }
      return id;
    };
    const d = deliver(customer('two'));
    await run(stage.sessionHandler(session(SESSION, s.saved.at(-1))), [d]);
    assert.deepEqual(settledAs([d]), ['complete']);
    assert.deepEqual(
      dl.posted('conv-1').map((a) => a.text),
      ['one', 'two'],
    );
  });

  it('poll: agent messages go to outbound in order, keyed on their activity, before the watermark is saved', async () => {
    const { stage, dl, outbound, conversations } = setup();
    const s = session(SESSION);
    await run(stage.sessionHandler(s), [deliver(customer('one'))]);
    const a1 = dl.agent('conv-1', { text: 'Hi, I am Ann' });
    dl.agent('conv-1', { type: 'typing', text: undefined });
    const a2 = dl.agent('conv-1', { text: 'How can I help?' });
    const s2 = session(SESSION, s.saved.at(-1));
    const p = deliver(poll(START + 1000));
    await run(stage.sessionHandler(s2), [p]);
    assert.deepEqual(settledAs([p]), ['complete']);
    assert.deepEqual(
      outbound.sent.map((m) => [m.messageId, m.body.text, m.sessionId, m.body.to, m.body.purpose]),
      [
        [conversationOutboundKey('conv-1', a1), 'Hi, I am Ann', 'twilio:+15550000000', CUSTOMER, 'conversation'],
        [conversationOutboundKey('conv-1', a2), 'How can I help?', 'twilio:+15550000000', CUSTOMER, 'conversation'],
      ],
    );
    assert.deepEqual(outbound.sent[0]?.body.conversation, {
      account: 'contoso',
      conversationId: 'conv-1',
      activityId: a1,
    });
    const state = lastState(s2)!;
    assert.equal(state.watermark, 'w4');
    // Active: the next poll one interval later.
    assert.equal(conversations.sent.at(-1)?.scheduledAt, Date.now() - 120_000 + 1000);

    // The outbound send fails: the watermark stays, the poll is handed back, and the next one sends them again.
    const a3 = dl.agent('conv-1', { text: 'Still there?' });
    outbound.failNext();
    const s3 = session(SESSION, s2.saved.at(-1));
    const p2 = deliver(poll(state.pollDueAt!));
    await run(stage.sessionHandler(s3), [p2]);
    assert.deepEqual(settledAs([p2]), ['abandon']);
    assert.equal(lastState(s3)?.watermark ?? state.watermark, 'w4');
    const p3 = deliver(poll(state.pollDueAt!), 2);
    const s4 = session(SESSION, s2.saved.at(-1));
    await run(stage.sessionHandler(s4), [p3]);
    assert.deepEqual(settledAs([p3]), ['complete']);
    assert.equal(outbound.sent.at(-1)?.messageId, conversationOutboundKey('conv-1', a3));
    assert.equal(lastState(s4)?.watermark, 'w5');
  });

  it('reads every page of activities a poll finds', async () => {
    const { stage, dl, outbound } = setup();
    const s = session(SESSION);
    await run(stage.sessionHandler(s), [deliver(customer('one'))]);
    dl.pageSize = 2;
    for (let i = 0; i < 5; i++) dl.agent('conv-1', { text: `reply ${i}` });
    const s2 = session(SESSION, s.saved.at(-1));
    await run(stage.sessionHandler(s2), [deliver(poll(START + 1000))]);
    assert.deepEqual(
      outbound.sent.map((m) => m.body.text),
      ['reply 0', 'reply 1', 'reply 2', 'reply 3', 'reply 4'],
    );
  });

  it('endOfConversation clears the state; the next customer message starts a new conversation', async () => {
    const { stage, dl, outbound, metrics } = setup();
    const s = session(SESSION);
    await run(stage.sessionHandler(s), [deliver(customer('one'))]);
    dl.agent('conv-1', { text: 'Please tell us how we did: https://survey.example' });
    dl.agent('conv-1', { type: 'endOfConversation', text: undefined });
    const s2 = session(SESSION, s.saved.at(-1));
    const pollDueAt = lastState(s)!.pollDueAt!;
    const p = deliver(poll(pollDueAt));
    await run(stage.sessionHandler(s2), [p]);
    assert.deepEqual(settledAs([p]), ['complete']);
    assert.deepEqual(
      outbound.sent.map((m) => m.body.text),
      ['Please tell us how we did: https://survey.example'],
    );
    assert.equal(lastState(s2), undefined);
    assert.equal(await counter(metrics, 'channel_relay_conversations_total', { event: 'ended' }), 1);
    // A poll of an ended conversation does nothing.
    const late = deliver(poll(pollDueAt + 5000));
    const s3 = session(SESSION, s2.saved.at(-1));
    await run(stage.sessionHandler(s3), [late, deliver(customer('back again'))]);
    assert.deepEqual(settledAs([late]), ['complete']);
    assert.equal(dl.count('start'), 2);
    assert.deepEqual(dl.posted('conv-2')[0]?.channelData?.['conversationcontext'], { source: 'sms' });
  });

  it('a message posted to a conversation that then ended, delivered again, is not posted to a new one', async () => {
    const { stage, dl } = setup();
    const s = session(SESSION);
    await run(stage.sessionHandler(s), [deliver(customer('one'))]);
    const last = customer('last words');
    await run(stage.sessionHandler(session(SESSION, s.saved.at(-1))), [deliver(last)]);
    // The holder that posted it died before completing it; meanwhile the agents ended the conversation.
    const posted = s.saved.at(-1);
    const s2 = session(SESSION, posted);
    await run(stage.sessionHandler(s2), [deliver(customer('two'))]);
    dl.agent('conv-1', { type: 'endOfConversation', text: undefined });
    const s3 = session(SESSION, s2.saved.at(-1));
    await run(stage.sessionHandler(s3), [deliver(poll(lastState(s2)!.pollDueAt!))]);
    assert.equal(lastState(s3), undefined, 'the conversation ended');
    const again = deliver(last, 2);
    const s4 = session(SESSION, s3.saved.at(-1));
    await run(stage.sessionHandler(s4), [again]);
    assert.deepEqual(settledAs([again]), ['complete']);
    assert.equal(dl.count('start'), 1, 'no new conversation for a message the ended one had');
    assert.deepEqual(
      dl.posted('conv-1').map((a) => a.text),
      ['one', 'last words', 'two'],
    );
    // The next new message starts the next conversation, which still knows what went to the last one (s4 changed
    // nothing: the session still holds what s3 wrote).
    assert.equal(s4.saved.length, 0);
    const s5 = session(SESSION, s3.saved.at(-1));
    await run(stage.sessionHandler(s5), [deliver(customer('hello again')), deliver(last, 3)]);
    assert.equal(dl.count('start'), 2);
    assert.deepEqual(
      dl.posted('conv-2').map((a) => a.text),
      ['hello again'],
    );
  });

  it('polls back off while nothing comes, and stop after the idle timeout', async () => {
    const { stage, conversations } = setup({ pollIntervalMs: 1000, maxPollIntervalMs: 4000, idleTimeoutMs: 20_000 });
    let s = session(SESSION);
    await run(stage.sessionHandler(s), [deliver(customer('one'))], 0);
    const waits: number[] = [];
    for (let i = 0; i < 10; i++) {
      const scheduled = conversations.sent.at(-1)!;
      if (lastState(s)?.pollDueAt === undefined) break;
      clock.setSystemTime(scheduled.scheduledAt!);
      const before = conversations.sent.length;
      const next = session(SESSION, s.saved.at(-1));
      const p = deliver(scheduled.body);
      await run(stage.sessionHandler(next), [p], 0);
      assert.deepEqual(settledAs([p]), ['complete']);
      s = next;
      if (conversations.sent.length > before) waits.push(conversations.sent.at(-1)!.scheduledAt! - Date.now());
    }
    // Doubling from the interval up to the longest, then none once idle for 20 s (the poll at 23 s schedules none).
    assert.deepEqual(waits, [2000, 4000, 4000, 4000, 4000, 4000]);
    assert.equal(lastState(s)?.pollDueAt, undefined);
    assert.ok(lastState(s)?.conversationId);
  });

  it('a poll replaced by a later one does nothing; a customer message brings the next poll forward', async () => {
    const { stage, dl, conversations } = setup({ maxPollIntervalMs: 8000 });
    const s = session(SESSION);
    await run(stage.sessionHandler(s), [deliver(customer('one'))], 0);
    const state = lastState(s)!;
    state.pollDueAt = START + 8000;
    const s2 = session(SESSION, encodeState(state));
    const reads = dl.count('activities');
    const stale = deliver(poll(START + 1000));
    await run(stage.sessionHandler(s2), [stale, deliver(customer('two'))], 0);
    assert.deepEqual(settledAs([stale]), ['complete']);
    assert.equal(dl.count('activities'), reads);
    assert.equal(conversations.sent.at(-1)?.scheduledAt, START + 1000);
    assert.equal(lastState(s2)?.pollDueAt, START + 1000);
  });

  it('throttled past the retries: hands the delivery back after Retry-After, and the rest of the batch with it', async () => {
    const { stage, dl } = setup();
    const s = session(SESSION);
    await run(stage.sessionHandler(s), [deliver(customer('one'))]);
    dl.fail('post', () => new DirectLineError('DirectLineThrottled', 'Too Many Requests', { retryAfterMs: 20_000 }), 5);
    const d1 = deliver(customer('two'));
    const d2 = deliver(customer('three'));
    const handler = stage.sessionHandler(session(SESSION, s.saved.at(-1)));
    const done = handler.onBatch([d1, d2], new AbortController().signal);
    await clock.tickAsync(19_000);
    assert.deepEqual([d1.settlements, d2.settlements], [[], []]);
    await clock.tickAsync(2_000);
    await done;
    assert.deepEqual(settledAs([d1, d2]), ['abandon', 'abandon']);
    // 'three' was not posted before 'two': the order is kept.
    assert.deepEqual(
      dl.posted('conv-1').map((a) => a.text),
      ['one'],
    );
    assert.equal(stage.stats().directLineErrors['DirectLineThrottled'], 1);
  });

  it('unavailable: retried within the batch, then handed back; dead-lettered with the error on the last delivery', async () => {
    const { stage, dl } = setup({ maxDeliveryCount: 3 });
    const s = session(SESSION);
    await run(stage.sessionHandler(s), [deliver(customer('one'))]);
    const unavailable = () =>
      new DirectLineError('DirectLineUnavailable', 'Service Unavailable', { upstream: { status: 503 } });
    dl.fail('post', unavailable, 2);
    const d = deliver(customer('two'));
    await run(stage.sessionHandler(session(SESSION, s.saved.at(-1))), [d]);
    assert.deepEqual(settledAs([d]), ['complete']);
    dl.fail('post', unavailable, 3);
    const d2 = deliver(customer('three'));
    await run(stage.sessionHandler(session(SESSION, s.saved.at(-1))), [d2]);
    assert.deepEqual(settledAs([d2]), ['abandon']);
    dl.fail('post', unavailable, 3);
    const d3 = deliver(customer('four'), 3);
    await run(stage.sessionHandler(session(SESSION, s.saved.at(-1))), [d3]);
    assert.deepEqual(settledAs([d3]), ['deadLetter']);
    const dead = d3.settlements[0] as { reason: string; description: string };
    assert.equal(dead.reason, 'ConversationDirectLineFailed');
    assert.match(dead.description, /DirectLineUnavailable \(HTTP 503\): Service Unavailable/);
  });

  it('an unauthorized secret: handed back after a pause, and the account is not healthy until a call succeeds', async () => {
    const { stage, dl } = setup({ identityPauseMs: 15_000 });
    dl.fail(
      'start',
      () => new DirectLineError('DirectLineUnauthorized', 'Unauthorized', { upstream: { status: 401 } }),
    );
    const d = deliver(customer('one'));
    const done = stage.sessionHandler(session(SESSION)).onBatch([d], new AbortController().signal);
    await clock.tickAsync(14_000);
    assert.deepEqual(d.settlements, []);
    await clock.tickAsync(2_000);
    await done;
    assert.deepEqual(settledAs([d]), ['abandon']);
    assert.deepEqual(
      stage.accounts().map((a) => a.ok),
      [false],
    );
    await run(stage.sessionHandler(session(SESSION)), [deliver(customer('one'), 2)]);
    assert.deepEqual(stage.accounts(), [{ account: 'contoso', ok: true }]);
  });

  it('dead-letters an unreadable body, an unknown channel and a channel that is not bridged, saying what was wrong', async () => {
    const { stage, dl } = setup();
    const unreadable = deliver({
      v: 1,
      kind: 'customer',
      channel: 'sms',
      customer: CUSTOMER,
      text: 'x',
      receivedAt: 1,
    });
    const unknown = fakeDelivery(customer('x', { channel: 'nope' }), {
      sessionId: conversationSessionId('nope', CUSTOMER),
    });
    const unbridged = fakeDelivery(customer('x', { channel: 'plain' }), {
      sessionId: conversationSessionId('plain', CUSTOMER),
    });
    await run(stage.sessionHandler(session(SESSION)), [unreadable, unknown, unbridged]);
    assert.deepEqual(settledAs([unreadable, unknown, unbridged]), ['deadLetter', 'deadLetter', 'deadLetter']);
    const [a, b, c] = [unreadable, unknown, unbridged].map(
      (d) => d.settlements[0] as { reason: string; description: string },
    );
    assert.equal(a?.reason, 'ConversationUnreadable');
    assert.match(a!.description, /'messageId' must be a non-empty string/);
    assert.equal(b?.reason, 'ConversationUnknownChannel');
    assert.match(b!.description, /channel 'nope' is not configured \(configured channels: sms, plain\)/);
    assert.equal(c?.reason, 'ConversationUnknownChannel');
    assert.match(c!.description, /channel 'plain' is not bridged to Omnichannel.*\(bridged: sms\)/);
    assert.equal(dl.count('start'), 0);
  });

  it('customer attachments: uploaded where the channel allows them', async () => {
    const { stage, dl, media, outbound } = setup();
    const d = deliver(
      customer('see photo', { attachments: [{ url: 'https://media/1.jpg', contentType: 'image/jpeg' }] }),
    );
    await run(stage.sessionHandler(session(SESSION)), [d]);
    assert.deepEqual(settledAs([d]), ['complete']);
    assert.equal(media.fetched.length, 1);
    assert.equal(dl.count('upload'), 1);
    const [posted] = dl.posted('conv-1');
    assert.equal(posted?.text, 'see photo');
    assert.equal(dl.uploads.get(posted!.id!)?.[0]?.contentType, 'image/jpeg');
    assert.equal(outbound.sent.length, 0);
    assert.equal(stage.stats().attachmentsAccepted, 1);
  });

  it('customer attachments refused: the refusal goes to the customer, the text alone to the agents', async () => {
    const { stage, dl, media, outbound } = setup(
      {},
      messagingChannel({ attachments: { customer: false, agent: false } }),
    );
    const d = deliver(customer('see photo', { attachments: [{ url: 'https://media/1.jpg' }] }));
    await run(stage.sessionHandler(session(SESSION)), [d]);
    assert.deepEqual(settledAs([d]), ['complete']);
    assert.equal(media.fetched.length, 0);
    assert.equal(dl.count('upload'), 0);
    assert.deepEqual(
      dl.posted('conv-1').map((a) => a.text),
      ['see photo'],
    );
    assert.deepEqual(
      outbound.sent.map((m) => [m.body.text, m.body.to, m.body.purpose, m.sessionId]),
      [['Sorry, we cannot receive files here.', CUSTOMER, 'conversation', 'twilio:+15550000000']],
    );
    assert.equal(stage.stats().attachmentsRefused, 1);
  });

  it('agent attachments: sent where the channel allows them, dropped (text kept) where not', async () => {
    for (const agent of [true, false]) {
      const { stage, dl, outbound } = setup({}, messagingChannel({ attachments: { customer: true, agent } }));
      const s = session(SESSION);
      await run(stage.sessionHandler(s), [deliver(customer('one'))]);
      dl.agent('conv-1', {
        text: 'here is the form',
        attachments: [{ contentType: 'application/pdf', contentUrl: 'https://blob/form.pdf', name: 'form.pdf' }],
      });
      const p = deliver(poll(lastState(s)!.pollDueAt!));
      await run(stage.sessionHandler(session(SESSION, s.saved.at(-1))), [p]);
      assert.deepEqual(settledAs([p]), ['complete']);
      assert.equal(outbound.sent[0]?.body.text, 'here is the form');
      assert.deepEqual(
        outbound.sent[0]?.body.attachments,
        agent ? [{ url: 'https://blob/form.pdf', contentType: 'application/pdf', name: 'form.pdf' }] : undefined,
      );
    }
  });

  it('the stop ends a hand-back wait at once', async () => {
    const { stage, dl } = setup();
    dl.fail('start', () => new DirectLineError('DirectLineThrottled', 'Too Many Requests', { retryAfterMs: 25_000 }));
    const d = deliver(customer('one'));
    const done = stage.sessionHandler(session(SESSION)).onBatch([d], new AbortController().signal);
    await clock.tickAsync(100);
    stage.stop();
    await clock.tickAsync(0);
    await done;
    assert.deepEqual(settledAs([d]), ['abandon']);
  });
});
