/**
 * `channel-relay status`: per queue (the configured activities, outbound, interactions and conversations queues) the
 * broker's active, scheduled and dead-lettered counts, the dead-letter reasons of a bounded sample and the oldest
 * active message's age; per worker given with `--metrics URL` its readiness and its counters (totals, or rates per
 * second between two refreshes under `--watch`). `--json` for scripts; `--watch` refreshes until SIGINT/SIGTERM.
 * Exit codes: 0 ok (and after Ctrl-C under --watch), 1 a Service Bus failure or a worker that cannot be read, 2 bad
 * arguments or configuration (a configured queue the namespace does not have included).
 */
import { InvalidArgumentError, Option, type Command } from 'commander';
import type { ServiceBusAdministrationClient, ServiceBusClient } from '@azure/service-bus';
import { delayUnlessAborted } from '../../abort.js';
import type { RelayConfig } from '../../config/index.js';
import { parseIsoDuration } from '../../duration.js';
import { errorMessage } from '../../errors.js';
import { scrapeWorker, ScrapeError, type Sample, type Scrape } from '../../health/index.js';
import { redactString } from '../../log.js';
import {
  EMULATOR_MANAGEMENT_PORT,
  isDevelopmentEmulatorConnectionString,
  readQueueStatus,
  serviceBusAdministrationClientFromConfig,
  serviceBusClientFromConfig,
  type QueueStatus,
} from '../../servicebus/index.js';
import { loadCommandConfig, reportProblems } from '../command-config.js';
import type { CliIo } from '../io.js';

type QueueRole = keyof RelayConfig['serviceBus']['queues'];
const ROLES: readonly QueueRole[] = ['activities', 'outbound', 'interactions', 'conversations'];
const DEFAULT_SAMPLE = 100;
const DEFAULT_INTERVAL_MS = 5000;
const MIN_INTERVAL_MS = 100;
/** ANSI: cursor home and clear the screen (a TTY under --watch redraws in place). */
const CLEAR = '\u001b[H\u001b[2J';

/**
 * The counters read from each worker's /metrics (src/servicebus/metrics.ts, src/pipeline/dispatch/metrics.ts); the
 * `service` label every series carries names the stage.
 */
export const STATUS_METRICS = {
  received: 'channel_relay_messages_received_total',
  consumed: 'channel_relay_messages_consumed_total',
  sent: 'channel_relay_messages_sent_total',
  dispatched: 'channel_relay_dispatch_messages_total',
  pauses: 'channel_relay_dispatch_rate_limit_pauses_total',
  /** A gauge (src/relay/sessions-gauge.ts): summed over the workers per queue, never a rate. */
  sessionsHeld: 'channel_relay_sessions_held',
} as const;

const HELP = `
Usage:
  channel-relay status [--watch] [--json] [--interval 5s] [--metrics URL ...] [--dead-letter-sample 100]
                       [--management-port 5300] [--config FILE]

The connection comes from the same configuration as the workers: SERVICEBUS_CONNECTION_STRING, or
SERVICEBUS_NAMESPACE with DefaultAzureCredential; reading queues' runtime properties needs the Manage right (a
Manage policy's connection string; an identity: the "Azure Service Bus Data Owner" role). Queue names from
serviceBus.queues.

Per queue: active (available and locked), scheduled and dead-lettered counts from the administration API; the
dead-letter reasons of the first --dead-letter-sample dead letters (peeked, nothing is removed; "of N" when not all
were read); the oldest active message's age (peeked; not shown on a queue that requires sessions, such as outbound:
peeking there needs a session's lock, which would take that sender from dispatch).
Per worker (--metrics http://host:port, its health port, repeatable): readiness from /readyz and, from /metrics,
${STATUS_METRICS.received}, ${STATUS_METRICS.consumed},
${STATUS_METRICS.sent}, ${STATUS_METRICS.dispatched},
${STATUS_METRICS.pauses}: totals, or per second between two refreshes under --watch;
the sessions held (dispatch's senders, the conversations stage's customers), summed over the workers given, are the
queue's SESSIONS HELD (${STATUS_METRICS.sessionsHeld}; the broker does not count sessions).
Against the development emulator (UseDevelopmentEmulator=true) the management API is on --management-port
(default ${EMULATOR_MANAGEMENT_PORT}, as Microsoft's emulator and channel-relay emulate servicebus).

Exit codes: 0 ok (Ctrl-C ends --watch with 0), 1 a Service Bus failure or a worker that cannot be read, 2 bad
arguments or configuration (a configured queue that the namespace does not have included).`;

