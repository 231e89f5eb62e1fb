/**
 * `channel-relay demo`: the embedded system, the seed's journeys over N contacts (and, if asked, some of those
 * contacts opting out after their activity was created), the three stages in this process, a progress bar until
 * every activity has its final outcome, then the funnel per journey from the emulators' own records. With `serve`,
 * everything stays up until the signal.
 */
import { writeFileSync } from 'node:fs';
import type { Registry } from 'prom-client';
import { DEFAULT_TOKEN_IDENTITY } from '../dataverse/index.js';
import { errorMessage } from '../errors.js';
import type { JourneyRunResult } from '../emulators/dataverse/index.js';
import { createMetricsRegistry, startHealthServer, type HealthServer } from '../health/index.js';
import { Closer, createShutdown } from '../lifecycle.js';
import type { Logger } from '../log.js';
import { startRelay, type RunningRelay, type StageName } from '../relay/index.js';
import { createServiceBusClient } from '../servicebus/index.js';
import { delayUnlessAborted, raceAbort, whenAborted } from '../abort.js';
import { provisionDemoChannels } from './channels.js';
import { formatFunnel } from './format.js';
import { startProgress } from './progress.js';
import {
  activityIndex,
  callbacksFigures,
  conversationFigures,
  DataverseRecords,
  deadLetteredActivities,
  feedbackCounts,
  funnels,
  interactionOutcomes,
  repeatedProviderMessages,
  withoutOutcome,
  type DemoSummary,
  type FeedbackFunnel,
  type FeedbackTypes,
  type Outcomes,
} from './records.js';
import { startEmbeddedSystem, type EmbeddedSystem, type EmbeddedSystemOptions, type FeedbackRates } from './system.js';
import { startTelemetry } from '../telemetry/index.js';

export interface DemoOptions {
  /** Contacts each journey runs over (contacts the seed lacks are generated). */
  contacts: number;
  /** Contacts per journey that opt out after their activity was created, before the workers start. @defaultValue 0 */
  lateOptOuts?: number;
  /** The feedback path too: delivery reports, clicks, keyword replies and opt-outs, at these rates or the demo's (see `EmbeddedSystemOptions.feedback`). @defaultValue false */
  feedback?: boolean | FeedbackRates;
  /**
   * Simulated customers who write to the SMS channel the embedded messaging account bridges, each holding a
   * conversation with the simulated agents (the conversations stage in this process); 0: none. @defaultValue 0
   */
  customers?: number;
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
  /** Failures, a stall, an interruption (stderr). */
  err: (text: string) => void;
  /** Where the progress bar goes (stderr). */
  progressStream: NodeJS.WritableStream & { isTTY?: boolean };
  log: Logger;
  /** Called once the run is done and everything is being served (`serve`): what a caller explores or checks. */
  onServing?: (system: EmbeddedSystem) => void;
  /** Options of the embedded system beyond the rate (latencies, limits, seed, channels). */
  system?: Omit<EmbeddedSystemOptions, 'smsPerSecond' | 'log'>;
  /** How long a simulated customer waits for an answer before it gives up (the run then fails). @defaultValue 60000 */
  customerReplyTimeoutMs?: number;
}

export interface DemoResult {
  /** 0: every activity reached its outcome; 1: the run stalled or failed; 130: interrupted. */
  code: number;
  summary?: DemoSummary;
}

interface DemoJourney {
  journeyId: string;
  name?: string;
  /** The contacts' column that says they opted out of the journey's channel (the tile's ComplianceField). */
  complianceField: string;
}

