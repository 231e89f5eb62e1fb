/**
 * The intake stage: one batch of `activities` deliveries in, one `outbound` send out (two when the batch mixes
 * real-time payloads and activities). Per delivery: decode the event, read the message record and the contact (one
 * read per kind per batch, cached), skip a contact that opted out since, render the text, pick the channel
 * (`routing.ts`), then send the batch to `outbound` (`send.ts`: `messageId` = the activity row id or RequestId,
 * `sessionId` = the channel's sender key) and complete.
 *
 * Invariants: every delivery is settled exactly once before `handle` returns, decided here and only here from error
 * codes (bad input → dead letter with a reason; retryable → retried within the batch, then abandoned after a wait
 * that grows with the delivery count; the relay's identity refused → abandoned after a pause); no attempt or wait
 * starts unless it could end within `batchBudgetMs` (less than the lock renewal, so a send is never repeated past the
 * bus's duplicate detection). The stage imports no SDK: decoder, reads, sender and channels are injected.
 */
import { delayUnlessAborted, linkedController } from '../../abort.js';
import type { Registry } from 'prom-client';
import { errorMessage, isDataverseError, isEventError, type CodeOf } from '../../errors.js';
import { areaLogger, silentLogger, type Logger } from '../../log.js';
import { intOption, numberOption } from '../../options.js';
import { MESSAGE_VERSION, type MarketingContext, type OutboundMessage, type RealtimeContext } from '../messages.js';
import type { ChannelLookup, DataverseReads, Delivery, OutboundSender, Row } from '../ports.js';
import type { ActivityEvent, DecodedEvent, EventOrigin, RealtimeEvent, TruncatedActivityEvent } from '../events.js';
import { placeholders, renderText } from './render.js';
import { rewriteLinks } from '../../correlation/index.js';
import type { CallbackKeys } from '../../correlation/index.js';
import { count, type AttemptRules, type BatchState, type Item } from './batch.js';
import { IntakeMetrics, type IntakeOutcome, type IntakeStats } from './metrics.js';
import { IntakeReads } from './reads.js';
import { IntakeRouting, type TiledChannel } from './routing.js';
import { IntakeSend, type Outgoing } from './send.js';
import { budgetLeft, resolveBudget } from '../batch-retry.js';
import { resolveRetry, type ResolvedRetry, type RetryOptions } from '../../retry.js';
import { inBatchWorkSpan, runInSpan, tracingOn } from '../../telemetry/index.js';

/** What the decoder makes of one delivery. */
export type IntakeEvent = DecodedEvent;
/** Where an event came from (the decoder's `EventOrigin`). */
export type IntakeEventOrigin = EventOrigin;
export type { ActivityEvent, TruncatedActivityEvent, RealtimeEvent, IntakeStats };

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
   * Builds the activity event from the activity row read for an event whose Target was unusable (truncated, or lacking
   * attributes; `origin` is that event); throws an `EventError`. Declared as a method so that the decoder's
   * `activityFromRow(row, from: EventOrigin)`, whose origin fields are all required (the decoder always sets them),
   * fits as it is.
   */
  activityFromRow(row: Row, origin: IntakeEventOrigin): ActivityEvent;
  reads: DataverseReads;
  outbound: OutboundSender;
  channels: ChannelLookup;
  /** @defaultValue silentLogger() */
  log?: Logger;
  /** Where the intake counters are registered. @defaultValue none (no metrics; `stats()` still counts) */
  registry?: Registry;
  /** The clock for `acceptedAt`. @defaultValue Date.now */
  now?: () => number;
  /** At most this many message-record reads in flight per batch (activity rows are one read per batch). @defaultValue 4 */
  readConcurrency?: number;
  /**
   * Dataverse reads within a batch, for retryable errors (unavailable, timeout, throttled): `attempts` per read (1: no
   * retry), and the wait between attempts when no `Retry-After` says otherwise, from `initialDelayMs` doubling to at
   * most `maxDelayMs`. With the defaults a read retries after 0.5, 1, 2, 4 and 8 s (15.5 s in all, plus the attempts):
   * the batch's locks are renewed by the receive loop meanwhile, and `batchBudgetMs` ends the retries before that
   * renewal does. @defaultValue { attempts: 6, initialDelayMs: 500, maxDelayMs: 30000 }
   */
  readRetry?: RetryOptions;
  /** The `outbound` send within a batch, as `readRetry`. @defaultValue { attempts: 6, initialDelayMs: 500, maxDelayMs: 30000 } */
  sendRetry?: RetryOptions;
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
  identityPauseMs?: number;
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
  /**
   * The keys of the tracked-link codes (`callbacks.signingKeys`). Required when a channel has `callbacks.trackLinks`:
   * the links of its journey messages (those without placeholders) are then rewritten, in the template before
   * rendering, to `${publicBaseUrl}/l/${code}` (src/correlation/links.ts). @defaultValue none
   */
  callbackKeys?: CallbackKeys;
}

