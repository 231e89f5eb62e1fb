/**
 * Messages as the broker keeps them: the client's wire bytes of the properties, application-properties and body
 * sections kept as they came, the header and annotations rebuilt per delivery with the broker's own values.
 */
import { randomUUID } from 'node:crypto';
import {
  AmqpDecodeError,
  SECTION,
  buildMapSection,
  dataSectionPayload,
  decodeSections,
  decodeValue,
  encodeAny,
  encodeHeader,
  encodeInt,
  encodeLong,
  encodeString,
  encodeSymbol,
  encodeTimestamp,
  mapEntries,
  skipValue,
  splitSections,
  type RawSection,
} from './amqp-codec.js';

/** The message-format of a batch: a body of data sections, each one encoded message. */
export const BATCH_FORMAT = 0x80013700;

/** Annotations the broker owns: a client's copies (e.g. of a received message sent on) are dropped. */
const BROKER_ANNOTATIONS = new Set([
  'x-opt-sequence-number',
  'x-opt-enqueued-time',
  'x-opt-locked-until',
  'x-opt-message-state',
  'x-opt-enqueue-sequence-number',
  'x-opt-deadletter-source',
]);
const SCHEDULED_ANNOTATION = 'x-opt-scheduled-enqueue-time';

/** The system properties filters and the broker look at. */
export interface MessageProperties {
  messageId: string;
  sessionId?: string;
  correlationId?: string;
  subject?: string;
  to?: string;
  replyTo?: string;
  replyToSessionId?: string;
  contentType?: string;
}

/** The parts of a message that travel unchanged from sender to receiver. */
export interface MessageWire {
  durable: boolean;
  priority: number;
  /** The time to live the sender set, in ms. */
  ttlMs: number | undefined;
  /** Raw key+value bytes of the sender's message annotations (broker-owned ones removed). */
  annotations: Buffer[];
  /** The properties section (with a broker-assigned message id when the sender gave none). */
  properties: Buffer;
  /** The application-properties section, when there is one. */
  applicationProperties: Buffer | undefined;
  /** The body sections and the footer, as sent. */
  body: Buffer;
}

/** A message parsed from a client's transfer, before an entity takes it. */
export interface IncomingMessage {
  props: MessageProperties;
  wire: MessageWire;
  /** From `x-opt-scheduled-enqueue-time`, in ms. */
  scheduledAt: number | undefined;
  /** Encoded size as sent. */
  size: number;
}

export type MessageState = 'active' | 'deferred' | 'scheduled';

/** A message held by an entity (queue, subscription or dead-letter queue). */
export interface StoredMessage {
  seq: number;
  enqueuedAt: number;
  /** Milliseconds since the epoch; Infinity for never. */
  expiresAt: number;
  /** The effective time to live (the sender's, capped by the entity's default), in ms. */
  ttlMs: number;
  deliveryCount: number;
  state: MessageState;
  scheduledAt: number | undefined;
  props: MessageProperties;
  wire: MessageWire;
  /** The entity it was dead-lettered from. */
  deadLetterSource: string | undefined;
  /** Set once the message has left its entity (completed, expired, moved). */
  removed: boolean;
}

/** Broker annotations on a delivery. */
export interface DeliveryAnnotations {
  lockedUntil?: number;
}

function stringOrUndefined(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string') return value;
  if (Buffer.isBuffer(value)) return value.toString('hex');
  return String(value);
}

/** The properties section with `messageId` as its first field, the other fields kept as bytes. */
function withMessageId(section: RawSection | undefined, messageId: string): Buffer {
  const id = encodeString(messageId);
  let rest: Buffer = Buffer.alloc(0);
  let count = 1;
  if (section) {
    const b = section.bytes;
    const at = section.valueAt;
    const code = b[at];
    let first: number;
    if (code === 0x45) {
      first = at + 1;
      count = 0;
    } else if (code === 0xc0) {
      count = b[at + 2]!;
      first = at + 3;
    } else if (code === 0xd0) {
      count = b.readUInt32BE(at + 5);
      first = at + 9;
    } else {
      throw new AmqpDecodeError('expected a list in the properties section');
    }
    rest = count === 0 ? rest : b.subarray(skipValue(b, first), b.length);
    count = Math.max(count, 1);
  }
  const out = Buffer.allocUnsafe(12 + id.length + rest.length);
  out[0] = 0x00;
  out[1] = 0x53;
  out[2] = SECTION.properties;
  out[3] = 0xd0;
  out.writeUInt32BE(4 + id.length + rest.length, 4);
  out.writeUInt32BE(count, 8);
  id.copy(out, 12);
  rest.copy(out, 12 + id.length);
  return out;
}

