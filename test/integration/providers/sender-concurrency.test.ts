import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { Registry } from 'prom-client';
import { DispatchStage } from '../../../src/pipeline/dispatch/index.js';
import { createProvider, type ProviderSettings } from '../../../src/providers/index.js';
import { channel, delivery, FakeInteractions, lookup, outbound, session } from '../../unit/pipeline/dispatch/fakes.js';
import { ACCOUNT_SID, AUTH_TOKEN, simulators } from './helpers.js';

const SENDER = '+15550000000';
const MESSAGES = 400;

describe("a sender's calls in flight through the Twilio adapter and simulator", () => {
  const start = simulators();

  it('a provider answering in 200 ms at 200/s: a ceiling of 100 sends at the rate limit, a fixed 10 at 50/s', async function () {
    this.timeout(60_000);
    const sim = await start({ latencyMs: 200, twilio: { mpsBySender: { [SENDER]: 200 } } });
    const settings: ProviderSettings = {
      type: 'twilio',
      accountSid: ACCOUNT_SID,
      authToken: AUTH_TOKEN,
      baseUrl: sim.urls.twilio,
    };
    const provider = createProvider(settings, { timeoutMs: 10_000 });

    /** Sends `MESSAGES` through a fresh stage with `ceiling` calls in flight at most; messages per second. */
    const throughput = async (ceiling: number): Promise<{ perSecond: number; peak: number; sizedTo: number }> => {
      sim.reset();
      const registry = new Registry();
      const sms = channel({ provider: settings, sender: SENDER, rateLimit: { messages: 200, concurrency: ceiling } });
      const stage = new DispatchStage({
        channels: lookup(sms),
        provider: () => provider,
        interactions: new FakeInteractions(),
        registry,
      });
      const handler = await stage.sessionHandler(session(sms.senderKey));
      const deliveries = Array.from({ length: MESSAGES }, () => delivery(outbound(), sms.senderKey));
      const began = performance.now();
      await handler.onBatch(deliveries, new AbortController().signal);
      const seconds = (performance.now() - began) / 1000;
      const gauge = await registry.getSingleMetric('channel_relay_dispatch_sender_concurrency')?.get();
      const sizedTo = gauge?.values.find((v) => v.labels.sender === sms.senderKey)?.value ?? NaN;
      await handler.onClose();
      assert.ok(
        deliveries.every((d) => d.settled.length === 1 && d.settled[0]?.kind === 'complete'),
        'every message sent and completed',
      );
      const stats = sim.stats().twilio;
      assert.equal(stats.accepted, MESSAGES);
      assert.equal(stats.rateViolations, 0, 'never over the sender’s 200 a second');
      assert.equal(stats.rateLimited, 0, 'no 429');
      return { perSecond: MESSAGES / seconds, peak: stats.concurrencyPeak, sizedTo };
    };

    // 10 in flight at 200 ms: at most 50 a second, as the sample's fixed concurrency allowed.
    const fixed = await throughput(10);
    // Rate × latency = 40 in flight (with headroom, up to the ceiling): the rate limit decides, about 200 / (1.2 s) a
    // second (each call holds its slot for its latency and a window after it: sender-limiter.ts).
    const sized = await throughput(100);
    assert.ok(fixed.peak <= 10, `at most 10 in flight: ${fixed.peak}`);
    assert.ok(sized.peak <= 100, `at most 100 in flight: ${sized.peak}`);
    // After the first answers, no more than the rate needs: 200/s × 0.2 s, and a little headroom.
    assert.ok(sized.sizedTo >= 40 && sized.sizedTo < 100, `sized to rate × latency: ${sized.sizedTo}`);
    assert.equal(fixed.sizedTo, 10, 'below the need: the ceiling');
    const ratio = sized.perSecond / fixed.perSecond;
    assert.ok(
      ratio >= 2.5,
      `sized from the latency: ${sized.perSecond.toFixed(0)}/s against ${fixed.perSecond.toFixed(0)}/s (${ratio.toFixed(2)}×; 3× or more expected: 200 in the first window, then about 165 a second)`,
    );
  });
});
