import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import sinon from 'sinon';
import { DispatchStage, type DispatchOptions } from '../../../../src/pipeline/dispatch/index.js';
import { mayHaveSent } from '../../../../src/pipeline/dispatch/send-policy.js';
import { decodeSessionState } from '../../../../src/pipeline/dispatch/session-state.js';
import type { Provider } from '../../../../src/providers/provider.js';
import {
  channel,
  delivery,
  errors,
  FakeInteractions,
  FakeProvider,
  lookup,
  LookupProvider,
  outbound,
  session,
  type FakeDelivery,
} from './fakes.js';

const SESSION = 'twilio:+15550000000';
const LOOKUP_DELAY_MS = 2000;

/**
 * A call whose answer was lost (timeout, connection, 5xx) on a provider that can be asked (Twilio's Messages list):
 * the provider is asked before the call is made again, since real Twilio ignores the idempotency header and a blind
 * retry would be a second SMS.
 */
describe('dispatch after a lost answer', () => {
  let clock: sinon.SinonFakeTimers;
  beforeEach(() => {
    clock = sinon.useFakeTimers({
      now: 1_000_000,
      toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'],
    });
  });
  afterEach(() => clock.restore());

  function stage(provider: Provider, retry: DispatchOptions['retry'] = {}) {
    const interactions = new FakeInteractions();
    const registry = new Registry();
    const s = new DispatchStage({
      channels: lookup(channel()),
      provider: () => provider,
      interactions,
      registry,
      retry: { initialDelayMs: 100, maxDelayMs: 1000, lostAnswerLookupDelayMs: LOOKUP_DELAY_MS, ...retry },
    });
    return { stage: s, interactions, registry };
  }

  const lookupsCounted = async (registry: Registry, result: string): Promise<number> => {
    const line = (await registry.metrics())
      .split('\n')
      .find((l) =>
        l.startsWith(
          `channel_relay_dispatch_provider_lookups_total{channel="sms",reason="lost_answer",result="${result}"}`,
        ),
      );
    return Number(line?.split(' ').at(-1) ?? 0);
  };

  async function send(s: DispatchStage, d: FakeDelivery, sess = session()): Promise<void> {
    const h = await s.sessionHandler(sess);
    const done = h.onBatch([d], new AbortController().signal);
    await clock.tickAsync(30_000);
    await done;
    const closing = h.onClose();
    await clock.tickAsync(100);
    await closing;
  }

  it('a timed-out call the provider has is recorded as sent with its id, and not made again', async () => {
    // Twilio created the message; only its answer was lost.
    const p = new LookupProvider(
      (q) => (q.text === 'hello' ? { providerMessageId: 'SM-created', status: 'queued' } : undefined),
      () => errors.timeout(),
    );
    const { stage: s, interactions, registry } = stage(p);
    const d = delivery(outbound());
    const sess = session();
    await send(s, d, sess);
    assert.equal(await lookupsCounted(registry, 'found'), 1);
    assert.equal(p.calls.length, 1, 'no second call: it would be a second SMS');
    assert.equal(p.lookups.length, 1);
    const [call] = p.calls;
    const [asked] = p.lookups;
    assert.ok(
      asked!.at >= call!.end + LOOKUP_DELAY_MS,
      `looked up ${LOOKUP_DELAY_MS} ms after the call ended, so that a message created late is seen: ${asked!.at - call!.end} ms`,
    );
    assert.equal(asked!.since, call!.at, 'from the start of the call');
    assert.deepEqual([asked!.to, asked!.from], ['+15551234567', '+15550000000']);
    assert.deepEqual(d.settled, [{ kind: 'complete' }]);
    assert.equal(interactions.all.length, 1);
    assert.equal(interactions.all[0]?.body.responseType, 'sent');
    assert.equal(interactions.all[0]?.body.providerMessageId, 'SM-created', "the provider's id of the message it has");
    const stats = s.stats();
    assert.deepEqual(
      [stats.lostAnswerFound, stats.lostAnswerNotFound, stats.lostAnswerLookupFailed, stats.sent, stats.providerCalls],
      [1, 0, 0, 1, 1],
    );
    const closed = decodeSessionState(sess.saved.at(-1));
    assert.ok(closed.ok);
    assert.equal(closed.state?.inFlight, undefined, 'settled: nothing left in flight');
  });

  it('a 5xx whose message the provider does not have is made again after the lookup, once', async () => {
    const p = new LookupProvider(
      () => undefined,
      (_r, n) => (n === 1 ? errors.unavailable() : { providerMessageId: 'SM-second', status: 'queued' }),
    );
    const { stage: s, interactions, registry } = stage(p);
    const d = delivery(outbound());
    await send(s, d);
    assert.equal(await lookupsCounted(registry, 'not_found'), 1);
    assert.equal(p.lookups.length, 1);
    assert.equal(p.calls.length, 2);
    assert.ok(p.calls[1]!.at > p.lookups[0]!.at, 'called again only after the provider said it does not have it');
    assert.deepEqual(d.settled, [{ kind: 'complete' }]);
    assert.equal(interactions.all[0]?.body.providerMessageId, 'SM-second');
    assert.equal(s.stats().lostAnswerNotFound, 1);
  });

  it("when every call's answer is lost, each lookup covers them all from the first call, and the last one finds it", async () => {
    // Not found twice, then the provider has one: the message created by one of the three calls.
    let lookups = 0;
    const p = new LookupProvider(
      () => (++lookups < 3 ? undefined : { providerMessageId: 'SM-late', status: 'sent' }),
      () => errors.timeout(),
    );
    const { stage: s, interactions } = stage(p, { attempts: 3 });
    const d = delivery(outbound());
    await send(s, d);
    assert.equal(p.calls.length, 3, 'the retry budget: 3 calls');
    assert.ok(
      p.lookups.every((q) => q.since === p.calls[0]!.at),
      'every lookup from the first call on',
    );
    assert.deepEqual(
      d.settled,
      [{ kind: 'complete' }],
      "the last call's lost answer is looked up too: sent, not dead-lettered as retries exhausted",
    );
    assert.equal(interactions.all[0]?.body.providerMessageId, 'SM-late');
  });

  it('a lookup that fails hands the message back unsent and keeps it in flight, so the next try looks it up first', async () => {
    const p = new LookupProvider(
      () => new Error('twilio 503 on the list'),
      () => errors.timeout(),
    );
    const { stage: s, interactions, registry } = stage(p);
    const d = delivery(outbound());
    const sess = session();
    await send(s, d, sess);
    assert.equal(await lookupsCounted(registry, 'failed'), 1);
    assert.equal(p.calls.length, 1, 'not called again: a duplicate is worse than a delay');
    assert.deepEqual(d.settled, [{ kind: 'abandon' }]);
    assert.equal(interactions.all.length, 0);
    assert.equal(s.stats().lostAnswerLookupFailed, 1);
    const closed = decodeSessionState(sess.saved.at(-1));
    assert.ok(closed.ok);
    assert.deepEqual(
      closed.state?.inFlight?.map(([key]) => key),
      [(d.body as { key: string }).key],
      'still listed in flight for the next holder',
    );

    // Delivered again to the next holder: looked up before any call (the provider answers now, and has it).
    const p2 = new LookupProvider(() => ({ providerMessageId: 'SM-first', status: 'delivered' }));
    const { stage: s2, interactions: i2 } = stage(p2);
    const again = delivery(d.body, SESSION, 2);
    await send(s2, again, session(SESSION, sess.saved.at(-1)));
    assert.equal(p2.calls.length, 0);
    assert.deepEqual(again.settled, [{ kind: 'complete' }]);
    assert.equal(i2.all[0]?.body.providerMessageId, 'SM-first');
  });

  it('two messages of the same text to the same recipient: a message matched once is not matched to the other', async () => {
    // Both calls time out; the provider has only the first one's message. The two lookups run at once, and each reads
    // the list before the other's answer: both see the one message.
    const p = new LookupProvider(
      (q) => (q.exclude?.has('SM-one') === true ? undefined : { providerMessageId: 'SM-one', status: 'queued' }),
      (_r, n) => (n <= 2 ? errors.timeout() : { providerMessageId: 'SM-two', status: 'queued' }),
    );
    const { stage: s, interactions } = stage(p);
    const [a, b] = [delivery(outbound()), delivery(outbound())];
    const h = await s.sessionHandler(session());
    const done = h.onBatch([a, b], new AbortController().signal);
    await clock.tickAsync(30_000);
    await done;
    assert.deepEqual(interactions.all.map((i) => i.body.providerMessageId).sort(), ['SM-one', 'SM-two']);
    assert.equal(p.lookups[0]?.at, p.lookups[1]?.at, 'the lookups ran at once');
    assert.equal(p.calls.length, 3, 'the message the provider did not have was sent again');
  });

  it('a message of the same text to the same recipient sent just before is not taken for the one whose answer was lost', async () => {
    // The list holds the first message (sent, answered); the second call failed with a 503 before Twilio created anything.
    const p = new LookupProvider(
      (q) => (q.exclude?.has('SM-first') === true ? undefined : { providerMessageId: 'SM-first', status: 'sent' }),
      (_r, n) =>
        n === 2 ? errors.unavailable() : { providerMessageId: n === 1 ? 'SM-first' : 'SM-second', status: 'queued' },
    );
    const { stage: s, interactions } = stage(p);
    const [a, b] = [delivery(outbound()), delivery(outbound())];
    const h = await s.sessionHandler(session());
    const done = h.onBatch([a, b], new AbortController().signal);
    await clock.tickAsync(30_000);
    await done;
    assert.equal(p.lookups.length, 1);
    assert.equal(p.calls.length, 3, 'the second message was sent');
    assert.deepEqual(interactions.all.map((i) => i.body.providerMessageId).sort(), ['SM-first', 'SM-second']);
  });

  it('a 429 is not a lost answer: no lookup', async () => {
    const p = new LookupProvider(
      () => undefined,
      (_r, n) => (n === 1 ? errors.rateLimited(500) : { providerMessageId: '', status: 'queued' }),
    );
    const { stage: s } = stage(p);
    const d = delivery(outbound());
    await send(s, d);
    assert.equal(p.lookups.length, 0);
    assert.equal(p.calls.length, 2);
    assert.deepEqual(d.settled, [{ kind: 'complete' }]);
  });

  for (const type of ['contract', 'telegram'] as const) {
    it(`a provider that cannot be asked (${type}) is called again with the same idempotency key, as before`, async () => {
      const p = new FakeProvider(type, (_r, n) =>
        n === 1 ? errors.timeout() : { providerMessageId: '', status: 'queued' },
      );
      const { stage: s } = stage(p);
      const d = delivery(outbound());
      await send(s, d);
      assert.equal(p.calls.length, 2);
      assert.equal(p.calls[1]?.request.idempotencyKey, p.calls[0]?.request.idempotencyKey);
      assert.ok(p.calls[1]!.at - p.calls[0]!.end < LOOKUP_DELAY_MS, 'after the backoff only: no lookup wait');
      assert.deepEqual(d.settled, [{ kind: 'complete' }]);
      const stats = s.stats();
      assert.deepEqual([stats.lostAnswerFound, stats.lostAnswerNotFound, stats.lostAnswerLookupFailed], [0, 0, 0]);
    });
  }

  it('the decision table: what may have created the message', () => {
    assert.deepEqual(
      [
        errors.timeout(),
        errors.unavailable(),
        errors.badResponse(502, '<html>'),
        errors.badResponse(201, {}),
        errors.rateLimited(),
        errors.rejected(),
        errors.unauthorized(),
        new Error('bug'),
      ].map(mayHaveSent),
      [true, true, true, true, false, false, false, false],
    );
  });
});
