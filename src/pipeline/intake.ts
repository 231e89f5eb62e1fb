/**
 * The intake stage: one batch of `activities` deliveries in, one `outbound` send out.
 *
 * For each delivery: decode the event (RemoteExecutionContext of a Custom Channel Activity Create, or a real-time
 * journeys outbound payload); for an outbound-marketing activity read the message record (text, channel) and the
 * contact (address, compliance field, placeholder columns), skip a contact that opted out since the activity was
 * created, render the text and pick the channel; then send every message of the batch to `outbound` in ONE call
 * (`messageId` = the activity id or RequestId, `sessionId` = the channel's sender key) and complete the deliveries.
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
 * - a retryable `DataverseError` → abandon (the bus redelivers); for `DataverseThrottled` after its `Retry-After`,
 *   with no further reads in that batch; `DataverseUnauthorized` (the relay's identity, not the event) likewise after
 *   a pause, so the events wait in the queue for the credentials to be fixed;
 * - a failed `outbound` send → abandon (a redelivered activity is sent again with the same `messageId`, and the
 *   bus's duplicate detection drops the repeat);
 * - abort → abandon whatever is not settled yet. Every delivery is settled exactly once before `handle` returns.
 *
 * The stage imports no SDK: the decoder, the Dataverse reads, the outbound sender and the channels are injected.
 */
import { delay, raceAbort } from '../abort.js';
import { Counter, type Registry } from 'prom-client';
import type { Channel } from '../channels/types.js';
import { ConfigError, errorMessage, isDataverseError, isEventError, type CodeOf, type ConfigProblem } from '../errors.js';
import { areaLogger, silentLogger, type Logger } from '../log.js';
import { MESSAGE_VERSION, type MarketingContext, type OutboundMessage, type RealtimeContext } from './messages.js';
import type { DataverseReads, Delivery, OutboundSender, Row } from './ports.js';
import { placeholders, renderText } from './render.js';

/** A Custom Channel Activity created by an outbound-marketing journey, as decoded from its Create event. */
export interface ActivityEvent {
  kind: 'activity';
  /** `msdyncrm_customerjourneycustomchannelactivityid`. */
  activityRowId: string;
  /** `msdyncrm_activityid`. */
  activityId: string;
  contactId: string;
  journeyId: string;
  iterationId: string;
  /** `msdyncrm_entitytype`: the custom message table. */
  entityType: string;
  /** `msdyncrm_entityid`: the message record. */
  entityId: string;
  name?: string;
  organizationId: string;
  correlationId?: string;
  operationId?: string;
}

/** A Create event Dataverse truncated (`MessageMaxSizeExceeded`): only the row id is left; the row must be read. */
export interface TruncatedActivityEvent extends IntakeEventOrigin {
  kind: 'activity-truncated';
  activityRowId: string;
}

/** Where an event came from: the posted context's identifiers (the decoder's `EventOrigin`). */
export interface IntakeEventOrigin {
  organizationId: string;
  correlationId?: string;
  operationId?: string;
}

/** A real-time journeys outbound payload (`ChannelDefinitionId`, `RequestId`, `From`, `To`, `Message`). */
export interface RealtimeEvent {
  kind: 'realtime';
  channelDefinitionId: string;
  requestId: string;
  from: string;
  to: string;
  /** Every message part by name. */
  message: Record<string, string>;
  journeyId?: string;
  isTestSend: boolean;
  organizationId: string;
  correlationId?: string;
}

/** What the decoder makes of one delivery. */
export type IntakeEvent = ActivityEvent | TruncatedActivityEvent | RealtimeEvent;

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
  | 'RecipientAddressMissing';

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
   * The longest wait on a `Retry-After` before the throttled deliveries are abandoned (a longer wait would only hold
   * the batch's locks). @defaultValue 30000
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
}

type Outcome = 'sent' | 'skipped_compliance' | 'dead_lettered' | 'abandoned';