interface ActivityItem {
  item: Item;
  event: ActivityEvent;
}

interface PickedActivity extends ActivityItem {
  channel: TiledChannel;
  template: string;
}

/** Names the component in option errors. */
const COMPONENT = 'IntakeStage';

/** The defaults of `readRetry` and `sendRetry`. */
const RETRY_DEFAULTS: ResolvedRetry = { attempts: 6, initialDelayMs: 500, maxDelayMs: 30_000 };

export class IntakeStage {
  readonly #decode: IntakeOptions['decode'];
  readonly #activityFromRow: IntakeOptions['activityFromRow'];
  readonly #reads: DataverseReads;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #readConcurrency: number;
  readonly #abandonDelayMs: number;
  readonly #maxAbandonDelayMs: number;
  readonly #maxThrottleWaitMs: number;
  readonly #batchBudgetMs: number;
  readonly #sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  readonly #callbackKeys: CallbackKeys | undefined;
  /** Aborted by `stop()`. */
  readonly #stopping = new AbortController();
  /** The Dataverse reads of a batch with their retries. */
  readonly #readRetries: IntakeReads;
  /** The sends of a batch to `outbound` with their retries. */
  readonly #sender: IntakeSend;
  readonly #routing: IntakeRouting;
  readonly #metrics: IntakeMetrics;

