/**
 * The tracing cost benchmark (#17 §2): the relay's CPU per activity with OpenTelemetry tracing off (the default) and
 * on (`OTEL_EXPORTER_OTLP_ENDPOINT` at an OTLP/HTTP sink in this process, `OTEL_EXPORTER_OTLP_PROTOCOL=http/json`),
 * as a ratio measured in one run: the same warmed-up journey for fresh workers each time. The sink accepts
 * `POST /v1/traces` and counts the spans it receives. See docs/benchmarks.md, "Tracing cost".
 *
 * Settings (environment variables; defaults in {@link SETTINGS}, measure.ts's COMMON): TRACING_ACTIVITIES, and the
 * PIPELINE_* latencies, sender and warm-up.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SEED, buildWorkers, type System } from '../integration/pipeline/harness.js';
import {
  COMMON,
  RELAY_IDENTITY,
  deployedWorkers,
  fmt,
  measuredJourney,
  per,
  setting,
  startWorkers,
  stopWorkers,
  type RunFigures,
  startBenchSystem,
} from './pipeline/measure.js';
import type { BenchSection } from './section.js';

const SETTINGS = {
  ...COMMON,
  /** Contacts of each measured journey. */
  activities: setting('TRACING_ACTIVITIES', 5000),
};

/** An OTLP/HTTP trace receiver: counts requests, bytes and (in JSON bodies) spans. */
interface Sink {
  url: string;
  counts: { requests: number; bytes: number; spans: number; notJson: number };
  close(): Promise<void>;
}

async function startSink(): Promise<Sink> {
  const counts = { requests: 0, bytes: 0, spans: 0, notJson: 0 };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== '/v1/traces') {
        res.writeHead(404).end();
        return;
      }
      const body = Buffer.concat(chunks);
      counts.requests++;
      counts.bytes += body.length;
      try {
        const data = JSON.parse(body.toString('utf8')) as {
          resourceSpans?: Array<{ scopeSpans?: Array<{ spans?: unknown[] }> }>;
        };
        for (const r of data.resourceSpans ?? [])
          for (const s of r.scopeSpans ?? []) counts.spans += s.spans?.length ?? 0;
      } catch {
        counts.notJson++;
      }
      res.writeHead(200, { 'Content-Type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    counts,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Fresh workers with `env`, warmed up, then the measured journey. */
async function relayRun(system: System, env: Record<string, string>, what: string): Promise<RunFigures> {
  const workers = await startWorkers(system, () => env);
  try {
    const pids = workers.map((w) => w.child.pid!);
    console.error(`bench tracing: ${what}, warm-up ${COMMON.warmup} and ${SETTINGS.activities} contacts …`);
    await measuredJourney(system, SEED.journey, COMMON.warmup, pids, RELAY_IDENTITY, 600_000);
    return await measuredJourney(system, SEED.journey, SETTINGS.activities, pids, RELAY_IDENTITY, 600_000);
  } finally {
    await stopWorkers(workers);
  }
}

export async function benchTracing(): Promise<BenchSection> {
  console.error('bench tracing: building dist/ …');
  await buildWorkers();
  const sink = await startSink();
  const system = await startBenchSystem({ limits: 'off' });
  try {
    deployedWorkers(system);
    const off = await relayRun(system, {}, 'tracing off');
    const spansBefore = sink.counts.spans;
    const on = await relayRun(
      system,
      { OTEL_EXPORTER_OTLP_ENDPOINT: sink.url, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' },
      'tracing on',
    );
    // What the workers flushed when they stopped is counted too (they stop before relayRun returns).
    const spans = sink.counts.spans - spansBefore;
    return { title: 'Tracing cost', markdown: report(off, on, spans, sink.counts) };
  } finally {
    await system.close();
    await sink.close();
  }
}

function report(off: RunFigures, on: RunFigures, spans: number, counts: Sink['counts']): string {
  const s = SETTINGS;
  const cpuOff = per(off.cpuMs, off.activities);
  const cpuOn = per(on.cpuMs, on.activities);
  const stage = (r: RunFigures): string =>
    r.cpuByProcess.map((c, i) => `${['intake', 'dispatch', 'recorder'][i]} ${fmt(per(c, r.activities), 3)}`).join(', ');
  return [
    'The relay\'s three built workers (as in "Pipeline"), fresh for each run and warmed up, on the same emulators',
    `(${s.providerLatencyMs} ms per provider call, ${s.dataverseLatencyMs} ms per Dataverse request, Dataverse limits off), once with tracing off (the default) and once`,
    'with `OTEL_EXPORTER_OTLP_ENDPOINT` set to an OTLP/HTTP sink in the benchmark process (`OTEL_EXPORTER_OTLP_PROTOCOL=http/json`),',
    'which accepts `POST /v1/traces` and counts the spans. CPU is user + system time of the three workers over the journey.',
    '',
    '| Tracing | Activities | Activities/s | CPU ms per activity | … per stage | Spans received per activity |',
    '|---|---|---|---|---|---|',
    `| off | ${fmt(off.activities)} | ${fmt(off.perSecond, 1)} | ${fmt(cpuOff, 3)} | ${stage(off)} | — |`,
    `| on | ${fmt(on.activities)} | ${fmt(on.perSecond, 1)} | ${fmt(cpuOn, 3)} | ${stage(on)} | ${fmt(per(spans, on.activities + COMMON.warmup), 2)} |`,
    '',
    `**CPU with tracing on / off: ${fmt(cpuOn / cpuOff, 2)}x** (${fmt(counts.requests)} export requests, ${fmt(counts.bytes / 2 ** 20, 1)} MB` +
      (counts.notJson > 0 ? `, ${fmt(counts.notJson)} not JSON` : '') +
      '). ' +
      (spans === 0
        ? 'No span reached the sink: the workers of this build do not export traces, so the ratio shows only noise.'
        : 'Spans per activity count the warm-up journey too (its spans are exported during the measured one).'),
    '',
    `Settings (environment variables): \`TRACING_ACTIVITIES\`, and the \`PIPELINE_*\` latencies, sender and warm-up. This run: ${fmt(s.activities)} contacts, warm-up ${fmt(s.warmup)}.`,
  ].join('\n');
}
