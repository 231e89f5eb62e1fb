/**
 * The intake stage: one batch of `activities` deliveries in, one `outbound` send out (two when the batch mixes
 * real-time payloads and activities).
 *
 * For each delivery: decode the event (RemoteExecutionContext of a Custom Channel Activity Create, or a real-time
 * journeys outbound payload); for an outbound-marketing activity read the message record (text, channel) and the
 * contact (address, compliance field, placeholder columns), skip a contact that opted out since the activity was
 * created, render the text and pick the channel; then send the batch's messages to `outbound` in one call (the
 * real-time ones in a call of their own, made at once: they need no read) (`messageId` = the activity id or
 * RequestId, `sessionId` = the channel's sender key) and complete the deliveries.
 *
 * Channel choice. Marketing: the channels whose tile's `EntityType` is the activity's `msdyncrm_entitytype`; of
 * several (one tile shared by several channels), the one whose `name` the message record's `channelField` holds; a
 * tile with one channel is that channel. Real-time: the channel of the payload's `ChannelDefinitionId` (case-
 * insensitive); of several, the one whose `sender` is the payload's `From`. The text: the record's `textField`,
 * rendered with the contact's columns (`renderText`, render.ts); real-time: the `text` part, else the first part.
 *
 * Reads per batch: one `contacts` call for all activities of the batch, one `messageRecord` call per distinct
 * message record (journeys share a few), one `activity` call per truncated event. The reads port also caches.
 *
 * Settlement, decided here and only here, from error codes:
 * - bad input (an `EventError`, a missing row or column, no matching channel) → dead-letter with a reason (a code)
 *   and a description that says exactly what was wrong;
 * - a permanent `DataverseError` for a record → dead-letter with Dataverse's code and message;
 * - a retryable `DataverseError` (unavailable, timeout, throttled) → the read is retried within the batch, up to
 *   `readAttempts`, after a backoff (`backoffMs` doubling to `maxBackoffMs`) or the `Retry-After`; while a
 *   `Retry-After` runs no read of the batch starts. Still failing → abandoned after a wait that grows with the
 *   delivery count (`abandonDelayMs` × `deliveryCount`, at most `maxAbandonDelayMs`), so that the bus's redeliveries
 *   span minutes, not the two seconds that ten immediate abandons take (the bus dead-letters at MaxDeliveryCount);
 * - a `Retry-After` longer than `maxThrottleWaitMs`, or `DataverseUnauthorized` (the relay's identity, not the event)
 *   → no further reads in that batch; the deliveries are abandoned after that wait (`unauthorizedPauseMs` for the
 *   identity), so the events wait in the queue, not in the dead letters;
 * - a failed `outbound` send → the whole send is retried, up to `sendAttempts` (a repeat of what went before the
 *   failure is dropped by the bus's duplicate detection: same `messageId`), then abandoned after the same growing wait;
 *   an error that says `retryable: false` (as the SDK's `ServiceBusError` does for a missing queue or a refused
 *   identity) is not retried within the batch;
 * - one message too large for `outbound` (the sender rejects, before sending anything, with `code`
 *   `'MessageTooLarge'` and the `messageId`: src/servicebus/sender.ts `MessageTooLargeError`) → that delivery is
 *   dead-lettered (`OutboundMessageTooLarge`) and the rest of the batch is sent without it;
 * - abort → abandon whatever is not settled yet, at once; `stop()` (the stage is stopping) cuts every wait short the
 *   same way, and makes no further retry. Every delivery is settled exactly once before `handle` returns.
 *
 * Time budget. A batch ends within `batchBudgetMs` of the start of `handle` (less than the receive loop's lock
 * renewal, `maxLockRenewalMs`, 5 minutes by default): a message whose lock ran out comes back while the first run
 * still works on it, its settlement fails, and a send made more than 10 minutes after the first passes the bus's
 * duplicate detection (a message sent twice). So no attempt (a read or a send) starts unless it could end before the
 * deadline, counting `callTimeoutMs` for it, and no wait starts unless the attempt after it could; the deliveries that
 * would need one are set to be abandoned at once (the wait before abandoning is capped by what is left of the budget).
 *
 * The stage imports no SDK: the decoder, the Dataverse reads, the outbound sender and the channels are injected.
 */
import { delay, linkedController, raceAbort } from '../abort.js';
import { Counter, type Registry } from 'prom-client';
import type { Channel } from '../channels/types.js';
import { ConfigError, errorMessage, isDataverseError, isEventError, type CodeOf, type ConfigProblem } from '../errors.js';
import { areaLogger, silentLogger, type Logger } from '../log.js';
import { MESSAGE_VERSION, type MarketingContext, type OutboundMessage, type RealtimeContext } from './messages.js';
import type { DataverseReads, Delivery, OutboundSender, Row } from './ports.js';
import type { ActivityEvent, DecodedEvent, EventOrigin, RealtimeEvent, TruncatedActivityEvent } from './events.js';
import { placeholders, renderText } from './render.js';

/** What the decoder makes of one delivery. */
export type IntakeEvent = DecodedEvent;
/** Where an event came from (the decoder's `EventOrigin`). */
export type IntakeEventOrigin = EventOrigin;
export type { ActivityEvent, TruncatedActivityEvent, RealtimeEvent };

/** The configured channels, as intake needs them. */
export interface IntakeChannels {
  all(): readonly Channel[];
}

/** The reason of a dead-lettered delivery: an `EventError` code, a Dataverse error code, or one of intake's own. */
export type IntakeDeadLetterReason =
  | CodeOf<'event'>
  | CodeOf<'dataverse'>
  | 'ActivityNotFound'
  | 'MessageRecordNotFound'
  | 'MessageTextMissing'
  | 'ContactNotFound'
  | 'RecipientAddressMissing'
  | 'OutboundMessageTooLarge';

