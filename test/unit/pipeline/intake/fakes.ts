/**
 * Fakes for the intake stage's ports (decoder, Dataverse reads, outbound sender, channels) and event builders, shared
 * by the intake unit tests. Deliveries are test/helpers/fake-delivery.ts: the body is the decoded event itself (or
 * an Error the fake decoder throws).
 */
import { Registry } from 'prom-client';
import type { Channel } from '../../../../src/channels/types.js';
import { EventError, MessageTooLargeError } from '../../../../src/errors.js';
import { silentLogger } from '../../../../src/log.js';
import {
  IntakeStage,
  type ActivityEvent,
  type IntakeEvent,
  type IntakeEventOrigin,
  type IntakeOptions,
  type RealtimeEvent,
  type TruncatedActivityEvent,
} from '../../../../src/pipeline/intake/stage.js';
import type { OutboundMessage } from '../../../../src/pipeline/messages.js';
import type { DataverseReads, Delivery, OutboundSender, Row } from '../../../../src/pipeline/ports.js';
import { fakeDelivery, type FakeDelivery } from '../../../helpers/fake-delivery.js';
import { channelLookup } from '../../../helpers/channels.js';

function channel(
  fields: Pick<Channel, 'name' | 'sender' | 'senderKey' | 'addressField' | 'textField'> & Partial<Channel>,
): Channel {
  return {
    provider: { type: 'twilio', accountSid: 'AC00000000000000000000000000000000', authToken: 'token' },
    rateLimit: { messages: 10, intervalMs: 1000, concurrency: 10, perRecipientMs: 0, perGroupMs: 0 },
    timeoutMs: 10_000,
    ...fields,
  };
}

function tile(entityType: string, entitySetName: string, complianceField = 'donotphone'): NonNullable<Channel['tile']> {
  return {
    file: `${entityType}.xml`,
    entityType,
    entitySetName,
    complianceField,
    lookupViewId: '00000000-0000-0000-00aa-000010001003',
    responseTypes: [],
    labels: {},
  };
}

/** The one channel of the `sample_specialmessage` tile. */
export const SMS = channel({
  name: 'sms',
  tile: tile('sample_specialmessage', 'sample_specialmessages'),
  sender: '+15550100',
  senderKey: 'twilio:+15550100',
  addressField: 'mobilephone',
  textField: 'sample_text',
});
/** Two channels sharing the `sample_multimessage` tile, told apart by the record's `sample_channel`. */
export const SHARED_SMS = channel({
  name: 'sms-shared',
  tile: tile('sample_multimessage', 'sample_multimessages'),
  sender: '+15550200',
  senderKey: 'twilio:+15550200',
  addressField: 'mobilephone',
  textField: 'sample_body',
  channelField: 'sample_channel',
});
export const SHARED_TELEGRAM = channel({
  name: 'telegram',
  provider: { type: 'telegram', botToken: 'bot-token' },
  tile: tile('sample_multimessage', 'sample_multimessages', 'donotbulkemail'),
  sender: 'relay_bot',
  senderKey: 'telegram:relay_bot',
  addressField: 'sample_telegramchatid',
  textField: 'sample_body',
  channelField: 'sample_channel',
});
/** A real-time journeys channel, alone on its channel definition. */
export const REALTIME = channel({
  name: 'rt',
  channelDefinitionId: 'CD-1',
  sender: 'relay',
  senderKey: 'contract:relay',
  addressField: 'mobilephone',
  textField: 'text',
});
/** Two real-time channels on one channel definition, told apart by From. */
export const REALTIME_A = channel({
  name: 'rt-a',
  channelDefinitionId: 'cd-2',
  sender: 'S1',
  senderKey: 'contract:S1',
  addressField: 'mobilephone',
  textField: 'text',
});
export const REALTIME_B = channel({
  name: 'rt-b',
  channelDefinitionId: 'cd-2',
  sender: 'S2',
  senderKey: 'contract:S2',
  addressField: 'mobilephone',
  textField: 'text',
});
export const ALL_CHANNELS = [SMS, SHARED_SMS, SHARED_TELEGRAM, REALTIME, REALTIME_A, REALTIME_B];

