/**
 * `channel-relay demo`: the embedded system, the three stages in this process, the seed's journeys over N
 * contacts, a progress bar until every activity has its final outcome, then the funnel per journey from the
 * emulators' own records. With `serve`, everything stays up until the signal.
 */
import { writeFileSync } from 'node:fs';
import type { Registry } from 'prom-client';
import { DEFAULT_TOKEN_IDENTITY } from '../dataverse/index.js';
import { errorMessage } from '../errors.js';
import type { JourneyRunResult } from '../emulators/dataverse/index.js';
import { createMetricsRegistry, startHealthServer, type HealthServer } from '../health/index.js';
import { createShutdown } from '../lifecycle.js';
import type { Logger } from '../log.js';
import { startRelay, STAGES, type RunningRelay } from '../relay/index.js';
import { createServiceBusClient } from '../servicebus/index.js';
import { delay, whenAborted } from '../abort.js';
import { formatFunnel } from './format.js';
import { startProgress } from './progress.js';
import { activityIndex, DataverseRecords, deadLetteredActivities, funnels, repeatedProviderMessages, type DemoSummary } from './records.js';
import { startEmbeddedSystem, type EmbeddedSystem, type EmbeddedSystemOptions } from './system.js';

export interface DemoOptions {
  /** Contacts each journey runs over (contacts the seed lacks are generated). */
  contacts: number;
  /** Rate of every Twilio sender, messages per second. @defaultValue 100 */
  smsPerSecond?: number;
  /** Keep everything running after the funnel until `signal` aborts. @defaultValue false */
  serve?: boolean;
  /** Where to write the summary as JSON. */
  summaryJson?: string;
  /** Give up when no activity reaches its outcome for this long, ms. @defaultValue 60000 */
  stallTimeoutMs?: number;
  /** How often the records are read while waiting, ms. @defaultValue 250 */
  pollMs?: number;
  /** Aborted by Ctrl-C (SIGINT) or SIGTERM. */
  signal: AbortSignal;
  /** The funnel, the URLs: what a person reads (stdout). */
  out: (text: string) => void;
  /** Where the progress bar goes (stderr). */
  progressStream: NodeJS.WritableStream & { isTTY?: boolean };
  log: Logger;
  /** Options of the embedded system beyond the rate (latencies, limits, seed). */
  system?: Omit<EmbeddedSystemOptions, 'smsPerSecond' | 'log'>;
}

export interface DemoResult {
  /** 0: every activity reached its outcome; 1: the run stalled or failed; 130: interrupted. */
  code: number;
  summary?: DemoSummary;
}

/** The journeys in the seed, with their names from the seed's journey rows. */
function seedJourneys(system: EmbeddedSystem): Array<{ journeyId: string; name?: string }> {
  const rows = (system.seed.rows?.['msdyncrm_customerjourneys'] ?? []) as Array<Record<string, unknown>>;
  return (system.seed.journeys ?? []).map((j) => {
    const row = rows.find((r) => String(r['msdyncrm_customerjourneyid']).toLowerCase() === j.journeyId.toLowerCase());
    const name = row?.['msdyncrm_name'];
    return typeof name === 'string' ? { journeyId: j.journeyId, name } : { journeyId: j.journeyId };
  });
}

class Interrupted extends Error {}

/** How long an idle session slot waits per accept, and so how long a stop waits for it at most. */
const ACCEPT_WAIT_MS = 2000;

