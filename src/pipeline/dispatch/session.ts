/**
 * The dispatch stage's handler of one held sender session: reads each delivery of a batch (parse, channel checks),
 * sends it through the sender's limiter (`send.ts`), records the outcome (`outcome.ts`) and settles
 * it once (`settlement.ts`), within the session lock's deadline (`lock-deadline.ts`: a batch that handed
 * messages back at it asks the session loop to release the session); before a batch's calls, writes the session
 * state with its messages in flight, and reconciles a message the last holder left in flight before sending it
 * (`handover.ts`, `inflight.ts`); on close, hands back what waits and hands the sender over.
 */
import { setMaxListeners } from 'node:events';
import PQueue from 'p-queue';
import { delayUnlessAborted, linkedController } from '../../abort.js';
import type { Channel } from '../../channels/index.js';
import { errorMessage, isEventError } from '../../errors.js';
import type { Logger } from '../../log.js';
import { annotate, runInSpan } from '../../telemetry/index.js';
import type { Provider, SendResult } from '../../providers/index.js';
import type { DispatchContext } from './context.js';
import { SenderHandOver } from './handover.js';
import { DISPATCH_DEAD_LETTER_REASONS, OutcomeRecorder } from './outcome.js';
import { rateCost, sendMessage, sendTimeoutMs, type BatchControl, type SendOutcome } from './send.js';
import { Settlement } from './settlement.js';
import { InteractionOutbox } from './interaction-outbox.js';
import { lastCallStart, LockDeadlineReached, sessionLockedUntil, stoppedAtLockDeadline } from './lock-deadline.js';
import { parseOutboundMessage, type OutboundMessage } from '../messages.js';
import type { AcceptedSession, Delivery, SessionCloseReason, SessionHandler, SessionRelease } from '../ports.js';
import type { SenderLimiter } from './sender-limiter.js';
import type { ConcurrencyChange } from './concurrency.js';
import { traceAttributes } from '../trace-attributes.js';

/**
 * Lookups of messages left in flight made at once per session: a crash's batch (up to 100 messages) must not take
 * the provider account's concurrent requests from the sends (Twilio: 100 per account, 429 20429 beyond).
 */
const LOOKUPS_AT_ONCE = 4;

/**
 * Provider message ids a session keeps as taken (see `DispatchSession.#claimed`), the newest only: a lookup matches on
 * sender, recipient, text and a span around the call (Twilio: ± 60 s), so only recent ids can be matched by mistake.
 */
const CLAIMED_KEPT = 10_000;

/**
 * A held session whose messages wait while no provider call started or ended for this long, with nothing that explains
 * it (no pause, no call in flight, no rate window held), is warned about, once per stall: #15's stall (sends stopped for
 * 6.6 s, no 429, no failed request) was silent. Longer than Telegram's 3 s group spacing, shorter than a lost answer's
 * 5 s lookup delay plus its call.
 */
const STALL_WARN_MS = 5000;

/** A delivery with its body read (or the error that kept it from being read). */
type Parsed = { delivery: Delivery; msg: OutboundMessage } | { delivery: Delivery; error: unknown };

/**
 * The handler of one held sender session; `onClose` hands back what waits and saves the session state (when that
 * fails, it holds the session until the last window has passed; see `DispatchSession.#close`).
 */
export interface DispatchSessionHandler extends SessionHandler {
  onClose(reason?: SessionCloseReason): Promise<void>;
}

