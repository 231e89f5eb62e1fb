/**
 * Wiring: one relay process running one or more stages on the real clients. Configuration in, a running relay out,
 * with readiness and the stop → drain → close steps an entry point hands to `createShutdown`. Nothing here reads
 * the environment, installs signal handlers or exits: that is `main.ts`, for the entry points in `workers/`.
 */
import { errorMessage } from '../errors.js';
import type { ServiceBusClient } from '@azure/service-bus';
import type { Registry } from 'prom-client';
import { providerSettings, type ChannelRegistry, type Channel } from '../channels/index.js';
import type { RelayConfig } from '../config/index.js';
import {
  activityFromRow,
  closeDataverseClient,
  createDataverseReads,
  createGovernor,
  createInteractionWriter,
  dataverseClientFromConfig,
  decodeRemoteContext,
  registerGovernorMetrics,
  type DataverseClientExtras,
  type GovernorState,
  type GovernorOptions,
} from '../dataverse/index.js';
import type { ReadinessCheck } from '../health/index.js';
import { Closer } from '../lifecycle.js';
import { areaLogger, type Logger } from '../log.js';
import { DispatchStage, type DispatchStats, IntakeStage, type IntakeStats, RecorderStage, type RecorderStats } from '../pipeline/index.js';
import { startCallbacksStage, type StartedCallbacks } from './callbacks.js';
import type { InteractionMessage, OutboundMessage } from '../pipeline/index.js';
import { statusCallbackUrls } from '../correlation/index.js';
import { createProvider, type Provider } from '../providers/index.js';
import { createQueueSender, serviceBusClientFromConfig, startBatchLoop, startSessionLoop, type ReceiveLoop } from '../servicebus/index.js';
import type { CreateServiceBusClientOptions } from '../servicebus/index.js';

import { callbackKeysFor, needsOf, STAGES, type StageName } from './requirements.js';


export interface RelayOptions {
  /** Which stages this process runs (each at most once). */
  stages: readonly StageName[];
  config: RelayConfig;
  /** The channels; required by every stage but the recorder (see `STAGE_NEEDS`). */
  channels?: ChannelRegistry;
  log: Logger;
  /** Counters of every stage and of the Service Bus layer. @defaultValue none */
  registry?: Registry;
  /** Service Bus client options beyond the connection (credential, retry). @defaultValue {} */
  serviceBus?: Omit<CreateServiceBusClientOptions, 'connectionString' | 'namespace'>;
  /** Dataverse client extras beyond the configuration (credential, token identity). @defaultValue {} */
  dataverse?: Omit<DataverseClientExtras, 'onResponse'>;
  /**
   * Overrides of the service-protection governor of the Dataverse identity.
   * @defaultValue the governor's defaults, with `timeoutMs` = `dataverse.timeoutMs`, `windowMs` = `dataverse.limitsWindowMs`,
   * `requestBudget` and `executionBudgetMs` = `dataverse.requestBudget` and `dataverse.executionBudgetMs`
   */
  governor?: GovernorOptions;
  /** Provider factory (tests inject fakes), called once per channel; dispatch and the callbacks' Twilio fetches share what it makes. @defaultValue createProvider with the channel's timeout */
  provider?: (channel: Channel) => Provider;
}

export interface RelayStats {
  /** The Dataverse identity's governor (intake and recorder): 429s seen, calls, concurrency, pause. */
  dataverse?: GovernorState;
  intake?: IntakeStats;
  dispatch?: DispatchStats;
  recorder?: RecorderStats;
}

export interface RunningRelay {
  readonly stages: readonly StageName[];
  stats(): RelayStats;
  /** Readiness checks for `/readyz`: one per receive loop, false once stopping. */
  readiness(): ReadinessCheck[];
  /** Loops that stopped on their own (not by `stopIntake`), with why: the process should exit and be restarted. */
  deadLoops(): Array<{ name: string; reason: string }>;
  /** Stops receiving on every loop. */
  stopIntake(): Promise<void>;
  /** Waits for the batches in flight; the signal tells them to hand their messages back. */
  drain(signal: AbortSignal): Promise<void>;
  /** Closes loops, senders, clients. Idempotent. */
  close(): Promise<void>;
}