export interface IntakeOptions {
  /** Decodes one delivery; throws an `EventError` for a body it cannot use (src/dataverse/remote-context.ts). */
  decode: (delivery: Delivery) => IntakeEvent;
  /**
   * Builds the activity event from the activity row read for a truncated event (`origin` is that truncated event);
   * throws an `EventError`. Declared as a method so that the decoder's `activityFromRow(row, from: EventOrigin)`, whose
   * origin fields are all required (the decoder always sets them), fits as it is.
   */
  activityFromRow(row: Row, origin: IntakeEventOrigin): ActivityEvent;
  reads: DataverseReads;
  outbound: OutboundSender;
  channels: IntakeChannels;
  /** @defaultValue silentLogger() */
  log?: Logger;
  /** Where the intake counters are registered. @defaultValue none (no metrics; `stats()` still counts) */
  registry?: Registry;
  /** The clock for `acceptedAt`. @defaultValue Date.now */
  now?: () => number;
  /** At most this many message-record or activity reads in flight per batch. @defaultValue 4 */
  readConcurrency?: number;
  /**
   * Attempts per Dataverse read within one delivery of the batch, for retryable errors (unavailable, timeout,
   * throttled). An integer of at least 1 (1: no retry). @defaultValue 6
   */
  readAttempts?: number;
  /** Attempts per `outbound` send within one delivery of the batch. An integer of at least 1. @defaultValue 6 */
  sendAttempts?: number;
  /**
   * The first wait between attempts (a read or a send) when no `Retry-After` says otherwise; doubles each attempt.
   * With the defaults a read retries after 0.5, 1, 2, 4 and 8 s (15.5 s in all, plus the attempts): the batch's locks
   * are renewed by the receive loop meanwhile, and `batchBudgetMs` ends the retries before that renewal does.
   * @defaultValue 500
   */
  backoffMs?: number;
  /** The longest wait between attempts. @defaultValue 30000 */
  maxBackoffMs?: number;
  /**
   * The wait before abandoning a delivery whose attempts ran out, per delivery so far: `abandonDelayMs` ×
   * `deliveryCount`, at most `maxAbandonDelayMs`. With the defaults and MaxDeliveryCount 10, an activity outlives
   * about four minutes of Dataverse outage before the bus dead-letters it. 0: abandon at once. @defaultValue 2000
   */
  abandonDelayMs?: number;
  /** The longest wait before abandoning a delivery whose attempts ran out. @defaultValue 30000 */
  maxAbandonDelayMs?: number;
  /**
   * The longest `Retry-After` waited out within a batch before reading again. A longer one ends the batch's reads:
   * its deliveries are abandoned after this wait (a longer wait would only hold the batch's locks). @defaultValue 30000
   */
  maxThrottleWaitMs?: number;
  /** The wait when a `DataverseThrottled` error carries no `retryAfterMs`. @defaultValue 1000 */
  defaultThrottleWaitMs?: number;
  /**
   * The pause before abandoning when Dataverse refuses the relay's identity (`DataverseUnauthorized`): the events are
   * fine, the credentials are not, so they go back to the queue (not to the dead letters) to wait for a fix.
   * Capped by `maxThrottleWaitMs`. @defaultValue 30000
   */
  unauthorizedPauseMs?: number;
  /**
   * The longest a batch takes, from the start of `handle` to its last settlement: no read, send or wait starts that
   * could not end before then (counting `callTimeoutMs` per attempt). Keep it below the receive loop's
   * `maxLockRenewalMs` (300000 by default) with a margin for the settlements. At least `callTimeoutMs`.
   * @defaultValue 240000
   */
  batchBudgetMs?: number;
  /**
   * How long one attempt (a Dataverse read, an `outbound` send) may take at most: the Dataverse client's timeout (the
   * relay passes `dataverse.timeoutMs`). An attempt starts only when this much of the batch's budget is left.
   * @defaultValue 30000
   */
  callTimeoutMs?: number;
  /** Waits, resolving early when the signal aborts (tests may pass a fake). @defaultValue setTimeout cut short by the signal */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}

/** Counts since construction (a snapshot). */
export interface IntakeStats {
  batches: number;
  /** Deliveries handed to `handle`. */
  received: number;
  /** Deliveries completed after their message went to `outbound` (a repeat within one batch is sent once). */
  sent: number;
  /** Activities whose contact had opted out: completed without a message. */
  skippedByCompliance: number;
  deadLettered: number;
  /** Dead letters per reason. */
  deadLetterReasons: Record<string, number>;
  abandoned: number;
  /** Reads and sends tried again within a batch (one per failed attempt that was retried). */
  retries: number;
}

type Outcome = 'sent' | 'skipped_compliance' | 'dead_lettered' | 'abandoned';

/**
 * One delivery of the batch and what is known about it. `open` until settled, or `waiting` to be abandoned when the
 * batch ends (after its `wait`).
 */
interface Item {
  delivery: Delivery;
  state: 'open' | 'waiting' | 'settled';
  /** Correlation fields for every log line about it. */
  fields: Record<string, unknown>;
  /** Why it is abandoned when the batch ends with it unsettled. */
  pending?: string;
  /** The wait before it is abandoned: `redelivery` grows with the delivery count; `pause` is the batch's `pauseMs`. */
  wait?: 'redelivery' | 'pause';
}

interface ActivityItem {
  item: Item;
  event: ActivityEvent;
}

interface PickedActivity extends ActivityItem {
  channel: Channel & { tile: NonNullable<Channel['tile']> };
  template: string;
}

interface Outgoing {
  item: Item;
  message: OutboundMessage;
  sessionId: string;
}

interface BatchState {
  /** The handler's signal: aborted, every read, send and wait ends and what is not settled is abandoned. */
  signal: AbortSignal;
  /** Aborts with `signal` or when the stage stops: cuts waits short (a wait cut short means no further attempt). */
  waits: AbortSignal;
  /** Settlements started; awaited before `handle` returns. */
  settling: Promise<void>[];
  /**
   * Set by a `Retry-After` above `maxThrottleWaitMs` or by `DataverseUnauthorized`: no more reads in this batch; how
   * long to wait before abandoning the deliveries that wait on it (the longest seen).
   */
  pauseMs: number | undefined;
  /** Resolves when the batch's longest running `Retry-After` has run out; every read attempt waits for it. */
  gate: Promise<void> | undefined;
  /** `Date.now()` by which the batch has ended (`batchBudgetMs` after the start of `handle`). */
  deadline: number;
  /** Whether running out of the budget was logged (once per batch). */
  outOfBudget: boolean;
}

type TiledChannel = Channel & { tile: NonNullable<Channel['tile']> };

const INTAKE_EVENTS = 'channel_relay_intake_events_total';
const INTAKE_DEAD_LETTERS = 'channel_relay_intake_dead_letters_total';