/** `msdyncrm_activityid` of every {@link activity}: the tile's id, shared by the rows of a journey run. */
export const TILE_ACTIVITY_ID = 'tile-1';

/** The event of activity row `row-<i>` (contact `c-<i>`), one of the rows of one tile. */
export function activity(i: number | string, fields: Partial<ActivityEvent> = {}): ActivityEvent {
  return {
    kind: 'activity',
    activityRowId: `row-${i}`,
    activityId: TILE_ACTIVITY_ID,
    contactId: `c-${i}`,
    journeyId: 'j-1',
    iterationId: 'it-1',
    entityType: 'sample_specialmessage',
    entityId: 'msg-1',
    organizationId: 'org-1',
    correlationId: `corr-${i}`,
    operationId: `op-${i}`,
    ...fields,
  };
}

/** An event whose row must be read: truncated by Dataverse, or (with `missing`) a Target that lacked those attributes. */
export function truncated(rowId: string, missing?: string[]): TruncatedActivityEvent {
  return {
    kind: 'activity-truncated',
    activityRowId: rowId,
    ...(missing === undefined ? {} : { missing }),
    organizationId: 'org-1',
    correlationId: `corr-${rowId}`,
    operationId: `op-${rowId}`,
  };
}

export function realtime(requestId: string, fields: Partial<RealtimeEvent> = {}): RealtimeEvent {
  return {
    kind: 'realtime',
    customApi: 'sample_RealtimeSmsOutboundApi',
    channelDefinitionId: 'cd-1',
    requestId,
    from: 'relay',
    to: '+15557654321',
    message: { title: 'Hi', text: 'Your code is 1234' },
    journeyId: 'rtj-1',
    isTestSend: false,
    organizationId: 'org-1',
    correlationId: `corr-${requestId}`,
    operationId: `op-${requestId}`,
    ...fields,
  };
}

/** A contact row as the Web API returns it. */
export function contact(i: number | string, fields: Row = {}): Row {
  return {
    contactid: `c-${i}`,
    firstname: `Ann${i}`,
    lastname: 'Lee',
    mobilephone: `+1555000${String(i).padStart(4, '0')}`,
    donotphone: false,
    ...fields,
  };
}

/** An activity row (`msdyncrm_customerjourneycustomchannelactivities`) as the Web API returns it. */
export function activityRow(i: number | string, fields: Row = {}): Row {
  return {
    msdyncrm_customerjourneycustomchannelactivityid: `row-${i}`,
    msdyncrm_activityid: TILE_ACTIVITY_ID,
    _msdyncrm_contact_value: `c-${i}`,
    _msdyncrm_customerjourney_value: 'j-1',
    _msdyncrm_customerjourneyiteration_value: 'it-1',
    msdyncrm_entitytype: 'sample_specialmessage',
    msdyncrm_entityid: 'msg-1',
    ...fields,
  };
}

/** The decoder port: a delivery's body is the event, or an Error to throw. */
export function decode(delivery: Delivery): IntakeEvent {
  if (delivery.body instanceof Error) throw delivery.body;
  return delivery.body as IntakeEvent;
}

/** The activityFromRow port, for rows shaped like `activityRow`. */
export function activityFromRow(row: Row, origin: IntakeEventOrigin): ActivityEvent {
  const str = (key: string): string => {
    const v = row[key];
    if (typeof v !== 'string' || v === '')
      throw new EventError('EventMissingAttribute', `activity row: '${key}' must be a non-empty string, found nothing`);
    return v;
  };
  return {
    kind: 'activity',
    activityRowId: str('msdyncrm_customerjourneycustomchannelactivityid'),
    activityId: str('msdyncrm_activityid'),
    contactId: str('_msdyncrm_contact_value'),
    journeyId: str('_msdyncrm_customerjourney_value'),
    iterationId: str('_msdyncrm_customerjourneyiteration_value'),
    entityType: str('msdyncrm_entitytype'),
    entityId: str('msdyncrm_entityid'),
    organizationId: origin.organizationId,
    correlationId: origin.correlationId,
    operationId: origin.operationId,
  };
}

