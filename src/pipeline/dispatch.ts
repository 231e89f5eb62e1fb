/**
 * The dispatch stage: reads `outbound` through sessions and sends each message through its channel's provider,
 * within the sender's rate limit, then puts the outcome on `interactions`.
 *
 * One session is one sender (`channel.senderKey`), held by one replica at a time, so the limit this stage keeps
 * locally (a `SenderLimiter` per accepted session) is the limit the provider sees however many replicas run.
 *
 * Per message (`onBatch`):
 * 1. Parse the body (`parseOutboundMessage`); an unreadable body, an unknown channel or a channel that does not send
 *    as this session is dead-lettered with a reason that says so.
 * 2. Call the provider through the limiter, with the channel's timeout and the message key as idempotency key.
 *    Failures are decided from the `ProviderError` code in one place (`send-policy.ts`): 429 pauses this sender and
 *    calls again; 5xx/timeouts/unreadable non-2xx answers are retried with exponential backoff and jitter (cockatiel);
 *    a permanent refusal is an outcome; refused credentials and exhausted retries are dead-lettered with the
 *    provider's last error; a 2xx answer that cannot be read is never retried (the provider may have sent the
 *    message): it is dead-lettered with the provider's answer for a person to check.
 * 3. The outcome (`sent`/`Sent`, or the channel's failure response type / `NotSent`) goes to `interactions` with
 *    `messageId` = key + response type, grouped with the other outcomes of the session; only then is the delivery
 *    completed. A failed interaction send is retried; the provider is never called again for an accepted message:
 *    when the interaction cannot be sent at all, the delivery is dead-lettered (`InteractionNotSent`) with the
 *    interaction in the description, for replay to `interactions`, not to `outbound`.
 *
 * Abort (the batch signal: shutdown or drain budget): messages not yet handed to the provider are abandoned at once
 * (nothing was sent, the next holder sends them); calls in flight finish (their timeout bounds them) and their
 * outcomes are recorded and completed. Every delivery is settled exactly once.
 *
 * The session lock bounds a batch (`AcceptedSession.lockedUntil`, when the session loop gives it): no provider call
 * starts later than `lockedUntil - (channel.timeoutMs + lockMarginMs)` (so it ends, timeout included, with
 * `lockMarginMs` left to record and settle it), and no wait before a call (a slot, a pause, a backoff, the recipient's
 * turn) is begun when it would end past that; when one would, or when that time comes while messages still wait,
 * everything of the batch not yet at the provider is handed back (abandoned: it never reached the provider), calls
 * in flight finish and are recorded, and the batch returns at `lockedUntil - lockMarginMs`: the session loop
 * releases a session whose batch ran into its lock margin (`'renewalBudget'`) instead of receiving the handed-back
 * messages again at once, and the next holder (with a fresh lock) sends them, honouring a pause handed over in the
 * session state. A 429 pauses the sender for its `Retry-After`, at most `retry.maxRateLimitPauseMs`. The sends of
 * outcomes to `interactions` are retried only while a retry still ends a second before the lock does (and an
 * attempt's timeout is cut to that), so what cannot be recorded is dead-lettered (`InteractionNotSent`) while the
 * lock holds, instead of coming back to be sent again.
 *
 * Hand-over: `onClose` saves the start times of the calls of the last window (and a running 429 pause) as the
 * session state; the next holder, on any replica, makes no call before that window has passed. The state is not
 * written periodically: a holder that dies without `onClose` stops sending, and its session lock has to expire before
 * another replica can take the session; a lock lasts far longer than a rate window (default 60 s against ~1 s), so
 * by then every call it made is out of the window. Only a graceful release hands over within a window, and that
 * always goes through `onClose`; when `onClose` cannot save the state (setState fails or times out), it keeps the
 * session until its last window has passed (at most one window, and never past the session lock: from then on
 * another replica may take it anyway), so the next holder, starting without a state, cannot call within it. That
 * hold's timer does not keep the process alive.
 */
import { setMaxListeners } from 'node:events';
import { Counter, Histogram, type Registry } from 'prom-client';
import { delay, linkedController } from '../abort.js';
import type { Channel } from '../channels/types.js';
import { errorMessage, isEventError, isProviderError, ProviderError } from '../errors.js';
import { METRIC_PREFIX } from '../health/metrics.js';
import { areaLogger, silentLogger, type Logger } from '../log.js';
import type { Provider, SendRequest, SendResult } from '../providers/provider.js';
import { InteractionOutbox, type InteractionOutboxOptions } from './interaction-outbox.js';
import { interactionMessageId, parseOutboundMessage, type InteractionMessage, type OutboundMessage } from './messages.js';
import type { AcceptedSession, Delivery, InteractionSender, SessionCloseReason, SessionHandler } from './ports.js';
import {
  createSendPolicy,
  decide,
  describeProviderAnswer,
  describeProviderError,
  failureDetail,
  rateLimitPause,
  resolveSendRetryOptions,
  type ResolvedSendRetryOptions,
  type SendDecision,
  type SendRetryOptions,
} from './send-policy.js';
import { isStartDeadlineError, SenderLimiter } from './sender-limiter.js';
import { decodeSessionState, encodeSessionState, firstSendAt, type DispatchSessionState } from './session-state.js';