/** Parses one encoded message (format 0) as a client sent it. */
export function parseMessage(bytes: Buffer): IncomingMessage {
  const sections = splitSections(bytes);
  let header: RawSection | undefined;
  let annotations: RawSection | undefined;
  let properties: RawSection | undefined;
  let applicationProperties: RawSection | undefined;
  let bodyStart = -1;
  let offset = 0;
  for (const s of sections) {
    if (s.code === SECTION.header) header = s;
    else if (s.code === SECTION.messageAnnotations) annotations = s;
    else if (s.code === SECTION.properties) properties = s;
    else if (s.code === SECTION.applicationProperties) applicationProperties = s;
    else if (s.code !== SECTION.deliveryAnnotations && bodyStart < 0) bodyStart = offset;
    offset += s.bytes.length;
  }
  const decoded =
    header || properties ? decodeSections(...[header, properties].filter((s): s is RawSection => s !== undefined)) : {};
  const d = decoded as Record<string, unknown>;
  const kept: Buffer[] = [];
  let scheduledAt: number | undefined;
  if (annotations) {
    for (const entry of mapEntries(annotations)) {
      const key = String(entry.key);
      if (BROKER_ANNOTATIONS.has(key)) continue;
      if (key === SCHEDULED_ANNOTATION) {
        const value = decodeValue(entry.value);
        if (value instanceof Date) scheduledAt = value.getTime();
        else if (typeof value === 'number') scheduledAt = value;
      }
      kept.push(entry.bytes);
    }
  }
  let messageId = stringOrUndefined(d['message_id']);
  let propertiesBytes = properties?.bytes;
  if (messageId === undefined) {
    messageId = randomUUID();
    propertiesBytes = withMessageId(properties, messageId);
  }
  const ttl = d['ttl'];
  const props: MessageProperties = { messageId };
  const optional: ReadonlyArray<readonly [keyof MessageProperties, string]> = [
    ['sessionId', 'group_id'],
    ['correlationId', 'correlation_id'],
    ['subject', 'subject'],
    ['to', 'to'],
    ['replyTo', 'reply_to'],
    ['replyToSessionId', 'reply_to_group_id'],
    ['contentType', 'content_type'],
  ];
  for (const [field, amqp] of optional) {
    const value = stringOrUndefined(d[amqp]);
    if (value !== undefined) props[field] = value;
  }
  return {
    props,
    wire: {
      durable: d['durable'] === true,
      priority: typeof d['priority'] === 'number' ? d['priority'] : 4,
      ttlMs: typeof ttl === 'number' && ttl > 0 ? ttl : undefined,
      annotations: kept,
      properties: propertiesBytes!,
      applicationProperties: applicationProperties?.bytes,
      body: bodyStart < 0 ? Buffer.alloc(0) : bytes.subarray(bodyStart),
    },
    scheduledAt,
    size: bytes.length,
  };
}

/** The encoded messages inside a batch transfer (message-format 0x80013700). */
export function unpackBatch(bytes: Buffer): Buffer[] {
  return splitSections(bytes)
    .filter((s) => s.code === SECTION.data)
    .map(dataSectionPayload);
}

function sectionOf(bytes: Buffer): RawSection {
  const [section] = splitSections(bytes);
  if (!section) throw new AmqpDecodeError('expected one section');
  return section;
}

/** Replaces or adds application properties (raw bytes kept for the others). */
export function withApplicationProperties(wire: MessageWire, values: Record<string, unknown>): MessageWire {
  const names = new Set(Object.keys(values));
  const entries: Buffer[] = [];
  if (wire.applicationProperties) {
    for (const e of mapEntries(sectionOf(wire.applicationProperties)))
      if (!names.has(String(e.key))) entries.push(e.bytes);
  }
  for (const [name, value] of Object.entries(values)) {
    if (value === undefined) continue;
    entries.push(Buffer.concat([encodeString(name), encodeAny(value)]));
  }
  return { ...wire, applicationProperties: buildMapSection(SECTION.applicationProperties, entries) };
}

/** The application properties decoded, for correlation filters. */
export function applicationPropertiesOf(wire: MessageWire): Record<string, unknown> {
  if (!wire.applicationProperties) return {};
  const out: Record<string, unknown> = {};
  for (const e of mapEntries(sectionOf(wire.applicationProperties))) out[String(e.key)] = decodeValue(e.value);
  return out;
}

const KEY_SEQ = encodeSymbol('x-opt-sequence-number');
const KEY_ENQUEUED = encodeSymbol('x-opt-enqueued-time');
const KEY_LOCKED = encodeSymbol('x-opt-locked-until');
const KEY_STATE = encodeSymbol('x-opt-message-state');
const KEY_DL_SOURCE = encodeSymbol('x-opt-deadletter-source');
const STATE_CODE: Record<MessageState, number> = { active: 0, deferred: 1, scheduled: 2 };

/** The message as it goes to a receiver (or into a peek / receive-by-sequence-number answer). */
export function encodeForDelivery(msg: StoredMessage, extra: DeliveryAnnotations = {}): Buffer {
  const w = msg.wire;
  const annotations = [
    ...w.annotations,
    Buffer.concat([KEY_SEQ, encodeLong(msg.seq)]),
    Buffer.concat([KEY_ENQUEUED, encodeTimestamp(msg.enqueuedAt)]),
  ];
  if (extra.lockedUntil !== undefined)
    annotations.push(Buffer.concat([KEY_LOCKED, encodeTimestamp(extra.lockedUntil)]));
  if (msg.state !== 'active') annotations.push(Buffer.concat([KEY_STATE, encodeInt(STATE_CODE[msg.state])]));
  if (msg.deadLetterSource !== undefined)
    annotations.push(Buffer.concat([KEY_DL_SOURCE, encodeString(msg.deadLetterSource)]));
  const header = encodeHeader({
    durable: w.durable,
    priority: w.priority,
    ttl: Number.isFinite(msg.ttlMs) ? msg.ttlMs : undefined,
    deliveryCount: msg.deliveryCount,
  });
  const parts = [header, buildMapSection(SECTION.messageAnnotations, annotations)!, w.properties];
  if (w.applicationProperties) parts.push(w.applicationProperties);
  parts.push(w.body);
  return Buffer.concat(parts);
}