  constructor(options: IntakeOptions) {
    this.#decode = options.decode;
    this.#activityFromRow = (row, origin) => options.activityFromRow(row, origin);
    this.#reads = options.reads;
    this.#log = areaLogger(options.log ?? silentLogger(), 'intake');
    this.#now = options.now ?? Date.now;
    this.#readConcurrency = intOption(COMPONENT, 'readConcurrency', options.readConcurrency, 4, 1);
    const readRetry = resolveRetry(COMPONENT, 'readRetry', options.readRetry, RETRY_DEFAULTS);
    const sendRetry = resolveRetry(COMPONENT, 'sendRetry', options.sendRetry, RETRY_DEFAULTS);
    this.#abandonDelayMs = numberOption(COMPONENT, 'abandonDelayMs', options.abandonDelayMs, 2000, { atLeast: 0 });
    this.#maxAbandonDelayMs = numberOption(COMPONENT, 'maxAbandonDelayMs', options.maxAbandonDelayMs, 30_000, {
      atLeast: 0,
    });
    this.#maxThrottleWaitMs = numberOption(COMPONENT, 'maxThrottleWaitMs', options.maxThrottleWaitMs, 30_000, {
      atLeast: 0,
    });
    const defaultThrottleWaitMs = numberOption(
      COMPONENT,
      'defaultThrottleWaitMs',
      options.defaultThrottleWaitMs,
      1000,
      { atLeast: 0 },
    );
    const identityPauseMs = numberOption(COMPONENT, 'identityPauseMs', options.identityPauseMs, 30_000, { atLeast: 0 });
    const { callTimeoutMs, batchBudgetMs } = resolveBudget(COMPONENT, options, 'read or send');
    this.#batchBudgetMs = batchBudgetMs;
    this.#sleep = options.sleep ?? delayUnlessAborted;
    const attempts: AttemptRules = {
      batchBudgetMs: this.#batchBudgetMs,
      callTimeoutMs,
      sleep: this.#sleep,
      log: this.#log,
      onRetry: () => this.#metrics.retry(),
    };
    const deadLetter = (b: BatchState, item: Item, reason: IntakeDeadLetterReason, description: string): void =>
      this.#deadLetter(b, item, reason, description);
    this.#readRetries = new IntakeReads({
      ...attempts,
      readRetry,
      maxThrottleWaitMs: this.#maxThrottleWaitMs,
      defaultThrottleWaitMs,
      identityPauseMs,
      deadLetter,
    });
    this.#sender = new IntakeSend({
      ...attempts,
      outbound: options.outbound,
      sendRetry,
      deadLetter,
      sent: (b, item) => this.#complete(b, item, 'sent'),
    });

    this.#callbackKeys = options.callbackKeys;
    const tracking = options.channels.all().filter((c) => c.callbacks?.trackLinks === true);
    if (tracking.length > 0 && this.#callbackKeys === undefined) {
      throw new TypeError(
        `Intake option callbackKeys is required: channel${tracking.length > 1 ? 's' : ''} ${tracking.map((c) => c.name).join(', ')} track links (callbacks.trackLinks)`,
      );
    }
    this.#routing = new IntakeRouting(options.channels.all());
    this.#metrics = new IntakeMetrics(options.registry);
  }

  /** A snapshot of the counts since construction. */
  stats(): IntakeStats {
    return this.#metrics.snapshot();
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
    this.#metrics.batch(batch.length);
    const deadline = Date.now() + this.#batchBudgetMs;
    const waits = linkedController(signal, this.#stopping.signal);
    const b: BatchState = {
      signal,
      waits: waits.signal,
      settling: [],
      pauseMs: undefined,
      gate: undefined,
      deadline,
      outOfBudget: false,
    };
    const items: Item[] = batch.map((delivery) => ({
      delivery,
      state: 'open',
      fields: { messageId: delivery.messageId, deliveryCount: delivery.deliveryCount },
    }));
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
        this.#sender.send(b, realtime),
        (async () => {
          if (activities.length === 0 && truncated.length === 0) return;
          // The batch's Dataverse reads serve many activities: one span linked to each (its calls are children).
          const outgoing = await inBatchWorkSpan(
            'read activities',
            tracingOn() ? items.map((i) => i.delivery.span) : [],
            async () => {
              activities.push(...(await this.#readTruncated(b, truncated)));
              return this.#marketing(b, activities);
            },
          );
          await this.#sender.send(b, outgoing);
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
        if (item.state !== 'settled')
          this.#abandon(b, item, item.pending ?? (signal.aborted ? 'stopping' : 'not handled'));
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
    } finally {
      // Nothing reads the body again (a dead letter keeps the broker's copy): a batch's bodies (~6 KB each) are not
      // held through its reads and sends.
      item.delivery.dropBody?.();
    }
    if (event.kind === 'activity') this.#correlate(item, event);
    else if (event.kind === 'activity-truncated') item.fields['activityRowId'] = event.activityRowId;
    else item.fields['requestId'] = event.requestId;
    if (event.correlationId !== undefined) item.fields['correlationId'] = event.correlationId;
    return event;
  }

  #correlate(item: Item, event: ActivityEvent): void {
    item.fields['activityRowId'] = event.activityRowId;
    item.fields['activityId'] = event.activityId;
    if (event.correlationId !== undefined) item.fields['correlationId'] = event.correlationId;
  }

  #realtime(b: BatchState, item: Item, event: RealtimeEvent, out: Outgoing[]): void {
    const routed = this.#routing.realtime(event);
    if (!routed.ok) {
      this.#deadLetter(b, item, 'EventUnknownChannel', routed.description);
      return;
    }
    const channel = routed.value;
    const parts = event.message;
    const textKey =
      'text' in parts ? 'text' : (Object.keys(parts).find((k) => k.toLowerCase() === 'text') ?? Object.keys(parts)[0]);
    const text = textKey === undefined ? undefined : parts[textKey];
    if (text === undefined) {
      this.#deadLetter(
        b,
        item,
        'MessageTextMissing',
        `request ${event.requestId} has no message parts (Message is empty)`,
      );
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
      message: {
        v: MESSAGE_VERSION,
        key: event.requestId,
        channel: channel.name,
        to: event.to,
        text,
        parts: { ...parts },
        purpose: 'journey',
        context,
        acceptedAt: this.#now(),
      },
    });
  }

  /**
   * The activity rows of the events whose Target was unusable (truncated by Dataverse, or lacking attributes), in one
   * read for the batch; a row that is missing, or lacks what the Target lacked, is dead-lettered.
   */
  async #readTruncated(
    b: BatchState,
    truncated: ReadonlyArray<{ item: Item; event: TruncatedActivityEvent }>,
  ): Promise<ActivityItem[]> {
    if (truncated.length === 0) return [];
    const items = truncated.map((t) => t.item);
    const ids = [
      ...new Map(truncated.map((t) => [t.event.activityRowId.toLowerCase(), t.event.activityRowId])).values(),
    ];
    const what = `reading ${count(ids.length, 'activity row', 'activity rows')} (events truncated by Dataverse or whose Target lacked attributes)`;
    const read = await this.#readRetries.read(b, items, what, () => this.#reads.activities(ids, b.signal));
    if (read === undefined) return [];
    if (!read.ok) {
      this.#readRetries.failed(b, items, read.error, what, read.attempts);
      return [];
    }
    const rows = new Map([...read.value].map(([id, row]) => [id.toLowerCase(), row]));
    const out: ActivityItem[] = [];
    for (const { item, event } of truncated) {
      const why =
        event.missing === undefined
          ? 'the event was truncated by Dataverse (MessageMaxSizeExceeded)'
          : `the event's Target lacked ${event.missing.join(', ')}`;
      const row = rows.get(event.activityRowId.toLowerCase());
      if (row === undefined) {
        this.#deadLetter(
          b,
          item,
          'ActivityNotFound',
          `${why} and activity row ${event.activityRowId} (msdyncrm_customerjourneycustomchannelactivities) does not exist`,
        );
        continue;
      }
      let activity: ActivityEvent;
      try {
        activity = this.#activityFromRow(row, event);
      } catch (err) {
        const reason = isEventError(err) ? err.code : 'EventUndecodable';
        this.#deadLetter(
          b,
          item,
          reason,
          `activity row ${event.activityRowId} (read because ${why}): ${errorMessage(err)}`,
        );
        continue;
      }
      this.#correlate(item, activity);
      out.push({ item, event: activity });
    }
    return out;
  }

  // ── outbound marketing: message record, channel, contact, text ────────────────────────────────────────────────

  async #marketing(b: BatchState, activities: readonly ActivityItem[]): Promise<Outgoing[]> {
    const withChannels: Array<ActivityItem & { candidates: TiledChannel[] }> = [];
    for (const a of activities) {
      const routed = this.#routing.candidates(a.event);
      if (!routed.ok) this.#deadLetter(b, a.item, 'EventUnknownChannel', routed.description);
      else withChannels.push({ ...a, candidates: routed.value });
    }
    const picked = await this.#readMessageRecords(b, withChannels);
    return this.#readContactsAndRender(b, picked);
  }

  async #readMessageRecords(
    b: BatchState,
    activities: ReadonlyArray<ActivityItem & { candidates: TiledChannel[] }>,
  ): Promise<PickedActivity[]> {
    // One read per distinct record of the batch.
    const records = new Map<
      string,
      {
        entitySetName: string;
        id: string;
        columns: string[];
        members: Array<ActivityItem & { candidates: TiledChannel[] }>;
      }
    >();
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
      const read = await this.#readRetries.read(b, items, what, () =>
        this.#reads.messageRecord(record.entitySetName, record.id, record.columns, b.signal),
      );
      if (read === undefined) return;
      if (!read.ok) {
        this.#readRetries.failed(b, items, read.error, what, read.attempts);
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
              `msdyncrm_entityid '${m.event.entityId}' of activity row ${m.event.activityRowId})`,
          );
          continue;
        }
        const p = this.#pickChannel(b, m, row, record.entitySetName);
        if (p) picked.push(p);
      }
    });
    return picked;
  }

  #pickChannel(
    b: BatchState,
    a: ActivityItem & { candidates: TiledChannel[] },
    row: Row,
    entitySetName: string,
  ): PickedActivity | undefined {
    const where = `message record ${entitySetName}(${a.event.entityId}) of activity row ${a.event.activityRowId}`;
    const routed = this.#routing.byRecord(a.event, a.candidates, row, where);
    if (!routed.ok) {
      this.#deadLetter(b, a.item, 'EventUnknownChannel', routed.description);
      return undefined;
    }
    const channel = routed.value;
    const template = row[channel.textField];
    if (typeof template !== 'string' || template.trim() === '') {
      this.#deadLetter(
        b,
        a.item,
        'MessageTextMissing',
        `${where} has no text in ${channel.textField} (the text column of channel ${channel.name})`,
      );
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
      const extra = placeholders(a.template)
        .filter((c) => !base.has(c))
        .sort();
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
    const what = (n: number, columns: readonly string[]): string =>
      `reading the contacts of ${count(n, 'activity', 'activities')} with columns ${columns.join(', ')}`;
    const allItems = activities.map((a) => a.item);
    const first = await this.#readRetries.read(b, allItems, what(allItems.length, all), () => read(activities, all));
    if (first === undefined) return [];
    if (!first.ok) {
      const err = first.error;
      if (isDataverseError(err) && err.code === 'DataverseBadRequest' && groups.size > 1 && !b.signal.aborted) {
        this.#log.warn('the contacts read failed; reading each message text’s columns alone to find the one at fault', {
          error: err,
          columns: all,
        });
        for (const group of groups.values()) {
          const items = group.members.map((m) => m.item);
          const columns = [...base, ...group.columns];
          const result = await this.#readRetries.read(b, items, what(items.length, columns), () =>
            read(group.members, columns),
          );
          if (result?.ok) continue;
          if (result !== undefined)
            this.#readRetries.failed(b, items, result.error, what(items.length, columns), result.attempts);
          for (const i of items) failed.add(i);
        }
      } else {
        this.#readRetries.failed(b, allItems, err, what(allItems.length, all), first.attempts);
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

  #toMessage(
    b: BatchState,
    a: PickedActivity,
    contact: Row | undefined,
    acceptedAt: number,
  ): OutboundMessage | undefined {
    const { event, channel } = a;
    if (contact === undefined) {
      this.#deadLetter(
        b,
        a.item,
        'ContactNotFound',
        `contact ${event.contactId} (msdyncrm_contact of activity row ${event.activityRowId}) does not exist`,
      );
      return undefined;
    }
    const compliance = channel.tile.complianceField;
    if (contact[compliance] === true) {
      this.#log.info('the contact opted out since the activity was created; no message', {
        ...a.item.fields,
        contactId: event.contactId,
        complianceField: compliance,
      });
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
        `contact ${event.contactId} (activity row ${event.activityRowId}) has no ${channel.addressField} (the address column of channel ${channel.name})`,
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
    const callbacks = channel.callbacks;
    // Keyed on the row: msdyncrm_activityid is shared by every contact of a tile (src/dataverse/assumptions.ts).
    const template =
      callbacks?.trackLinks === true && this.#callbackKeys !== undefined
        ? rewriteLinks(a.template, context, callbacks.publicBaseUrl, this.#callbackKeys)
        : a.template;
    return {
      v: MESSAGE_VERSION,
      key: event.activityRowId,
      channel: channel.name,
      to,
      text: renderText(template, contact),
      purpose: 'journey',
      context,
      acceptedAt,
    };
  }

  // ── abandoning ─────────────────────────────────────────────────────────────────────────────────────────────────

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
          const ms =
            item.wait === 'pause'
              ? Math.min(b.pauseMs ?? 0, this.#maxThrottleWaitMs)
              : this.#abandonDelay(item.delivery.deliveryCount);
          await this.#sleep(Math.min(ms, budgetLeft(b.deadline)), b.waits);
          if (!b.signal.aborted) this.#abandon(b, item, item.pending ?? 'not handled');
        }),
    );
  }

  // ── settlement ────────────────────────────────────────────────────────────────────────────────────────────────

  #settle(b: BatchState, item: Item, outcome: IntakeOutcome, action: () => Promise<void>): boolean {
    if (item.state === 'settled') return false;
    item.state = 'settled';
    this.#metrics.settling(outcome);
    b.settling.push(
      action().catch((err: unknown) => {
        this.#log.warn('settling a delivery failed (it comes back when its lock expires)', {
          ...item.fields,
          outcome,
          error: errorMessage(err),
        });
      }),
    );
    return true;
  }

  #deadLetter(b: BatchState, item: Item, reason: IntakeDeadLetterReason, description: string): void {
    if (!this.#settle(b, item, 'dead_lettered', () => item.delivery.deadLetter(reason, description))) return;
    this.#metrics.deadLettered(reason);
    runInSpan(item.delivery.span, () =>
      this.#log.warn('dead-lettered an event', { ...item.fields, reason, description }),
    );
  }

  #complete(b: BatchState, item: Item, outcome: 'sent' | 'skipped_compliance'): void {
    if (!this.#settle(b, item, outcome, () => item.delivery.complete())) return;
    this.#metrics.completed(outcome);
  }

  #abandon(b: BatchState, item: Item, why: string): void {
    if (!this.#settle(b, item, 'abandoned', () => item.delivery.abandon())) return;
    this.#metrics.abandoned();
    runInSpan(item.delivery.span, () =>
      this.#log.warn('abandoned an event (the bus redelivers it)', { ...item.fields, why }),
    );
  }
}

// ── helpers ─────────────────────────────────────────────────────────────────────────────────────────────────────

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