/** The journeys in the seed, with their names from the seed's journey rows and their channel's compliance field. */
function seedJourneys(system: EmbeddedSystem): DemoJourney[] {
  const rows = (system.seed.rows?.['msdyncrm_customerjourneys'] ?? []) as Array<Record<string, unknown>>;
  return (system.seed.journeys ?? []).map((j) => {
    const row = rows.find((r) => String(r['msdyncrm_customerjourneyid']).toLowerCase() === j.journeyId.toLowerCase());
    const name = row?.['msdyncrm_name'];
    const tile = system.channels.all().find((c) => c.tile?.entityType === j.entityType)?.tile;
    if (tile === undefined)
      throw new Error(
        `no channel in ${system.channels.file} has a tile for ${j.entityType}, the message table of journey ${j.journeyId}`,
      );
    return {
      journeyId: j.journeyId,
      complianceField: tile.complianceField,
      ...(typeof name === 'string' ? { name } : {}),
    };
  });
}

class Interrupted extends Error {}

/** The stages of the send path; the feedback path adds `callbacks`. */
const SEND_PATH: readonly StageName[] = ['intake', 'dispatch', 'recorder'];
/** The Dataverse identity (emulator token) of the demo's callbacks service. */
const CALLBACKS_IDENTITY = 'channel-relay-callbacks';
/** With the feedback path, the records are taken as complete once nothing has changed for this long, ms. */
const SETTLED_MS = 3000;

/** How long an idle session slot waits per accept, and so how long a stop waits for it at most. */
const ACCEPT_WAIT_MS = 2000;
/** How often the dead-letter queues are read while waiting, ms. */
const DEAD_LETTER_READ_MS = 2000;
/** After this long without progress, the activities left are checked for contacts that opted out, ms. */
const QUIET_CHECK_MS = 2000;

/** Messages each simulated customer writes: the agents end a conversation after three (the survey, then the end). */
const CUSTOMER_MESSAGES = 3;

/**
 * Starts the simulated customers on the bridged SMS channel once the workers are ready (a customer's first message
 * meeting a closed callbacks port would be lost, as with Twilio); every second message is an MMS.
 */
async function startCustomers(
  system: EmbeddedSystem,
  customers: number,
  replyTimeoutMs: number | undefined,
  readiness: () => Array<{ name: string; ok: boolean; detail?: string }>,
  signal: AbortSignal,
): Promise<void> {
  const bridged = system.channels.all().find((c) => system.channels.messaging.byRelayChannel(c.name) !== undefined);
  const provider = bridged?.provider as { type: string; accountSid?: string; authToken?: string } | undefined;
  if (bridged === undefined || provider?.type !== 'twilio' || provider.accountSid === undefined)
    throw new Error(`no Twilio channel of ${system.channels.file} is bridged by its messaging section`);
  const deadline = Date.now() + 30_000;
  for (;;) {
    const failing = readiness().filter((c) => !c.ok);
    if (failing.length === 0) break;
    if (Date.now() > deadline)
      throw new Error(
        `the workers are not ready: ${failing.map((c) => `${c.name}: ${c.detail ?? 'not ready'}`).join('; ')}`,
      );
    await delayUnlessAborted(100, signal);
    if (signal.aborted) throw new Interrupted();
  }
  system.sim.startConversations({
    accountSid: provider.accountSid,
    sender: bridged.sender,
    customers,
    messagesPerCustomer: CUSTOMER_MESSAGES,
    attachmentEvery: 2,
    ...(replyTimeoutMs === undefined ? {} : { replyTimeoutMs }),
    ...(provider.authToken === undefined ? {} : { authToken: provider.authToken }),
  });
}

/** Waits until every customer's conversation ended (or gave up); true when nothing moved for `stallTimeoutMs`. */
async function conversationsEnded(
  system: EmbeddedSystem,
  stallTimeoutMs: number,
  pollMs: number,
  check: () => void,
  signal: AbortSignal,
): Promise<boolean> {
  let last = '';
  let lastMove = Date.now();
  for (;;) {
    check();
    const st = system.sim.customerStats();
    // The survey comes after the answer to the last message: a customer is done before it has ended.
    if (st.active === 0 && st.ended + st.stalled === st.customers) return false;
    const now = JSON.stringify(st);
    if (now !== last) {
      last = now;
      lastMove = Date.now();
    } else if (Date.now() - lastMove > stallTimeoutMs) return true;
    await delayUnlessAborted(pollMs, signal);
  }
}