export class IntakeStage {
  readonly #decode: IntakeOptions['decode'];
  readonly #activityFromRow: IntakeOptions['activityFromRow'];
  readonly #reads: DataverseReads;
  readonly #outbound: OutboundSender;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #readConcurrency: number;
  readonly #readAttempts: number;
  readonly #sendAttempts: number;
  readonly #backoffMs: number;
  readonly #maxBackoffMs: number;
  readonly #abandonDelayMs: number;
  readonly #maxAbandonDelayMs: number;
  readonly #maxThrottleWaitMs: number;
  readonly #defaultThrottleWaitMs: number;
  readonly #unauthorizedPauseMs: number;
  readonly #batchBudgetMs: number;
  readonly #callTimeoutMs: number;
  readonly #sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  /** Aborted by `stop()`. */
  readonly #stopping = new AbortController();
  /** Tile entity type → the channels of that tile. */
  readonly #byEntityType = new Map<string, TiledChannel[]>();
  /** `msdyn_channeldefinition` id (lower case) → the channels serving it. */
  readonly #byDefinition = new Map<string, Channel[]>();
  readonly #events: Counter<'outcome'> | undefined;
  readonly #deadLetters: Counter<'reason'> | undefined;
  readonly #stats: IntakeStats = { batches: 0, received: 0, sent: 0, skippedByCompliance: 0, deadLettered: 0, deadLetterReasons: {}, abandoned: 0, retries: 0 };