interface StatusOptions {
  watch?: boolean;
  json?: boolean;
  interval: number;
  metrics?: string[];
  deadLetterSample: number;
  managementPort?: number;
  config?: string;
}

export interface StatusCommandOptions {
  /** Where SIGINT/SIGTERM come from. @defaultValue process */
  signals?: NodeJS.EventEmitter;
  /** Whether stdout is a terminal (--watch then redraws in place). @defaultValue process.stdout.isTTY */
  isTTY?: boolean;
}

/** Milliseconds of `500ms`, `5s`, `2m`, an integer of milliseconds or an ISO 8601 duration (`PT5S`). */
function parseInterval(value: string): number {
  const t = value.trim();
  const unit = /^(\d+(?:\.\d+)?)(ms|s|m)$/i.exec(t);
  const ms = unit
    ? Number(unit[1]) * ({ ms: 1, s: 1000, m: 60_000 } as const)[unit[2]!.toLowerCase() as 'ms' | 's' | 'm']
    : /^\d+$/.test(t)
      ? Number(t)
      : parseIsoDuration(t.toUpperCase());
  if (ms === undefined || !(ms >= MIN_INTERVAL_MS))
    throw new InvalidArgumentError(
      `expected a duration of at least ${MIN_INTERVAL_MS} ms such as 5s, 500ms, 1m or PT5S, found '${value}'`,
    );
  return Math.round(ms);
}

function sampleSize(value: string): number {
  if (!/^\d+$/.test(value.trim()))
    throw new InvalidArgumentError(`expected a whole number of dead letters (0 for none), found '${value}'`);
  return Number(value);
}

function port(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || n < 1 || n > 65535)
    throw new InvalidArgumentError(`expected a port from 1 to 65535, found '${value}'`);
  return n;
}

function metricsUrl(value: string, previous: string[] = []): string[] {
  let url: URL | undefined;
  try {
    url = new URL(value);
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:'))
    throw new InvalidArgumentError(
      `expected a worker's health endpoint such as http://127.0.0.1:9464, found '${value}'`,
    );
  return [...previous, value];
}

export function registerStatusCommand(
  program: Command,
  io: CliIo,
  setExitCode: (code: number) => void,
  options: StatusCommandOptions = {},
): void {
  program
    .command('status')
    .description("the queues' counts, dead-letter reasons and oldest message; the workers' readiness and rates")
    .option('--watch', 'refresh until Ctrl-C (in place on a terminal)')
    .option('--json', 'one JSON document (one per line under --watch)')
    .addOption(
      new Option('--interval <duration>', 'time between refreshes under --watch (5s, 500ms, 1m, PT5S)')
        .argParser(parseInterval)
        .default(DEFAULT_INTERVAL_MS, '5s'),
    )
    .option('--metrics <url>', "a worker's health endpoint (http://host:port), repeatable", metricsUrl)
    .option(
      '--dead-letter-sample <n>',
      'dead letters peeked per queue for their reasons (0: none)',
      sampleSize,
      DEFAULT_SAMPLE,
    )
    .option(
      '--management-port <port>',
      `the development emulator's management API port (only with UseDevelopmentEmulator=true; default ${EMULATOR_MANAGEMENT_PORT})`,
      port,
    )
    .option('--config <file>', 'a configuration file merged over the embedded defaults')
    .addHelpText('after', HELP)
    .action(async (opts: StatusOptions) => setExitCode(await status(io, opts, options)));
}

/** One queue in a snapshot: its state, or why it could not be read. */
type QueueEntry = { role: QueueRole; queue: string } & (
  { ok: true; status: QueueStatus } | { ok: false; missing: boolean; error: string }
);

type WorkerEntry = { url: string } & ({ ok: true; scrape: Scrape } | { ok: false; error: string });

interface Snapshot {
  at: number;
  queues: QueueEntry[];
  workers: WorkerEntry[];
}

function loadStatusConfig(io: CliIo, opts: StatusOptions): RelayConfig | undefined {
  const { config, problems } = loadCommandConfig(io, { file: opts.config, serviceBus: true });
  const connectionString = config?.serviceBus.connectionString;
  if (
    config !== undefined &&
    opts.managementPort !== undefined &&
    !(connectionString && isDevelopmentEmulatorConnectionString(connectionString))
  )
    problems.push(
      '--management-port: applies only to a development emulator connection string (UseDevelopmentEmulator=true); Azure serves its management API on the namespace',
    );
  if (problems.length > 0 || !config) {
    reportProblems(io, 'status', problems);
    return undefined;
  }
  return config;
}

function isNotFound(err: unknown): boolean {
  return (err as { code?: unknown }).code === 'MessageEntityNotFoundError';
}

async function snapshot(
  config: RelayConfig,
  admin: ServiceBusAdministrationClient,
  client: ServiceBusClient,
  opts: StatusOptions,
  signal: AbortSignal,
): Promise<Snapshot> {
  const queues = await Promise.all(
    ROLES.map(async (role): Promise<QueueEntry> => {
      const queue = config.serviceBus.queues[role];
      try {
        const status = await readQueueStatus(admin, client, queue, { deadLetterSample: opts.deadLetterSample, signal });
        return { role, queue, ok: true, status };
      } catch (err) {
        if (isNotFound(err))
          return {
            role,
            queue,
            ok: false,
            missing: true,
            error: `the namespace has no queue '${queue}' (serviceBus.queues.${role})`,
          };
        return { role, queue, ok: false, missing: false, error: redactString(errorMessage(err)) };
      }
    }),
  );
  const workers = await Promise.all(
    (opts.metrics ?? []).map(async (url): Promise<WorkerEntry> => {
      try {
        return { url, ok: true, scrape: await scrapeWorker(url, { signal }) };
      } catch (err) {
        if (!(err instanceof ScrapeError)) throw err;
        return { url, ok: false, error: err.message };
      }
    }),
  );
  return { at: Date.now(), queues, workers };
}

/** Sum of the samples of `name` with the given labels, grouped by the value of `by` (or one total under ''). */
function sum(
  samples: readonly Sample[],
  name: string,
  where: Record<string, string> = {},
  by?: string,
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of samples) {
    if (s.name !== name) continue;
    if (Object.entries(where).some(([k, v]) => s.labels[k] !== v)) continue;
    const key = by === undefined ? '' : (s.labels[by] ?? '');
    out[key] = (out[key] ?? 0) + s.value;
  }
  return out;
}

