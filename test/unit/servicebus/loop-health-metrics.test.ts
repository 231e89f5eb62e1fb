/** `watchLoopHealth`: a receive loop's health as gauges per queue, read from the loop when the registry is scraped. */
import assert from 'node:assert/strict';
import { createMetricsRegistry } from '../../../src/health/index.js';
import { watchLoopHealth, type LoopHealth } from '../../../src/servicebus/index.js';

describe('servicebus: loop health metrics', () => {
  it('reads every watched loop when scraped, by queue; a later loop on a queue replaces the first', async () => {
    const registry = createMetricsRegistry({ defaultMetrics: false });
    let outbound: LoopHealth = { running: true, consecutiveErrors: 0 };
    watchLoopHealth(registry, 'outbound', () => outbound);
    watchLoopHealth(registry, 'activities', () => ({ running: true, consecutiveErrors: 0, lastReceiveAt: 1_500 }));

    let text = await registry.metrics();
    assert.match(text, /^channel_relay_receive_loop_running\{queue="outbound"\} 1$/m);
    assert.match(text, /^channel_relay_receive_loop_consecutive_errors\{queue="outbound"\} 0$/m);
    assert.match(text, /^channel_relay_receive_loop_last_receive_timestamp_seconds\{queue="activities"\} 1.5$/m);
    assert.doesNotMatch(text, /last_receive_timestamp_seconds\{queue="outbound"\}/, 'no answer yet: no series');

    outbound = { running: false, consecutiveErrors: 4, lastReceiveAt: 3_000, lastError: 'gone' };
    text = await registry.metrics();
    assert.match(text, /^channel_relay_receive_loop_running\{queue="outbound"\} 0$/m);
    assert.match(text, /^channel_relay_receive_loop_consecutive_errors\{queue="outbound"\} 4$/m);
    assert.match(text, /^channel_relay_receive_loop_last_receive_timestamp_seconds\{queue="outbound"\} 3$/m);

    watchLoopHealth(registry, 'outbound', () => ({ running: true, consecutiveErrors: 0 }));
    text = await registry.metrics();
    assert.match(text, /^channel_relay_receive_loop_running\{queue="outbound"\} 1$/m);
    assert.equal(text.match(/^channel_relay_receive_loop_running\{/gm)?.length, 2, 'one series per queue');
  });
});
