/**
 * deploy/grafana/channel-relay.json and deploy/prometheus/channel-relay.rules.yml without a Grafana or a Prometheus
 * (promtool is not on the machine): their structure, each alert's runbook anchor in docs/operations.md, and the
 * PromQL reader the end-to-end check (test/integration/deploy/metrics.test.ts) relies on to find names and labels.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { packageRoot } from '../../../src/paths.js';
import {
  allPanels,
  dashboardExpressions,
  readDashboard,
  readRules,
  recordedMetrics,
  ruleExpressions,
} from '../../helpers/deploy-files.js';
import { checkExpression, promqlUses, templateLabels } from '../../helpers/promql.js';

/** GitHub's anchor of a Markdown heading. */
function anchor(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

describe('deploy: the PromQL reader', () => {
  it('finds metric names, selector labels, grouping labels and written labels', () => {
    const use = promqlUses(
      'histogram_quantile(0.95, sum by (le, channel) (rate(m_bucket{job=~"$job", result!="ok"}[$__rate_interval]))) / on (channel) group_left max by (channel) (g) unless time() - other offset 5m > 0',
    );
    assert.deepEqual(use.selectors, [
      { metric: 'm_bucket', labels: ['job', 'result'] },
      { metric: 'g', labels: [] },
      { metric: 'other', labels: [] },
    ]);
    assert.deepEqual(use.grouping, ['le', 'channel', 'channel', 'channel']);
    const replaced = promqlUses(
      'label_replace(max by (metric) (k{metric=~"s[0-9]+-x-(.+)"}), "queue", "$1", "metric", "s-(.+)")',
    );
    assert.deepEqual(replaced.written, ['queue']);
    assert.deepEqual(replaced.grouping, ['metric', 'metric']);
    assert.deepEqual(templateLabels('{{channel}} {{ outcome }} $labels.queue'), ['channel', 'outcome', 'queue']);
  });

  it('refuses what it cannot read, naming the expression', () => {
    assert.throws(() => promqlUses('sum(rate(x{a="b}[5m]))'), /unclosed string.*sum\(rate/);
    assert.throws(() => promqlUses('sum(rate(x[5m])'), /unbalanced parentheses/);
    assert.throws(() => promqlUses('x{a~"b"}'), /matcher operator/);
  });

  it('reports a misspelt metric, a label the metric lacks and a grouping or legend label no metric has', () => {
    const metrics = new Map([['channel_relay_messages_received_total', new Set(['queue', 'service'])]]);
    assert.deepEqual(
      checkExpression(
        't',
        'sum by (queue) (rate(channel_relay_messages_received_total{service="x"}[5m]))',
        metrics,
        ['job'],
        ['queue'],
      ),
      [],
    );
    assert.deepEqual(checkExpression('t', 'rate(channel_relay_mesages_received_total[5m])', metrics, []), [
      't: no metric channel_relay_mesages_received_total',
    ]);
    assert.deepEqual(checkExpression('t', 'channel_relay_messages_received_total{queeu="a"}', metrics, []), [
      't: channel_relay_messages_received_total has no label queeu',
    ]);
    assert.deepEqual(
      checkExpression(
        't',
        'sum by (chanel) (channel_relay_messages_received_total)',
        metrics,
        [],
        ['queue', 'outcome'],
      ),
      ['t: no metric of the expression has the label chanel', 't: no metric of the expression has the label outcome'],
    );
  });
});

describe('deploy/grafana/channel-relay.json', () => {
  const dashboard = readDashboard();
  const variables = dashboard.templating?.list ?? [];

  it('is a dashboard of a current Grafana with a Prometheus datasource variable and job, service, instance', () => {
    assert.equal(dashboard.uid, 'channel-relay');
    assert.ok((dashboard.schemaVersion ?? 0) >= 39, `schemaVersion ${dashboard.schemaVersion} (Grafana 11+ is 39+)`);
    const ds = variables.find((v) => v.name === 'datasource');
    assert.equal(ds?.type, 'datasource');
    assert.equal(ds?.query, 'prometheus');
    for (const name of ['job', 'service', 'instance']) {
      const v = variables.find((x) => x.name === name);
      assert.equal(v?.type, 'query', `variable ${name}`);
      assert.equal(v?.datasource?.uid, '${datasource}', `variable ${name}'s datasource`);
    }
  });

  it('has panels with targets on the datasource variable, unique ids and refIds, each filtered by the variables', () => {
    const panels = allPanels(dashboard);
    const ids = panels.map((p) => p.id);
    assert.equal(new Set(ids).size, ids.length, 'panel ids are unique');
    const graphs = panels.filter((p) => p.type !== 'row');
    assert.ok(graphs.length >= 30, `${graphs.length} panels`);
    for (const p of graphs) {
      const where = `panel "${p.title}"`;
      assert.ok(p.gridPos && p.gridPos.w > 0 && p.gridPos.x + p.gridPos.w <= 24, `${where}: gridPos`);
      assert.equal(p.datasource?.uid, '${datasource}', `${where}: datasource`);
      assert.ok((p.targets ?? []).length > 0, `${where}: targets`);
      const refIds = (p.targets ?? []).map((t) => t.refId);
      assert.equal(new Set(refIds).size, refIds.length, `${where}: refIds are unique`);
      for (const t of p.targets ?? []) {
        assert.equal(t.datasource?.uid, '${datasource}', `${where} ${t.refId}: datasource`);
        assert.ok(t.expr && t.expr.length > 0, `${where} ${t.refId}: expr`);
        // Every relay series is narrowed by the variables (KEDA's backlog is not a relay series).
        for (const { metric } of promqlUses(t.expr).selectors.filter((s) => s.metric.startsWith('channel_relay_')))
          assert.match(
            t.expr,
            new RegExp(`${metric}\\{job=~"\\$job", service=~"\\$service", instance=~"\\$instance"`),
            `${where} ${t.refId}: ${metric}'s selector`,
          );
      }
    }
  });

  it('covers what #17 asks for', () => {
    const exprs = dashboardExpressions(dashboard)
      .map((e) => e.expr)
      .join('\n');
    for (const metric of [
      'channel_relay_messages_received_total',
      'channel_relay_messages_consumed_total',
      'channel_relay_messages_sent_total',
      'channel_relay_recorder_interactions_total',
      'channel_relay_dispatch_provider_call_duration_seconds_bucket',
      'channel_relay_dispatch_sender_rate_limit_per_second',
      'channel_relay_dispatch_rate_limit_pauses_total',
      'channel_relay_dataverse_calls_waiting',
      'channel_relay_dataverse_concurrency_limit',
      'channel_relay_intake_dead_letters_total',
      'channel_relay_receive_loop_consecutive_errors',
      'channel_relay_ready',
      'channel_relay_process_cpu_seconds_total',
      'channel_relay_process_resident_memory_bytes',
      'channel_relay_nodejs_eventloop_lag_p99_seconds',
    ])
      assert.ok(exprs.includes(metric), `the dashboard uses ${metric}`);
    for (const q of ['0.5', '0.95', '0.99']) assert.ok(exprs.includes(`histogram_quantile(${q},`), `p${q}`);
  });
});

describe('deploy/prometheus/channel-relay.rules.yml', () => {
  const rules = readRules();
  const groups = rules.groups ?? [];
  const all = groups.flatMap((g) => g.rules ?? []);
  const headings = new Set(
    readFileSync(path.join(packageRoot(), 'docs/operations.md'), 'utf8')
      .split('\n')
      .filter((l) => /^#{2,4} /.test(l))
      .map((l) => anchor(l.replace(/^#+ /, ''))),
  );

  it('has named groups of rules, each a record or an alert with an expression that reads', () => {
    assert.ok(groups.length > 0);
    assert.equal(new Set(groups.map((g) => g.name)).size, groups.length, 'group names are unique');
    for (const g of groups) {
      assert.ok(g.name, 'a group has a name');
      assert.ok(Array.isArray(g.rules) && g.rules.length > 0, `group ${g.name} has rules`);
      for (const r of g.rules ?? []) {
        const name = r.alert ?? r.record;
        assert.ok((r.alert === undefined) !== (r.record === undefined), `${g.name}: ${name} is a record or an alert`);
        assert.equal(typeof r.expr, 'string', `${name}: expr`);
        promqlUses(String(r.expr));
      }
    }
  });

  it('records level:metric:operations names', () => {
    for (const r of all.filter((x) => x.record !== undefined))
      assert.match(r.record as string, /^[a-z_]+:[a-z0-9_]+:[a-z0-9_]+$/);
  });

  it('gives every alert a for:, a severity, a summary, a description and a runbook anchor in docs/operations.md', () => {
    const alerts = all.filter((r) => r.alert !== undefined);
    assert.equal(new Set(alerts.map((a) => a.alert)).size, alerts.length, 'alert names are unique');
    for (const a of alerts) {
      const where = `alert ${a.alert}`;
      assert.match(a.for ?? '', /^\d+[smh]$/, `${where}: for`);
      assert.ok(['critical', 'warning', 'info'].includes(a.labels?.['severity'] ?? ''), `${where}: severity`);
      assert.ok(a.annotations?.['summary'], `${where}: summary`);
      assert.ok(a.annotations?.['description'], `${where}: description`);
      const url = a.annotations?.['runbook_url'] ?? '';
      assert.match(url, /^docs\/operations\.md#/, `${where}: runbook_url`);
      const target = url.split('#')[1] as string;
      assert.equal(target, (a.alert as string).toLowerCase(), `${where}: the runbook anchor is the alert's name`);
      assert.ok(headings.has(target), `${where}: docs/operations.md has a heading for #${target}`);
    }
  });

  it('alerts on what #17 asks for', () => {
    const text = ruleExpressions(rules)
      .map((e) => e.expr)
      .join('\n');
    const recorded = recordedMetrics(rules);
    for (const m of [
      'channel_relay_messages_consumed_total{outcome="dead_lettered"}',
      'channel_relay_dispatch_rate_limit_pauses_total',
      'channel_relay_dataverse_throttled_total',
      'channel_relay_dataverse_calls_waiting',
      'channel_relay_ready',
      'channel_relay:queue_backlog:messages',
      'channel_relay_messaging_account_valid',
    ])
      assert.ok(text.includes(m), `a rule uses ${m}`);
    assert.ok(recorded.get('channel_relay:queue_backlog:messages')?.has('queue'));
  });
});