/** The channels the stage knows (a `ChannelRegistry` fits). */
export interface ChannelLookup {
  byName(name: string): Channel | undefined;
  all(): readonly Channel[];
}

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
   * `lockedUntil - (channel.timeoutMs + lockMarginMs)`, and a batch that handed messages back at the lock deadline
   * returns at `lockedUntil - lockMarginMs`. Keep it below the session loop's own lock margin (10 s with its default
   * renewal), so that the loop releases the session after such a batch. @defaultValue 5000
   */
  lockMarginMs?: number;
  /** The clock (ms since the epoch). @defaultValue Date.now */
  now?: () => number;
}

/** A snapshot of what the stage has done since it started. */
export interface DispatchStats {
  /** Sessions held now. */
  sessions: number;
  /** Messages waiting for their sender's window, a pause or their recipient's turn. */
  waiting: number;
  /** Provider calls in flight. */
  inFlight: number;
  /** Provider calls made (retries included). */
  providerCalls: number;
  /** Calls made again after a retryable failure. */
  retries: number;
  /** 429s that paused a sender. */
  rateLimitPauses: number;
  /** Messages the provider accepted. */
  sent: number;
  /** Messages the provider refused for good (recorded as the failure outcome, or completed without one). */
  rejected: number;
  /** Deliveries completed. */
  completed: number;
  /** Deliveries dead-lettered (any reason). */
  deadLettered: number;
  /** Deliveries handed back (abort, or the session lock's deadline). */
  abandoned: number;
  /** Of those, handed back because they could not be sent before the session lock's deadline. */
  handedBackAtLockDeadline: number;
  /** Failed attempts to send interactions. */
  interactionSendFailures: number;
  /** Settlements (complete/abandon/dead-letter) that failed (lock lost …). */
  settleFailures: number;
}

/** Dead-letter reasons of this stage (besides the `EventError` codes of unreadable bodies). */
export const DISPATCH_DEAD_LETTER_REASONS = {
  unknownChannel: 'EventUnknownChannel',
  sessionMismatch: 'SessionMismatch',
  retriesExhausted: 'ProviderRetriesExhausted',
  unauthorized: 'ProviderUnauthorized',
  unconfirmed: 'ProviderAnswerUnreadable',
  failed: 'DispatchFailed',
  interactionNotSent: 'InteractionNotSent',
} as const;

type Outcome = 'sent' | 'rejected' | 'retries_exhausted' | 'unauthorized' | 'unconfirmed' | 'invalid' | 'failed' | 'abandoned' | 'interaction_not_sent';

type SendOutcome =
  | { kind: 'sent'; result: SendResult; calls: number }
  | { kind: 'failed'; decision: SendDecision; error: unknown; calls: number }
  | { kind: 'abandoned'; calls: number; atLockDeadline: boolean };

/** Kept at the very end of a session lock to settle a delivery after its interaction was sent (or given up). */
const SETTLE_MS = 1000;

/** The reason of a batch's start signal when the session lock's deadline stopped it. */
class LockDeadlineReached extends Error {
  override readonly name = 'LockDeadlineReached';
}

/** One batch's signals: `signal` stops the batch (loop stop, onClose); `starts` also at the lock deadline. */
interface BatchControl {
  readonly signal: AbortSignal;
  readonly starts: AbortSignal;
  /** Stops starting anything in this batch: what is not at the provider is handed back. */
  lockDeadline(why: string): void;
}

interface Metrics {
  messages: Counter<'channel' | 'outcome'>;
  callDuration: Histogram<'channel' | 'result'>;
  retries: Counter<'channel' | 'code'>;
  pauses: Counter<'channel'>;
}

/** Resolves after `ms`; its timer does not keep the process alive. */
function unrefDelay(ms: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    timer.unref?.();
  });
}

function getOrCreate<T>(registry: Registry, name: string, create: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? create();
}

