/**
 * The dispatch stage's options and what the sessions of one stage share, made from them once: the validated
 * settings, the providers (one per channel), the counts and metrics, and the sessions held now.
 */
import type { Registry } from 'prom-client';
import type { Channel } from '../../channels/index.js';
import { areaLogger, silentLogger, type Logger } from '../../log.js';
import { intOption } from '../../options.js';
import type { Provider } from '../../providers/index.js';
import {
  createDispatchMetrics,
  zeroCounts,
  type DispatchMetrics,
  type LookupReason,
  type LookupResult,
  type MessageOutcome,
  type SessionLoad,
} from './metrics.js';
import { LatencyEstimate } from './concurrency.js';
import { resolveOutboxSettings, type InteractionOutboxOptions, type OutboxSettings } from './interaction-outbox.js';
import type { OutboundMessage } from '../messages.js';
import type { ChannelLookup, InteractionSender } from '../ports.js';
import { resolveSendRetryOptions, type ResolvedSendRetryOptions, type SendRetryOptions } from './send-policy.js';

export interface DispatchOptions {
  channels: ChannelLookup;
  /** The provider of a channel; called once per channel, the result is kept. */
  provider: (channel: Channel) => Provider;
  /** Where outcomes go (`interactions`). */
  interactions: InteractionSender;
  /** @defaultValue silentLogger() */
  log?: Logger;
  /** Counters and histograms are registered here when given. */
  registry?: Registry;
  /**
   * Added to how long a call holds its rate-limit slot after it ends (`rateLimit.intervalMs`) and to the
   * per-recipient spacing, for timer granularity and clock steps; jitter itself is covered by counting from the
   * call's end (see `sender-limiter.ts`). @defaultValue 10
   */
  guardMs?: number;
  /** Retries of provider calls; see `SendRetryOptions`. */
  retry?: SendRetryOptions;
  /** Grouping and retrying of the sends to `interactions`. */
  interactionBatching?: Omit<InteractionOutboxOptions, 'sender' | 'onError'>;
  /**
   * The per-message status callback URL (Twilio `StatusCallback`) of a send, e.g. built from `channel.publicBaseUrl`
   * by the callbacks service; `undefined`: none. @defaultValue no status callbacks
   */
  statusCallbackUrl?: (channel: Channel, message: OutboundMessage) => string | undefined;
  /** Timeout of the session state write in `onClose`. @defaultValue 10000 */
  stateTimeoutMs?: number;
  /**
   * Kept free at the end of a session lock, to record and settle the last calls: a provider call starts no later than
   * `lockedUntil - (channel.timeoutMs + lockMarginMs)`; a batch that handed messages back there asks the loop to
   * release the session. @defaultValue 5000
   */
  lockMarginMs?: number;
  /** The clock (ms since the epoch). @defaultValue Date.now */
  now?: () => number;
}

/** What the sessions of one stage share: settings, policies, providers, counters. */
export class DispatchContext {
  readonly channels: ChannelLookup;
  readonly interactions: InteractionSender;
  readonly log: Logger;
  readonly guardMs: number;
  readonly retry: ResolvedSendRetryOptions;
  /** The validated `interactionBatching`. */
  readonly batching: OutboxSettings;
  readonly stateTimeoutMs: number;
  readonly lockMarginMs: number;
  readonly now: () => number;
  readonly metrics: DispatchMetrics | undefined;
  readonly statusCallbackUrl: ((channel: Channel, message: OutboundMessage) => string | undefined) | undefined;
  readonly counts = zeroCounts();
  readonly sessions = new Set<SessionLoad>();
  readonly #providerFactory: (channel: Channel) => Provider;
  readonly #providers = new Map<string, Provider>();
  /** Per sender (`senderKey`): the provider's latency seen by this stage's sessions of it (see `latencyOf`). */
  readonly #latency = new Map<string, LatencyEstimate>();

