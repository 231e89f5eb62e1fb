/**
 * #15's stall: one message whose answer was lost waits `lostAnswerLookupDelayMs` before its lookup; with one batch of
 * a session at a time, every other message of the sender waited for it (the sends stopped for seconds with no 429 and
 * no failed request at the provider). Dispatch's session loop, as the relay wires it, goes on with the next batches.
 */
import assert from 'node:assert/strict';
import { DispatchStage } from '../../../src/pipeline/dispatch/index.js';
import { createProvider, type ProviderSettings } from '../../../src/providers/index.js';
import { DISPATCH_BATCHES_PER_SESSION } from '../../../src/relay/dispatch.js';
import { startSessionLoop } from '../../../src/servicebus/index.js';
import { channel, FakeInteractions, lookup, outbound } from '../../unit/pipeline/dispatch/fakes.js';
import { closedAfterEach, relayClient, startBus, waitFor } from '../servicebus/helpers.js';
import { ACCOUNT_SID, AUTH_TOKEN, simulators } from './helpers.js';

const LOOKUP_DELAY_MS = 2000;

describe("dispatch: a lost answer's lookup does not stop its sender", function () {
  this.timeout(30_000);
  const start = simulators();
  const track = closedAfterEach();

  it("the sender's other messages are sent while one waits for its lookup", async () => {
    const sim = await start({ latencyMs: 20 });
    // The first call is accepted and its answer lost: the relay must ask before it calls again.
    sim.setFaults({ twilio: { timeoutNext: 1, timeoutAfterAccept: true } });
    const settings: ProviderSettings = {
      type: 'twilio',
      accountSid: ACCOUNT_SID,
      authToken: AUTH_TOKEN,
      baseUrl: sim.urls.twilio,
    };
    const sms = channel({ provider: settings, rateLimit: { messages: 100 }, timeoutMs: 500 });
    const provider = createProvider(settings, { timeoutMs: 500 });
    const interactions = new FakeInteractions();
    const stage = new DispatchStage({
      channels: lookup(sms),
      provider: () => provider,
      interactions,
      retry: { lostAnswerLookupDelayMs: LOOKUP_DELAY_MS },
    });
    const bus = track(await startBus({ queues: { outbound: { RequiresSession: true, LockDuration: 'PT30S' } } }));
    track(
      startSessionLoop({
        client: track(relayClient(bus, 600)),
        queue: 'outbound',
        maxSessions: 1,
        maxBatch: 5,
        maxWaitMs: 100,
        sessionIdleMs: 5000,
        batchesPerSession: DISPATCH_BATCHES_PER_SESSION,
        createSessionHandler: stage.sessionHandler,
      }),
    );
    const messages = Array.from({ length: 20 }, (_, i) => outbound({ key: `m${i}`, to: `+1555000${1000 + i}` }));
    await track(relayClient(bus))
      .createSender('outbound')
      .sendMessages(messages.map((m) => ({ body: m, messageId: m.key, sessionId: sms.senderKey })));
    await waitFor('every message recorded', () => (interactions.all.length === 20 ? true : undefined), 20_000);
    const logged = sim.messages({ provider: 'twilio' });
    assert.equal(logged.length, 20, 'each message once: the lost answer was found, not sent again');
    const straggler = logged.find((m) => m.idempotencyKey === 'm0');
    assert.ok(straggler, 'm0 was accepted (its answer lost)');
    // Its lookup comes LOOKUP_DELAY_MS after its call timed out; the other 19 go out meanwhile.
    const recordedAt =
      interactions.sends.find((s) =>
        s.messages.some((m) => m.body.context.kind === 'marketing' && m.body.context.activityRowId === 'm0'),
      )?.at ?? NaN;
    const othersLast = Math.max(...logged.filter((m) => m !== straggler).map((m) => m.time));
    assert.ok(
      othersLast < recordedAt,
      `the rest were sent ${recordedAt - othersLast} ms before m0's outcome was known, not after it`,
    );
  });
});