function createMetrics(registry: Registry): Metrics {
  const p = `${METRIC_PREFIX}dispatch_`;
  return {
    messages: getOrCreate(registry, `${p}messages_total`, () => new Counter({
      name: `${p}messages_total`,
      help: 'Outbound messages by outcome: sent, rejected, retries_exhausted, unauthorized, unconfirmed, invalid, failed, abandoned, interaction_not_sent',
      labelNames: ['channel', 'outcome'] as const,
      registers: [registry],
    })),
    callDuration: getOrCreate(registry, `${p}provider_call_duration_seconds`, () => new Histogram({
      name: `${p}provider_call_duration_seconds`,
      help: 'Provider call duration by result (ok or the ProviderError code)',
      labelNames: ['channel', 'result'] as const,
      buckets: [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    })),
    retries: getOrCreate(registry, `${p}retries_total`, () => new Counter({
      name: `${p}retries_total`,
      help: 'Provider calls made again, by the code of the failure before',
      labelNames: ['channel', 'code'] as const,
      registers: [registry],
    })),
    pauses: getOrCreate(registry, `${p}rate_limit_pauses_total`, () => new Counter({
      name: `${p}rate_limit_pauses_total`,
      help: 'Provider 429s that paused a sender',
      labelNames: ['channel'] as const,
      registers: [registry],
    })),
  };
}

function intOption(name: string, value: number, min: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw new TypeError(`DispatchStage: ${name} must be an integer >= ${min}, found ${String(value)}`);
  }
  return value;
}

/** Rejects with the signal's reason when it fires. */
function aborted(signal: AbortSignal): Promise<never> {
  return new Promise<never>((_resolve, reject) => {
    if (signal.aborted) reject(signal.reason);
    else signal.addEventListener('abort', () => reject(signal.reason), { once: true });
  });
}

/** What the sessions of one stage share: settings, policies, providers, counters. */
class StageContext {
  readonly channels: ChannelLookup;
  readonly interactions: InteractionSender;
  readonly log: Logger;
  readonly guardMs: number;
  readonly retry: ResolvedSendRetryOptions;
  readonly batching: Omit<InteractionOutboxOptions, 'sender' | 'onError'>;
  readonly stateTimeoutMs: number;
  readonly lockMarginMs: number;
  readonly now: () => number;
  readonly metrics: Metrics | undefined;
  readonly statusCallbackUrl: ((channel: Channel, message: OutboundMessage) => string | undefined) | undefined;
  readonly counts = {
    providerCalls: 0,
    retries: 0,
    rateLimitPauses: 0,
    sent: 0,
    rejected: 0,
    completed: 0,
    deadLettered: 0,
    abandoned: 0,
    handedBackAtLockDeadline: 0,
    interactionSendFailures: 0,
    settleFailures: 0,
  };
  readonly sessions = new Set<DispatchSession>();
  readonly #providerFactory: (channel: Channel) => Provider;
  readonly #providers = new Map<string, Provider>();

  constructor(options: DispatchOptions) {
    if (typeof options.channels?.byName !== 'function' || typeof options.channels.all !== 'function') {
      throw new TypeError('DispatchStage: channels must have byName(name) and all()');
    }
    if (typeof options.provider !== 'function') throw new TypeError('DispatchStage: provider must be a function (channel) => Provider');
    if (typeof options.interactions?.send !== 'function') throw new TypeError('DispatchStage: interactions must have a send function');
    this.channels = options.channels;
    this.interactions = options.interactions;
    this.#providerFactory = options.provider;
    this.log = areaLogger(options.log ?? silentLogger(), 'dispatch');
    this.guardMs = intOption('guardMs', options.guardMs ?? 10, 0);
    this.retry = resolveSendRetryOptions(options.retry);
    this.batching = { ...options.interactionBatching };
    this.stateTimeoutMs = intOption('stateTimeoutMs', options.stateTimeoutMs ?? 10_000, 1);
    this.lockMarginMs = intOption('lockMarginMs', options.lockMarginMs ?? 5000, 0);
    this.now = options.now ?? Date.now;
    this.metrics = options.registry === undefined ? undefined : createMetrics(options.registry);
    if (options.statusCallbackUrl !== undefined && typeof options.statusCallbackUrl !== 'function') {
      throw new TypeError('DispatchStage: statusCallbackUrl must be a function (channel, message) => string | undefined');
    }
    this.statusCallbackUrl = options.statusCallbackUrl;
    // Fail at start-up, not on the first message, when the batching options are wrong.
    new InteractionOutbox({ sender: this.interactions, ...this.batching }).close();
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

  count(channel: string, outcome: Outcome): void {
    this.metrics?.messages.inc({ channel, outcome });
  }
}

export class DispatchStage {
  /** The session loop's handler factory (a `SessionHandlerFactory`): one handler per accepted session. */
  readonly sessionHandler: (session: AcceptedSession) => DispatchSessionHandler;
  readonly #ctx: StageContext;

  /** Validates the options (a bad value throws a `TypeError` naming it) and registers the metrics. */
  constructor(options: DispatchOptions) {
    const ctx = new StageContext(options);
    this.#ctx = ctx;
    this.sessionHandler = (session) => new DispatchSession(ctx, session);
  }

  /** What the stage has done since it started, and what it holds now. */
  stats(): DispatchStats {
    let waiting = 0;
    let inFlight = 0;
    for (const session of this.#ctx.sessions) {
      const s = session.limiterStats();
      waiting += s.waiting;
      inFlight += s.inFlight;
    }
    return { sessions: this.#ctx.sessions.size, waiting, inFlight, ...this.#ctx.counts };
  }
}

/** Settles one delivery once; a second settlement is a bug and is logged, a failed one is logged and counted. */
class Settlement {
  #done = false;
  constructor(
    private readonly delivery: Delivery,
    private readonly stage: StageContext,
    private readonly log: Logger,
  ) {}