type Failure = unknown;

/** Dataverse reads from in-memory rows; records every call; each read can be made to fail or to never answer. */
export class FakeReads implements DataverseReads {
  readonly contactRows = new Map<string, Row>();
  /** Keyed `entitySetName(id)`. */
  readonly records = new Map<string, Row>();
  readonly activityRows = new Map<string, Row>();
  readonly calls = {
    contacts: [] as Array<{ ids: string[]; columns: string[] }>,
    messageRecord: [] as Array<{ entitySetName: string; id: string; columns: string[] }>,
    /** The ids of each `activities` call. */
    activity: [] as string[][],
  };
  /** Return an error to throw (or undefined to answer). */
  readonly fail: {
    contacts?: (ids: readonly string[], columns: readonly string[]) => Failure;
    messageRecord?: (entitySetName: string, id: string) => Failure;
    activity?: (ids: readonly string[]) => Failure;
  } = {};
  /** Reads that never answer and ignore their signal (the stage must not wait for them when aborted). */
  readonly hang: { contacts?: boolean; messageRecord?: boolean; activity?: boolean } = {};
  /** How long each read takes (setTimeout: a fake clock moves it) before it answers or fails (`fail`, judged then). */
  readonly latencyMs: { contacts?: number; messageRecord?: number; activity?: number } = {};
  /** Resolved when a read starts; for tests that act mid-batch. */
  onRead: (kind: 'contacts' | 'messageRecord' | 'activity') => void = () => undefined;

  addContacts(...rows: Row[]): this {
    for (const row of rows) this.contactRows.set(String(row['contactid']), row);
    return this;
  }

  addRecord(entitySetName: string, id: string, row: Row): this {
    this.records.set(`${entitySetName}(${id})`, row);
    return this;
  }

  async contacts(ids: readonly string[], columns: readonly string[]): Promise<Map<string, Row>> {
    this.calls.contacts.push({ ids: [...ids], columns: [...columns] });
    this.onRead('contacts');
    await pause(this.latencyMs.contacts);
    const failure = this.fail.contacts?.(ids, columns);
    if (failure !== undefined) throw failure;
    if (this.hang.contacts) await never();
    const out = new Map<string, Row>();
    for (const id of ids) {
      const row = this.contactRows.get(id);
      if (row)
        out.set(id, Object.fromEntries(Object.entries(row).filter(([k]) => k === 'contactid' || columns.includes(k))));
    }
    return out;
  }

  async messageRecord(entitySetName: string, id: string, columns: readonly string[]): Promise<Row | undefined> {
    this.calls.messageRecord.push({ entitySetName, id, columns: [...columns] });
    this.onRead('messageRecord');
    await pause(this.latencyMs.messageRecord);
    const failure = this.fail.messageRecord?.(entitySetName, id);
    if (failure !== undefined) throw failure;
    if (this.hang.messageRecord) await never();
    return this.records.get(`${entitySetName}(${id})`);
  }

  async activities(ids: readonly string[]): Promise<Map<string, Row>> {
    this.calls.activity.push([...ids]);
    this.onRead('activity');
    await pause(this.latencyMs.activity);
    const failure = this.fail.activity?.(ids);
    if (failure !== undefined) throw failure;
    if (this.hang.activity) await never();
    const out = new Map<string, Row>();
    for (const id of ids) {
      const row = this.activityRows.get(id);
      if (row) out.set(id, row);
    }
    return out;
  }
}

