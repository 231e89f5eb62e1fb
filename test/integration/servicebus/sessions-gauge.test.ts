/**
 * `channel_relay_sessions_held{queue}` (src/relay/sessions-gauge.ts): the sessions a session loop holds now, read
 * at each scrape, through the real SDK against the emulator.
 */
import assert from 'node:assert/strict';
import { createMetricsRegistry, parsePrometheusText } from '../../../src/health/index.js';
import { countSessionsHeld } from '../../../src/relay/sessions-gauge.js';
import { startSessionLoop } from '../../../src/servicebus/index.js';
import { closedAfterEach, relayClient, startBus, waitFor } from './helpers.js';

describe('the sessions-held gauge', function () {
  this.timeout(20_000);
  const track = closedAfterEach();

  it('counts the sessions held at each scrape, and nothing once the loop is no longer counted', async () => {
    const bus = track(await startBus({ queues: { outbound: { RequiresSession: true, LockDuration: 'PT5S' } } }));
    const client = track(relayClient(bus));
    const registry = createMetricsRegistry({ defaultMetrics: false });
    let release: () => void = () => undefined;
    const released = new Promise<void>((resolve) => (release = resolve));
    const loop = track(
      startSessionLoop({
        client,
        queue: 'outbound',
        maxSessions: 3,
        maxWaitMs: 100,
        sessionIdleMs: 100,
        createSessionHandler: () => ({
          onBatch: async (deliveries) => {
            await released;
            for (const d of deliveries) await d.complete();
          },
        }),
      }),
    );
    const uncount = countSessionsHeld(registry, [loop]);
    const held = async (): Promise<number | undefined> =>
      parsePrometheusText(await registry.metrics()).find(
        (s) => s.name === 'channel_relay_sessions_held' && s.labels.queue === 'outbound',
      )?.value;
    assert.equal(await held(), 0);
    await track(relayClient(bus))
      .createSender('outbound')
      .sendMessages([
        { body: 1, sessionId: 'a' },
        { body: 2, sessionId: 'b' },
      ]);
    await waitFor('two sessions held', async () => ((await held()) === 2 ? true : undefined));
    release();
    await waitFor('the idle sessions released', async () => ((await held()) === 0 ? true : undefined));
    uncount();
    assert.equal(await held(), undefined, 'a loop no longer counted is not in the gauge');
  });
});