/** The counters status shows for one worker, by name (`received:outbound`, `dispatched:sent` …). */
function workerCounters(samples: readonly Sample[]): Record<string, number> {
  const c: Record<string, number> = {};
  const add = (prefix: string, values: Record<string, number>): void => {
    for (const [k, v] of Object.entries(values)) c[k === '' ? prefix : `${prefix}:${k}`] = v;
  };
  add('received', sum(samples, STATUS_METRICS.received, {}, 'queue'));
  for (const outcome of ['completed', 'dead_lettered', 'abandoned'])
    add(`consumed_${outcome}`, sum(samples, STATUS_METRICS.consumed, { outcome }, 'queue'));
  add('sent', sum(samples, STATUS_METRICS.sent, {}, 'queue'));
  add('dispatched', sum(samples, STATUS_METRICS.dispatched, {}, 'outcome'));
  add('rate_limit_pauses', sum(samples, STATUS_METRICS.pauses));
  return c;
}

interface WorkerView {
  url: string;
  service: string | undefined;
  ready: boolean | undefined;
  failing: string[];
  error: string | undefined;
  totals: Record<string, number>;
  /** Per second since the previous refresh (under --watch, from the second one). */
  perSecond: Record<string, number> | undefined;
  /** Sessions held now, per queue. */
  sessionsHeld: Record<string, number>;
}

function workerViews(now: Snapshot, previous: Snapshot | undefined): WorkerView[] {
  return now.workers.map((w) => {
    if (!w.ok)
      return {
        url: w.url,
        service: undefined,
        ready: undefined,
        failing: [],
        error: w.error,
        totals: {},
        perSecond: undefined,
        sessionsHeld: {},
      };
    const totals = workerCounters(w.scrape.samples);
    const before = previous?.workers.find((p) => p.url === w.url);
    let perSecond: Record<string, number> | undefined;
    if (before?.ok) {
      const seconds = (w.scrape.at - before.scrape.at) / 1000;
      const old = workerCounters(before.scrape.samples);
      if (seconds > 0) {
        perSecond = {};
        // A counter that went down: the worker restarted; its rate is counted from zero.
        for (const [k, v] of Object.entries(totals)) {
          const delta = v >= (old[k] ?? 0) ? v - (old[k] ?? 0) : v;
          perSecond[k] = Math.round((delta / seconds) * 100) / 100;
        }
      }
    }
    return {
      url: w.url,
      service: w.scrape.samples.find((s) => s.labels.service !== undefined)?.labels.service,
      ready: w.scrape.readiness.ready,
      failing: w.scrape.readiness.failing,
      error: undefined,
      totals,
      perSecond,
      sessionsHeld: sum(w.scrape.samples, STATUS_METRICS.sessionsHeld, {}, 'queue'),
    };
  });
}