export async function runDemo(options: DemoOptions): Promise<DemoResult> {
  const { log, signal } = options;
  const pollMs = options.pollMs ?? 250;
  const stallTimeoutMs = options.stallTimeoutMs ?? 60_000;
  let system: EmbeddedSystem | undefined;
  let relay: RunningRelay | undefined;
  let health: HealthServer | undefined;
  const stop = async (): Promise<void> => {
    const running = relay;
    const shutdown = createShutdown({
      stopIntake: () => running?.stopIntake(),
      drain: (s) => running?.drain(s) ?? Promise.resolve(),
      closer: { close: async () => Promise.all([running?.close(), health?.close()]).then(() => system?.close()) },
      budgetMs: system?.config.shutdown.budgetMs ?? 15_000,
      log,
    });
    await shutdown(signal.aborted ? 'interrupted' : 'done');
  };
  const checkSignal = (): void => {
    if (signal.aborted) throw new Interrupted();
  };
  try {
    system = await startEmbeddedSystem({ ...options.system, smsPerSecond: options.smsPerSecond ?? 100, log });
    checkSignal();
    const registry: Registry = createMetricsRegistry({ labels: { service: 'demo' } });
    // A short operation timeout on loopback: an idle session slot's accept (which a stop waits for) ends within it.
    relay = startRelay({ stages: STAGES, config: system.config, channels: system.channels, log, registry, serviceBus: { retry: { timeoutInMs: ACCEPT_WAIT_MS } } });
    if (options.serve === true) {
      const running = relay;
      health = await startHealthServer({ port: 0, host: '127.0.0.1', registry, readiness: () => running.readiness(), log });
    }
    const records = new DataverseRecords(system.dv.url);
    const journeys = seedJourneys(system);
    if (journeys.length === 0) throw new Error('the seed declares no journeys ("journeys" in the seed file)');

    const started = Date.now();
    const runs: Array<JourneyRunResult & { name?: string }> = [];
    for (const j of journeys) runs.push({ ...(await records.runJourney(j.journeyId, options.contacts)), ...(j.name === undefined ? {} : { name: j.name }) });
    const index = activityIndex(runs);
    const total = runs.reduce((n, r) => n + r.created.length, 0);
    options.out(`running ${journeys.length === 1 ? 'the sample journey' : `${journeys.length} journeys`} over ${options.contacts} contacts: ${total} activities`);

    const bus = createServiceBusClient({ connectionString: system.sb.connectionString });
    const failureTypes = new Set(system.channels.all().flatMap((c) => (c.failureResponseType === undefined ? [] : [c.failureResponseType])));
    const progress = startProgress({ total, stream: options.progressStream });
    let summary: DemoSummary;
    try {
      let lastDone = -1;
      let lastMove = Date.now();
      let deadLettered = 0;
      let lastDeadLetterRead = 0;
      for (;;) {
        checkSignal();
        const { recorded, duplicates } = await records.interactionCount();
        if (Date.now() - lastDeadLetterRead >= 2000 || recorded - duplicates + deadLettered >= total) {
          deadLettered = (await deadLetteredActivities(bus, new Set(index.keys()))).activities.size;
          lastDeadLetterRead = Date.now();
        }
        const done = Math.min(total, recorded - duplicates + deadLettered);
        const elapsed = Math.max(1, Date.now() - started);
        progress.update({ done, sent: recorded - duplicates, rate: (done * 1000) / elapsed });
        if (done !== lastDone) {
          lastDone = done;
          lastMove = Date.now();
        }
        if (done >= total) {
          const candidate = await summarize();
          if (candidate.sent + candidate.failed + candidate.deadLettered >= total) {
            summary = candidate;
            break;
          }
        }
        if (Date.now() - lastMove > stallTimeoutMs) {
          progress.stop();
          const partial = await summarize();
          options.out(formatFunnel(partial));
          options.out(`stalled: no activity reached its outcome for ${Math.round(stallTimeoutMs / 1000)} s; ${total - done} of ${total} have none (see the workers' log lines above, or run with --log-level info)`);
          return { code: 1, summary: partial };
        }
        await delay(pollMs, signal);
      }
    } finally {
      progress.stop();
      await bus.close();
    }

    async function summarize(): Promise<DemoSummary> {
      const sys = system as EmbeddedSystem;
      const durationMs = Date.now() - started;
      const byJourney = new Map(await Promise.all(runs.map(async (r) => [r.journeyId, await records.interactions(r.journeyId)] as const)));
      const dead = await deadLetteredActivities(bus, new Set(index.keys()));
      const journeysFunnel = funnels({ runs, interactionsByJourney: byJourney, deadLettered: dead.activities, failureTypes });
      const provider = repeatedProviderMessages(sys.sim);
      const { duplicates } = await records.interactionCount();
      const sum = (key: 'activities' | 'skippedByCompliance' | 'sent' | 'failed' | 'deadLettered'): number => journeysFunnel.reduce((n, f) => n + f[key], 0);
      const activities = sum('activities');
      return {
        activities,
        skippedByCompliance: sum('skippedByCompliance'),
        sent: sum('sent'),
        failed: sum('failed'),
        deadLettered: sum('deadLettered'),
        providerMessages: provider.messages,
        duplicates: provider.repeats + duplicates,
        dataverseRequests: (await records.requestsOf(DEFAULT_TOKEN_IDENTITY)).requests,
        durationMs,
        activitiesPerSecond: durationMs > 0 ? Math.round((activities * 1000 * 10) / durationMs) / 10 : 0,
        deadLetterReasons: dead.reasons,
        journeys: journeysFunnel,
      };
    }

    options.out(formatFunnel(summary));
    if (options.summaryJson !== undefined) writeFileSync(options.summaryJson, `${JSON.stringify(summary, null, 2)}\n`);
    if (options.serve === true) {
      options.out(
        [
          '',
          'Everything keeps running; Ctrl-C stops it. Connect with:',
          `  SERVICEBUS_CONNECTION_STRING='${system.sb.connectionString}'`,
          `  DATAVERSE_URL=${system.dv.url}     (GET /_emulator/interactions, /_emulator/stats; the Web API under /api/data/v9.2)`,
          `  PROVIDERS_URL=${system.sim.url}     (GET /_simulator/messages, /_simulator/stats)`,
          `  health and metrics: ${health?.url ?? ''}/metrics`,
          `  channels file: ${system.env['CHANNELS_FILE']}`,
        ].join('\n'),
      );
      await new Promise<void>((resolve) => whenAborted(signal, () => resolve()));
    }
    return { code: 0, summary };
  } catch (err) {
    if (err instanceof Interrupted || signal.aborted) {
      options.out('interrupted: stopping the workers and the emulators');
      return { code: 130 };
    }
    options.out(`demo failed: ${errorMessage(err)}`);
    return { code: 1 };
  } finally {
    await stop();
  }
}