  constructor(options: IntakeOptions) {
    this.#decode = options.decode;
    this.#activityFromRow = (row, origin) => options.activityFromRow(row, origin);
    this.#reads = options.reads;
    this.#outbound = options.outbound;
    this.#log = areaLogger(options.log ?? silentLogger(), 'intake');
    this.#now = options.now ?? Date.now;
    this.#readConcurrency = positiveInteger('readConcurrency', options.readConcurrency, 4);
    this.#readAttempts = positiveInteger('readAttempts', options.readAttempts, 6);
    this.#sendAttempts = positiveInteger('sendAttempts', options.sendAttempts, 6);
    this.#backoffMs = nonNegative('backoffMs', options.backoffMs, 500);
    this.#maxBackoffMs = nonNegative('maxBackoffMs', options.maxBackoffMs, 30_000);
    this.#abandonDelayMs = nonNegative('abandonDelayMs', options.abandonDelayMs, 2000);
    this.#maxAbandonDelayMs = nonNegative('maxAbandonDelayMs', options.maxAbandonDelayMs, 30_000);
    this.#maxThrottleWaitMs = nonNegative('maxThrottleWaitMs', options.maxThrottleWaitMs, 30_000);
    this.#defaultThrottleWaitMs = nonNegative('defaultThrottleWaitMs', options.defaultThrottleWaitMs, 1000);
    this.#unauthorizedPauseMs = nonNegative('unauthorizedPauseMs', options.unauthorizedPauseMs, 30_000);
    this.#callTimeoutMs = positive('callTimeoutMs', options.callTimeoutMs, 30_000);
    this.#batchBudgetMs = positive('batchBudgetMs', options.batchBudgetMs, 240_000);
    if (this.#batchBudgetMs < this.#callTimeoutMs) {
      throw new TypeError(`Intake option batchBudgetMs (${this.#batchBudgetMs}) must be at least callTimeoutMs (${this.#callTimeoutMs}): no read or send could start within the budget`);
    }
    this.#sleep = options.sleep ?? delay;

    for (const channel of options.channels.all()) {
      if (channel.tile) push(this.#byEntityType, channel.tile.entityType, channel as TiledChannel);
      if (channel.channelDefinitionId) push(this.#byDefinition, channel.channelDefinitionId.toLowerCase(), channel);
    }
    checkChannels(this.#byEntityType, this.#byDefinition);

    if (options.registry) {
      this.#events = counter(options.registry, INTAKE_EVENTS, 'Activities events handled by intake, by outcome.', 'outcome');
      this.#deadLetters = counter(options.registry, INTAKE_DEAD_LETTERS, 'Activities events dead-lettered by intake, by reason.', 'reason');
    }
  }

  /** A snapshot of the counts since construction. */
  stats(): IntakeStats {
    return { ...this.#stats, deadLetterReasons: { ...this.#stats.deadLetterReasons } };
  }

  /**
   * The stage is stopping (call it when the receive loop stops, before draining): every wait in the batches in flight
   * (a backoff, a `Retry-After`, the wait before abandoning) ends at once, no read or send is tried again, and what
   * waited is abandoned, so that a drain is not held by a wait. Reads and sends in progress run on (the handler's
   * signal ends them); a batch handled afterwards is read and sent once, without retries. Idempotent.
   */
  stop(): void {
    this.#stopping.abort();
  }

  /**
   * Handles one received batch. Every delivery is settled exactly once before this resolves (abandoned when `signal`
   * aborts first). Never rejects.
   */
  async handle(batch: readonly Delivery[], signal: AbortSignal): Promise<void> {
    this.#stats.batches += 1;
    this.#stats.received += batch.length;
    const deadline = Date.now() + this.#batchBudgetMs;
    const waits = linkedController(signal, this.#stopping.signal);
    const b: BatchState = { signal, waits: waits.signal, settling: [], pauseMs: undefined, gate: undefined, deadline, outOfBudget: false };
    const items: Item[] = batch.map((delivery) => ({ delivery, state: 'open', fields: { messageId: delivery.messageId, deliveryCount: delivery.deliveryCount } }));
    try {
      const activities: ActivityItem[] = [];
      const truncated: Array<{ item: Item; event: TruncatedActivityEvent }> = [];
      const realtime: Outgoing[] = [];
      for (const item of items) {
        if (signal.aborted) break;
        const event = this.#decodeOne(b, item);
        if (event?.kind === 'activity') activities.push({ item, event });
        else if (event?.kind === 'activity-truncated') truncated.push({ item, event });
        else if (event?.kind === 'realtime') this.#realtime(b, item, event, realtime);
      }
      // Real-time messages need no read: they go while the activities are read (and perhaps retried).
      const outcomes = await Promise.allSettled([
        this.#send(b, realtime),
        (async () => {
          if (activities.length === 0 && truncated.length === 0) return;
          activities.push(...(await this.#readTruncated(b, truncated)));
          await this.#send(b, await this.#marketing(b, activities));
        })(),
      ]);
      for (const o of outcomes) if (o.status === 'rejected') throw o.reason;
      await this.#abandonWaiting(b, items);
    } catch (err) {
      // Nothing above is meant to throw; if something does, the finally block still settles every delivery.
      this.#log.error('intake failed on a batch; abandoning what is not settled', { error: err, size: batch.length });
    } finally {
      waits.dispose();
      for (const item of items) {
        if (item.state !== 'settled') this.#abandon(b, item, item.pending ?? (signal.aborted ? 'stopping' : 'not handled'));
      }
      await Promise.all(b.settling);
    }
  }

  // ── decoding and routing ──────────────────────────────────────────────────────────────────────────────────────

  #decodeOne(b: BatchState, item: Item): IntakeEvent | undefined {
    let event: IntakeEvent;
    try {
      event = this.#decode(item.delivery);
    } catch (err) {
      if (isEventError(err)) this.#deadLetter(b, item, err.code, err.message);
      else this.#deadLetter(b, item, 'EventUndecodable', `the decoder failed on this body: ${errorMessage(err)}`);
      return undefined;
    }
    if (event.kind === 'activity') this.#correlate(item, event);
    else if (event.kind === 'activity-truncated') item.fields['activityRowId'] = event.activityRowId;
    else item.fields['requestId'] = event.requestId;
    if (event.correlationId !== undefined) item.fields['correlationId'] = event.correlationId;
    return event;
  }

  #correlate(item: Item, event: ActivityEvent): void {
    item.fields['activityId'] = event.activityId;
    if (event.correlationId !== undefined) item.fields['correlationId'] = event.correlationId;
  }

  #realtime(b: BatchState, item: Item, event: RealtimeEvent, out: Outgoing[]): void {
    const candidates = this.#byDefinition.get(event.channelDefinitionId.toLowerCase()) ?? [];
    const channel = candidates.length === 1 ? candidates[0] : candidates.find((c) => c.sender === event.from);
    if (!channel) {
      const description =
        candidates.length === 0
          ? `no channel is configured for channel definition ${event.channelDefinitionId} (ChannelDefinitionId of request ${event.requestId}); ` +
            `configured channel definitions: ${list([...this.#byDefinition.keys()])}`
          : `channel definition ${event.channelDefinitionId} (request ${event.requestId}) has ${candidates.length} channels and none has the sender ` +
            `'${event.from}' (From); their senders: ${list(candidates.map((c) => `${c.name}: '${c.sender}'`))}`;
      this.#deadLetter(b, item, 'EventUnknownChannel', description);
      return;
    }
    const parts = event.message;
    const textKey = 'text' in parts ? 'text' : (Object.keys(parts).find((k) => k.toLowerCase() === 'text') ?? Object.keys(parts)[0]);
    const text = textKey === undefined ? undefined : parts[textKey];
    if (text === undefined) {
      this.#deadLetter(b, item, 'MessageTextMissing', `request ${event.requestId} has no message parts (Message is empty)`);
      return;
    }
    const context: RealtimeContext = {
      kind: 'realtime',
      channelDefinitionId: event.channelDefinitionId,
      requestId: event.requestId,
      from: event.from,
      organizationId: event.organizationId,
      ...(event.journeyId === undefined ? {} : { journeyId: event.journeyId }),
    };
    if (event.isTestSend) this.#log.info('real-time journeys test send', { ...item.fields, channel: channel.name });
    out.push({
      item,
      sessionId: channel.senderKey,
      message: { v: MESSAGE_VERSION, key: event.requestId, channel: channel.name, to: event.to, text, parts: { ...parts }, purpose: 'journey', context, acceptedAt: this.#now() },
    });
  }

  async #readTruncated(b: BatchState, truncated: ReadonlyArray<{ item: Item; event: TruncatedActivityEvent }>): Promise<ActivityItem[]> {
    const out: ActivityItem[] = [];
    await eachLimit(truncated, this.#readConcurrency, async ({ item, event }) => {
      const what = `reading activity row ${event.activityRowId} (the event was truncated by Dataverse)`;
      const read = await this.#read(b, [item], what, () => this.#reads.activity(event.activityRowId, b.signal));
      if (read === undefined) return;
      if (!read.ok) {
        this.#readFailed(b, [item], read.error, what, read.attempts);
        return;
      }
      const row = read.value;
      if (row === undefined) {
        this.#deadLetter(
          b,
          item,
          'ActivityNotFound',
          `the event was truncated by Dataverse (MessageMaxSizeExceeded) and activity row ${event.activityRowId} ` +
            '(msdyncrm_customerjourneycustomchannelactivities) does not exist',
        );
        return;
      }
      let activity: ActivityEvent;
      try {
        activity = this.#activityFromRow(row, event);
      } catch (err) {
        const reason = isEventError(err) ? err.code : 'EventUndecodable';
        this.#deadLetter(b, item, reason, `activity row ${event.activityRowId} (read because the event was truncated by Dataverse): ${errorMessage(err)}`);
        return;
      }
      this.#correlate(item, activity);
      out.push({ item, event: activity });
    });
    return out;
  }

  // ── outbound marketing: message record, channel, contact, text ────────────────────────────────────────────────

  async #marketing(b: BatchState, activities: readonly ActivityItem[]): Promise<Outgoing[]> {
    const withChannels: Array<ActivityItem & { candidates: TiledChannel[] }> = [];
    for (const a of activities) {
      const candidates = this.#byEntityType.get(a.event.entityType);
      if (!candidates) {
        this.#deadLetter(
          b,
          a.item,
          'EventUnknownChannel',
          `no channel is configured for entity type '${a.event.entityType}' (msdyncrm_entitytype of activity ${a.event.activityId}); ` +
            `the channels' tiles have: ${list([...this.#byEntityType.keys()])}`,
        );
      } else withChannels.push({ ...a, candidates });
    }
    const picked = await this.#readMessageRecords(b, withChannels);
    return this.#readContactsAndRender(b, picked);
  }

  async #readMessageRecords(b: BatchState, activities: ReadonlyArray<ActivityItem & { candidates: TiledChannel[] }>): Promise<PickedActivity[]> {
    // One read per distinct record of the batch.
    const records = new Map<string, { entitySetName: string; id: string; columns: string[]; members: Array<ActivityItem & { candidates: TiledChannel[] }> }>();
    for (const a of activities) {
      const first = a.candidates[0]!;
      const entitySetName = first.tile.entitySetName;
      const key = `${entitySetName}(${a.event.entityId.toLowerCase()})`;
      let record = records.get(key);
      if (!record) {
        const columns = new Set<string>();
        for (const c of a.candidates) {
          columns.add(c.textField);
          if (c.channelField !== undefined) columns.add(c.channelField);
        }
        record = { entitySetName, id: a.event.entityId, columns: [...columns], members: [] };
        records.set(key, record);
      }
      record.members.push(a);
    }