  /** Validates the options (a bad value throws a `TypeError` naming it) and registers the metrics. */
  constructor(options: DispatchOptions) {
    if (typeof options.channels?.byName !== 'function' || typeof options.channels.all !== 'function') {
      throw new TypeError('DispatchStage: channels must have byName(name) and all()');
    }
    if (typeof options.provider !== 'function')
      throw new TypeError('DispatchStage: provider must be a function (channel) => Provider');
    if (typeof options.interactions?.send !== 'function')
      throw new TypeError('DispatchStage: interactions must have a send function');
    this.channels = options.channels;
    this.interactions = options.interactions;
    this.#providerFactory = options.provider;
    this.log = areaLogger(options.log ?? silentLogger(), 'dispatch');
    this.guardMs = intOption('DispatchStage', 'guardMs', options.guardMs, 10, 0);
    this.retry = resolveSendRetryOptions(options.retry);
    // Fails at start-up, not on the first message, when the batching options are wrong.
    this.batching = resolveOutboxSettings(options.interactionBatching);
    this.stateTimeoutMs = intOption('DispatchStage', 'stateTimeoutMs', options.stateTimeoutMs, 10_000, 1);
    this.lockMarginMs = intOption('DispatchStage', 'lockMarginMs', options.lockMarginMs, 5000, 0);
    this.now = options.now ?? Date.now;
    this.metrics = options.registry === undefined ? undefined : createDispatchMetrics(options.registry);
    if (options.statusCallbackUrl !== undefined && typeof options.statusCallbackUrl !== 'function') {
      throw new TypeError(
        'DispatchStage: statusCallbackUrl must be a function (channel, message) => string | undefined',
      );
    }
    this.statusCallbackUrl = options.statusCallbackUrl;
  }

  /** The provider of a channel, created once. */
  providerFor(channel: Channel): Provider {
    let provider = this.#providers.get(channel.name);
    if (provider === undefined) {
      provider = this.#providerFactory(channel);
      this.#providers.set(channel.name, provider);
    }
    return provider;
  }

  /**
   * The provider's latency for `sender` as this stage has seen it: one estimate per sender, kept when its session is
   * released, so that the next session of it sizes its calls in flight from it at once (one entry per configured
   * sender: a session of no configured channel has no limiter).
   */
  latencyOf(sender: string): LatencyEstimate {
    let estimate = this.#latency.get(sender);
    if (estimate === undefined) {
      estimate = new LatencyEstimate();
      this.#latency.set(sender, estimate);
    }
    return estimate;
  }

  /** Sets (or, with `undefined`, removes) the concurrency gauges of `sender`. */
  senderConcurrency(sender: string, limits: { concurrency: number; concurrencyLimit: number } | undefined): void {
    const metrics = this.metrics;
    if (metrics === undefined) return;
    if (limits === undefined) {
      metrics.senderConcurrency.remove({ sender });
      metrics.senderConcurrencyLimit.remove({ sender });
      return;
    }
    metrics.senderConcurrency.set({ sender }, limits.concurrency);
    metrics.senderConcurrencyLimit.set({ sender }, limits.concurrencyLimit);
  }

  /** Counts one message's outcome (`dispatch_messages_total`), when there is a registry. */
  count(channel: string, outcome: MessageOutcome): void {
    this.metrics?.messages.inc({ channel, outcome });
  }

  /** Counts one lookup of a message at the provider: in the stats, and `dispatch_provider_lookups_total`. */
  lookedUp(channel: string, reason: LookupReason, result: LookupResult): void {
    const counts = this.counts;
    if (reason === 'lost_answer') {
      if (result === 'found') counts.lostAnswerFound++;
      else if (result === 'not_found') counts.lostAnswerNotFound++;
      else counts.lostAnswerLookupFailed++;
    } else if (result === 'found') counts.inFlightFound++;
    else if (result === 'not_found') counts.inFlightNotFound++;
    else counts.inFlightLookupFailed++;
    this.metrics?.lookups.inc({ channel, reason, result });
  }
}