/**
 * Starts the given stages. Throws `TypeError` for a provider setting the adapter refuses (naming channel and setting)
 * and for missing channels, `ConfigError` for missing or bad callback keys (see `callbackKeysFor`).
 */
export function startRelay(options: RelayOptions): RunningRelay {
  const { config, channels, registry } = options;
  /** Where the Service Bus layer counts (nothing without a registry). */
  const counting = registry ? { metrics: registry } : {};
  const stages = [...new Set(options.stages)];
  if (stages.length === 0) throw new TypeError(`startRelay: name at least one stage of ${STAGES.join(', ')}`);
  const needs = needsOf(stages);
  if (needs.channels && channels === undefined) throw new TypeError(`startRelay: stages ${stages.join(', ')} need channels`);
  // Before anything is opened: bad keys stop start-up with nothing to close.
  const callbackKeys = callbackKeysFor(config, channels, stages);
  const log = areaLogger(options.log, 'relay', { stages: stages.join(',') });
  const closer = new Closer(log);
  const loops: Array<{ name: StageName; loop: ReceiveLoop }> = [];
  const stats: Partial<Record<StageName | 'dataverse', () => unknown>> = {};
  /** Told first when stopping: stages end their waits (backoff, Retry-After) and hand back what waits. */
  const onStop: Array<() => void> = [];
  let stopping = false;

  const bus: ServiceBusClient = serviceBusClientFromConfig(config, options.serviceBus ?? {});
  const queues = config.serviceBus.queues;
  const { requestBudget, executionBudgetMs } = config.dataverse;
  const budgets = { ...(requestBudget === undefined ? {} : { requestBudget }), ...(executionBudgetMs === undefined ? {} : { executionBudgetMs }) };
  const governor = needs.dataverse ? createGovernor({ timeoutMs: config.dataverse.timeoutMs, windowMs: config.dataverse.limitsWindowMs, ...budgets, ...options.governor }) : undefined;
  const dataverse = governor ? dataverseClientFromConfig(config, { ...(options.dataverse ?? {}), onResponse: governor.observe }) : undefined;
  if (governor) {
    stats.dataverse = () => governor.state();
    if (registry) registerGovernorMetrics(registry, governor);
  }
  // Closed last-added first: loops, then senders, then the clients.
  closer.add('service bus client', () => bus.close());
  if (dataverse && governor) {
    closer.add('dataverse client', () => {
      governor.close();
      closeDataverseClient(dataverse);
    });
  }
  // Loops start receiving the moment they are made, so they are made last, once every stage and every provider
  // setting has been built and checked: a bad setting stops start-up before a single message is locked.
  const starters: Array<{ name: StageName; start: () => ReceiveLoop }> = [];
  const addLoop = (name: StageName, start: () => ReceiveLoop): void => void starters.push({ name, start });
  /** The start of a batch loop on `queue` with a stage's batch settings (`intake` or `recorder`), handing each batch to `stage`. */
  const batchLoop =
    (queue: string, settings: RelayConfig['intake'], stage: Pick<IntakeStage | RecorderStage, 'handle'>, rawBody = false) =>
    (): ReceiveLoop =>
      startBatchLoop({
        client: bus,
        queue,
        rawBody,
        maxBatch: settings.batchSize,
        maxWaitMs: settings.maxWaitMs,
        concurrency: settings.concurrency,
        handler: (batch, signal) => stage.handle(batch, signal),
        log: options.log,
        ...counting,
      });
  let callbacks: StartedCallbacks | undefined;
  // The provider adapters, one per channel, shared by dispatch (sends) and callbacks (Twilio message fetches).
  const providers = new Map<string, Provider>();
  const makeProvider = options.provider ?? ((channel: Channel) => createProvider(providerSettings(channel), { timeoutMs: channel.timeoutMs, log: options.log }));
  /** The channel's adapter, made on first use and kept; a bad setting throws a `TypeError` naming the channel. */
  const providerOf = (channel: Channel): Provider => {
    let provider = providers.get(channel.name);
    if (provider === undefined) {
      try {
        provider = makeProvider(channel);
      } catch (err) {
        throw new TypeError(`channel "${channel.name}" in ${channels?.file ?? 'the channels file'}: ${errorMessage(err)}`, { cause: err });
      }
      providers.set(channel.name, provider);
    }
    return provider;
  };

  try {
    if (stages.includes('intake') && dataverse && governor && channels) {
      const outbound = createQueueSender<OutboundMessage>(bus, queues.outbound, { log: options.log, ...counting });
      closer.add('outbound sender', outbound);
      const stage = new IntakeStage({
        decode: decodeRemoteContext,
        activityFromRow,
        reads: createDataverseReads(dataverse, { governor }),
        outbound,
        channels,
        log: options.log,
        callTimeoutMs: config.dataverse.timeoutMs,
        ...(callbackKeys ? { callbackKeys } : {}),
        ...(registry ? { registry } : {}),
      });
      stats.intake = () => stage.stats();
      onStop.push(() => stage.stop());
      // Raw bodies: the decoder sees what Dataverse sent.
      addLoop('intake', batchLoop(queues.activities, config.intake, stage, true));
    }
    if (stages.includes('dispatch') && channels) {
      const interactions = createQueueSender<InteractionMessage>(bus, queues.interactions, { log: options.log, ...counting });
      closer.add('interactions sender', interactions);
      // Adapters are made up front, so that a bad provider setting stops start-up instead of the first send.
      for (const channel of channels.all()) providerOf(channel);
      const stage = new DispatchStage({
        channels,
        provider: providerOf,
        interactions,
        log: options.log,
        guardMs: config.dispatch.guardMs,
        retry: { attempts: config.dispatch.retry.attempts, lostAnswerLookupDelayMs: config.dispatch.lostAnswerLookupDelayMs },
        ...(callbackKeys ? { statusCallbackUrl: statusCallbackUrls(callbackKeys) } : {}),
        ...(registry ? { registry } : {}),
      });
      stats.dispatch = () => stage.stats();
      // A provider call in flight when the drain budget runs out is let finish (its own timeout bounds it), so that its
      // message is recorded rather than handed back and sent again.
      const callGraceMs = Math.max(...channels.all().map((c) => c.timeoutMs), 0) + 2_000;
      addLoop('dispatch', () =>
        startSessionLoop({
          client: bus,
          queue: queues.outbound,
          maxSessions: config.dispatch.maxSessions,
          sessionIdleMs: config.dispatch.sessionIdleMs,
          maxBatch: DISPATCH_MAX_BATCH,
          maxBatchOf: (sessionId) => dispatchBatchSize(channels.all().filter((c) => c.senderKey === sessionId)),
          maxWaitMs: 200,
          closeGraceMs: callGraceMs,
          createSessionHandler: stage.sessionHandler,
          log: options.log,
          ...counting,
        }),
      );
    }
    if (stages.includes('recorder') && dataverse && governor) {
      const stage = new RecorderStage({
        writer: createInteractionWriter(dataverse, governor, { batchSize: config.recorder.batchSize }),
        log: options.log,
        callTimeoutMs: config.dataverse.timeoutMs,
        ...(registry ? { registry } : {}),
      });
      stats.recorder = () => stage.stats();
      onStop.push(() => stage.stop());
      addLoop('recorder', batchLoop(queues.interactions, config.recorder, stage));
    }
    if (stages.includes('callbacks') && dataverse && governor && channels && callbackKeys) {
      callbacks = startCallbacksStage({ bus, dataverse, governor, keys: callbackKeys, config, channels, provider: providerOf, log: options.log, ...(registry ? { registry } : {}), closer });
      onStop.push(() => callbacks?.stage.stop());
    }
    for (const { name, start } of starters) loops.push({ name, loop: start() });
  } catch (err) {
    // Nothing has been handled yet: loops that did start have received at most one batch, which close hands back.
    void Promise.all(loops.map(({ loop }) => loop.close()))
      .then(() => closer.close())
      .catch(() => undefined);
    throw err;
  }
  // The loops close together (each may wait its close grace for work in flight), before the senders and clients.
  closer.add('receive loops', async () => {
    const results = await Promise.allSettled(loops.map(({ loop }) => loop.close()));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  });
  log.info('relay started', { queues, channels: channels?.all().map((c) => c.name) ?? [] });

  return {
    stages,
    stats: () => Object.fromEntries(Object.entries(stats).map(([k, f]) => [k, f()])) as RelayStats,
    readiness: () => [
      { name: 'accepting work', ok: !stopping, ...(stopping ? { detail: 'shutting down' } : {}) },
      ...loops.map(({ name, loop }) => loopCheck(`${name} loop (${loop.queue})`, loop, stopping)),
      ...(callbacks ? [callbacks.check(stopping)] : []),
    ],
    deadLoops: () =>
      stopping
        ? []
        : [
            ...loops.flatMap(({ name, loop }) => {
              const h = loop.health();
              return h.running ? [] : [{ name: `${name} loop (${loop.queue})`, reason: h.lastError ?? 'stopped' }];
            }),
            ...(callbacks?.failed() ? [{ name: 'callbacks server', reason: callbacks.failed() as string }] : []),
          ],
    stopIntake: async () => {
      stopping = true;
      for (const stop of onStop) stop();
      await Promise.all(loops.map(({ loop }) => loop.stop()));
    },
    drain: async (signal) => {
      await Promise.all(loops.map(({ loop }) => loop.drain(signal)));
    },
    close: () => closer.close(),
  };
}