  get done(): boolean {
    return this.#done;
  }

  async complete(): Promise<void> {
    if (this.#claim('complete')) await this.#run('complete', () => this.delivery.complete(), 'completed');
  }

  async abandon(): Promise<void> {
    if (this.#claim('abandon')) await this.#run('abandon', () => this.delivery.abandon(), 'abandoned');
  }

  async deadLetter(reason: string, description: string): Promise<void> {
    if (this.#claim('deadLetter')) await this.#run('deadLetter', () => this.delivery.deadLetter(reason, description), 'deadLettered');
  }

  #claim(what: string): boolean {
    if (this.#done) {
      this.log.error('delivery already settled: not settling again', { settlement: what, messageId: this.delivery.messageId });
      return false;
    }
    this.#done = true;
    return true;
  }

  async #run(what: string, settle: () => Promise<void>, counter: 'completed' | 'abandoned' | 'deadLettered'): Promise<void> {
    try {
      await settle();
      this.stage.counts[counter]++;
    } catch (err) {
      this.stage.counts.settleFailures++;
      this.log.warn('settlement failed: the message will be delivered again when its lock expires', { settlement: what, messageId: this.delivery.messageId, err: errorMessage(err) });
    }
  }
}

/**
 * The handler of one held sender session; `onClose` hands back what waits and saves the session state (when that
 * fails, it holds the session until the last window has passed; see `DispatchSession.#close`).
 */
export interface DispatchSessionHandler extends SessionHandler {
  onClose(reason?: SessionCloseReason): Promise<void>;
}

class DispatchSession implements DispatchSessionHandler {
  readonly #stage: StageContext;
  readonly #session: AcceptedSession;
  readonly #log: Logger;
  readonly #limiter: SenderLimiter | undefined;
  readonly #outbox: InteractionOutbox;
  readonly #closeController = new AbortController();
  readonly #batches = new Set<Promise<void>>();
  readonly #hadState: boolean;
  #sending = 0;
  #closing: Promise<void> | undefined;

  constructor(stage: StageContext, session: AcceptedSession) {
    this.#stage = stage;
    this.#session = session;
    this.#log = stage.log.child({ sessionId: session.sessionId });
    this.#outbox = new InteractionOutbox({
      sender: stage.interactions,
      ...stage.batching,
      onError: (err, attempt, size) => {
        stage.counts.interactionSendFailures++;
        this.#log.warn('sending interactions failed', { attempt, size, err: errorMessage(err) });
      },
    });
    this.#hadState = session.state !== undefined && session.state.length > 0;
    const channels = stage.channels.all().filter((c) => c.senderKey === session.sessionId);
    this.#limiter = channels.length === 0 ? undefined : this.#createLimiter(channels);
    if (this.#limiter === undefined) {
      this.#log.warn('no configured channel sends as this session: its messages are dead-lettered', { sessionId: session.sessionId });
    }
    stage.sessions.add(this);
  }

  #createLimiter(channels: Channel[]): SenderLimiter {
    // Channels sharing a sender share its limit: the strictest of their settings.
    const limits = channels.map((c) => c.rateLimit);
    const limiter = new SenderLimiter({
      messages: Math.min(...limits.map((l) => l.messages)),
      intervalMs: Math.max(...limits.map((l) => l.intervalMs)),
      concurrency: Math.min(...limits.map((l) => l.concurrency)),
      perRecipientMs: Math.max(...limits.map((l) => l.perRecipientMs)),
      guardMs: this.#stage.guardMs,
      now: this.#stage.now,
    });
    const decoded = decodeSessionState(this.#session.state);
    const now = this.#stage.now();
    let holdUntil: number;
    if (decoded.ok) {
      holdUntil = firstSendAt(decoded.state, Math.max(limiter.windowMs, limiter.recipientSpacingMs), now);
    } else {
      holdUntil = now + Math.max(limiter.windowMs, limiter.recipientSpacingMs);
      this.#log.warn('session state unreadable: waiting one full window before the first send', { reason: decoded.reason });
    }
    if (holdUntil > now) {
      limiter.pauseUntil(holdUntil);
      this.#log.info('session taken over within the last holder\'s window: waiting before the first send', { waitMs: holdUntil - now });
    }
    return limiter;
  }

  limiterStats(): { waiting: number; inFlight: number } {
    return this.#limiter?.stats() ?? { waiting: 0, inFlight: 0 };
  }