    const picked: PickedActivity[] = [];
    await eachLimit([...records.values()], this.#readConcurrency, async (record) => {
      const items = record.members.map((m) => m.item);
      const what = `reading message record ${record.entitySetName}(${record.id})`;
      const read = await this.#read(b, items, what, () => this.#reads.messageRecord(record.entitySetName, record.id, record.columns, b.signal));
      if (read === undefined) return;
      if (!read.ok) {
        this.#readFailed(b, items, read.error, what, read.attempts);
        return;
      }
      const row = read.value;
      for (const m of record.members) {
        if (row === undefined) {
          this.#deadLetter(
            b,
            m.item,
            'MessageRecordNotFound',
            `message record ${record.entitySetName}(${record.id}) does not exist (msdyncrm_entitytype '${m.event.entityType}', ` +
              `msdyncrm_entityid '${m.event.entityId}' of activity ${m.event.activityId})`,
          );
          continue;
        }
        const p = this.#pickChannel(b, m, row, record.entitySetName);
        if (p) picked.push(p);
      }
    });
    return picked;
  }

  #pickChannel(b: BatchState, a: ActivityItem & { candidates: TiledChannel[] }, row: Row, entitySetName: string): PickedActivity | undefined {
    const where = `message record ${entitySetName}(${a.event.entityId}) of activity ${a.event.activityId}`;
    const channel = a.candidates.length === 1 ? a.candidates[0] : a.candidates.find((c) => c.channelField !== undefined && row[c.channelField] === c.name);
    if (!channel) {
      const fields = [...new Set(a.candidates.flatMap((c) => (c.channelField === undefined ? [] : [c.channelField])))];
      const found = fields.map((f) => `${f} = ${row[f] === undefined || row[f] === null ? 'nothing' : JSON.stringify(row[f])}`).join(', ');
      this.#deadLetter(b, a.item, 'EventUnknownChannel', `${where} names no configured channel (${found}); the channels for '${a.event.entityType}' are: ${list(a.candidates.map((c) => c.name))}`);
      return undefined;
    }
    const template = row[channel.textField];
    if (typeof template !== 'string' || template.trim() === '') {
      this.#deadLetter(b, a.item, 'MessageTextMissing', `${where} has no text in ${channel.textField} (the text column of channel ${channel.name})`);
      return undefined;
    }
    a.item.fields['channel'] = channel.name;
    return { ...a, channel, template };
  }

  async #readContactsAndRender(b: BatchState, activities: readonly PickedActivity[]): Promise<Outgoing[]> {
    if (activities.length === 0) return [];
    const base = new Set<string>(['firstname', 'lastname']);
    for (const a of activities) {
      base.add(a.channel.addressField);
      base.add(a.channel.tile.complianceField);
    }
    // Activities grouped by the extra columns their texts name: if one text names a column the contact table does
    // not have, the combined read fails (400); then each group is read alone, so only that text's activities fail.
    const groups = new Map<string, { columns: string[]; members: PickedActivity[] }>();
    for (const a of activities) {
      const extra = placeholders(a.template).filter((c) => !base.has(c)).sort();
      const key = extra.join(',');
      let group = groups.get(key);
      if (!group) groups.set(key, (group = { columns: extra, members: [] }));
      group.members.push(a);
    }
    const all = [...new Set([...base, ...[...groups.values()].flatMap((g) => g.columns)])];

    const contacts = new Map<string, Row>();
    const failed = new Set<Item>();
    const read = async (members: readonly PickedActivity[], columns: readonly string[]): Promise<void> => {
      const ids = [...new Map(members.map((m) => [m.event.contactId.toLowerCase(), m.event.contactId])).values()];
      const rows = await this.#reads.contacts(ids, columns, b.signal);
      for (const [id, row] of rows) contacts.set(id.toLowerCase(), row);
    };
    const what = (n: number, columns: readonly string[]): string => `reading the contacts of ${count(n, 'activity', 'activities')} with columns ${columns.join(', ')}`;
    const allItems = activities.map((a) => a.item);
    const first = await this.#read(b, allItems, what(allItems.length, all), () => read(activities, all));
    if (first === undefined) return [];
    if (!first.ok) {
      const err = first.error;
      if (isDataverseError(err) && err.code === 'DataverseBadRequest' && groups.size > 1 && !b.signal.aborted) {
        this.#log.warn('the contacts read failed; reading each message text’s columns alone to find the one at fault', { error: err, columns: all });
        for (const group of groups.values()) {
          const items = group.members.map((m) => m.item);
          const columns = [...base, ...group.columns];
          const result = await this.#read(b, items, what(items.length, columns), () => read(group.members, columns));
          if (result?.ok) continue;
          if (result !== undefined) this.#readFailed(b, items, result.error, what(items.length, columns), result.attempts);
          for (const i of items) failed.add(i);
        }
      } else {
        this.#readFailed(b, allItems, err, what(allItems.length, all), first.attempts);
        return [];
      }
    }
    // Aborted: nothing is judged on a read that did not finish (handle() abandons).
    if (b.signal.aborted) return [];

    const out: Outgoing[] = [];
    const acceptedAt = this.#now();
    for (const a of activities) {
      if (failed.has(a.item) || a.item.state !== 'open') continue;
      const message = this.#toMessage(b, a, contacts.get(a.event.contactId.toLowerCase()), acceptedAt);
      if (message) out.push({ item: a.item, message, sessionId: a.channel.senderKey });
    }
    return out;
  }

  #toMessage(b: BatchState, a: PickedActivity, contact: Row | undefined, acceptedAt: number): OutboundMessage | undefined {
    const { event, channel } = a;
    if (contact === undefined) {
      this.#deadLetter(b, a.item, 'ContactNotFound', `contact ${event.contactId} (msdyncrm_contact of activity ${event.activityId}) does not exist`);
      return undefined;
    }
    const compliance = channel.tile.complianceField;
    if (contact[compliance] === true) {
      this.#log.info('the contact opted out since the activity was created; no message', { ...a.item.fields, contactId: event.contactId, complianceField: compliance });
      this.#complete(b, a.item, 'skipped_compliance');
      return undefined;
    }
    const raw = contact[channel.addressField];
    const to = typeof raw === 'string' ? raw.trim() : typeof raw === 'number' ? String(raw) : '';
    if (to === '') {
      this.#deadLetter(
        b,
        a.item,
        'RecipientAddressMissing',
        `contact ${event.contactId} (activity ${event.activityId}) has no ${channel.addressField} (the address column of channel ${channel.name})`,
      );
      return undefined;
    }
    const context: MarketingContext = {
      kind: 'marketing',
      activityId: event.activityId,
      activityRowId: event.activityRowId,
      contactId: event.contactId,
      journeyId: event.journeyId,
      iterationId: event.iterationId,
      entityType: event.entityType,
      entityId: event.entityId,
    };
    return { v: MESSAGE_VERSION, key: event.activityId, channel: channel.name, to, text: renderText(a.template, contact), purpose: 'journey', context, acceptedAt };
  }

  // ── sending ───────────────────────────────────────────────────────────────────────────────────────────────────

  /**
   * Sends the open messages in one call, tried again up to `sendAttempts`; a message too large for `outbound` is
   * dead-lettered and the call made again without it. Completes the deliveries sent.
   */
  async #send(b: BatchState, outgoing: readonly Outgoing[]): Promise<void> {
    const open = outgoing.filter((o) => o.item.state === 'open');
    if (open.length === 0 || b.signal.aborted) return;
    // The same event delivered twice in one batch (Dataverse retried its post) is sent once; both are completed.
    const byKey = new Map<string, Outgoing[]>();
    for (const o of open) push(byKey, o.message.key, o);
    let failures = 0;
    for (;;) {
      const messages = [...byKey.values()].map(([o]) => ({ body: o!.message, messageId: o!.message.key, sessionId: o!.sessionId }));
      if (messages.length === 0) return;
      if (!this.#fits(b)) {
        const why = failures === 0 ? 'outbound send not started' : `outbound send failed (${count(failures, 'attempt', 'attempts')}), not tried again`;
        this.#outOfBudget(b, [...byKey.values()].flat().map((o) => o.item), why);
        return;
      }
      try {
        await raceAbort(this.#outbound.send(messages, b.signal), b.signal);
        break;
      } catch (err) {
        if (b.signal.aborted) return; // abandoned by handle(): a repeat of what may have gone is dropped by the bus.
        const tooLarge = tooLargeMessage(err);
        const culprits = tooLarge === undefined ? undefined : byKey.get(tooLarge.messageId);
        if (tooLarge && culprits) {
          // Refused before anything was sent; the others go in the next call (not an attempt: nothing failed them).
          byKey.delete(tooLarge.messageId);
          for (const o of culprits) this.#deadLetter(b, o.item, 'OutboundMessageTooLarge', tooLargeDescription(o.message, tooLarge, err));
          continue;
        }
        failures += 1;
        const waiting = [...byKey.values()].flat();
        // A `MessageTooLarge` naming none of these messages is not the sender's contract: no point in trying again.
        if (failures >= this.#sendAttempts || isPermanentSendError(err) || tooLarge !== undefined || b.waits.aborted) {
          this.#log.error('sending to outbound failed; abandoning the deliveries (the bus redelivers them)', { error: err, messages: messages.length, attempts: failures });
          for (const o of waiting) this.#wait(o.item, `outbound send failed (${count(failures, 'attempt', 'attempts')}): ${errorMessage(err)}`, 'redelivery');
          return;
        }
        const waitMs = this.#backoff(failures);
        if (!this.#fits(b, waitMs)) {
          this.#outOfBudget(b, waiting.map((o) => o.item), `outbound send failed (${count(failures, 'attempt', 'attempts')}): ${errorMessage(err)}; not tried again`);
          return;
        }
        this.#stats.retries += 1;
        this.#log.warn('sending to outbound failed; trying again', { error: err, messages: messages.length, attempt: failures, waitMs });
        await this.#sleep(waitMs, b.waits);
        if (b.waits.aborted) {
          for (const o of waiting) this.#wait(o.item, `outbound send failed and the stage is stopping: ${errorMessage(err)}`, 'redelivery');
          return;
        }
      }
    }
    for (const os of byKey.values()) {
      for (const o of os) {
        this.#log.debug('sent to outbound', { ...o.item.fields, channel: o.message.channel, key: o.message.key, sessionId: o.sessionId });
        this.#complete(b, o.item, 'sent');
      }
    }
  }

  // ── Dataverse errors and retries ──────────────────────────────────────────────────────────────────────────────

  /**
   * One read with its retries within the batch. `undefined` when no answer is left to judge: aborted (handle()
   * abandons), the batch's reads ended (the items wait for its pause), or the stage stopping during a wait (the items
   * wait to be abandoned, at once). Otherwise the value, or the error that ended the attempts.
   */
  async #read<T>(b: BatchState, items: readonly Item[], what: string, call: () => Promise<T>): Promise<{ ok: true; value: T } | { ok: false; error: unknown; attempts: number } | undefined> {
    for (let attempt = 1; ; attempt++) {
      if (!(await this.#mayRead(b, items, what))) return undefined;
      try {
        return { ok: true, value: await raceAbort(call(), b.signal) };
      } catch (err) {
        if (b.signal.aborted) return undefined;
        const retry = this.#readRetryWait(b, err, attempt);
        if (retry === undefined) return { ok: false, error: err, attempts: attempt };
        const { waitMs, throttled } = retry;
        if (!this.#fits(b, waitMs)) {
          this.#outOfBudget(b, items, `${what}: ${errorMessage(err)} (${count(attempt, 'attempt', 'attempts')}); not tried again`);
          return undefined;
        }
        if (throttled) {
          // No read of this batch starts while the Retry-After runs.
          const wait = this.#sleep(waitMs, b.waits);
          b.gate = b.gate === undefined ? wait : Promise.all([b.gate, wait]).then(() => undefined);
        }
        this.#stats.retries += 1;
        this.#log.warn(`${what} failed; trying again`, { error: err, attempt, waitMs, deliveries: items.length });
        await this.#sleep(waitMs, b.waits);
        if (b.signal.aborted) return undefined;
        if (b.waits.aborted) {
          for (const item of items) this.#wait(item, `${what}: ${errorMessage(err)} (not tried again: the stage is stopping)`, 'redelivery');
          return undefined;
        }
      }
    }
  }

  /**
   * The wait before trying a failed read again (`throttled`: a `Retry-After` that holds every read of the batch), or
   * `undefined` when it is not tried again within the batch.
   */
  #readRetryWait(b: BatchState, err: unknown, attempt: number): { waitMs: number; throttled: boolean } | undefined {
    if (!isDataverseError(err) || !err.retryable || attempt >= this.#readAttempts || b.waits.aborted) return undefined;
    if (err.code === 'DataverseThrottled') {
      const ms = err.retryAfterMs ?? this.#defaultThrottleWaitMs;
      if (ms > this.#maxThrottleWaitMs) return undefined;
      return { waitMs: ms, throttled: true };
    }
    return { waitMs: Math.max(this.#backoff(attempt), err.retryAfterMs ?? 0), throttled: false };
  }

  /** Whether an attempt started after waiting `waitMs` could end (taking `callTimeoutMs`) before the batch's deadline. */
  #fits(b: BatchState, waitMs = 0): boolean {
    return Date.now() + waitMs + this.#callTimeoutMs <= b.deadline;
  }

  /** What is left of the batch's budget. */
  #left(b: BatchState): number {
    return Math.max(0, b.deadline - Date.now());
  }

  /** Sets the items to be abandoned (at once, or within what is left of the budget): no attempt fits the budget. */
  #outOfBudget(b: BatchState, items: readonly Item[], what: string): void {
    const why = `${what}: the batch's time budget (batchBudgetMs ${this.#batchBudgetMs} ms) has no room for another attempt (callTimeoutMs ${this.#callTimeoutMs} ms)`;
    if (!b.outOfBudget) {
      b.outOfBudget = true;
      this.#log.warn("the batch's time budget leaves no room for another attempt; abandoning what waits for one (the bus redelivers it)", {
        what,
        deliveries: items.length,
        leftMs: this.#left(b),
        batchBudgetMs: this.#batchBudgetMs,
        callTimeoutMs: this.#callTimeoutMs,
      });
    }
    for (const item of items) this.#wait(item, why, 'redelivery');
  }

  #backoff(attempt: number): number {
    return Math.min(this.#maxBackoffMs, this.#backoffMs * 2 ** (attempt - 1));
  }

  /**
   * Whether a read may start: not after an abort, not once the batch's reads have ended (the items then wait for its
   * pause), not when it could not end before the batch's deadline; after the running Retry-After, if any (a stop
   * during it ends the wait and the read is not made).
   */
  async #mayRead(b: BatchState, items: readonly Item[], what: string): Promise<boolean> {
    if (b.gate !== undefined) {
      await b.gate;
      if (!b.signal.aborted && b.waits.aborted) {
        for (const item of items) this.#wait(item, 'waiting out a Retry-After of this batch when the stage stopped', 'redelivery');
        return false;
      }
    }
    if (b.signal.aborted) return false;
    if (b.pauseMs === undefined) {
      if (this.#fits(b)) return true;
      this.#outOfBudget(b, items, `${what}: not started`);
      return false;
    }
    for (const item of items) this.#wait(item, 'an earlier read of this batch was throttled for long or refused; not reading until the next delivery', 'pause');
    return false;
  }

  /** Settles (or sets waiting) the items of a read that failed for good. */
  #readFailed(b: BatchState, items: readonly Item[], err: unknown, what: string, attempts: number): void {
    if (b.signal.aborted) return; // handle() abandons them
    if (isDataverseError(err)) {
      const throttledForLong = err.code === 'DataverseThrottled' && (err.retryAfterMs ?? this.#defaultThrottleWaitMs) > this.#maxThrottleWaitMs;
      if (throttledForLong || err.code === 'DataverseUnauthorized') {
        const ms = err.code === 'DataverseThrottled' ? Math.min(err.retryAfterMs ?? this.#defaultThrottleWaitMs, this.#maxThrottleWaitMs) : this.#unauthorizedPauseMs;
        if (throttledForLong) this.#log.warn('Dataverse throttled a read for longer than intake waits; no more reads in this batch', { error: err, waitMs: ms, deliveries: items.length });
        else this.#log.error("Dataverse refused the relay's identity; abandoning the deliveries after a pause", { error: err, waitMs: ms, deliveries: items.length });
        b.pauseMs = Math.max(b.pauseMs ?? 0, ms);
        for (const item of items) this.#wait(item, `${what}: ${err.code}: ${err.message}`, 'pause');
        return;
      }
      if (err.retryable) {
        this.#log.warn(`${what} still failing after ${count(attempts, 'attempt', 'attempts')}; abandoning after a wait`, { error: err, deliveries: items.length });
        for (const item of items) this.#wait(item, `${what}: ${err.code}: ${err.message} (${count(attempts, 'attempt', 'attempts')})`, 'redelivery');
        return;
      }
      const code = err.upstream?.code === undefined ? '' : ` (Dataverse code ${err.upstream.code})`;
      for (const item of items) this.#deadLetter(b, item, err.code, `${what} failed: ${err.message}${code}`);
      return;
    }
    // Not one of ours: a bug or an unforeseen failure of the port; not retried here, but handed back after a wait (the
    // bus dead-letters after MaxDeliveryCount), which is safer than guessing that the event itself is bad.
    this.#log.error(`${what} failed with an unexpected error`, { error: err, deliveries: items.length });
    for (const item of items) this.#wait(item, `${what}: ${errorMessage(err)}`, 'redelivery');
  }

  /** Sets an open item waiting to be abandoned when the batch ends, after `wait`. */
  #wait(item: Item, why: string, wait: 'redelivery' | 'pause'): void {
    if (item.state !== 'open') return;
    item.state = 'waiting';
    item.pending = why;
    item.wait = wait;
  }

  /** The wait before abandoning a delivery whose attempts ran out: grows with its delivery count. */
  #abandonDelay(deliveryCount: number): number {
    return Math.min(this.#maxAbandonDelayMs, this.#abandonDelayMs * Math.max(1, deliveryCount));
  }

  /** Abandons the waiting items, each after its wait (cut short by an abort or a stop; within the batch's budget). */
  async #abandonWaiting(b: BatchState, items: readonly Item[]): Promise<void> {
    await Promise.all(
      items
        .filter((item) => item.state === 'waiting')
        .map(async (item) => {
          const ms = item.wait === 'pause' ? Math.min(b.pauseMs ?? 0, this.#maxThrottleWaitMs) : this.#abandonDelay(item.delivery.deliveryCount);
          await this.#sleep(Math.min(ms, this.#left(b)), b.waits);
          if (!b.signal.aborted) this.#abandon(b, item, item.pending ?? 'not handled');
        }),
    );
  }

  // ── settlement ────────────────────────────────────────────────────────────────────────────────────────────────

  #settle(b: BatchState, item: Item, outcome: Outcome, action: () => Promise<void>): boolean {
    if (item.state === 'settled') return false;
    item.state = 'settled';
    this.#events?.inc({ outcome });
    b.settling.push(
      action().catch((err: unknown) => {
        this.#log.warn('settling a delivery failed (it comes back when its lock expires)', { ...item.fields, outcome, error: errorMessage(err) });
      }),
    );
    return true;
  }

  #deadLetter(b: BatchState, item: Item, reason: IntakeDeadLetterReason, description: string): void {
    if (!this.#settle(b, item, 'dead_lettered', () => item.delivery.deadLetter(reason, description))) return;
    this.#stats.deadLettered += 1;
    this.#stats.deadLetterReasons[reason] = (this.#stats.deadLetterReasons[reason] ?? 0) + 1;
    this.#deadLetters?.inc({ reason });
    this.#log.warn('dead-lettered an event', { ...item.fields, reason, description });
  }

  #complete(b: BatchState, item: Item, outcome: 'sent' | 'skipped_compliance'): void {
    if (!this.#settle(b, item, outcome, () => item.delivery.complete())) return;
    if (outcome === 'sent') this.#stats.sent += 1;
    else this.#stats.skippedByCompliance += 1;
  }

  #abandon(b: BatchState, item: Item, why: string, err?: unknown): void {
    if (!this.#settle(b, item, 'abandoned', () => item.delivery.abandon())) return;
    this.#stats.abandoned += 1;
    this.#log.warn('abandoned an event (the bus redelivers it)', { ...item.fields, why, ...(err === undefined ? {} : { error: errorMessage(err) }) });
  }
}