/** One delivery of the batch and what is known about it. `open` until settled, or `waiting` on a Retry-After. */
interface Item {
  delivery: Delivery;
  state: 'open' | 'waiting' | 'settled';
  /** Correlation fields for every log line about it. */
  fields: Record<string, unknown>;
  /** Why it is abandoned when the batch ends with it unsettled. */
  pending?: string;
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
  signal: AbortSignal;
  /** Settlements started; awaited before `handle` returns. */
  settling: Promise<void>[];
  /**
   * Set by the first `DataverseThrottled` (or `DataverseUnauthorized`): no more reads in this batch; how long to wait
   * before abandoning the deliveries that wait (the longest Retry-After seen).
   */
  pauseMs: number | undefined;
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
  readonly #maxThrottleWaitMs: number;
  readonly #defaultThrottleWaitMs: number;
  readonly #unauthorizedPauseMs: number;
  readonly #sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  /** Tile entity type → the channels of that tile. */
  readonly #byEntityType = new Map<string, TiledChannel[]>();
  /** `msdyn_channeldefinition` id (lower case) → the channels serving it. */
  readonly #byDefinition = new Map<string, Channel[]>();
  readonly #events: Counter<'outcome'> | undefined;
  readonly #deadLetters: Counter<'reason'> | undefined;
  readonly #stats: IntakeStats = { batches: 0, received: 0, sent: 0, skippedByCompliance: 0, deadLettered: 0, deadLetterReasons: {}, abandoned: 0 };