function never(): Promise<never> {
  return new Promise<never>(() => undefined);
}

/** Waits `ms` on setTimeout (none when undefined); ignores any signal, as a call in flight does until its timeout. */
async function pause(ms: number | undefined): Promise<void> {
  if (ms !== undefined && ms > 0) await new Promise<void>((resolve) => setTimeout(resolve, ms));
}

export type SentMessage = { body: OutboundMessage; messageId: string; sessionId?: string };

/**
 * The outbound sender: records each call's messages; can fail (once per queued failure, or always), never answer,
 * or refuse a message too large as the real sender does (src/servicebus/sender.ts: before sending anything).
 */
export class FakeOutbound implements OutboundSender {
  /** Every call's messages, failed calls included. */
  readonly sends: SentMessage[][] = [];
  /** The messages of the calls that succeeded. */
  readonly delivered: SentMessage[][] = [];
  /** Thrown by every call. */
  failure: unknown;
  /** Thrown one per call, first in first out, before `failure`. */
  readonly failures: unknown[] = [];
  /** A message whose JSON body is larger fails the call with a `MessageTooLargeError`, as the real sender's does. */
  maxBodyBytes = Infinity;
  hang = false;
  /** How long each call takes (setTimeout) before it succeeds or fails. */
  latencyMs = 0;
  onSend: () => void = () => undefined;

  async send(messages: ReadonlyArray<SentMessage>): Promise<void> {
    this.sends.push(messages.map((m) => ({ ...m })));
    this.onSend();
    await pause(this.latencyMs);
    for (const m of messages) {
      const bytes = Buffer.byteLength(JSON.stringify(m.body));
      if (bytes > this.maxBodyBytes) throw new MessageTooLargeError('outbound', m.messageId, bytes, this.maxBodyBytes);
    }
    if (this.failures.length > 0) throw this.failures.shift();
    if (this.failure !== undefined) throw this.failure;
    if (this.hang) await never();
    this.delivered.push(messages.map((m) => ({ ...m })));
  }

  /** Every message of every call, failed calls included. */
  get messages(): SentMessage[] {
    return this.sends.flat();
  }

  /** Every message of the calls that succeeded. */
  get sent(): SentMessage[] {
    return this.delivered.flat();
  }
}

export interface Harness {
  stage: IntakeStage;
  reads: FakeReads;
  outbound: FakeOutbound;
  registry: Registry;
  /** Runs one batch of events (or Errors the decoder throws), each delivered `deliveryCount` times so far; returns the deliveries. */
  run(bodies: unknown[], signal?: AbortSignal, deliveryCount?: number | readonly number[]): Promise<FakeDelivery[]>;
}

export const NOW = 1_800_000_000_000;

/** The stage over fresh fakes; the `sample_specialmessage` record `msg-1` exists with a `{firstname}` text. */
export function harness(options: Partial<IntakeOptions> = {}): Harness {
  const reads = new FakeReads().addRecord('sample_specialmessages', 'msg-1', {
    sample_specialmessageid: 'msg-1',
    sample_text: 'Hi {firstname}!',
  });
  const outbound = new FakeOutbound();
  const registry = new Registry();
  const stage = new IntakeStage({
    decode,
    activityFromRow,
    reads,
    outbound,
    channels: channelLookup(ALL_CHANNELS),
    log: silentLogger(),
    registry,
    now: () => NOW,
    ...options,
  });
  return {
    stage,
    reads,
    outbound,
    registry,
    run: async (bodies, signal = new AbortController().signal, deliveryCount = 1) => {
      const deliveries = bodies.map((body, i) =>
        fakeDelivery(body, {
          messageId: `m-${i}`,
          deliveryCount: typeof deliveryCount === 'number' ? deliveryCount : (deliveryCount[i] ?? 1),
        }),
      );
      await stage.handle(deliveries, signal);
      return deliveries;
    },
  };
}