  async onBatch(deliveries: Delivery[], signal: AbortSignal): Promise<void> {
    // One signal per batch, fired by the loop's signal or by onClose; its listeners on those long-lived signals are
    // removed when the batch ends (not AbortSignal.any: see linkedController).
    const linked = linkedController(signal, this.#closeController.signal);
    // What has not reached the provider stops on it, and also at the session lock's deadline.
    const starts = linkedController(linked.signal);
    // Every waiting message listens to them (limiter, retry): as many listeners as the batch has messages.
    setMaxListeners(0, linked.signal, starts.signal);
    let handedBack = false;
    const control: BatchControl = {
      signal: linked.signal,
      starts: starts.signal,
      lockDeadline: (why) => {
        handedBack = true;
        if (starts.signal.aborted) return;
        this.#log.info('the session lock ends before the rest of this batch can be sent: handing back what has not reached the provider', {
          why,
          lockedUntil: this.#lockedUntil(),
        });
        starts.abort(new LockDeadlineReached(`session lock deadline: ${why}`));
      },
    };
    const batch = Promise.all(deliveries.map((d) => this.#handle(d, control))).then(() => undefined);
    this.#batches.add(batch);
    try {
      await batch;
      if (handedBack) await this.#endInLockMargin(linked.signal);
    } finally {
      this.#batches.delete(batch);
      starts.dispose();
      linked.dispose();
    }
  }

  /** The session lock's deadline, when the session loop gives one (ms since the epoch). */
  #lockedUntil(): number | undefined {
    const at = this.#session.lockedUntil?.();
    return typeof at === 'number' && Number.isFinite(at) ? at : undefined;
  }

  /** The latest start of a call on this channel: its end, timeout included, leaves `lockMarginMs` of the lock. */
  #callBy(channel: Channel): number | undefined {
    const until = this.#lockedUntil();
    return until === undefined ? undefined : until - channel.timeoutMs - this.#stage.lockMarginMs;
  }

  /**
   * After a hand-back at the lock deadline, returns at `lockedUntil - lockMarginMs` (or when the batch is stopped):
   * the session loop releases a session whose batch ended within its lock margin; a batch that returned at once would
   * make it receive the handed-back messages again at once (each time one more delivery) until then.
   */
  async #endInLockMargin(signal: AbortSignal): Promise<void> {
    const until = this.#lockedUntil();
    if (until === undefined) return;
    await delay(until - this.#stage.lockMarginMs - this.#stage.now(), signal);
  }

  async #handle(delivery: Delivery, batch: BatchControl): Promise<void> {
    const settlement = new Settlement(delivery, this.#stage, this.#log);
    try {
      await this.#process(delivery, settlement, batch);
    } catch (err) {
      // Not expected: every path settles. Hand the message back rather than lose it.
      this.#log.error('unexpected failure while dispatching', { messageId: delivery.messageId, err: errorMessage(err) });
      if (!settlement.done) await settlement.abandon();
    }
  }

  async #process(delivery: Delivery, settlement: Settlement, batch: BatchControl): Promise<void> {
    const stage = this.#stage;
    let msg: OutboundMessage;
    try {
      msg = parseOutboundMessage(delivery.body);
    } catch (err) {
      const reason = isEventError(err) ? err.code : 'EventUndecodable';
      this.#log.warn('outbound message unreadable: dead-lettered', { messageId: delivery.messageId, reason, err: errorMessage(err) });
      stage.count('(unreadable)', 'invalid');
      await settlement.deadLetter(reason, errorMessage(err));
      return;
    }
    const log = this.#log.child({ activityKey: msg.key, channel: msg.channel });
    const channel = stage.channels.byName(msg.channel);
    if (channel === undefined) {
      const known = stage.channels.all().map((c) => c.name).join(', ') || 'none';
      const description = `channel '${msg.channel}' is not configured (configured channels: ${known})`;
      log.warn('unknown channel: dead-lettered', { description });
      stage.count(msg.channel, 'invalid');
      await settlement.deadLetter(DISPATCH_DEAD_LETTER_REASONS.unknownChannel, description);
      return;
    }
    if (channel.senderKey !== this.#session.sessionId || this.#limiter === undefined) {
      const description = `channel '${channel.name}' sends as session '${channel.senderKey}', but this message came in session '${this.#session.sessionId}'`;
      log.warn('message in the wrong session: dead-lettered', { description });
      stage.count(channel.name, 'invalid');
      await settlement.deadLetter(DISPATCH_DEAD_LETTER_REASONS.sessionMismatch, description);
      return;
    }
    if (batch.starts.aborted) {
      await this.#record(msg, channel, { kind: 'abandoned', calls: 0, atLockDeadline: batch.starts.reason instanceof LockDeadlineReached }, settlement, batch.signal, log);
      return;
    }
    if (delivery.deliveryCount > 1) log.debug('delivered again: the provider may have it already (same idempotency key)', { deliveryCount: delivery.deliveryCount });

    this.#sending++;
    let recording: Promise<void> | undefined;
    let outcome: SendOutcome;
    try {
      outcome = await this.#send(msg, channel, this.#limiter, batch, log);
      recording = this.#record(msg, channel, outcome, settlement, batch.signal, log);
    } finally {
      this.#sending--;
      // Nothing else of this session waits for the provider: send the grouped outcomes now.
      if (this.#sending === 0) this.#outbox.flush();
    }
    await recording;
  }