/** The sessions the scraped workers hold on `queue`, undefined when none of them reports the gauge for it. */
function sessionsHeld(views: readonly WorkerView[], queue: string): number | undefined {
  const values = views.map((v) => v.sessionsHeld[queue]).filter((n): n is number => n !== undefined);
  return values.length === 0 ? undefined : values.reduce((a, b) => a + b, 0);
}

function oldestJson(s: QueueStatus): Record<string, unknown> {
  const o = s.oldest;
  return o.known
    ? { enqueuedAt: o.enqueuedAt.toISOString(), ageSeconds: Math.round(o.ageMs / 100) / 10 }
    : { unknown: o.reason, ...(o.peeked === undefined ? {} : { peeked: o.peeked }) };
}

function toJson(snap: Snapshot, previous: Snapshot | undefined): Record<string, unknown> {
  const views = workerViews(snap, previous);
  return {
    at: new Date(snap.at).toISOString(),
    queues: snap.queues.map((q) =>
      q.ok
        ? {
            role: q.role,
            queue: q.queue,
            requiresSession: q.status.requiresSession,
            active: q.status.active,
            scheduled: q.status.scheduled,
            deadLettered: q.status.deadLettered,
            transfer: q.status.transfer,
            transferDeadLettered: q.status.transferDeadLettered,
            total: q.status.total ?? null,
            sizeInBytes: q.status.sizeInBytes ?? null,
            deadLetterReasons: {
              peeked: q.status.deadLetterReasons.peeked,
              of: q.status.deadLettered,
              complete: q.status.deadLetterReasons.complete,
              byReason: q.status.deadLetterReasons.byReason,
            },
            oldestActive: oldestJson(q.status),
            sessionsHeld: q.status.requiresSession ? (sessionsHeld(views, q.queue) ?? null) : null,
          }
        : { role: q.role, queue: q.queue, error: q.error, missing: q.missing },
    ),
    workers: views.map((w) => ({
      url: w.url,
      ...(w.error === undefined
        ? {
            service: w.service ?? null,
            ready: w.ready,
            failing: w.failing,
            totals: w.totals,
            perSecond: w.perSecond ?? null,
          }
        : { error: w.error }),
    })),
  };
}

function age(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

function oldestText(s: QueueStatus): string {
  const o = s.oldest;
  if (o.known) return age(o.ageMs);
  if (o.reason === 'empty') return '-';
  if (o.reason === 'sessions') return 'n/a (sessions)';
  return `> first ${o.peeked ?? 0} peeked`;
}

function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) =>
    r
      .map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!)))
      .join('  ')
      .trimEnd(),
  );
}

