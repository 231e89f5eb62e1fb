import assert from 'node:assert/strict';
import { Counter } from 'prom-client';
import {
  createMetricsRegistry,
  startHealthServer,
  type HealthServer,
  type ReadinessCheck,
} from '../../src/health/index.js';

describe('health and metrics endpoints', () => {
  let server: HealthServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it('answers liveness, readiness and Prometheus metrics over HTTP', async () => {
    const registry = createMetricsRegistry({ labels: { service: 'dispatch' } });
    const sent = new Counter({
      name: 'channel_relay_messages_sent_total',
      help: 'messages sent',
      labelNames: ['channel'],
      registers: [registry],
    });
    sent.inc({ channel: 'sms' }, 3);
    let checks: ReadinessCheck[] = [{ name: 'servicebus', ok: true }];
    server = await startHealthServer({ port: 0, host: '127.0.0.1', registry, readiness: () => checks });

    const live = await fetch(`${server.url}/healthz`);
    assert.equal(live.status, 200);
    assert.equal(((await live.json()) as { status: string }).status, 'ok');

    const ready = await fetch(`${server.url}/readyz`);
    assert.equal(ready.status, 200);
    assert.deepEqual(await ready.json(), { status: 'ready', checks: [{ name: 'servicebus', ok: true }] });

    checks = [
      { name: 'servicebus', ok: false, detail: 'receiver disconnected' },
      { name: 'shutdown', ok: true },
    ];
    const notReady = await fetch(`${server.url}/readyz`);
    assert.equal(notReady.status, 503);
    assert.equal(((await notReady.json()) as { checks: ReadinessCheck[] }).checks[0]?.detail, 'receiver disconnected');

    const metrics = await fetch(`${server.url}/metrics`);
    assert.equal(metrics.status, 200);
    assert.match(metrics.headers.get('content-type') ?? '', /^text\/plain/);
    const text = await metrics.text();
    assert.match(text, /channel_relay_messages_sent_total\{channel="sms",service="dispatch"\} 3/);
    assert.match(text, /channel_relay_process_cpu_user_seconds_total\{service="dispatch"\}/);
    // Readiness as gauges, read when scraped: not ready now, the failing check by name.
    assert.match(text, /^channel_relay_ready\{service="dispatch"\} 0$/m);
    assert.match(text, /^channel_relay_readiness_check\{check="servicebus",service="dispatch"\} 0$/m);
    assert.match(text, /^channel_relay_readiness_check\{check="shutdown",service="dispatch"\} 1$/m);
    checks = [{ name: 'servicebus', ok: true }];
    const again = await (await fetch(`${server.url}/metrics`)).text();
    assert.match(again, /^channel_relay_ready\{service="dispatch"\} 1$/m);
    assert.doesNotMatch(again, /check="shutdown"/, 'a check that is gone is no longer reported');
  });

  it('says what exists for an unknown path or method', async () => {
    server = await startHealthServer({
      port: 0,
      host: '127.0.0.1',
      registry: createMetricsRegistry({ defaultMetrics: false }),
    });
    const missing = await fetch(`${server.url}/status`);
    assert.equal(missing.status, 404);
    assert.match(
      ((await missing.json()) as { error: string }).error,
      /no endpoint \/status; there are \/healthz, \/readyz, \/metrics/,
    );
    const post = await fetch(`${server.url}/readyz`, { method: 'POST' });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get('allow'), 'GET, HEAD');
  });

  it('reports a failing readiness check as a 500 with its message, and closes once', async () => {
    server = await startHealthServer({
      port: 0,
      host: '127.0.0.1',
      registry: createMetricsRegistry({ defaultMetrics: false }),
      readiness: () => Promise.reject(new Error('check exploded')),
    });
    const res = await fetch(`${server.url}/readyz`);
    assert.equal(res.status, 500);
    assert.deepEqual(await res.json(), { error: 'check exploded' });
    const first = server.close();
    assert.equal(server.close(), first);
    await first;
    await assert.rejects(fetch(`${server.url}/healthz`));
    server = undefined;
  });
});