  /** One message through the limiter and the retry policy, to a final outcome. */
  #send(msg: OutboundMessage, channel: Channel, limiter: SenderLimiter, batch: BatchControl, log: Logger): Promise<SendOutcome> {
    const stage = this.#stage;
    const provider = stage.providerFor(channel);
    const signal = batch.starts;
    // One policy per message, so that a backoff that would end past the lock deadline is seen before it is waited.
    const policy = createSendPolicy(stage.retry, (delayMs) => {
      const callBy = this.#callBy(channel);
      if (callBy !== undefined && stage.now() + delayMs > callBy) batch.lockDeadline(`a backoff of ${delayMs} ms would end after the last call start`);
    });
    // waiting: not at the provider (queued, backing off, paused); calling: a call is in flight; done: decided.
    let phase: 'waiting' | 'calling' | 'done' = 'waiting';
    let calls = 0;
    let lastCode: string | undefined;

    const attempt = (): Promise<SendResult> => {
      signal.throwIfAborted();
      const callBy = this.#callBy(channel);
      return limiter.run(
        msg.to,
        async () => {
          phase = 'calling';
          if (calls > 0) {
            stage.counts.retries++;
            stage.metrics?.retries.inc({ channel: channel.name, code: lastCode ?? 'unknown' });
          }
          calls++;
          const n = calls;
          stage.counts.providerCalls++;
          const started = stage.now();
          try {
            const result = await this.#call(provider, channel, msg);
            phase = 'done';
            stage.metrics?.callDuration.observe({ channel: channel.name, result: 'ok' }, (stage.now() - started) / 1000);
            log.debug('provider accepted', { attempt: n, providerMessageId: result.providerMessageId, status: result.status });
            return result;
          } catch (err) {
            const decision = decide(err);
            lastCode = isProviderError(err) ? err.code : 'unexpected';
            stage.metrics?.callDuration.observe({ channel: channel.name, result: lastCode }, (stage.now() - started) / 1000);
            phase = decision === 'rateLimited' || decision === 'transient' ? 'waiting' : 'done';
            const fields = { attempt: n, code: lastCode, status: isProviderError(err) ? err.upstream?.status : undefined, upstreamCode: isProviderError(err) ? err.upstream?.code : undefined };
            if (decision === 'rateLimited') {
              const { pauseMs, askedMs } = rateLimitPause(err as ProviderError, stage.retry);
              stage.counts.rateLimitPauses++;
              stage.metrics?.pauses.inc({ channel: channel.name });
              log.warn('provider rate limit: sender paused', { ...fields, pauseMs, ...(askedMs > pauseMs ? { retryAfterMs: askedMs } : {}) });
              // What waits and could not start before the lock deadline because of this pause is dropped here.
              limiter.pauseFor(pauseMs);
            } else if (decision === 'transient') {
              log.warn('provider call failed (transient)', { ...fields, err: describeProviderError(err, msg.to) });
            }
            throw err;
          }
        },
        { signal, priority: calls > 0 ? 1 : 0, ...(callBy === undefined ? {} : { startBy: callBy }) },
      );
    };