export class DispatchSession implements DispatchSessionHandler {
  readonly #stage: DispatchContext;
  readonly #session: AcceptedSession;
  readonly #log: Logger;
  readonly #limiter: SenderLimiter | undefined;
  readonly #outbox: InteractionOutbox;
  readonly #recorder: OutcomeRecorder;
  readonly #handOver: SenderHandOver;
  readonly #closeController = new AbortController();
  readonly #batches = new Set<Promise<boolean>>();
  /**
   * Provider message ids known to belong to a message of this session: sent by it, or matched by a lookup (in flight,
   * or whose answer was lost). A lookup never matches them again: another message of the same text to the same
   * recipient, sent a moment before, is not taken for the one looked up (which would then never be sent).
   */
  readonly #claimed = new Set<string>();
  /** Per recipient, the last turn of its conversation messages (see `#takeTurn`). */
  readonly #turns = new Map<string, Promise<void>>();
  readonly #lookups = new PQueue({ concurrency: LOOKUPS_AT_ONCE });
  #sending = 0;
  /** Deliveries received and not yet handled to the end (settled, or handed back). */
  #outstanding = 0;
  /** When the session was accepted (ms since the epoch). */
  readonly #acceptedAt: number;
  /** Since when the stall warned about has lasted (see `#watchStall`); undefined when none is. */
  #stalledSince: number | undefined;
  /** Runs `#watchStall` every second while deliveries are outstanding. */
  #stallWatch: ReturnType<typeof setInterval> | undefined;
  /** The calls in flight last logged at info (see `#concurrencyChanged`). */
  #loggedConcurrency = 0;
  #closing: Promise<void> | undefined;