// ── helpers ─────────────────────────────────────────────────────────────────────────────────────────────────────

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

function count(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`;
}

function list(values: readonly string[]): string {
  return values.length === 0 ? '(none)' : values.join(', ');
}

/** Channels that share a tile must say which is which; channels that share a channel definition need distinct senders. */
function checkChannels(byEntityType: ReadonlyMap<string, TiledChannel[]>, byDefinition: ReadonlyMap<string, Channel[]>): void {
  const problems: ConfigProblem[] = [];
  for (const [entityType, channels] of byEntityType) {
    if (channels.length < 2) continue;
    for (const c of channels) {
      if (c.channelField === undefined) {
        problems.push({
          source: 'channels',
          path: `${c.name}.channelField`,
          expected: `the message record's column naming the channel (channels ${channels.map((x) => x.name).join(', ')} share the tile of '${entityType}')`,
          found: 'nothing',
        });
      }
    }
  }
  for (const [definition, channels] of byDefinition) {
    const senders = new Set(channels.map((c) => c.sender));
    if (senders.size < channels.length) {
      problems.push({
        source: 'channels',
        path: channels.map((c) => `${c.name}.sender`).join(', '),
        expected: `distinct senders (channels ${channels.map((c) => c.name).join(', ')} serve channel definition ${definition}, told apart by From)`,
        found: 'the same sender twice',
      });
    }
  }
  if (problems.length > 0) throw new ConfigError('ConfigInvalid', problems);
}

