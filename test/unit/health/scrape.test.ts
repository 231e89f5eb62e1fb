import assert from 'node:assert/strict';
import { Counter, Gauge, Histogram } from 'prom-client';
import { createMetricsRegistry, parsePrometheusText } from '../../../src/health/index.js';

describe('parsePrometheusText', () => {
  it("reads back what prom-client writes: names, labels (escaped ones too), values, histograms' +Inf", async () => {
    const registry = createMetricsRegistry({ labels: { service: 'dispatch' }, defaultMetrics: false });
    const c = new Counter({ name: 'x_total', help: 'h', labelNames: ['queue', 'note'], registers: [registry] });
    c.inc({ queue: 'outbound', note: 'a "quoted", back\\slash\nline' }, 3);
    c.inc({ queue: 'interactions', note: '' }, 0.5);
    const h = new Histogram({ name: 'd_seconds', help: 'h', buckets: [1], registers: [registry] });
    h.observe(2);
    const samples = parsePrometheusText(await registry.metrics());
    assert.deepEqual(
      samples.filter((s) => s.name === 'x_total'),
      [
        {
          name: 'x_total',
          labels: { queue: 'outbound', note: 'a "quoted", back\\slash\nline', service: 'dispatch' },
          value: 3,
        },
        { name: 'x_total', labels: { queue: 'interactions', note: '', service: 'dispatch' }, value: 0.5 },
      ],
    );
    const inf = samples.find((s) => s.name === 'd_seconds_bucket' && s.labels.le === '+Inf');
    assert.equal(inf?.value, 1);
    assert.equal(samples.find((s) => s.name === 'd_seconds_sum')?.value, 2);
  });

  it('takes a sample with a timestamp and without labels, and names the line it cannot read', () => {
    assert.deepEqual(parsePrometheusText('# HELP a x\nup 1 1700000000000\n'), [{ name: 'up', labels: {}, value: 1 }]);
    assert.throws(
      () => parsePrometheusText('up 1\n<html>oops</html>\n'),
      /line 2 is not a sample: '<html>oops<\/html>'/,
    );
    assert.throws(() => parsePrometheusText('a{b=c} 1'), /line 1 has unreadable labels/);
  });

  it("reads NaN and the infinities in any case, as Prometheus does: prom-client writes NaN as 'Nan'", async () => {
    const registry = createMetricsRegistry({ labels: { service: 'dispatch' }, defaultMetrics: false });
    const g = new Gauge({ name: 'lag_seconds', help: 'h', registers: [registry] });
    g.set(Number.NaN);
    const written = await registry.metrics();
    assert.match(written, /^lag_seconds\{service="dispatch"\} Nan$/m, 'what prom-client writes');
    assert.ok(Number.isNaN(parsePrometheusText(written).find((s) => s.name === 'lag_seconds')?.value));
    assert.deepEqual(
      parsePrometheusText('a NaN\nb nan\nc +Inf\nd inf\ne -Inf\nf -infinity\n').map((s) => s.value),
      [Number.NaN, Number.NaN, Infinity, Infinity, -Infinity, -Infinity],
    );
    assert.throws(() => parsePrometheusText('a nan1\n'), /line 1 is not a sample: 'a nan1'/);
  });
});