  constructor(stage: DispatchContext, session: AcceptedSession) {
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
    this.#recorder = new OutcomeRecorder(stage, this.#outbox, () => this.#lockedUntil());
    this.#handOver = new SenderHandOver(session, stage, this.#log, () => this.#lockedUntil());
    const channels = stage.channels.all().filter((c) => c.senderKey === session.sessionId);
    this.#limiter =
      channels.length === 0 ? undefined : this.#handOver.takeOver(channels, (c) => this.#concurrencyChanged(c));
    if (this.#limiter !== undefined) {
      this.#loggedConcurrency = this.#limiter.concurrency;
      stage.senderConcurrency(session.sessionId, this.#limiter);
    } else {
      this.#log.warn('no configured channel sends as this session: its messages are dead-lettered', {
        sessionId: session.sessionId,
      });
    }
    this.#acceptedAt = stage.now();
    stage.sessions.add(this);
  }

  /** `count` deliveries received: the stall watch runs while any is outstanding. */
  #received(count: number): void {
    this.#outstanding += count;
    if (this.#stallWatch !== undefined || this.#limiter === undefined) return;
    this.#stallWatch = setInterval(() => this.#watchStall(), 1000);
    this.#stallWatch.unref?.();
  }

  /** `count` deliveries handled to the end; the watch stops with the last (saying so when a stall was warned of). */
  #handled(count: number): void {
    this.#outstanding -= count;
    if (this.#outstanding > 0) return;
    this.#watchStall();
    clearInterval(this.#stallWatch);
    this.#stallWatch = undefined;
  }

  /**
   * Warns when this sender's messages wait while no call started or ended for `STALL_WARN_MS` and nothing explains
   * it, naming what waits; says when calls resume.
   */
  #watchStall(): void {
    const limiter = this.#limiter;
    if (limiter === undefined) return;
    const now = this.#stage.now();
    const lastCallAt = limiter.lastCallAt;
    if (this.#stalledSince !== undefined && (lastCallAt > this.#stalledSince || this.#outstanding === 0)) {
      this.#log.info('provider calls of this sender resumed', { stalledMs: now - this.#stalledSince });
      this.#stalledSince = undefined;
    }
    if (this.#stalledSince !== undefined || this.#outstanding === 0) return;
    const stats = limiter.stats();
    if (limiter.paused || stats.inFlight > 0 || limiter.holdLeftMs() > 0) return;
    const quietSince = Math.max(lastCallAt, this.#acceptedAt);
    if (now - quietSince < STALL_WARN_MS) return;
    this.#stalledSince = quietSince;
    this.#log.warn('no provider call of this sender for seconds while its messages wait, with its rate limit free', {
      quietMs: now - quietSince,
      outstanding: this.#outstanding,
      waitingInLimiter: stats.waiting,
      lookupsWaiting: this.#lookups.size + this.#lookups.pending,
      batches: this.#batches.size,
    });
  }

  /**
   * The limiter sized the sender's calls in flight again: the gauge follows every change; the log at info only a
   * notable one (a quarter or more, at least 2, from the last logged), at debug the rest.
   */
  #concurrencyChanged(change: ConcurrencyChange): void {
    const limiter = this.#limiter;
    if (limiter === undefined) return;
    this.#stage.senderConcurrency(this.#session.sessionId, limiter);
    // Not `from`/`to`: the log masks those keys as phone numbers.
    const fields = {
      concurrency: change.to,
      previous: change.from,
      limit: limiter.concurrencyLimit,
      latencyMs: Math.round(change.latency.meanMs ?? 0),
      latencyDeviationMs: Math.round(change.latency.deviationMs),
    };
    const last = this.#loggedConcurrency;
    if (Math.abs(change.to - last) >= Math.max(2, last / 4)) {
      this.#loggedConcurrency = change.to;
      this.#log.info("sender's calls in flight resized from its rate and the provider's latency", fields);
    } else this.#log.debug("sender's calls in flight resized from its rate and the provider's latency", fields);
  }

  limiterStats(): { waiting: number; inFlight: number } {
    return this.#limiter?.stats() ?? { waiting: 0, inFlight: 0 };
  }

  /**
   * Sends the batch; when it handed messages back at the lock deadline, resolves (once every delivery is settled) to a
   * request to release the session, so that the loop does not hand it the same messages again at once (each time one
   * more delivery) and the next holder, with a fresh lock, sends them.
   */
  async onBatch(deliveries: Delivery[], signal: AbortSignal): Promise<void | SessionRelease> {
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
        this.#log.info(
          'the session lock ends before the rest of this batch can be sent: handing back what has not reached the provider',
          {
            why,
            lockedUntil: this.#lockedUntil(),
          },
        );
        starts.abort(new LockDeadlineReached(`session lock deadline: ${why}`));
      },
    };
    const parsed = deliveries.map((delivery): Parsed => {
      try {
        return { delivery, msg: parseOutboundMessage(delivery.body) };
      } catch (error) {
        return { delivery, error };
      }
    });
    this.#received(deliveries.length);
    const batch = this.#batch(parsed, control);
    this.#batches.add(batch);
    try {
      if (await batch)
        return { release: true, reason: "the session state could not be written before the batch's calls" };
      if (handedBack) return { release: true, reason: 'messages handed back at the session lock deadline' };
    } finally {
      this.#batches.delete(batch);
      starts.dispose();
      linked.dispose();
    }
  }

  /**
   * Writes the batch's messages into the session state as in flight, then handles each; when that write fails, hands
   * every delivery back unsent (a successor could not know of its calls) and resolves to true.
   */
  async #batch(parsed: Parsed[], control: BatchControl): Promise<boolean> {
    const messages = parsed.flatMap((p) => ('msg' in p ? [p.msg] : []));
    const keys = messages.map((m) => m.key);
    // What the costliest call of the batch counts (a message of an unknown channel makes no call: 1 does no harm).
    const largestCost = messages.reduce((most, m) => {
      const channel = this.#stage.channels.byName(m.channel);
      return Math.max(most, channel === undefined ? 1 : rateCost(channel, m));
    }, 1);
    if (
      this.#limiter !== undefined &&
      keys.length > 0 &&
      !(await this.#handOver.beforeCalls(this.#limiter, keys, largestCost))
    ) {
      this.#log.warn("the session state could not be written before the batch's calls: handing the batch back unsent", {
        size: parsed.length,
      });
      await Promise.all(parsed.map((p) => new Settlement(p.delivery, this.#stage.counts, this.#log).abandon()));
      this.#handled(parsed.length);
      return true;
    }
    await Promise.all(parsed.map((p) => this.#handle(p, control)));
    return false;
  }

  /** The session lock's deadline, when the session loop gives one (ms since the epoch). */
  #lockedUntil(): number | undefined {
    return sessionLockedUntil(this.#session);
  }

  /** The latest start of a call of this message: its end, timeout included, leaves `lockMarginMs` of the lock. */
  #callBy(channel: Channel, msg: OutboundMessage): number | undefined {
    return lastCallStart(this.#lockedUntil(), sendTimeoutMs(channel, msg), this.#stage.lockMarginMs);
  }

  async #handle(parsed: Parsed, batch: BatchControl): Promise<void> {
    const { delivery } = parsed;
    const settlement = new Settlement(delivery, this.#stage.counts, this.#log);
    try {
      // In the delivery's span: the provider call and the interaction it records are its children, the logs carry it.
      // (No closure with tracing off: a delivery then has no span.)
      if (delivery.span === undefined) await this.#process(parsed, settlement, batch);
      else await runInSpan(delivery.span, () => this.#process(parsed, settlement, batch));
    } catch (err) {
      // Not expected: every path settles. Hand the message back rather than lose it.
      this.#log.error('unexpected failure while dispatching', {
        messageId: delivery.messageId,
        err: errorMessage(err),
      });
      if (!settlement.done) await settlement.abandon();
    } finally {
      this.#handled(1);
    }
  }

  async #process(parsed: Parsed, settlement: Settlement, batch: BatchControl): Promise<void> {
    const stage = this.#stage;
    const { delivery } = parsed;
    if ('error' in parsed) {
      const err = parsed.error;
      const reason = isEventError(err) ? err.code : 'EventUndecodable';
      this.#log.warn('outbound message unreadable: dead-lettered', {
        messageId: delivery.messageId,
        reason,
        err: errorMessage(err),
      });
      stage.count('(unreadable)', 'invalid');
      await settlement.deadLetter(reason, errorMessage(err));
      return;
    }
    const { msg } = parsed;
    if (delivery.span !== undefined) annotate(delivery.span, traceAttributes(msg.channel, msg.context));
    const ledger = this.#handOver.inFlight;
    let mayHaveCalled = false;
    // A conversation's messages to one customer go one after another, in the order they came, retries included: an
    // agent's reply must not overtake the greeting, nor the next message one that is being retried.
    const turn = msg.purpose === 'conversation' ? this.#takeTurn(msg.to) : undefined;
    try {
      await turn?.ready;
      mayHaveCalled = await this.#send(msg, delivery, settlement, batch);
    } finally {
      turn?.release();
      // Off the in-flight list once its outcome is settled for good, or handed back without having reached the
      // provider; kept (for the next holder to reconcile) when its settlement failed or a call may have been made.
      const result = settlement.result;
      const unsent = result === 'abandoned' && !mayHaveCalled && ledger.reconcileSince(msg.key) === undefined;
      if (result === 'completed' || result === 'deadLettered' || unsent) ledger.settled(msg.key);
    }
  }

  /** The next turn of `recipient`'s conversation messages in this session: ready once the one before it is done. */
  #takeTurn(recipient: string): { ready: Promise<void>; release: () => void } {
    const previous = this.#turns.get(recipient) ?? Promise.resolve();
    let done!: () => void;
    const mine = new Promise<void>((resolve) => (done = resolve));
    this.#turns.set(recipient, mine);
    return {
      ready: previous,
      release: () => {
        if (this.#turns.get(recipient) === mine) this.#turns.delete(recipient);
        done();
      },
    };
  }

  /** Sends one message and records its outcome; true when a provider call may have been made. */
  async #send(msg: OutboundMessage, delivery: Delivery, settlement: Settlement, batch: BatchControl): Promise<boolean> {
    const stage = this.#stage;
    const log = this.#log.child({ activityKey: msg.key, channel: msg.channel });
    const channel = stage.channels.byName(msg.channel);
    if (channel === undefined) {
      const known =
        stage.channels
          .all()
          .map((c) => c.name)
          .join(', ') || 'none';
      const description = `channel '${msg.channel}' is not configured (configured channels: ${known})`;
      log.warn('unknown channel: dead-lettered', { description });
      stage.count(msg.channel, 'invalid');
      await settlement.deadLetter(DISPATCH_DEAD_LETTER_REASONS.unknownChannel, description);
      return false;
    }
    if (channel.senderKey !== this.#session.sessionId || this.#limiter === undefined) {
      const description = `channel '${channel.name}' sends as session '${channel.senderKey}', but this message came in session '${this.#session.sessionId}'`;
      log.warn('message in the wrong session: dead-lettered', { description });
      stage.count(channel.name, 'invalid');
      await settlement.deadLetter(DISPATCH_DEAD_LETTER_REASONS.sessionMismatch, description);
      return false;
    }
    const attachments = msg.attachments?.length ?? 0;
    const maxAttachments = stage.providerFor(channel).maxAttachments ?? 0;
    if (attachments > maxAttachments) {
      const description = `channel '${channel.name}' (${channel.provider.type}) carries at most ${maxAttachments} attachments per message, this one has ${attachments}: resubmit it with fewer (or none), or send them another way`;
      log.warn('more attachments than the provider carries: dead-lettered', { description });
      stage.count(channel.name, 'invalid');
      await settlement.deadLetter(DISPATCH_DEAD_LETTER_REASONS.attachments, description);
      return false;
    }
    if (batch.starts.aborted) {
      await this.#recorder.record(
        msg,
        channel,
        { kind: 'abandoned', calls: 0, atLockDeadline: stoppedAtLockDeadline(batch.starts) },
        settlement,
        batch.signal,
        log,
      );
      return false;
    }
    const since = this.#handOver.inFlight.reconcileSince(msg.key);
    if (since !== undefined && (await this.#reconcile(msg, channel, since, settlement, batch, log))) return false;
    if (delivery.deliveryCount > 1)
      log.debug('delivered again: the provider may have it already (same idempotency key)', {
        deliveryCount: delivery.deliveryCount,
      });

    this.#sending++;
    let recording: Promise<void> | undefined;
    let outcome: SendOutcome;
    try {
      const provider = stage.providerFor(channel);
      const findSent = provider.findSent?.bind(provider);
      const lookup =
        findSent === undefined
          ? undefined
          : (since: number, signal: AbortSignal) => this.#findSent(findSent, channel, msg, since, signal);
      outcome = await sendMessage(
        stage,
        msg,
        channel,
        this.#limiter,
        batch,
        log,
        () => this.#callBy(channel, msg),
        lookup,
      );
      if (outcome.kind === 'sent') this.#claim(outcome.result.providerMessageId);
      recording = this.#recorder.record(msg, channel, outcome, settlement, batch.signal, log);
    } finally {
      this.#sending--;
      // Nothing else of this session waits for the provider: send the grouped outcomes now.
      if (this.#sending === 0) this.#outbox.flush();
    }
    await recording;
    return outcome.calls > 0;
  }

  /**
   * A message listed in flight before this batch (by a holder that died, or handed back after a call): asks the
   * provider whether it has it before it is sent, once the sender's hold has ended. True when that settled the
   * message: found (the outcome is recorded as sent, with the provider's id), the lookup failed (handed back, not
   * sent: a duplicate to a customer is worse than a delay; the bus dead-letters it past MaxDeliveryCount), or the
   * batch stopped first (handed back). False when it is to be sent: not found, or a provider that cannot be asked (a
   * contract endpoint: the same `RequestId` is safe; Telegram: it may repeat).
   */
  async #reconcile(
    msg: OutboundMessage,
    channel: Channel,
    since: number,
    settlement: Settlement,
    batch: BatchControl,
    log: Logger,
  ): Promise<boolean> {
    const stage = this.#stage;
    const ledger = this.#handOver.inFlight;
    const provider = stage.providerFor(channel);
    if (provider.findSent === undefined) {
      stage.counts.inFlightResent++;
      ledger.reconciled(msg.key);
      log.warn('listed in flight before this delivery; this provider cannot be asked: sending again', {
        provider: provider.type,
        repeat: provider.type === 'contract' ? 'safe: the same RequestId' : 'possible',
      });
      return false;
    }
    // Not before the sender's hold ends (after a crash, one window from the takeover): a call the dead holder made just
    // before it died may take the provider a moment to create, and a lookup made at once could miss it.
    const handBack = async (): Promise<true> => {
      await this.#recorder.record(
        msg,
        channel,
        { kind: 'abandoned', calls: 0, atLockDeadline: stoppedAtLockDeadline(batch.starts) },
        settlement,
        batch.signal,
        log,
      );
      return true;
    };
    const pausedUntil = this.#limiter?.pausedUntil;
    if (pausedUntil !== undefined) await delayUnlessAborted(pausedUntil - stage.now(), batch.starts);
    if (batch.starts.aborted) return handBack();
    let found: SendResult | undefined;
    try {
      found = await this.#findSent(provider.findSent.bind(provider), channel, msg, since, batch.starts);
    } catch (err) {
      if (batch.starts.aborted) return handBack();
      stage.lookedUp(channel.name, 'in_flight', 'failed');
      log.warn(
        'listed in flight before this delivery, and the provider could not tell whether it has it: handed back, not sent',
        { err: errorMessage(err) },
      );
      stage.count(channel.name, 'abandoned');
      await settlement.abandon();
      return true;
    }
    ledger.reconciled(msg.key);
    if (found === undefined) {
      stage.lookedUp(channel.name, 'in_flight', 'not_found');
      log.info('listed in flight before this delivery; the provider does not have it: sending');
      return false;
    }
    stage.lookedUp(channel.name, 'in_flight', 'found');
    log.info('listed in flight before this delivery; the provider has it: recorded, not sent again', {
      providerMessageId: found.providerMessageId,
      status: found.status,
    });
    await this.#recorder.record(msg, channel, { kind: 'sent', result: found, calls: 0 }, settlement, batch.signal, log);
    return true;
  }

  /**
   * The provider's message sent as `msg` since `since`, not one matched before (then it is claimed), or undefined;
   * at most `LOOKUPS_AT_ONCE` of this session's lookups at once. Rejects when the provider cannot tell. Two lookups
   * for messages of the same text to the same recipient may run at once and both read the same message: the second
   * to answer asks again, this time without it.
   */
  async #findSent(
    findSent: NonNullable<Provider['findSent']>,
    channel: Channel,
    msg: OutboundMessage,
    since: number,
    signal: AbortSignal,
  ): Promise<SendResult | undefined> {
    for (;;) {
      const found = await this.#lookups.add(
        () =>
          findSent({
            from: channel.sender,
            to: msg.to,
            text: msg.text,
            since,
            until: this.#stage.now(),
            exclude: this.#claimed,
            signal,
          }),
        { signal },
      );
      if (found === undefined) return undefined;
      if (!this.#claimed.has(found.providerMessageId)) {
        this.#claim(found.providerMessageId);
        return found;
      }
    }
  }

  /** Keeps `id` as taken (the newest `CLAIMED_KEPT`). */
  #claim(id: string): void {
    this.#claimed.add(id);
    if (this.#claimed.size > CLAIMED_KEPT) this.#claimed.delete(this.#claimed.values().next().value as string);
  }

  onClose(reason?: SessionCloseReason): Promise<void> {
    this.#closing ??= this.#close(reason);
    return this.#closing;
  }

  /**
   * Hands back what still waits (calls in flight finish and are recorded), then hands the sender over: saves the last
   * window as the session state, or, when that save fails or times out, keeps the session (returns later) until that
   * window has passed (see `SenderHandOver.handOver`).
   */
  async #close(reason: SessionCloseReason | undefined): Promise<void> {
    this.#closeController.abort(new Error('session closing'));
    await Promise.allSettled([...this.#batches]);
    this.#outbox.close();
    const limiter = this.#limiter;
    if (limiter !== undefined) await this.#handOver.handOver(limiter, reason);
    this.#stage.senderConcurrency(this.#session.sessionId, undefined);
    this.#stage.sessions.delete(this);
  }
}