    return new Promise<SendOutcome>((resolve) => {
      const abandoned = (): SendOutcome => ({ kind: 'abandoned', calls, atLockDeadline: signal.reason instanceof LockDeadlineReached });
      const onAbort = (): void => {
        // Not at the provider: nothing was sent by this attempt; hand the message back now.
        if (phase === 'waiting') resolve(abandoned());
      };
      signal.addEventListener('abort', onAbort, { once: true });
      policy
        .execute(attempt, signal)
        .then(
          (result) => resolve({ kind: 'sent', result, calls }),
          (error: unknown) => {
            if (isStartDeadlineError(error)) {
              // The limiter would not start the call before the lock deadline: this batch stops starting calls.
              batch.lockDeadline(error.why);
              resolve({ kind: 'abandoned', calls, atLockDeadline: true });
              return;
            }
            const decision = decide(error);
            if (decision === 'rejected' || decision === 'unauthorized' || decision === 'unconfirmed') resolve({ kind: 'failed', decision, error, calls });
            else if (signal.aborted && phase !== 'done') resolve(abandoned());
            else resolve({ kind: 'failed', decision, error, calls });
          },
        )
        .finally(() => signal.removeEventListener('abort', onAbort));
    });
  }

  /**
   * One provider call with the channel's timeout. Deliberately not tied to the batch signal (and not a cockatiel
   * `timeout` policy, whose call signal derives from the execute signal): a call that started finishes on shutdown,
   * bounded by this timeout, so its outcome is recorded instead of sent again by the next holder.
   */
  async #call(provider: Provider, channel: Channel, msg: OutboundMessage): Promise<SendResult> {
    const timeout = new AbortController();
    const timer = setTimeout(
      () => timeout.abort(new ProviderError('ProviderTimeout', `${provider.type} did not answer within ${channel.timeoutMs} ms`, { context: { channel: channel.name } })),
      channel.timeoutMs,
    );
    try {
      const request: SendRequest = { idempotencyKey: msg.key, from: channel.sender, to: msg.to, text: msg.text, signal: timeout.signal };
      if (msg.parts !== undefined) request.parts = msg.parts;
      // Real-time journeys only: an outbound-marketing send has no channel definition (the contract omits it).
      if (msg.context?.kind === 'realtime') request.channelDefinitionId = msg.context.channelDefinitionId;
      const statusCallbackUrl = this.#stage.statusCallbackUrl?.(channel, msg);
      if (statusCallbackUrl !== undefined) request.statusCallbackUrl = statusCallbackUrl;
      const timedOut = aborted(timeout.signal);
      timedOut.catch(() => undefined);
      return await Promise.race([provider.send(request), timedOut]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Turns the outcome into an interaction and a settlement. */
  async #record(msg: OutboundMessage, channel: Channel, outcome: SendOutcome, settlement: Settlement, signal: AbortSignal, log: Logger): Promise<void> {
    const stage = this.#stage;
    const provider = stage.providerFor(channel);
    if (outcome.kind === 'abandoned') {
      if (outcome.atLockDeadline) {
        stage.counts.handedBackAtLockDeadline++;
        log.info('the session lock ends before this message could be sent: handed back to the next holder', { calls: outcome.calls });
      } else {
        log.info('dispatch stopped before the provider had the message: handed back', { calls: outcome.calls });
      }
      stage.count(channel.name, 'abandoned');
      await settlement.abandon();
      return;
    }
    if (outcome.kind === 'sent') {
      stage.counts.sent++;
      stage.count(channel.name, 'sent');
      log.info('sent', { calls: outcome.calls, providerMessageId: outcome.result.providerMessageId });
      if (msg.purpose === 'confirmation' || msg.context === undefined) {
        await settlement.complete();
        return;
      }
      const interaction: InteractionMessage = {
        v: 1,
        context: msg.context,
        responseType: msg.context.kind === 'marketing' ? 'sent' : 'Sent',
        channel: channel.name,
        providerMessageId: outcome.result.providerMessageId,
        occurredAt: stage.now(),
      };
      await this.#interact(interaction, settlement, signal, log, outcome.result.providerMessageId);
      return;
    }
    const { decision, error } = outcome;
    const description = describeProviderError(error, msg.to);
    switch (decision) {
      case 'rejected': {
        stage.counts.rejected++;
        stage.count(channel.name, 'rejected');
        const responseType = msg.context?.kind === 'realtime' ? 'NotSent' : channel.failureResponseType;
        if (msg.purpose === 'confirmation' || msg.context === undefined || responseType === undefined) {
          log.info('provider refused the message for good; no failure response type to record', { err: description });
          await settlement.complete();
          return;
        }
        log.info('provider refused the message for good: recording the failure', { responseType, err: description });
        const interaction: InteractionMessage = {
          v: 1,
          context: msg.context,
          responseType,
          channel: channel.name,
          detail: failureDetail(error, msg.to),
          occurredAt: stage.now(),
        };
        await this.#interact(interaction, settlement, signal, log, undefined);
        return;
      }
      case 'unauthorized':
        log.error('provider refused the credentials: check the channel configuration', { err: description });
        stage.count(channel.name, 'unauthorized');
        await settlement.deadLetter(DISPATCH_DEAD_LETTER_REASONS.unauthorized, `${provider.type} refused the credentials of channel '${channel.name}': ${description}`);
        return;
      case 'unconfirmed':
        // Not retried, not recorded as a failure: the provider took the request and may have sent the message.
        log.error('provider answered 2xx with an answer that cannot be read: dead-lettered for a person to check', { calls: outcome.calls, err: description });
        stage.count(channel.name, 'unconfirmed');
        await settlement.deadLetter(
          DISPATCH_DEAD_LETTER_REASONS.unconfirmed,
          `${provider.type} took the request but its answer could not be read (${description}), so the message may have been sent: ` +
            `check with the provider (idempotency key ${msg.key}) before resubmitting to outbound, or record the outcome. Answer: ${describeProviderAnswer(error, msg.to)}`,
        );
        return;
      case 'rateLimited':
      case 'transient':
        log.warn('provider retries exhausted: dead-lettered', { calls: outcome.calls, err: description });
        stage.count(channel.name, 'retries_exhausted');
        await settlement.deadLetter(DISPATCH_DEAD_LETTER_REASONS.retriesExhausted, `${provider.type} gave up after ${outcome.calls} calls; last error: ${description}`);
        return;
      case 'unexpected':
        log.error('provider call failed unexpectedly: dead-lettered', { calls: outcome.calls, err: description });
        stage.count(channel.name, 'failed');
        await settlement.deadLetter(DISPATCH_DEAD_LETTER_REASONS.failed, `${provider.type} call failed unexpectedly: ${description}`);
        return;
    }
  }

  async #interact(interaction: InteractionMessage, settlement: Settlement, signal: AbortSignal, log: Logger, providerMessageId: string | undefined): Promise<void> {
    try {
      // Known (sent or not) while the lock still allows to settle the delivery: see `InteractionOutbox`.
      const until = this.#lockedUntil();
      await this.#outbox.add({ body: interaction, messageId: interactionMessageId(interaction) }, signal, until === undefined ? undefined : until - SETTLE_MS);
    } catch (err) {
      // Never abandon: the provider has the message, and a redelivery would send it again.
      log.error('interaction could not be sent: dead-lettered with the interaction for replay to interactions', { responseType: interaction.responseType, err: errorMessage(err) });
      this.#stage.count(interaction.channel, 'interaction_not_sent');
      const accepted = providerMessageId === undefined ? 'the provider refused this message' : `the provider accepted this message (id ${providerMessageId})`;
      await settlement.deadLetter(
        DISPATCH_DEAD_LETTER_REASONS.interactionNotSent,
        `${accepted}; its interaction could not be sent (${errorMessage(err)}). Do not resubmit to outbound; send this interaction to interactions: ${JSON.stringify(interaction)}`,
      );
      return;
    }
    await settlement.complete();
  }

  onClose(reason?: SessionCloseReason): Promise<void> {
    this.#closing ??= this.#close(reason);
    return this.#closing;
  }

  /**
   * Hands back what still waits (calls in flight finish and are recorded), then saves the last window as the session
   * state. When that save fails or times out, the next holder would start without any wait: so this holder keeps the
   * session (returns later) until the calls it recorded have left the window, or a running pause has ended, at most one
   * full window (`windowMs`, or the recipient spacing when longer) from now and at most until `lockedUntil()`. Not when
   * the lock is already lost: the session is someone else's by then.
   */
  async #close(reason: SessionCloseReason | undefined): Promise<void> {
    this.#closeController.abort(new Error('session closing'));
    await Promise.allSettled([...this.#batches]);
    this.#outbox.close();
    const limiter = this.#limiter;
    if (limiter !== undefined) {
      const state: DispatchSessionState = { v: 1, sentAt: limiter.recentCalls() };
      const pausedUntil = limiter.pausedUntil;
      if (pausedUntil !== undefined) state.pausedUntil = pausedUntil;
      limiter.clear();
      if (this.#hadState || state.sentAt.length > 0 || pausedUntil !== undefined) {
        const saved = await this.#saveState(state);
        if (!saved) await this.#holdAfterLostState(state, limiter, reason);
      }
    }
    this.#stage.sessions.delete(this);
  }

  /** True when the state was written. */
  async #saveState(state: DispatchSessionState): Promise<boolean> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await Promise.race([
        this.#session.setState(encodeSessionState(state)),
        new Promise<never>((_resolve, reject) => {
          timer = setTimeout(() => reject(new Error(`setState did not finish within ${this.#stage.stateTimeoutMs} ms`)), this.#stage.stateTimeoutMs);
        }),
      ]);
      this.#log.debug('session state saved', { sentAt: state.sentAt.length, pausedUntil: state.pausedUntil });
      return true;
    } catch (err) {
      this.#log.warn('session state not saved', { err: errorMessage(err) });
      return false;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * The state could not be handed over: keep the session until the window it describes has passed (see `#close`), but
   * not past the session lock (from then on another replica may take the session anyway: holding protects nothing).
   * The hold's timer does not keep the process alive: a process that is ending has nothing left to protect.
   */
  async #holdAfterLostState(state: DispatchSessionState, limiter: SenderLimiter, reason: SessionCloseReason | undefined): Promise<void> {
    if (reason === 'lockLost') {
      this.#log.warn('session lock lost and state not saved: the next holder may start within this sender\'s window');
      return;
    }
    const windowMs = Math.max(limiter.windowMs, limiter.recipientSpacingMs);
    const now = this.#stage.now();
    const windowEnd = Math.min(firstSendAt(state, windowMs, now), now + windowMs);
    const lockedUntil = this.#lockedUntil() ?? Infinity;
    const until = Math.min(windowEnd, lockedUntil);
    if (until <= now) {
      if (windowEnd > now) this.#log.warn('session state not saved and the session lock is ending: the next holder may start within this sender\'s window', { windowLeftMs: windowEnd - now });
      return;
    }
    this.#log.warn('session state not saved: holding the session until this sender\'s window has passed, so the next holder cannot start within it', {
      holdMs: until - now,
      ...(until < windowEnd ? { windowLeftMs: windowEnd - now, boundByLock: true } : {}),
      sentAt: state.sentAt.length,
      pausedUntil: state.pausedUntil,
    });
    await unrefDelay(until - now);
  }
}
