import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import sinon from 'sinon';
import { DispatchStage, type DispatchOptions } from '../../../../src/pipeline/dispatch/index.js';
import type { SessionHandler } from '../../../../src/pipeline/ports.js';
import { decodeSessionState } from '../../../../src/pipeline/dispatch/session-state.js';
import type { Provider } from '../../../../src/providers/provider.js';
import { CaptureStream } from '../../../helpers/capture.js';
import { createLogger } from '../../../../src/log.js';
import {
  channel,
  delivery,
  errors,
  FakeInteractions,
  FakeProvider,
  lookup,
  LookupProvider,
  outbound,
  PHONE,
  session,
  signalTraces,
  worstCaseInWindow,
  type FakeDelivery,
} from './fakes.js';

const SESSION = 'twilio:+15550000000';

describe('dispatch stage', () => {
  let clock: sinon.SinonFakeTimers;
  beforeEach(() => {
    clock = sinon.useFakeTimers({
      now: 1_000_000,
      toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'],
    });
  });
  afterEach(() => clock.restore());

  function stage(
    provider: Provider | ((name: string) => Provider),
    options: Partial<DispatchOptions> = {},
    interactions = new FakeInteractions(),
  ) {
    const channels = options.channels ?? lookup(channel());
    const s = new DispatchStage({
      channels,
      provider: (c) => (typeof provider === 'function' ? provider(c.name) : provider),
      interactions,
      retry: { initialDelayMs: 100, maxDelayMs: 1000, ...options.retry },
      ...options,
    });
    return { stage: s, interactions };
  }

  async function run(
    handler: SessionHandler,
    deliveries: FakeDelivery[],
    ms = 60_000,
    signal = new AbortController().signal,
  ): Promise<void> {
    const done = handler.onBatch(deliveries, signal);
    await clock.tickAsync(ms);
    await done;
  }

  function settledOnce(d: FakeDelivery) {
    assert.equal(d.settled.length, 1, `settled exactly once, was ${JSON.stringify(d.settled)}`);
    return d.settled[0];
  }

  it('never exceeds the sender limit in any window and uses it fully (5 per 1000 ms, 50 queued)', async () => {
    const provider = new FakeProvider();
    const { stage: s, interactions } = stage(provider);
    const handler = await s.sessionHandler(session());
    const deliveries = Array.from({ length: 50 }, () => delivery(outbound()));
    const start = Date.now();
    await run(handler, deliveries, 15_000);
    assert.equal(provider.calls.length, 50);
    const worst = worstCaseInWindow(provider.calls, 1000);
    assert.equal(worst, 5, `at most 5 calls in any 1000 ms wherever each arrived, and the limit used: ${worst}`);
    const last = Math.max(...deliveries.map((d) => d.settledAt ?? Infinity));
    assert.ok(last - start <= 10 * 1050, `all 50 done within 10 windows, took ${last - start} ms`);
    for (const d of deliveries) assert.deepEqual(settledOnce(d), { kind: 'complete' });
    assert.equal(interactions.all.length, 50);
    assert.ok(interactions.sends.length < 50, `interactions are grouped (${interactions.sends.length} sends)`);
    const first = interactions.all[0];
    assert.equal(first?.body.responseType, 'sent');
    assert.equal(
      first?.messageId,
      `${first?.body.context.kind === 'marketing' ? first.body.context.activityRowId : ''}:sent`,
    );
    // The 50 rows share msdyncrm_activityid (one tile): keyed on it, the bus would keep one `sent` of the 50.
    assert.equal(
      new Set(interactions.all.map((i) => i.messageId)).size,
      50,
      'one interaction MessageId per activity row',
    );
    assert.equal(
      new Set(provider.calls.map((c) => c.request.idempotencyKey)).size,
      50,
      'the message key is the idempotency key',
    );
    assert.equal(provider.calls[0]?.request.from, '+15550000000');
  });

  it('counts retries against the limit: failed calls included, no window holds more than 5 calls', async () => {
    // Every third message fails once (503), every seventh once with a 429.
    const tries = new Map<string, number>();
    const p = new FakeProvider('twilio', (r) => {
      const n = (tries.get(r.idempotencyKey) ?? 0) + 1;
      tries.set(r.idempotencyKey, n);
      const i = Number(r.text);
      if (n === 1 && i % 3 === 0) return errors.unavailable();
      if (n === 1 && i % 7 === 0) return errors.rateLimited(200);
      return { providerMessageId: '', status: 'queued' };
    });
    const { stage: s, interactions } = stage(p);
    const handler = await s.sessionHandler(session());
    const deliveries = Array.from({ length: 30 }, (_, i) => delivery(outbound({ text: String(i + 1) })));
    await run(handler, deliveries, 30_000);
    assert.equal(p.calls.length, 30 + 10 + 3, 'retries are calls');
    assert.ok(
      worstCaseInWindow(p.calls, 1000) <= 5,
      `at most 5 calls (retries included) in any window: ${worstCaseInWindow(p.calls, 1000)}`,
    );
    for (const d of deliveries) assert.deepEqual(settledOnce(d), { kind: 'complete' });
    assert.equal(new Set(interactions.all.map((i) => i.messageId)).size, 30);
  });

  it('a 429 pauses only that sender, for Retry-After, then sends', async () => {
    const a = new FakeProvider('twilio', (_r, n) =>
      n === 1 ? errors.rateLimited(3000) : { providerMessageId: '', status: 'queued' },
    );
    const b = new FakeProvider('telegram');
    const channels = lookup(
      channel(),
      channel({ name: 'tg', senderKey: 'telegram:bot', provider: { type: 'telegram', botToken: 'x' }, sender: 'bot' }),
    );
    const { stage: s, interactions } = stage((name) => (name === 'sms' ? a : b), { channels });
    const ha = await s.sessionHandler(session(SESSION));
    const hb = await s.sessionHandler(session('telegram:bot'));
    const da = [delivery(outbound()), delivery(outbound())];
    const db = Array.from({ length: 10 }, () => delivery(outbound({ channel: 'tg', to: '42' }), 'telegram:bot'));
    const t0 = Date.now();
    const done = Promise.all([
      ha.onBatch(da, new AbortController().signal),
      hb.onBatch(db, new AbortController().signal),
    ]);
    await clock.tickAsync(10_000);
    await done;
    // The 429 came back at ~30 ms; nothing of sender A until it ran out; sender B went on meanwhile.
    const aTimes = a.calls.map((c) => c.at - t0);
    assert.deepEqual(aTimes.slice(0, 2), [0, 0], 'both of A started at once');
    assert.ok(
      aTimes.slice(2).every((t) => t >= 30 + 3000),
      `A waited for Retry-After: ${aTimes.join(', ')}`,
    );
    assert.equal(a.calls.length, 3, 'one retry: the message that got the 429');
    const bDuringPause = b.calls.filter((c) => c.at - t0 < 3000).length;
    assert.equal(bDuringPause, 10, 'B was not paused');
    for (const d of [...da, ...db]) assert.deepEqual(settledOnce(d), { kind: 'complete' });
    assert.equal(interactions.all.length, 12);
    assert.equal(s.stats().rateLimitPauses, 1);
    assert.equal(s.stats().retries, 1);
  });

  it('a 429 without Retry-After pauses for the default', async () => {
    const p = new FakeProvider('twilio', (_r, n) =>
      n === 1 ? errors.rateLimited() : { providerMessageId: '', status: 'queued' },
    );
    const { stage: s } = stage(p, { retry: { defaultThrottleWaitMs: 2000 } });
    const handler = await s.sessionHandler(session());
    await run(handler, [delivery(outbound())], 5000);
    assert.equal(p.calls.length, 2);
    assert.ok((p.calls[1]?.at ?? 0) - (p.calls[0]?.at ?? 0) >= 2030);
  });

  it('rate-limit retries are bounded on their own', async () => {
    const p = new FakeProvider('twilio', () => errors.rateLimited(100));
    const { stage: s } = stage(p, { retry: { rateLimitAttempts: 4, attempts: 1 } });
    const handler = await s.sessionHandler(session());
    const d = delivery(outbound());
    await run(handler, [d], 5000);
    assert.equal(p.calls.length, 4);
    const settled = settledOnce(d);
    assert.equal(settled?.kind, 'deadLetter');
    assert.match(settled?.kind === 'deadLetter' ? settled.description : '', /ProviderRateLimited, status 429/);
  });

  it('retries transient failures and then records one interaction and one completion', async () => {
    const p = new FakeProvider('twilio', (_r, n) =>
      n <= 2 ? errors.unavailable() : { providerMessageId: 'SM-ok', status: 'queued' },
    );
    const { stage: s, interactions } = stage(p);
    const handler = await s.sessionHandler(session());
    const msg = outbound();
    const d = delivery(msg);
    await run(handler, [d], 10_000);
    assert.equal(p.calls.length, 3);
    assert.ok(
      p.calls.every((c) => c.request.idempotencyKey === msg.key),
      'same idempotency key on every try',
    );
    assert.deepEqual(settledOnce(d), { kind: 'complete' });
    assert.equal(interactions.all.length, 1);
    assert.equal(interactions.all[0]?.body.providerMessageId, 'SM-ok');
    assert.equal(interactions.all[0]?.messageId, `${msg.key}:sent`);
    assert.equal(s.stats().retries, 2);
  });

  it("dead-letters exhausted transient retries with the provider's last error, without the phone number", async () => {
    const p = new FakeProvider('twilio', () => errors.unavailable(`upstream down for ${PHONE}`));
    const { stage: s, interactions } = stage(p, { retry: { attempts: 3 } });
    const handler = await s.sessionHandler(session());
    const d = delivery(outbound());
    await run(handler, [d], 10_000);
    assert.equal(p.calls.length, 3);
    const settled = settledOnce(d);
    assert.equal(settled?.kind, 'deadLetter');
    if (settled?.kind !== 'deadLetter') return;
    assert.equal(settled.reason, 'ProviderRetriesExhausted');
    assert.match(settled.description, /after 3 calls/);
    assert.match(settled.description, /ProviderUnavailable, status 503, upstream code 20500/);
    assert.ok(!settled.description.includes(PHONE), settled.description);
    assert.match(settled.description, /4567/);
    assert.equal(interactions.all.length, 0);
  });

  it("records a permanent refusal as the channel's failure response type and completes", async () => {
    const p = new FakeProvider('twilio', () => errors.rejected());
    const { stage: s, interactions } = stage(p);
    const handler = await s.sessionHandler(session());
    const msg = outbound();
    const d = delivery(msg);
    await run(handler, [d]);
    assert.equal(p.calls.length, 1, 'not retried');
    assert.deepEqual(settledOnce(d), { kind: 'complete' });
    const i = interactions.all[0];
    assert.equal(i?.body.responseType, 'failed');
    assert.equal(i?.messageId, `${msg.key}:failed`);
    assert.equal(i?.body.detail?.code, 21211);
    assert.ok(!i?.body.detail?.message.includes(PHONE), i?.body.detail?.message);
  });

  it('records a real-time refusal as NotSent and a real-time send as Sent', async () => {
    const p = new FakeProvider('contract', (r) =>
      r.to === 'bad' ? errors.rejected() : { providerMessageId: 'm-1', status: 'Sent' },
    );
    const { stage: s, interactions } = stage(p, { channels: lookup(channel({ failureResponseType: undefined })) });
    const handler = await s.sessionHandler(session());
    const context = {
      kind: 'realtime' as const,
      channelDefinitionId: 'cd-1',
      requestId: 'req-1',
      from: 'x',
      organizationId: 'org',
    };
    const ok = delivery(outbound({ key: 'req-1', context, parts: { text: 'hi', title: 'T' } }));
    const bad = delivery(outbound({ key: 'req-2', to: 'bad', context: { ...context, requestId: 'req-2' } }));
    await run(handler, [ok, bad]);
    assert.deepEqual(settledOnce(ok), { kind: 'complete' });
    assert.deepEqual(settledOnce(bad), { kind: 'complete' });
    assert.deepEqual(interactions.all.map((i) => i.messageId).sort(), ['req-1:Sent', 'req-2:NotSent']);
    const call = p.calls.find((c) => c.request.idempotencyKey === 'req-1');
    assert.equal(call?.request.channelDefinitionId, 'cd-1');
    assert.deepEqual(call?.request.parts, { text: 'hi', title: 'T' });
  });

  it('asks for a status callback URL per message; a marketing send has no channel definition', async () => {
    const p = new FakeProvider();
    const { stage: s } = stage(p, {
      channels: lookup(channel({ channelDefinitionId: 'cd-9', publicBaseUrl: 'https://relay.example' })),
      statusCallbackUrl: (c, m) => `${c.publicBaseUrl ?? ''}/status/${m.key}`,
    });
    const handler = await s.sessionHandler(session());
    await run(handler, [delivery(outbound({ key: 'act-x' }))]);
    assert.equal(p.calls[0]?.request.statusCallbackUrl, 'https://relay.example/status/act-x');
    assert.equal(p.calls[0]?.request.channelDefinitionId, undefined);
    assert.equal(p.calls[0]?.request.parts, undefined);
  });

  it('completes a refusal without an interaction when the channel has no failure type', async () => {
    const p = new FakeProvider('twilio', () => errors.rejected());
    const { stage: s, interactions } = stage(p, { channels: lookup(channel({ failureResponseType: undefined })) });
    const handler = await s.sessionHandler(session());
    const d = delivery(outbound());
    await run(handler, [d]);
    assert.deepEqual(settledOnce(d), { kind: 'complete' });
    assert.equal(interactions.attempts, 0);
  });

  it('dead-letters refused credentials after one call', async () => {
    const p = new FakeProvider('twilio', () => errors.unauthorized());
    const { stage: s, interactions } = stage(p);
    const handler = await s.sessionHandler(session());
    const d = delivery(outbound());
    await run(handler, [d]);
    assert.equal(p.calls.length, 1);
    const settled = settledOnce(d);
    assert.equal(settled?.kind === 'deadLetter' && settled.reason, 'ProviderUnauthorized');
    assert.equal(interactions.attempts, 0);
  });

  it('dead-letters an adapter failure that is not a ProviderError', async () => {
    const p = new FakeProvider('twilio', () => new TypeError('fetch failed'));
    const { stage: s } = stage(p);
    const handler = await s.sessionHandler(session());
    const d = delivery(outbound());
    await run(handler, [d]);
    assert.equal(p.calls.length, 1);
    const settled = settledOnce(d);
    assert.equal(settled?.kind === 'deadLetter' && settled.reason, 'DispatchFailed');
  });

  it("times a provider call out at the channel's timeout and retries it", async () => {
    let n = 0;
    const p: Provider = {
      type: 'twilio',
      send: (r) => {
        n++;
        return n === 1
          ? new Promise(() => undefined)
          : Promise.resolve({ providerMessageId: `SM-${r.idempotencyKey}`, status: 'queued' });
      },
    };
    const { stage: s, interactions } = stage(p, { channels: lookup(channel({ timeoutMs: 2000 })) });
    const handler = await s.sessionHandler(session());
    const d = delivery(outbound());
    await run(handler, [d], 10_000);
    assert.equal(n, 2);
    assert.deepEqual(settledOnce(d), { kind: 'complete' });
    assert.equal(interactions.all.length, 1);
  });

  it('on abort hands back what was not sent at once, and records the calls in flight', async () => {
    const p = new FakeProvider('twilio', undefined, 500);
    const { stage: s, interactions } = stage(p, { channels: lookup(channel({ rateLimit: { messages: 2 } })) });
    const handler = await s.sessionHandler(session());
    const deliveries = Array.from({ length: 6 }, () => delivery(outbound()));
    const controller = new AbortController();
    const done = handler.onBatch(deliveries, controller.signal);
    await clock.tickAsync(100);
    controller.abort();
    await clock.tickAsync(0);
    assert.equal(p.calls.length, 2, 'two calls in flight');
    const waiting = deliveries.slice(2);
    for (const d of waiting) assert.deepEqual(d.settled, [{ kind: 'abandon' }], 'handed back at once');
    for (const d of deliveries.slice(0, 2)) assert.deepEqual(d.settled, [], 'in flight: not settled yet');
    await clock.tickAsync(5000);
    await done;
    assert.equal(p.calls.length, 2, 'no call after the abort');
    for (const d of deliveries.slice(0, 2)) assert.deepEqual(settledOnce(d), { kind: 'complete' });
    assert.equal(interactions.all.length, 2, 'the in-flight calls are recorded');
    assert.equal(s.stats().abandoned, 4);
  });

  it('on abort during a backoff hands the message back without calling again', async () => {
    const p = new FakeProvider('twilio', () => errors.unavailable());
    const { stage: s } = stage(p, { retry: { initialDelayMs: 5000, maxDelayMs: 5000 } });
    const handler = await s.sessionHandler(session());
    const d = delivery(outbound());
    const controller = new AbortController();
    const done = handler.onBatch([d], controller.signal);
    await clock.tickAsync(100);
    assert.equal(p.calls.length, 1);
    controller.abort();
    await clock.tickAsync(0);
    assert.deepEqual(d.settled, [{ kind: 'abandon' }]);
    await clock.tickAsync(60_000);
    await done;
    assert.equal(p.calls.length, 1);
    assert.equal(d.settled.length, 1);
  });

  it('retries a failed interaction send without calling the provider again', async () => {
    const p = new FakeProvider();
    const interactions = new FakeInteractions((n) => n <= 2);
    const { stage: s } = stage(p, {}, interactions);
    const handler = await s.sessionHandler(session());
    const d = delivery(outbound());
    await run(handler, [d], 30_000);
    assert.equal(p.calls.length, 1);
    assert.equal(interactions.attempts, 3);
    assert.equal(interactions.all.length, 1);
    assert.deepEqual(settledOnce(d), { kind: 'complete' });
    assert.equal(s.stats().interactionSendFailures, 2);
  });

  it('dead-letters (never abandons) a sent message whose interaction cannot be sent', async () => {
    const p = new FakeProvider();
    const interactions = new FakeInteractions(() => true);
    const { stage: s } = stage(
      p,
      { interactionBatching: { attempts: 3, initialDelayMs: 10, maxDelayMs: 20 } },
      interactions,
    );
    const handler = await s.sessionHandler(session());
    const d = delivery(outbound());
    await run(handler, [d], 30_000);
    assert.equal(p.calls.length, 1);
    assert.equal(interactions.attempts, 3);
    const settled = settledOnce(d);
    assert.equal(settled?.kind, 'deadLetter');
    if (settled?.kind !== 'deadLetter') return;
    assert.equal(settled.reason, 'InteractionNotSent');
    assert.match(settled.description, /Do not resubmit to outbound/);
    assert.match(settled.description, /"responseType":"sent"/);
  });

  it('sends no interaction for a confirmation message', async () => {
    const p = new FakeProvider();
    const { stage: s, interactions } = stage(p);
    const handler = await s.sessionHandler(session());
    const { context: _context, ...rest } = outbound();
    const d = delivery({ ...rest, purpose: 'confirmation' });
    await run(handler, [d]);
    assert.equal(p.calls.length, 1);
    assert.deepEqual(settledOnce(d), { kind: 'complete' });
    assert.equal(interactions.attempts, 0);
  });

  it('spaces calls to one recipient and does not hold back the others', async () => {
    const p = new FakeProvider('telegram');
    const tg = channel({ name: 'tg', senderKey: 'telegram:bot', rateLimit: { messages: 30, perRecipientMs: 1000 } });
    const { stage: s } = stage(p, { channels: lookup(tg) });
    const handler = await s.sessionHandler(session('telegram:bot'));
    const same = Array.from({ length: 3 }, () => delivery(outbound({ channel: 'tg', to: '100' }), 'telegram:bot'));
    const other = delivery(outbound({ channel: 'tg', to: '200' }), 'telegram:bot');
    const t0 = Date.now();
    await run(handler, [...same, other], 5000);
    const toSame = p.calls.filter((c) => c.request.to === '100');
    assert.equal(toSame.length, 3);
    for (let i = 1; i < toSame.length; i++) {
      const gap = (toSame[i]?.at ?? 0) - (toSame[i - 1]?.end ?? 0);
      assert.ok(gap >= 1000, `a call to the same chat starts 1000 ms (+ guard) after the previous one ended: ${gap}`);
    }
    assert.equal(p.calls.find((c) => c.request.to === '200')?.at, t0, 'another chat is not held back');
    for (const d of [...same, other]) assert.deepEqual(settledOnce(d), { kind: 'complete' });
  });

  it("charges a Twilio call its segments against the sender limit; another provider's call costs 1", async () => {
    for (const [type, perWindow] of [
      ['twilio', 3],
      ['telegram', 6],
    ] as const) {
      const p = new FakeProvider(type);
      const ch = channel({
        rateLimit: { messages: 6 },
        ...(type === 'telegram' ? { provider: { type, botToken: '1:x' }, senderKey: 'telegram:1' } : {}),
      });
      const { stage: s } = stage(p, { channels: lookup(ch) });
      const handler = await s.sessionHandler(session(ch.senderKey));
      // 200 GSM-7 characters: 2 segments.
      await run(
        handler,
        Array.from({ length: 12 }, () =>
          delivery(outbound({ text: 'x'.repeat(200), to: type === 'twilio' ? PHONE : '100' }), ch.senderKey),
        ),
        20_000,
      );
      assert.equal(p.calls.length, 12);
      assert.equal(
        worstCaseInWindow(p.calls, 1000),
        perWindow,
        `${type}: ${perWindow} calls of 200 characters per window at a limit of 6`,
      );
    }
  });

  it('spaces calls to one Telegram group chat by perGroupMs (20 a minute)', async () => {
    const p = new FakeProvider('telegram');
    const tg = channel({
      name: 'tg',
      senderKey: 'telegram:bot',
      provider: { type: 'telegram', botToken: '1:x' },
      rateLimit: { messages: 30, perRecipientMs: 1000, perGroupMs: 3000 },
    });
    const { stage: s } = stage(p, { channels: lookup(tg) });
    const handler = await s.sessionHandler(session('telegram:bot'));
    await run(
      handler,
      Array.from({ length: 3 }, () => delivery(outbound({ channel: 'tg', to: '-1001234567890' }), 'telegram:bot')),
      20_000,
    );
    assert.equal(p.calls.length, 3);
    for (let i = 1; i < p.calls.length; i++) {
      const gap = (p.calls[i]?.at ?? 0) - (p.calls[i - 1]?.end ?? 0);
      assert.ok(gap >= 3000, `a call to the same group starts 3000 ms (+ guard) after the previous one ended: ${gap}`);
    }
  });

  it('saves the last window on close; the next holder waits for it before its first send', async () => {
    const p = new FakeProvider();
    const { stage: s } = stage(p);
    const first = session();
    const h1 = await s.sessionHandler(first);
    await run(
      h1,
      Array.from({ length: 5 }, () => delivery(outbound())),
      200,
    );
    await h1.onClose();
    assert.equal(first.saved.length, 2, "written before the batch's calls, and at close");
    const decoded = decodeSessionState(first.saved[1]);
    assert.ok(decoded.ok && decoded.state?.clean === true, 'the state at close is a clean hand-over');
    const lastEnded = Math.max(...p.calls.map((c) => c.end));
    assert.ok(decoded.ok && decoded.state?.v === 3);
    assert.equal(
      decoded.state.holdMs,
      lastEnded + 1010 - Date.now(),
      'what is left of the window after the last call (1000 + 10 guard)',
    );

    // Another replica takes the session over at once.
    const second = session(SESSION, first.saved[1]);
    const h2 = await s.sessionHandler(second);
    await run(h2, [delivery(outbound())], 3000);
    assert.equal(p.calls.length, 6);
    assert.ok(
      (p.calls[5]?.at ?? 0) >= lastEnded + 1000,
      `waited a window after the last call ended: ${(p.calls[5]?.at ?? 0) - lastEnded} ms`,
    );
    assert.ok(worstCaseInWindow(p.calls, 1000) <= 5);
  });

  it('a holder after an unreadable state waits one full window; after an old state not at all', async () => {
    const p = new FakeProvider();
    const { stage: s } = stage(p);
    const t0 = Date.now();
    const h1 = await s.sessionHandler(session(SESSION, Buffer.from('not json')));
    await run(h1, [delivery(outbound())], 2000);
    assert.equal((p.calls[0]?.at ?? 0) - t0, 1010, 'one window (interval + the 10 ms guard)');
    const t1 = Date.now();
    const h2 = await s.sessionHandler(
      session(SESSION, Buffer.from(JSON.stringify({ v: 2, clean: true, sentAt: [t1 - 5000] }))),
    );
    await run(h2, [delivery(outbound())], 200);
    assert.equal(p.calls[1]?.at, t1);
  });

  it('hands a running 429 pause over to the next holder', async () => {
    const p = new FakeProvider('twilio', (_r, n) =>
      n === 1 ? errors.rateLimited(10_000) : { providerMessageId: '', status: 'queued' },
    );
    const { stage: s } = stage(p);
    const first = session();
    const h1 = await s.sessionHandler(first);
    const controller = new AbortController();
    const d1 = delivery(outbound());
    const done = h1.onBatch([d1], controller.signal);
    await clock.tickAsync(1000);
    controller.abort();
    await clock.tickAsync(0);
    await done;
    assert.deepEqual(d1.settled, [{ kind: 'abandon' }], 'waiting for the pause: handed back');
    await h1.onClose();
    const decoded = decodeSessionState(first.saved.at(-1));
    assert.ok(decoded.ok && decoded.state?.v === 3);
    const t = Date.now();
    assert.equal(decoded.state.pauseMs, (p.calls[0]?.end ?? 0) + 10_000 - t, 'what is left of the 10 s pause');
    const h2 = await s.sessionHandler(session(SESSION, first.saved.at(-1)));
    await run(h2, [delivery(outbound())], 20_000);
    assert.ok((p.calls[1]?.at ?? 0) >= t + decoded.state.pauseMs, `waited ${(p.calls[1]?.at ?? 0) - t} ms`);
  });

  it('dead-letters unreadable bodies, unknown channels and messages in the wrong session', async () => {
    const p = new FakeProvider();
    const other = channel({ name: 'tg', senderKey: 'telegram:bot' });
    const { stage: s } = stage(p, { channels: lookup(channel(), other) });
    const handler = await s.sessionHandler(session());
    const broken = delivery('{not json');
    const missing = delivery({ v: 1, key: 'k', channel: 'sms', text: 'x', purpose: 'journey', acceptedAt: 1 });
    const unknown = delivery(outbound({ channel: 'nope' }));
    const wrong = delivery(outbound({ channel: 'tg' }));
    await run(handler, [broken, missing, unknown, wrong]);
    assert.equal(p.calls.length, 0);
    const reasons = [broken, missing, unknown, wrong].map((d) => {
      const x = settledOnce(d);
      return x?.kind === 'deadLetter' ? [x.reason, x.description] : [x?.kind, ''];
    });
    assert.equal(reasons[0]?.[0], 'EventUndecodable');
    assert.equal(reasons[1]?.[0], 'EventMissingAttribute');
    assert.match(reasons[1]?.[1] ?? '', /'to'/);
    assert.equal(reasons[2]?.[0], 'EventUnknownChannel');
    assert.match(reasons[2]?.[1] ?? '', /channel 'nope' is not configured \(configured channels: sms, tg\)/);
    assert.equal(reasons[3]?.[0], 'SessionMismatch');
    assert.match(reasons[3]?.[1] ?? '', /sends as session 'telegram:bot'/);
  });

  it('creates one provider per channel and counts in the registry', async () => {
    const p = new FakeProvider('twilio', (_r, n) =>
      n === 1 ? errors.unavailable() : { providerMessageId: '', status: 'queued' },
    );
    let created = 0;
    const registry = new Registry();
    const { stage: s } = stage(() => (created++, p), { registry });
    const handler = await s.sessionHandler(session());
    await run(handler, [delivery(outbound()), delivery(outbound())], 5000);
    assert.equal(created, 1);
    const text = await registry.metrics();
    assert.match(text, /channel_relay_dispatch_messages_total\{channel="sms",outcome="sent"\} 2/);
    assert.match(text, /channel_relay_dispatch_retries_total\{channel="sms",code="ProviderUnavailable"\} 1/);
    assert.match(text, /channel_relay_dispatch_provider_call_duration_seconds_count\{channel="sms",result="ok"\} 2/);
    // A second stage on the same registry reuses the metrics.
    stage(p, { registry });
    const stats = s.stats();
    assert.equal(stats.sent, 2);
    assert.equal(stats.providerCalls, 3);
    assert.equal(stats.completed, 2);
    assert.equal(stats.sessions, 1);
    await handler.onClose();
    assert.equal(s.stats().sessions, 0);
  });

  it("sizes a sender's calls in flight from the provider's latency: gauges, a log line, and the next session starts from it", async () => {
    // 50 a second at 100 ms: 5 in flight (Little's law), within a ceiling of 40.
    const p = new FakeProvider('twilio', undefined, 100);
    const registry = new Registry();
    const stream = new CaptureStream();
    const log = createLogger({ level: 'info', stream, pretty: false });
    const channels = lookup(channel({ rateLimit: { messages: 50, concurrency: 40 } }));
    const { stage: s } = stage(p, { registry, log, channels });
    const gauge = async (name: string): Promise<number | undefined> =>
      (await registry.getSingleMetric(`channel_relay_dispatch_${name}`)?.get())?.values.find(
        (v) => v.labels.sender === 'twilio:+15550000000',
      )?.value;
    const first = await s.sessionHandler(session());
    assert.equal(await gauge('sender_concurrency'), 40, 'before any latency is seen: the ceiling');
    assert.equal(await gauge('sender_concurrency_limit'), 40);
    await run(
      first,
      Array.from({ length: 100 }, () => delivery(outbound())),
      10_000,
    );
    const sized = await gauge('sender_concurrency');
    assert.ok(sized !== undefined && sized >= 5 && sized <= 7, `50/s × 100 ms: ${sized}`);
    let inFlight = 0;
    for (const call of p.calls)
      inFlight = Math.max(inFlight, p.calls.filter((c) => c.at <= call.at && c.end > call.at).length);
    assert.ok(inFlight <= 40);
    const resized = stream.lines().filter((l) => String(l.message).startsWith("sender's calls in flight resized"));
    assert.equal(resized[0]?.previous, 40);
    assert.ok(Number(resized.at(-1)?.concurrency) <= 10, JSON.stringify(resized));
    assert.equal(resized[0]?.limit, 40);
    assert.equal(resized[0]?.latencyMs, 100);
    await first.onClose();
    assert.equal(await gauge('sender_concurrency'), undefined, 'a released sender has no gauge');
    assert.equal(await gauge('sender_concurrency_limit'), undefined);
    const next = await s.sessionHandler(session());
    const again = await gauge('sender_concurrency');
    assert.ok(
      again !== undefined && again >= 5 && again <= 7,
      `the next session starts from the latency seen: ${again}`,
    );
    await next.onClose();
  });

  it('overlapping batches of one session write their states one after another: the last lists both in flight', async () => {
    const p = new FakeProvider('twilio', undefined, 50);
    const { stage: s } = stage(p);
    // The first write is slow: written concurrently, it would land last and list only the first batch.
    const landed: Buffer[] = [];
    let writes = 0;
    const held = session();
    const handler = await s.sessionHandler({
      ...held,
      setState: async (state: Buffer) => {
        const n = ++writes;
        await new Promise((r) => setTimeout(r, n === 1 ? 100 : 1));
        landed.push(state);
      },
    });
    const first = [delivery(outbound({ key: 'a1' })), delivery(outbound({ key: 'a2' }))];
    const second = [delivery(outbound({ key: 'b1' }))];
    const both = Promise.all([
      handler.onBatch(first, new AbortController().signal),
      handler.onBatch(second, new AbortController().signal),
    ]);
    await clock.tickAsync(5000);
    await both;
    const preBatch = landed.slice(0, 2).map((b) => decodeSessionState(b));
    const keys = preBatch.map((d) => (d.ok ? (d.state?.inFlight ?? []).map(([key]) => key).sort() : []));
    assert.deepEqual(
      keys,
      [
        ['a1', 'a2'],
        ['a1', 'a2', 'b1'],
      ],
      'in the order made: the last lists both batches',
    );
    assert.ok([...first, ...second].every((d) => settledOnce(d)?.kind === 'complete'));
    assert.equal(p.calls.length, 3);
    const closing = handler.onClose();
    await clock.tickAsync(100);
    await closing;
  });

  it('warns when a sender makes no call for 5 s while its messages wait and its limit is free, and says when calls resume', async () => {
    // The call's answer is lost; the message waits 8 s for its lookup while nothing else is called.
    const p = new LookupProvider(
      () => ({ providerMessageId: 'SM-found', status: 'queued' }),
      (_r, n) => (n === 1 ? errors.timeout() : { providerMessageId: '', status: 'queued' }),
    );
    const stream = new CaptureStream();
    const log = createLogger({ level: 'info', stream, pretty: false });
    const { stage: s } = stage(p, { log, retry: { lostAnswerLookupDelayMs: 8000 } });
    const handler = await s.sessionHandler(session());
    const d = delivery(outbound());
    const done = handler.onBatch([d], new AbortController().signal);
    const stalls = () => stream.lines().filter((l) => String(l.message).startsWith('no provider call of this sender'));
    await clock.tickAsync(4000);
    assert.equal(stalls().length, 0, 'not before 5 s without a call');
    await clock.tickAsync(3000);
    assert.equal(stalls().length, 1);
    assert.equal(stalls()[0]?.level, 'warn');
    assert.equal(stalls()[0]?.outstanding, 1);
    assert.ok(Number(stalls()[0]?.quietMs) >= 5000);
    await clock.tickAsync(5000);
    await done;
    assert.equal(settledOnce(d)?.kind, 'complete');
    assert.equal(stalls().length, 1, 'once per stall');
    assert.ok(stream.lines().some((l) => l.message === 'provider calls of this sender resumed'));
    await handler.onClose();
  });

  it('onClose hands back what still waits and is idempotent', async () => {
    const p = new FakeProvider('twilio', undefined, 100);
    const { stage: s } = stage(p, { channels: lookup(channel({ rateLimit: { messages: 1 } })) });
    const sess = session();
    const handler = await s.sessionHandler(sess);
    const deliveries = [delivery(outbound()), delivery(outbound()), delivery(outbound())];
    const done = handler.onBatch(deliveries, new AbortController().signal);
    await clock.tickAsync(10);
    const closing = handler.onClose();
    assert.equal(handler.onClose(), closing);
    await clock.tickAsync(1000);
    await closing;
    await done;
    assert.deepEqual(
      deliveries.map((d) => d.settled[0]?.kind),
      ['complete', 'abandon', 'abandon'],
    );
    assert.equal(sess.saved.length, 2, "before the batch's calls, and at close");
  });

  it("leaves nothing on the session loop's signal after many batches (no listener, no combined signal)", async () => {
    const p = new FakeProvider();
    const { stage: s } = stage(p, { channels: lookup(channel({ rateLimit: { messages: 100 } })) });
    const handler = await s.sessionHandler(session());
    const loop = new AbortController();
    const during: number[] = [];
    for (let i = 0; i < 100; i++) {
      const done = handler.onBatch([delivery(outbound()), delivery(outbound())], loop.signal);
      during.push(signalTraces(loop.signal).listeners);
      await clock.tickAsync(100);
      await done;
    }
    assert.equal(p.calls.length, 200);
    assert.deepEqual([...new Set(during)], [1], 'one listener per running batch, so that a stop still reaches it');
    assert.deepEqual(signalTraces(loop.signal), { listeners: 0, dependants: 0 });
    await handler.onClose();
    assert.deepEqual(signalTraces(loop.signal), { listeners: 0, dependants: 0 });
  });

  it("a 2xx answer it cannot read is not retried: dead-lettered with the provider's answer, no failure recorded", async () => {
    const body = { status: 'queued', to: PHONE, body: 'hello' };
    const p = new FakeProvider('twilio', () => errors.badResponse(201, body));
    const registry = new Registry();
    const { stage: s, interactions } = stage(p, { registry });
    const handler = await s.sessionHandler(session());
    const msg = outbound();
    const d = delivery(msg);
    await run(handler, [d], 30_000);
    assert.equal(p.calls.length, 1, 'never called again: the provider may have sent it');
    const settled = settledOnce(d);
    assert.equal(settled?.kind, 'deadLetter');
    if (settled?.kind !== 'deadLetter') return;
    assert.equal(settled.reason, 'ProviderAnswerUnreadable');
    assert.match(settled.description, /may have been sent/);
    assert.match(settled.description, new RegExp(`idempotency key ${msg.key}`));
    assert.match(
      settled.description,
      /HTTP 201 \(application\/json\), body: \{"status":"queued","to":"\+\*+4567","body":"hello"\}/,
    );
    assert.ok(!settled.description.includes(PHONE), settled.description);
    assert.equal(interactions.attempts, 0, 'not recorded as failed (nor as sent)');
    assert.equal(s.stats().retries, 0);
    assert.match(
      await registry.metrics(),
      /channel_relay_dispatch_messages_total\{channel="sms",outcome="unconfirmed"\} 1/,
    );
  });

  it("an unreadable answer that is not 2xx (a proxy's 502 page) is retried", async () => {
    const p = new FakeProvider('twilio', (_r, n) =>
      n === 1
        ? errors.badResponse(502, '<html>502 Bad Gateway</html>')
        : { providerMessageId: 'SM-2', status: 'queued' },
    );
    const { stage: s, interactions } = stage(p);
    const handler = await s.sessionHandler(session());
    const d = delivery(outbound());
    await run(handler, [d], 10_000);
    assert.equal(p.calls.length, 2);
    assert.deepEqual(settledOnce(d), { kind: 'complete' });
    assert.equal(interactions.all[0]?.body.providerMessageId, 'SM-2');
  });

  describe('when the session state cannot be saved on close', () => {
    function capture() {
      const stream = new CaptureStream();
      return { stream, log: createLogger({ level: 'warn', stream, pretty: false }) };
    }

    async function closeAfterSends(
      setState: (state: Buffer) => Promise<void>,
      options: Partial<DispatchOptions> = {},
      reason?: 'lockLost',
    ) {
      const p = new FakeProvider();
      const { stream, log } = capture();
      const { stage: s } = stage(p, { log, ...options });
      // The write before the batch's calls succeeds; the one at close calls `setState`.
      let writes = 0;
      const first = {
        ...session(),
        setState: (state: Buffer) => (++writes === 1 ? Promise.resolve() : setState(state)),
      };
      const h1 = await s.sessionHandler(first);
      await run(
        h1,
        Array.from({ length: 5 }, () => delivery(outbound())),
        200,
      );
      const lastEnded = Math.max(...p.calls.map((c) => c.end));
      let closedAt: number | undefined;
      const closing = h1.onClose(reason).then(() => (closedAt = Date.now()));
      return { p, s, stream, lastEnded, closing, closedAt: () => closedAt };
    }

    it('holds the session until its last window has passed, so the next holder cannot start within it', async () => {
      const c = await closeAfterSends(async () => {
        throw new Error('SessionLockLost? no: the link is gone');
      });
      await clock.tickAsync(500);
      assert.equal(c.closedAt(), undefined, 'still holding the session');
      await clock.tickAsync(2000);
      await c.closing;
      assert.ok(
        (c.closedAt() ?? 0) >= c.lastEnded + 1010,
        `released ${(c.closedAt() ?? 0) - c.lastEnded} ms after the last call ended (window 1000 + guard 10)`,
      );
      assert.ok((c.closedAt() ?? Infinity) <= c.lastEnded + 1010 + 200, 'and not much later than one window');
      const warning = c.stream.lines().find((l) => /holding the session/.test(String(l['message'])));
      assert.ok(warning, c.stream.text);
      assert.ok(typeof warning['holdMs'] === 'number' && warning['holdMs'] > 0 && warning['holdMs'] <= 1010);

      // The next holder, with no state to go by, starts at once: still no window above the limit.
      const h2 = await c.s.sessionHandler(session());
      await run(
        h2,
        Array.from({ length: 5 }, () => delivery(outbound())),
        3000,
      );
      assert.equal(c.p.calls.length, 10);
      assert.ok(
        worstCaseInWindow(c.p.calls, 1000) <= 5,
        `at most 5 in any window: ${worstCaseInWindow(c.p.calls, 1000)}`,
      );
    });

    it('also when the save times out, counting the time the save took', async () => {
      const c = await closeAfterSends(() => new Promise(() => undefined), { stateTimeoutMs: 300 });
      await clock.tickAsync(3000);
      await c.closing;
      assert.ok(
        (c.closedAt() ?? 0) >= c.lastEnded + 1010,
        `released ${(c.closedAt() ?? 0) - c.lastEnded} ms after the last call ended`,
      );
      assert.ok((c.closedAt() ?? Infinity) <= c.lastEnded + 1010 + 200);
      assert.match(c.stream.text, /setState did not finish within 300 ms/);
    });

    it("does not hold a session whose lock is already lost (it is someone else's)", async () => {
      const c = await closeAfterSends(
        async () => {
          throw new Error('lock lost');
        },
        {},
        'lockLost',
      );
      await clock.tickAsync(0);
      assert.ok(c.closedAt() !== undefined, 'released at once');
      await c.closing;
      assert.match(c.stream.text, /next holder may start within/);
    });
  });

  it('rejects bad options with a message naming them', () => {
    const base = {
      channels: lookup(channel()),
      provider: () => new FakeProvider(),
      interactions: new FakeInteractions(),
    };
    assert.throws(() => new DispatchStage({ ...base, guardMs: -1 }), /guardMs must be an integer >= 0, found -1/);
    assert.throws(() => new DispatchStage({ ...base, retry: { attempts: 1.5 } }), /attempts must be an integer >= 1/);
    assert.throws(
      () => new DispatchStage({ ...base, interactionBatching: { maxBatch: 0 } }),
      /maxBatch must be an integer >= 1/,
    );
  });
});