  constructor(options: IntakeOptions) {
    this.#decode = options.decode;
    this.#activityFromRow = (row, origin) => options.activityFromRow(row, origin);
    this.#reads = options.reads;
    this.#outbound = options.outbound;
    this.#log = areaLogger(options.log ?? silentLogger(), 'intake');
    this.#now = options.now ?? Date.now;
    this.#readConcurrency = positiveInteger('readConcurrency', options.readConcurrency, 4);
    this.#maxThrottleWaitMs = nonNegative('maxThrottleWaitMs', options.maxThrottleWaitMs, 30_000);
    this.#defaultThrottleWaitMs = nonNegative('defaultThrottleWaitMs', options.defaultThrottleWaitMs, 1000);
    this.#unauthorizedPauseMs = nonNegative('unauthorizedPauseMs', options.unauthorizedPauseMs, 30_000);
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
   * Handles one received batch. Every delivery is settled exactly once before this resolves (abandoned when `signal`
   * aborts first). Never rejects.
   */
  async handle(batch: readonly Delivery[], signal: AbortSignal): Promise<void> {
    this.#stats.batches += 1;
    this.#stats.received += batch.length;
    const b: BatchState = { signal, settling: [], pauseMs: undefined };
    const items: Item[] = batch.map((delivery) => ({ delivery, state: 'open', fields: { messageId: delivery.messageId, deliveryCount: delivery.deliveryCount } }));
    try {
      const activities: ActivityItem[] = [];
      const truncated: Array<{ item: Item; event: TruncatedActivityEvent }> = [];
      const outgoing: Outgoing[] = [];
      for (const item of items) {
        if (signal.aborted) break;
        const event = this.#decodeOne(b, item);
        if (event?.kind === 'activity') activities.push({ item, event });
        else if (event?.kind === 'activity-truncated') truncated.push({ item, event });
        else if (event?.kind === 'realtime') this.#realtime(b, item, event, outgoing);
      }
      activities.push(...(await this.#readTruncated(b, truncated)));
      outgoing.push(...(await this.#marketing(b, activities)));
      await this.#send(b, outgoing);
      await this.#waitOutPause(b, items);
    } catch (err) {
      // Nothing above is meant to throw; if something does, the finally block still settles every delivery.
      this.#log.error('intake failed on a batch; abandoning what is not settled', { error: err, size: batch.length });
    } finally {
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
      if (!this.#mayRead(b, [item])) return;
      let row: Row | undefined;
      try {
        row = await raceAbort(this.#reads.activity(event.activityRowId, b.signal), b.signal);
      } catch (err) {
        this.#readFailed(b, [item], err, `reading activity row ${event.activityRowId} (the event was truncated by Dataverse)`);
        return;
      }
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
      if (!this.#mayRead(b, items)) return;
      let row: Row | undefined;
      try {
        row = await raceAbort(this.#reads.messageRecord(record.entitySetName, record.id, record.columns, b.signal), b.signal);
      } catch (err) {
        this.#readFailed(b, items, err, `reading message record ${record.entitySetName}(${record.id})`);
        return;
      }
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
    if (!this.#mayRead(b, activities.map((a) => a.item))) return [];
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
      const rows = await raceAbort(this.#reads.contacts(ids, columns, b.signal), b.signal);
      for (const [id, row] of rows) contacts.set(id.toLowerCase(), row);
    };
    try {
      await read(activities, all);
    } catch (err) {
      if (isDataverseError(err) && err.code === 'DataverseBadRequest' && groups.size > 1 && !b.signal.aborted) {
        this.#log.warn('the contacts read failed; reading each message text’s columns alone to find the one at fault', { error: err, columns: all });
        for (const group of groups.values()) {
          const items = group.members.map((m) => m.item);
          if (!this.#mayRead(b, items)) continue;
          try {
            await read(group.members, [...base, ...group.columns]);
          } catch (groupErr) {
            this.#readFailed(b, items, groupErr, `reading the contacts of ${count(items.length, 'activity', 'activities')} with columns ${[...base, ...group.columns].join(', ')}`);
            for (const i of items) failed.add(i);
          }
        }
      } else {
        const items = activities.map((a) => a.item);
        this.#readFailed(b, items, err, `reading the contacts of ${count(items.length, 'activity', 'activities')} with columns ${all.join(', ')}`);
        return [];
      }
    }

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

  async #send(b: BatchState, outgoing: readonly Outgoing[]): Promise<void> {
    const open = outgoing.filter((o) => o.item.state === 'open');
    if (open.length === 0 || b.signal.aborted) return;
    // The same event delivered twice in one batch (Dataverse retried its post) is sent once; both are completed.
    const unique = new Map<string, Outgoing>();
    for (const o of open) if (!unique.has(o.message.key)) unique.set(o.message.key, o);
    try {
      await raceAbort(
        this.#outbound.send(
          [...unique.values()].map((o) => ({ body: o.message, messageId: o.message.key, sessionId: o.sessionId })),
          b.signal,
        ),
        b.signal,
      );
    } catch (err) {
      if (b.signal.aborted) return; // abandoned by handle(): a repeat of what may have gone is dropped by the bus.
      this.#log.error('sending to outbound failed; abandoning the deliveries (the bus redelivers them)', { error: err, messages: open.length });
      for (const o of open) this.#abandon(b, o.item, `outbound send failed: ${errorMessage(err)}`);
      return;
    }
    for (const o of open) {
      this.#log.debug('sent to outbound', { ...o.item.fields, channel: o.message.channel, key: o.message.key, sessionId: o.sessionId });
      this.#complete(b, o.item, 'sent');
    }
  }

  // ── Dataverse errors ──────────────────────────────────────────────────────────────────────────────────────────

  /** Whether reads may go on: not after an abort, not while a Retry-After runs (the items then wait it out). */
  #mayRead(b: BatchState, items: readonly Item[]): boolean {
    if (b.signal.aborted) return false;
    if (b.pauseMs === undefined) return true;
    for (const item of items) this.#wait(item, 'an earlier read of this batch was throttled or refused; not reading until the next delivery');
    return false;
  }

  #readFailed(b: BatchState, items: readonly Item[], err: unknown, what: string): void {
    if (b.signal.aborted) return; // handle() abandons them
    if (isDataverseError(err)) {
      if (err.code === 'DataverseThrottled' || err.code === 'DataverseUnauthorized') {
        const ms = err.code === 'DataverseThrottled' ? (err.retryAfterMs ?? this.#defaultThrottleWaitMs) : this.#unauthorizedPauseMs;
        if (err.code === 'DataverseThrottled') this.#log.warn('Dataverse throttled a read; abandoning its deliveries after Retry-After', { error: err, waitMs: ms, deliveries: items.length });
        else this.#log.error("Dataverse refused the relay's identity; abandoning the deliveries after a pause", { error: err, waitMs: ms, deliveries: items.length });
        b.pauseMs = Math.max(b.pauseMs ?? 0, ms);
        for (const item of items) this.#wait(item, `${what}: ${err.code}: ${err.message}`);
        return;
      }
      if (err.retryable) {
        for (const item of items) this.#abandon(b, item, `${what}: ${err.code}: ${err.message}`, err);
        return;
      }
      const code = err.upstream?.code === undefined ? '' : ` (Dataverse code ${err.upstream.code})`;
      for (const item of items) this.#deadLetter(b, item, err.code, `${what} failed: ${err.message}${code}`);
      return;
    }
    // Not one of ours: a bug or an unforeseen failure of the port; the bus redelivers (and dead-letters after
    // MaxDeliveryCount), which is safer than guessing that the event itself is bad.
    this.#log.error(`${what} failed with an unexpected error`, { error: err, deliveries: items.length });
    for (const item of items) this.#abandon(b, item, `${what}: ${errorMessage(err)}`, err);
  }

  #wait(item: Item, why: string): void {
    if (item.state !== 'open') return;
    item.state = 'waiting';
    item.pending = why;
  }

  async #waitOutPause(b: BatchState, items: readonly Item[]): Promise<void> {
    if (b.pauseMs === undefined || !items.some((i) => i.state === 'waiting')) return;
    await this.#sleep(Math.min(b.pauseMs, this.#maxThrottleWaitMs), b.signal);
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

