/**
 * One relay process running one or more stages on the real clients: configuration in, a running relay out, with
 * readiness and the stop → drain → close steps an entry point hands to `createShutdown`. Each stage is wired in its
 * own file (intake.ts, dispatch.ts, recorder.ts, callbacks.ts); this one holds what they share: the Service Bus and
 * Dataverse clients, the provider adapters, the receive loops and the close order. Nothing here reads the
 * environment, installs signal handlers or exits: that is `main.ts`, for the entry points in `workers/`.
 */
import type { ServiceBusClient } from '@azure/service-bus';
import type { Registry } from 'prom-client';
import { providerSettings, type ChannelRegistry, type Channel } from '../channels/index.js';
import type { RelayConfig } from '../config/index.js';
import type { CallbackKeys } from '../correlation/index.js';
import {
  closeDataverseClient,
  createGovernor,
  dataverseClientFromConfig,
  registerGovernorMetrics,
  type DataverseClientExtras,
  type GovernorState,
  type GovernorOptions,
} from '../dataverse/index.js';
import { ConfigError, isConfigError } from '../errors.js';
import { createDirectLineClient } from '../directline/index.js';
import type { ReadinessCheck } from '../health/index.js';
import { Closer } from '../lifecycle.js';
import { areaLogger, type Logger } from '../log.js';
import type { ConversationsStats, DispatchStats, IntakeStats, MediaFetcher, RecorderStats } from '../pipeline/index.js';
import { createProvider, mediaFetcher, type Provider } from '../providers/index.js';
import { serviceBusClientFromConfig, watchLoopHealth, type ReceiveLoop } from '../servicebus/index.js';
import type { CreateServiceBusClientOptions } from '../servicebus/index.js';
import { startCallbacksStage, type StartedCallbacks } from './callbacks.js';
import { wireConversations, type DirectLineClientFactory } from './conversations.js';
import { countSessionsHeld } from './sessions-gauge.js';
import { wireDispatch } from './dispatch.js';
import { wireIntake } from './intake.js';
import { wireRecorder } from './recorder.js';
import { callbackKeysFor, needsOf, STAGES, type StageName } from './requirements.js';
import type { RelayParts, WiredStage } from './wiring.js';

export interface RelayOptions {
  /** Which stages this process runs (each at most once). */
  stages: readonly StageName[];
  config: RelayConfig;
  /** The channels; required by every stage but the recorder (see `STAGE_NEEDS`). */
  channels?: ChannelRegistry;
  /**
   * The callback keys as the configuration loader parsed them (`LoadedConfig.callbackKeys`), taken as given; required
   * when `config.callbacks.signingKeys` is set, and by the stages that need them (see `callbackKeysFor`).
   * @defaultValue none
   */
  callbackKeys?: CallbackKeys;
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
   * `requestBudget`, `executionBudgetMs` and `maxConcurrency` = `dataverse.requestBudget`, `dataverse.executionBudgetMs`
   * and `dataverse.maxConcurrency`
   */
  governor?: GovernorOptions;
  /** Provider factory (tests inject fakes), called once per channel; dispatch and the callbacks' Twilio fetches share what it makes. @defaultValue createProvider with the channel's timeout */
  provider?: (channel: Channel) => Provider;
  /** The conversations stage's Direct Line client of an account. @defaultValue createDirectLineClient (src/directline) */
  directLineClient?: DirectLineClientFactory;
  /**
   * The conversations stage's fetcher of a relay channel's customer attachments. @defaultValue the provider's
   * `mediaFetcher` (Twilio media, Telegram files), one per channel, with the channel's timeout
   */
  media?: (channel: Channel) => MediaFetcher | undefined;
  /**
   * Certificates (PEM) the conversations stage trusts for the identity platform when it validates the messaging
   * accounts, instead of the system's (an emulator's self-signed one). @defaultValue the system's
   */
  identityCa?: string;
}