function toText(snap: Snapshot, previous: Snapshot | undefined, intervalMs: number | undefined): string[] {
  const lines = [
    `channel-relay status at ${new Date(snap.at).toISOString()}${intervalMs === undefined ? '' : ` (every ${intervalMs / 1000} s; Ctrl-C to stop)`}`,
    '',
  ];
  const views = workerViews(snap, previous);
  const rows = [['QUEUE', 'ACTIVE', 'SCHEDULED', 'DEAD-LETTERED', 'OLDEST ACTIVE', 'SESSIONS HELD']];
  const problems: string[] = [];
  const reasons: string[] = [];
  for (const q of snap.queues) {
    const name = q.queue === q.role ? q.queue : `${q.queue} (${q.role})`;
    if (!q.ok) {
      rows.push([name, '?', '?', '?', '?', '?']);
      problems.push(`  ${name}: ${q.error}`);
      continue;
    }
    const s = q.status;
    const held = s.requiresSession ? (sessionsHeld(views, q.queue)?.toString() ?? '?') : '-';
    rows.push([name, String(s.active), String(s.scheduled), String(s.deadLettered), oldestText(s), held]);
    if (s.deadLettered > 0) {
      const r = s.deadLetterReasons;
      const counted = Object.entries(r.byReason)
        .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
        .map(([reason, n]) => `${reason} ${n}`)
        .join(', ');
      const scope = r.complete ? `all ${r.peeked}` : `${r.peeked} of ${s.deadLettered} peeked`;
      reasons.push(`  ${q.queue} (${scope}): ${r.peeked === 0 ? 'not sampled (--dead-letter-sample 0)' : counted}`);
    }
  }
  lines.push(...table(rows));
  if (reasons.length > 0) lines.push('', 'dead-letter reasons:', ...reasons);
  if (snap.queues.some((q) => q.ok && q.status.requiresSession))
    lines.push(
      '',
      'n/a (sessions): peeking a queue that requires sessions needs a session lock; not taken from dispatch',
      "SESSIONS HELD: summed over the --metrics workers' channel_relay_sessions_held ('?': none of them reports it)",
    );
  if (problems.length > 0) lines.push('', 'not read:', ...problems);
  if (views.length > 0) {
    lines.push('', 'workers:');
    for (const w of views) {
      if (w.error !== undefined) {
        lines.push(`  ${w.url}: not read: ${w.error}`);
        continue;
      }
      const state = w.ready ? 'ready' : `NOT READY (${w.failing.join('; ') || 'no detail'})`;
      lines.push(`  ${w.service ?? '?'} ${w.url}: ${state}`);
      const keys = Object.keys(w.totals).sort();
      if (keys.length > 0) {
        const parts = keys.map((k) => {
          const rate = w.perSecond?.[k];
          return `${k} ${w.totals[k]}${rate === undefined ? '' : ` (${rate}/s)`}`;
        });
        lines.push(`    ${parts.join(', ')}`);
      }
    }
  }
  return lines;
}

/** The exit code a snapshot calls for (one-shot; --watch ends with 0 on a signal). */
function exitCodeOfSnapshot(snap: Snapshot): number {
  if (snap.queues.some((q) => !q.ok && q.missing)) return 2;
  if (snap.queues.some((q) => !q.ok) || snap.workers.some((w) => !w.ok)) return 1;
  return 0;
}

async function status(io: CliIo, opts: StatusOptions, options: StatusCommandOptions): Promise<number> {
  const config = loadStatusConfig(io, opts);
  if (!config) return 2;
  let admin: ServiceBusAdministrationClient;
  let client: ServiceBusClient;
  try {
    admin = serviceBusAdministrationClientFromConfig(config, {
      ...(opts.managementPort === undefined ? {} : { emulatorManagementPort: opts.managementPort }),
      retryOptions: { maxRetries: 1, retryDelayInMs: 500 },
    });
    client = serviceBusClientFromConfig(config, { retry: { maxRetries: 1, timeoutInMs: 10_000 } });
  } catch (err) {
    io.err(`status: 1 problem:\n  - ${redactString(errorMessage(err))}`);
    return 2;
  }
  const signals = options.signals ?? process;
  const abort = new AbortController();
  const onSignal = (signal: NodeJS.Signals): void => abort.abort(new Error(`received ${signal}`));
  if (opts.watch) {
    signals.on('SIGINT', onSignal);
    signals.on('SIGTERM', onSignal);
  }
  const tty = options.isTTY ?? process.stdout.isTTY === true;
  try {
    let previous: Snapshot | undefined;
    for (;;) {
      let snap: Snapshot;
      try {
        snap = await snapshot(config, admin, client, opts, abort.signal);
      } catch (err) {
        if (abort.signal.aborted) return 0;
        io.err(`status: Service Bus failed: ${redactString(errorMessage(err))}`);
        return 1;
      }
      if (abort.signal.aborted) return 0;
      const failures = snap.queues.flatMap((q) => (q.ok || q.missing ? [] : [q.error]));
      if (!opts.watch && failures.length === snap.queues.length) {
        // Nothing could be read: the namespace is unreachable or refuses this identity (the same error each time).
        io.err(`status: Service Bus failed: ${failures[0] ?? ''}`);
        return 1;
      }
      if (opts.json) io.out(JSON.stringify(toJson(snap, previous)));
      else {
        const text = toText(snap, previous, opts.watch ? opts.interval : undefined).join('\n');
        io.out(opts.watch && tty ? `${CLEAR}${text}` : opts.watch ? `${text}\n` : text);
      }
      if (!opts.watch) return exitCodeOfSnapshot(snap);
      previous = snap;
      await delayUnlessAborted(opts.interval, abort.signal);
      if (abort.signal.aborted) return 0;
    }
  } finally {
    signals.off('SIGINT', onSignal);
    signals.off('SIGTERM', onSignal);
    await client.close().catch(() => undefined);
  }
}