function positiveInteger(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1) throw new TypeError(`Intake option ${name} must be an integer of at least 1, found ${String(value)}`);
  return value;
}

function positive(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value <= 0) throw new TypeError(`Intake option ${name} must be a finite number above 0, found ${String(value)}`);
  return value;
}

function nonNegative(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value < 0) throw new TypeError(`Intake option ${name} must be a finite number of at least 0, found ${String(value)}`);
  return value;
}

function counter<L extends string>(registry: Registry, name: string, help: string, label: L): Counter<L> {
  const existing = registry.getSingleMetric(name);
  if (existing) return existing as Counter<L>;
  return new Counter<L>({ name, help, labelNames: [label], registers: [registry] });
}

/** What intake reads of the outbound sender's too-large rejection. */
interface TooLarge {
  messageId: string;
  bodyBytes?: number;
  maxSizeInBytes?: number;
}

/**
 * The outbound sender's rejection of one message too large for the queue even alone (src/servicebus/sender.ts
 * `MessageTooLargeError`, thrown before anything is sent), recognised by its documented shape, `code`
 * `'MessageTooLarge'` and the `messageId` it names, not by class or brand: intake imports nothing of
 * src/servicebus, and any `OutboundSender` that rejects so gets the same treatment.
 */
function tooLargeMessage(err: unknown): TooLarge | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const e = err as Record<string, unknown>;
  if (e['code'] !== 'MessageTooLarge' || typeof e['messageId'] !== 'string') return undefined;
  return {
    messageId: e['messageId'],
    ...(typeof e['bodyBytes'] === 'number' ? { bodyBytes: e['bodyBytes'] } : {}),
    ...(typeof e['maxSizeInBytes'] === 'number' ? { maxSizeInBytes: e['maxSizeInBytes'] } : {}),
  };
}

function tooLargeDescription(message: OutboundMessage, tooLarge: TooLarge, err: unknown): string {
  const what = message.context?.kind === 'realtime' ? `request ${message.key}` : `activity ${message.key}`;
  const sizes =
    tooLarge.bodyBytes !== undefined && tooLarge.maxSizeInBytes !== undefined
      ? `its JSON body is ${tooLarge.bodyBytes} bytes and the queue takes at most ${tooLarge.maxSizeInBytes} bytes per batch`
      : errorMessage(err);
  return `the outbound message of ${what} (channel ${message.channel}, a text of ${message.text.length} characters) is too large for the outbound queue: ${sizes}`;
}

/** A send error that says it is not worth retrying (`retryable: false`, as the SDK's `ServiceBusError` does). */
function isPermanentSendError(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { retryable?: unknown }).retryable === false;
}

/** Runs `fn` over `items` with at most `limit` in flight. */
async function eachLimit<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++]!;
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