export interface RelayStats {
  /** The Dataverse identity's governor (intake and recorder): 429s seen, calls, concurrency, pause. */
  dataverse?: GovernorState;
  intake?: IntakeStats;
  dispatch?: DispatchStats;
  recorder?: RecorderStats;
  conversations?: ConversationsStats;
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

/** One media fetcher per channel, made on first use and kept (undefined for a provider without customer media). */
function mediaFetchers(log: Logger): (channel: Channel) => MediaFetcher | undefined {
  const made = new Map<string, MediaFetcher | undefined>();
  return (channel) => {
    if (!made.has(channel.name))
      made.set(channel.name, mediaFetcher(providerSettings(channel), { timeoutMs: channel.timeoutMs, log }));
    return made.get(channel.name);
  };
}

/**
 * Starts the given stages. Throws `ConfigError` for a provider setting the adapter refuses (naming channel, file and
 * key) and for missing callback keys (see `callbackKeysFor`); `TypeError` for missing channels and for configured but
 * unparsed callback keys (programming errors of the caller).
 */
export function startRelay(options: RelayOptions): RunningRelay {
  const { config, channels, registry } = options;
  const stages = [...new Set(options.stages)];
  if (stages.length === 0) throw new TypeError(`startRelay: name at least one stage of ${STAGES.join(', ')}`);
  const needs = needsOf(stages);
  if (needs.channels && channels === undefined)
    throw new TypeError(`startRelay: stages ${stages.join(', ')} need channels`);
  if (config.callbacks.signingKeys !== undefined && options.callbackKeys === undefined) {
    throw new TypeError(
      'startRelay: config.callbacks.signingKeys is set but callbackKeys is not: pass the keys the loader parsed (LoadedConfig.callbackKeys)',
    );
  }
  // Before anything is opened: missing keys stop start-up with nothing to close.
  const callbackKeys = callbackKeysFor(options.callbackKeys, channels, stages);
  const log = areaLogger(options.log, 'relay', { stages: stages.join(',') });
  const closer = new Closer(log);
  const loops: Array<{ name: StageName; loop: ReceiveLoop }> = [];
  const stats: Partial<Record<StageName | 'dataverse', () => unknown>> = {};
  /** Told first when stopping: stages end their waits (backoff, Retry-After) and hand back what waits. */
  const onStop: Array<() => void> = [];
  /** The stages' own readiness checks beyond their loops. */
  const wiredChecks: Array<(stopping: boolean) => ReadinessCheck[]> = [];
  let stopping = false;

  const bus: ServiceBusClient = serviceBusClientFromConfig(config, options.serviceBus ?? {});
  const queues = config.serviceBus.queues;
  const governor = needs.dataverse
    ? createGovernor({
        timeoutMs: config.dataverse.timeoutMs,
        windowMs: config.dataverse.limitsWindowMs,
        requestBudget: config.dataverse.requestBudget,
        executionBudgetMs: config.dataverse.executionBudgetMs,
        maxConcurrency: config.dataverse.maxConcurrency,
        ...options.governor,
      })
    : undefined;
  const dataverse = governor
    ? dataverseClientFromConfig(config, { ...(options.dataverse ?? {}), onResponse: governor.observe })
    : undefined;
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
  const parts: RelayParts = { config, bus, log: options.log, ...(registry ? { registry } : {}), closer };
  let callbacks: StartedCallbacks | undefined;
  const makeProvider =
    options.provider ??
    ((channel: Channel) =>
      createProvider(providerSettings(channel), { timeoutMs: channel.timeoutMs, log: options.log }));
  const providerOf = providerAdapters(makeProvider, channels);

  try {
    // Loops start receiving the moment they are made, so they are made last, once every stage and every provider
    // setting has been built and checked: a bad setting stops start-up before a single message is locked.
    const wired: Array<{ name: StageName; stage: WiredStage<unknown> }> = [];
    if (stages.includes('intake') && dataverse && governor && channels)
      wired.push({ name: 'intake', stage: wireIntake({ ...parts, dataverse, governor, channels, callbackKeys }) });
    if (stages.includes('dispatch') && channels)
      wired.push({ name: 'dispatch', stage: wireDispatch({ ...parts, channels, callbackKeys, provider: providerOf }) });
    if (stages.includes('recorder') && dataverse && governor)
      wired.push({ name: 'recorder', stage: wireRecorder({ ...parts, dataverse, governor }) });
    if (stages.includes('conversations') && channels) {
      wired.push({
        name: 'conversations',
        stage: wireConversations({
          ...parts,
          channels,
          directLineClient: options.directLineClient ?? createDirectLineClient,
          media: options.media ?? mediaFetchers(options.log),
          ...(options.identityCa === undefined ? {} : { identityCa: options.identityCa }),
        }),
      });
    }
    for (const { name, stage } of wired) {
      stats[name] = () => stage.stats();
      if (stage.stop) onStop.push(() => stage.stop?.());
      if (stage.readiness) wiredChecks.push((stopping) => stage.readiness?.(stopping) ?? []);
    }
    if (stages.includes('callbacks') && dataverse && governor && channels && callbackKeys) {
      callbacks = startCallbacksStage({
        bus,
        dataverse,
        governor,
        keys: callbackKeys,
        config,
        channels,
        provider: providerOf,
        log: options.log,
        ...(registry ? { registry } : {}),
        closer,
      });
      onStop.push(() => callbacks?.stage.stop());
    }
    for (const { name, stage } of wired) loops.push({ name, loop: stage.loop() });
    if (registry) for (const { loop } of loops) watchLoopHealth(registry, loop.queue, () => loop.health());
  } catch (err) {
    // Nothing has been handled yet: loops that did start have received at most one batch, which close hands back.
    void Promise.all(loops.map(({ loop }) => loop.close()))
      .then(() => closer.close())
      .catch(() => undefined);
    throw err;
  }
  const uncountSessions = registry
    ? countSessionsHeld(
        registry,
        loops.map(({ loop }) => loop),
      )
    : undefined;
  // The loops close together (each may wait its close grace for work in flight), before the senders and clients.
  closer.add('receive loops', async () => {
    uncountSessions?.();
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
      ...wiredChecks.flatMap((check) => check(stopping)),
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

/**
 * The provider adapters, one per channel, shared by dispatch (sends) and callbacks (Twilio message fetches): the
 * channel's adapter, made on first use and kept; a bad setting throws a `ConfigError` naming the channel.
 */
function providerAdapters(
  makeProvider: (channel: Channel) => Provider,
  channels: ChannelRegistry | undefined,
): (channel: Channel) => Provider {
  const providers = new Map<string, Provider>();
  return (channel: Channel): Provider => {
    let provider = providers.get(channel.name);
    if (provider === undefined) {
      try {
        provider = makeProvider(channel);
      } catch (err) {
        if (!isConfigError(err)) throw err;
        const source = `channel "${channel.name}" in ${channels?.file ?? 'the channels file'}`;
        throw new ConfigError(
          err.code,
          err.problems.map((p) => ({ ...p, source })),
          { cause: err },
        );
      }
      providers.set(channel.name, provider);
    }
    return provider;
  };
}

/** Errors in a row after which a loop counts as not ready (the bus unreachable, the queue missing). */
const UNHEALTHY_AFTER_ERRORS = 3;

/** A loop is ready while it runs and its receives succeed; the detail says why not. */
function loopCheck(name: string, loop: ReceiveLoop, stopping: boolean): ReadinessCheck {
  const h = loop.health();
  if (stopping) return { name, ok: false, detail: 'shutting down' };
  if (!h.running) return { name, ok: false, detail: `stopped${h.lastError === undefined ? '' : `: ${h.lastError}`}` };
  if (h.consecutiveErrors >= UNHEALTHY_AFTER_ERRORS)
    return {
      name,
      ok: false,
      detail: `${h.consecutiveErrors} receives failed in a row: ${h.lastError ?? 'unknown error'}`,
    };
  return { name, ok: true };
}