/** Errors in a row after which a loop counts as not ready (the bus unreachable, the queue missing). */
const UNHEALTHY_AFTER_ERRORS = 3;

/** A loop is ready while it runs and its receives succeed; the detail says why not. */
function loopCheck(name: string, loop: ReceiveLoop, stopping: boolean): ReadinessCheck {
  const h = loop.health();
  if (stopping) return { name, ok: false, detail: 'shutting down' };
  if (!h.running) return { name, ok: false, detail: `stopped${h.lastError === undefined ? '' : `: ${h.lastError}`}` };
  if (h.consecutiveErrors >= UNHEALTHY_AFTER_ERRORS) return { name, ok: false, detail: `${h.consecutiveErrors} receives failed in a row: ${h.lastError ?? 'unknown error'}` };
  return { name, ok: true };
}

/** Most messages one dispatch batch takes from a session. */
const DISPATCH_MAX_BATCH = 100;
/** A dispatch batch holds what its sender may send in this long, so that a stop hands little back. */
const DISPATCH_BATCH_SPAN_MS = 2_000;

/**
 * The batch size of one sender's session: its rate for {@link DISPATCH_BATCH_SPAN_MS} (a 1-per-second sender takes 2
 * at a time, a 50-per-second one 100), so that a batch ends within seconds whatever the sender's limit and a
 * shutdown hands back few messages (each hand-back counts toward MaxDeliveryCount).
 */
export function dispatchBatchSize(sharing: readonly Channel[]): number {
  if (sharing.length === 0) return DISPATCH_MAX_BATCH;
  const perSpan = Math.min(...sharing.map((c) => Math.ceil((c.rateLimit.messages * DISPATCH_BATCH_SPAN_MS) / c.rateLimit.intervalMs)));
  return Math.max(1, Math.min(DISPATCH_MAX_BATCH, perSpan));
}