export async function runDemo(options: DemoOptions): Promise<DemoResult> {
  const { log, signal } = options;
  const pollMs = options.pollMs ?? 250;
  const stallTimeoutMs = options.stallTimeoutMs ?? 60_000;
  const closer = new Closer(log);
  // Off unless OTEL_EXPORTER_OTLP_ENDPOINT or APPLICATIONINSIGHTS_CONNECTION_STRING is set; closed (flushed) last.
  closer.add('telemetry', startTelemetry({ service: 'relay', log }));
  const relays: RunningRelay[] = [];
  const checkSignal = (): void => {
    if (signal.aborted) throw new Interrupted();
  };
  try {
    const feedback = options.feedback !== undefined && options.feedback !== false;
    const customers = options.customers ?? 0;
    const system = closer.add(
      'embedded system',
      await startEmbeddedSystem({
        ...(customers > 0 ? { conversations: true } : {}),
        ...options.system,
        feedback: options.feedback ?? false,
        smsPerSecond: options.smsPerSecond ?? 100,
        log,
      }),
    );
    checkSignal();
    await provisionDemoChannels(system, { out: options.out, signal });
    checkSignal();
    const records = new DataverseRecords(system.dv.url, system.admin);
    const journeys = seedJourneys(system);
    if (journeys.length === 0) throw new Error('the seed declares no journeys ("journeys" in the seed file)');

    const started = Date.now();
    const runs: Array<JourneyRunResult & { name?: string }> = [];
    for (const j of journeys) {
      runs.push({
        ...(await records.runJourney(j.journeyId, options.contacts)),
        ...(j.name === undefined ? {} : { name: j.name }),
      });
      checkSignal();
    }
    // Contacts opting out after their activity was created: the relay re-checks and sends them nothing.
    const lateOptOuts = options.lateOptOuts ?? 0;
    for (const [i, run] of runs.entries())
      await records.optOut(
        run.created.slice(0, lateOptOuts).map((a) => a.contactId),
        (journeys[i] as DemoJourney).complianceField,
      );
    const index = activityIndex(runs);
    const total = runs.reduce((n, r) => n + r.created.length, 0);
    options.out(
      `running ${journeys.length === 1 ? 'the sample journey' : `${journeys.length} journeys`} over ${options.contacts} contacts: ${total} activities`,
    );

    const registry: Registry = createMetricsRegistry({ labels: { service: 'demo' } });
    // A short operation timeout on loopback: an idle session slot's accept (which a stop waits for) ends within it.
    const relay = (stages: readonly StageName[], tokenIdentity: string): RunningRelay => {
      const started = startRelay({
        stages,
        config: system.config,
        ...(system.callbackKeys ? { callbackKeys: system.callbackKeys } : {}),
        channels: system.channels,
        log,
        registry,
        serviceBus: { retry: { timeoutInMs: ACCEPT_WAIT_MS } },
        dataverse: { tokenIdentity },
        // The conversations stage validates the messaging account against the emulated identity platform.
        ...(system.identityCa === undefined ? {} : { identityCa: system.identityCa }),
      });
      relays.push(started);
      return closer.add(`relay ${stages.join(',')}`, started);
    };
    relay(SEND_PATH, DEFAULT_TOKEN_IDENTITY);
    // The callbacks service under its own Dataverse identity, so that the send path's requests are counted apart.
    if (feedback || customers > 0) relay(['callbacks'], CALLBACKS_IDENTITY);
    if (customers > 0) {
      relay(['conversations'], DEFAULT_TOKEN_IDENTITY);
      await startCustomers(
        system,
        customers,
        options.customerReplyTimeoutMs,
        () => relays.flatMap((r) => r.readiness()),
        signal,
      );
    }
    const health: HealthServer | undefined =
      options.serve === true
        ? closer.add(
            'health server',
            await startHealthServer({
              port: 0,
              host: '127.0.0.1',
              registry,
              readiness: () => relays.flatMap((r) => r.readiness()),
              log,
            }),
          )
        : undefined;

    /** A loop or server that stopped on its own (the callbacks port taken, a client closed) ends the run with its reason. */
    const failOnDeadLoops = (): void => {
      const dead = relays.flatMap((r) => r.deadLoops());
      if (dead.length > 0)
        throw new Error(`a worker loop stopped: ${dead.map((d) => `${d.name}: ${d.reason}`).join('; ')}`);
    };
    const bus = createServiceBusClient({ connectionString: system.sb.connectionString });
    closer.add('records client', () => bus.close());
    const queues = Object.values(system.config.serviceBus.queues);
    const failureTypes = new Set(
      system.channels.all().flatMap((c) => (c.failureResponseType === undefined ? [] : [c.failureResponseType])),
    );
    const withCallbacks = system.channels.all().filter((c) => c.callbacks !== undefined);
    const feedbackTypes: FeedbackTypes = {
      delivered: new Set(withCallbacks.map((c) => c.callbacks?.deliveredResponseType as string)),
      opened: new Set(withCallbacks.map((c) => c.callbacks?.openedResponseType as string)),
      keyword: new Set(
        withCallbacks.flatMap((c) => (c.tile?.responseTypes ?? []).filter((t) => t.custom).map((t) => t.id)),
      ),
    };

    /** Every activity's outcome from the records; the contacts of those without one are checked for opting out. */
    const outcomes = async (): Promise<{ outcomes: Outcomes; reasons: Record<string, Record<string, number>> }> => {
      const interactions = (await Promise.all(runs.map((r) => records.interactions(r.journeyId)))).flat();
      const dead = await deadLetteredActivities(bus, queues, new Set(index.keys()));
      const o: Outcomes = {
        ...interactionOutcomes(interactions, failureTypes),
        deadLettered: dead.activities,
        optedOut: new Set(),
      };
      const optedOut = new Set<string>();
      for (const j of journeys) {
        const pending = withoutOutcome(
          runs.filter((r) => r.journeyId === j.journeyId),
          o,
        );
        const contacts = await records.optedOut(
          pending.map((p) => p.contactId),
          j.complianceField,
        );
        for (const p of pending) if (contacts.has(p.contactId.toLowerCase())) optedOut.add(p.activityRowId);
      }
      return { outcomes: { ...o, optedOut }, reasons: dead.reasons };
    };

    const summarize = async (durationMs: number): Promise<DemoSummary> => {
      const { outcomes: o, reasons } = await outcomes();
      const journeysFunnel = funnels(runs, o);
      let feedbackTotal: FeedbackFunnel | undefined;
      if (feedback) {
        feedbackTotal = { delivered: 0, opened: 0, keywordReplies: 0, optOuts: 0 };
        for (const [i, f] of journeysFunnel.entries()) {
          const run = runs[i] as JourneyRunResult;
          const ids = new Set(run.created.map((a) => a.activityRowId.toLowerCase()));
          const counts = feedbackCounts(await records.interactions(run.journeyId), ids, feedbackTypes);
          // Opted out by a reply: the contacts reached whose compliance field is set now, less those who opted out before any message.
          const optedOutNow = await records.optedOut(
            run.created.map((a) => a.contactId),
            (journeys[i] as DemoJourney).complianceField,
          );
          f.feedback = { ...counts, optOuts: optedOutNow.size - f.optedOutAfterCreation };
          for (const key of ['delivered', 'opened', 'keywordReplies', 'optOuts'] as const)
            feedbackTotal[key] += f.feedback[key];
        }
      }
      const provider = repeatedProviderMessages(system.sim);
      const { duplicates } = await records.interactionCount();
      const sum = (
        key: 'activities' | 'skippedByCompliance' | 'optedOutAfterCreation' | 'sent' | 'failed' | 'deadLettered',
      ): number => journeysFunnel.reduce((n, f) => n + f[key], 0);
      const activities = sum('activities');
      return {
        activities,
        skippedByCompliance: sum('skippedByCompliance'),
        optedOutAfterCreation: sum('optedOutAfterCreation'),
        sent: sum('sent'),
        failed: sum('failed'),
        deadLettered: sum('deadLettered'),
        providerMessages: provider.messages,
        duplicates: provider.repeats + duplicates,
        dataverseRequests: (await records.requestsOf(DEFAULT_TOKEN_IDENTITY)).requests,
        ...(feedback ? callbacksFigures(await records.requestsOf(CALLBACKS_IDENTITY), feedbackTotal) : {}),
        durationMs,
        activitiesPerSecond: durationMs > 0 ? Math.round((activities * 1000 * 10) / durationMs) / 10 : 0,
        deadLetterReasons: reasons,
        journeys: journeysFunnel,
        ...(feedbackTotal === undefined ? {} : { feedback: feedbackTotal }),
      };
    };
    const finished = (s: DemoSummary): boolean => s.sent + s.failed + s.deadLettered + s.optedOutAfterCreation >= total;

    const progress = startProgress({ total, stream: options.progressStream });
    let summary: DemoSummary | undefined;
    try {
      let lastDone = -1;
      let lastMove = Date.now();
      let lastCheck = 0;
      let deadLettered = 0;
      let lastDeadLetterRead = 0;
      let optedOut = 0;
      let doneAt = Date.now();
      while (summary === undefined) {
        checkSignal();
        failOnDeadLoops();
        const { recorded, duplicates } = await records.interactionCount();
        if (Date.now() - lastDeadLetterRead >= DEAD_LETTER_READ_MS) {
          deadLettered = (await deadLetteredActivities(bus, queues, new Set(index.keys()))).activities.size;
          lastDeadLetterRead = Date.now();
        }
        const done = Math.min(total, recorded - duplicates + deadLettered + optedOut);
        progress.update({ done, sent: recorded - duplicates, rate: (done * 1000) / Math.max(1, Date.now() - started) });
        if (done !== lastDone) {
          lastDone = done;
          lastMove = Date.now();
          doneAt = lastMove;
        }
        // The full reading (every outcome, opted-out contacts) when the count says done, or once after a quiet spell.
        const quiet = Date.now() - lastMove >= QUIET_CHECK_MS && lastCheck < lastMove;
        if (done >= total || quiet) {
          lastCheck = Date.now();
          const candidate = await summarize(doneAt - started);
          optedOut = candidate.optedOutAfterCreation;
          if (finished(candidate)) summary = candidate;
          else if (done >= total) lastMove = Date.now();
        }
        if (summary === undefined && Date.now() - lastMove > stallTimeoutMs) {
          progress.stop();
          const partial = await summarize(Date.now() - started);
          const missing = total - partial.sent - partial.failed - partial.deadLettered - partial.optedOutAfterCreation;
          options.out(formatFunnel(partial));
          options.err(
            `stalled: no activity reached its outcome for ${Math.round(stallTimeoutMs / 1000)} s; ${missing} of ${total} have none (run again with --log-level info to see the workers' log lines)`,
          );
          return { code: 1, summary: partial };
        }
        if (summary === undefined) await delayUnlessAborted(pollMs, signal);
      }
    } finally {
      progress.stop();
    }

    if (customers > 0) {
      options.out(`waiting for ${customers} customers' conversations to end …`);
      const stalled = await conversationsEnded(
        system,
        stallTimeoutMs,
        pollMs,
        () => {
          checkSignal();
          failOnDeadLoops();
        },
        signal,
      );
      if (stalled) {
        summary = { ...summary, conversations: conversationFigures(system.sim, system.dl!) };
        options.out(formatFunnel(summary));
        options.err(
          `stalled: no customer's conversation moved for ${Math.round(stallTimeoutMs / 1000)} s (${JSON.stringify(system.sim.customerStats())})`,
        );
        return { code: 1, summary };
      }
      const { stalled: gaveUp, customers: all } = system.sim.customerStats();
      if (gaveUp > 0) {
        summary = { ...summary, conversations: conversationFigures(system.sim, system.dl!) };
        options.out(formatFunnel(summary));
        options.err(
          `stalled: ${gaveUp} of ${all} customers gave up waiting for an answer (${JSON.stringify(system.sim.customerStats())}; run again with --log-level info to see the workers' log lines)`,
        );
        return { code: 1, summary };
      }
    }
    if (feedback) {
      // Delivery reports, clicks and replies come after the sends: wait until the simulators have sent them all and
      // the records (interactions, provider messages such as opt-out confirmations) stop changing.
      options.out('waiting for delivery reports, clicks and replies …');
      await raceAbort(system.sim.callbacksIdle(), signal).catch(() => checkSignal());
      let last = '';
      let since = Date.now();
      while (Date.now() - since < SETTLED_MS) {
        checkSignal();
        failOnDeadLoops();
        const now = JSON.stringify([
          await records.interactionCount(),
          system.sim.messages().length,
          system.sim.callbackStats().pending,
        ]);
        if (now !== last) {
          last = now;
          since = Date.now();
        }
        await delayUnlessAborted(pollMs, signal);
      }
      summary = await summarize(summary.durationMs);
    } else if (customers > 0) {
      // The provider messages of the conversations came after the activities' outcomes.
      summary = await summarize(summary.durationMs);
    }
    if (customers > 0) summary = { ...summary, conversations: conversationFigures(system.sim, system.dl!) };
    options.out(formatFunnel(summary));
    if (options.summaryJson !== undefined) writeFileSync(options.summaryJson, `${JSON.stringify(summary, null, 2)}\n`);
    if (options.serve === true) {
      options.out(
        [
          '',
          'Everything keeps running; Ctrl-C stops it. Connect with:',
          `  SERVICEBUS_CONNECTION_STRING='${system.sb.connectionString}'`,
          `  DATAVERSE_URL=${system.dv.url}     (GET /_emulator/interactions, /_emulator/stats; the Web API under /api/data/v9.2)`,
          `  PROVIDERS_URL=${system.sim.url}     (GET /_simulator/messages, /_simulator/stats, /_simulator/callbacks, /_simulator/customers)`,
          ...(system.dl === undefined
            ? []
            : [`  DIRECTLINE_URL=${system.dl.url}     (the agents' side: GET /_simulator/conversations)`]),
          ...(system.callbacksUrl === undefined
            ? []
            : [
                `  CALLBACKS_PUBLIC_URL=${system.callbacksUrl}     (the callbacks service: /callbacks/<channel>/…, /l/<code>)`,
              ]),
          `  health and metrics: ${health?.url ?? ''}/metrics`,
          `  channels file: ${system.env['CHANNELS_FILE']}`,
        ].join('\n'),
      );
      options.onServing?.(system);
      await new Promise<void>((resolve) => whenAborted(signal, () => resolve()));
    }
    return { code: 0, summary };
  } catch (err) {
    if (err instanceof Interrupted || signal.aborted) {
      options.err('interrupted: stopping the workers and the emulators');
      return { code: 130 };
    }
    options.err(`demo failed: ${errorMessage(err)}`);
    return { code: 1 };
  } finally {
    const shutdown = createShutdown({
      stopIntake: async () => void (await Promise.all(relays.map((r) => r.stopIntake()))),
      drain: async (s) => void (await Promise.all(relays.map((r) => r.drain(s)))),
      closer,
      budgetMs: 15_000,
      log,
    });
    await shutdown(signal.aborted ? 'interrupted' : 'done');
  }
}
