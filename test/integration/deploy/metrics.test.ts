/**
 * Every metric and label that deploy/grafana/channel-relay.json and deploy/prometheus/channel-relay.rules.yml use
 * exists in the relay: the relay's five stages run in one process on the emulators with the process's registry and
 * health server, as a worker does, one journey goes through, and the names and labels come from a scrape of its
 * /metrics (each metric's `# TYPE` line, a histogram's `_bucket`, `_sum` and `_count`, and the labels of its series)
 * plus the labels each metric declares (a labelled series appears only once counted).
 * Metrics from elsewhere: Prometheus' target labels (`job`, `instance`) and KEDA's operator metrics.
 */
import assert from 'node:assert/strict';
import { parseCallbackKeys } from '../../../src/correlation/index.js';
import { createMetricsRegistry, startHealthServer } from '../../../src/health/index.js';
import { silentLogger } from '../../../src/log.js';
import { startRelay, STAGES } from '../../../src/relay/index.js';
import {
  dashboardExpressions,
  readDashboard,
  readRules,
  recordedMetrics,
  ruleExpressions,
} from '../../helpers/deploy-files.js';
import { closedAfterEach } from '../../helpers/fixtures.js';
import { checkExpression, type MetricSet } from '../../helpers/promql.js';
import { waitFor } from '../../helpers/wait.js';
import { SEED, startSystem } from '../pipeline/harness.js';

/** Labels Prometheus adds to every scraped series. */
const TARGET_LABELS = ['job', 'instance'];
/**
 * Series from elsewhere, with the labels the dashboard and rules use: KEDA's operator (keda.sh "Integrate with
 * Prometheus": `keda_scaler_metrics_value`, labels `namespace`, `metric`, `scaledObject`, `scaler`, ...).
 */
const EXTERNAL: MetricSet = new Map([['keda_scaler_metrics_value', new Set(['namespace', 'metric', 'scaler'])]]);

/** The metrics of a Prometheus text scrape, each with the labels of its series and the ones it declares. */
function scrapedMetrics(text: string, declared: (name: string) => readonly string[]): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  const add = (name: string, labels: Iterable<string>): void => {
    const set = out.get(name) ?? new Set<string>();
    for (const l of labels) set.add(l);
    out.set(name, set);
  };
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) {
      const [, name, kind] = type as unknown as [string, string, string];
      const labels = declared(name);
      if (kind === 'histogram') {
        add(`${name}_bucket`, [...labels, 'le']);
        add(`${name}_sum`, labels);
        add(`${name}_count`, labels);
      } else if (kind === 'summary') {
        add(name, [...labels, 'quantile']);
        add(`${name}_sum`, labels);
        add(`${name}_count`, labels);
      } else {
        add(name, labels);
      }
      continue;
    }
    const sample = /^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})? /.exec(line);
    if (sample)
      add(
        sample[1] as string,
        [...(sample[2] ?? '').matchAll(/([A-Za-z_][A-Za-z0-9_]*)="/g)].map((m) => m[1] as string),
      );
  }
  return out;
}

describe('deploy: the metrics the dashboard and the alerts use', function () {
  this.timeout(120_000);
  const track = closedAfterEach();

  it('exist in a relay with those names and labels', async () => {
    const s = track(await startSystem({ conversations: true }));
    const registry = createMetricsRegistry({ labels: { service: 'relay' } });
    const keys = parseCallbackKeys(s.env['CALLBACK_SIGNING_KEYS'], 'CALLBACK_SIGNING_KEYS');
    const relay = track(
      startRelay({
        stages: STAGES,
        config: s.config,
        channels: s.channels,
        callbackKeys: keys,
        registry,
        log: silentLogger(),
        ...(s.dl === undefined ? {} : { identityCa: s.dl.identityCa }),
      }),
    );
    const health = track(
      await startHealthServer({ port: 0, host: '127.0.0.1', registry, readiness: () => relay.readiness() }),
    );
    await waitFor('every stage ready', () => (relay.readiness().every((c) => c.ok) ? true : undefined), 30_000);

    const run = await s.runJourney(SEED.journey, 3);
    // Scraped once the recorder has counted every activity's interaction (the delivery reports' come on top).
    const written = /^channel_relay_recorder_interactions_total\{outcome="written",service="relay"\} (\d+)$/m;
    let last = '';
    const text = await waitFor(
      'the journey recorded',
      async () => {
        last = await (await fetch(`${health.url}/metrics`)).text();
        return Number(written.exec(last)?.[1] ?? 0) >= run.created.length ? last : undefined;
      },
      60_000,
    ).catch((err: Error) => {
      const lines = last.split('\n').filter((l) => /^channel_relay_(recorder|messages_\w+|dispatch_messages)/.test(l));
      throw new Error(`${err.message}; ${run.created.length} created; last scrape:\n${lines.join('\n')}`);
    });
    const declared = (name: string): string[] => [
      'service',
      ...((registry.getSingleMetric(name) as { labelNames?: string[] } | undefined)?.labelNames ?? []),
    ];
    const metrics = new Map<string, ReadonlySet<string>>([
      ...scrapedMetrics(text, declared),
      ...EXTERNAL,
      ...recordedMetrics(readRules()),
    ]);

    // What the scrape says after the journey: the new gauges have values.
    assert.match(text, /^channel_relay_ready\{service="relay"\} 1$/m);
    for (const queue of Object.values(s.config.serviceBus.queues))
      assert.match(
        text,
        new RegExp(`^channel_relay_receive_loop_running\\{queue="${queue}",service="relay"\\} 1$`, 'm'),
      );
    assert.match(text, /^channel_relay_dispatch_sender_rate_limit_per_second\{channel="sms",service="relay"\} 50$/m);
    assert.match(
      text,
      /^channel_relay_dispatch_provider_call_duration_seconds_count\{(?=[^}]*channel="sms")(?=[^}]*result="ok")[^}]*\} 3$/m,
    );

    const problems = [...dashboardExpressions(readDashboard()), ...ruleExpressions(readRules())].flatMap((e) =>
      checkExpression(e.where, e.expr, metrics, TARGET_LABELS, e.templateLabels),
    );
    assert.deepEqual(problems, []);
  });
});
