import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { registerGovernorMetrics, type Governor, type GovernorState } from '../../../src/dataverse/index.js';

describe('dataverse: governor metrics', () => {
  it('reads the governor when scraped: gauges as they stand, counters growing with what it saw', async () => {
    let state: GovernorState = {
      concurrency: 4,
      inFlight: 2,
      waiting: 7,
      pausedUntil: Date.now() + 3000,
      probing: true,
      intervalMs: 0,
      requestsRemaining: 10,
      timeRemainingMs: undefined,
      headersTrusted: true,
      requestsUsed: 40,
      executionUsedMs: 12_500,
      operationEstimateMs: 25,
      dopHint: undefined,
      throttled: 3,
      calls: 40,
    };
    const governor = { state: () => state } as unknown as Governor;
    const registry = new Registry();
    registerGovernorMetrics(registry, governor);
    registerGovernorMetrics(registry, governor); // a second stage on the same registry: no duplicate registration
    const first = await registry.metrics();
    assert.match(first, /channel_relay_dataverse_concurrency_limit 4/);
    assert.match(first, /channel_relay_dataverse_calls_in_flight 2/);
    assert.match(first, /channel_relay_dataverse_calls_waiting 7/);
    assert.match(first, /channel_relay_dataverse_retry_after_seconds (2\.9\d*|3)\b/);
    assert.match(first, /channel_relay_dataverse_execution_used_seconds 12\.5/);
    assert.match(first, /channel_relay_dataverse_throttled_total 3/);
    assert.match(first, /channel_relay_dataverse_calls_total 40/);
    assert.equal(first.match(/^channel_relay_dataverse_calls_total /gm)?.length, 1, 'registered once');
    state = { ...state, concurrency: 2, inFlight: 0, waiting: 1, pausedUntil: 0, throttled: 5, calls: 55 };
    const second = await registry.metrics();
    assert.match(second, /channel_relay_dataverse_retry_after_seconds 0/);
    assert.match(second, /channel_relay_dataverse_concurrency_limit 2/);
    assert.match(second, /channel_relay_dataverse_calls_in_flight 0/);
    assert.match(second, /channel_relay_dataverse_calls_waiting 1/);
    assert.match(second, /channel_relay_dataverse_throttled_total 5/);
    assert.match(second, /channel_relay_dataverse_calls_total 55/);
  });
});
