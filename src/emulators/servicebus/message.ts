/**
 * Messages as the broker keeps them: the client's wire bytes of the properties, application-properties and body
 * sections kept as they came, the header and annotations rebuilt per delivery with the broker's own values.
 */
import { randomUUID } from 'node:crypto';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
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

/** Sections shorter than this are never deflated: too little to gain. */
const DEFLATE_MIN_BYTES = 512;
/** Deflate level 1: most of the gain on JSON bodies (a 6 KB RemoteExecutionContext to about a sixth) for the least CPU. */
const DEFLATE_LEVEL = 1;
const NO_ANNOTATIONS: Buffer[] = [];

/**
 * A message's wire parts as an entity keeps them: the properties, application-properties and body sections copied
 * into one buffer of their own, in delivery order, deflated when the entity asks for it (a deep backlog). A stored
 * message is then one small buffer, not three views that keep the whole transfer it came in alive. The sections are
 * read back (inflated when deflated) for each delivery; nothing else changes.
 */
export class PackedWire implements MessageWire {
  readonly durable: boolean;
  readonly priority: number;
  readonly ttlMs: number | undefined;
  readonly annotations: Buffer[];
  /** properties ‖ application-properties ‖ body, raw DEFLATE when `#inflatedLength` > 0. */
  readonly #sections: Buffer;
  /** Where the application-properties section starts in the sections; where the body starts. */
  readonly #applicationAt: number;
  readonly #bodyAt: number;
  /** The sections' length before deflating; 0 when they are kept as they are. */
  readonly #inflatedLength: number;

  constructor(given: MessageWire, deflate: boolean) {
    const wire = given instanceof PackedWire ? given.unpacked() : given;
    this.durable = wire.durable;
    this.priority = wire.priority;
    this.ttlMs = wire.ttlMs;
    this.annotations = wire.annotations.length === 0 ? NO_ANNOTATIONS : wire.annotations.map((a) => Buffer.from(a));
    const app = wire.applicationProperties;
    this.#applicationAt = wire.properties.length;
    this.#bodyAt = this.#applicationAt + (app?.length ?? 0);
    const length = this.#bodyAt + wire.body.length;
    const raw = Buffer.allocUnsafe(length);
    wire.properties.copy(raw, 0);
    app?.copy(raw, this.#applicationAt);
    wire.body.copy(raw, this.#bodyAt);
    let deflated: Buffer | undefined;
    if (deflate && length >= DEFLATE_MIN_BYTES) {
      deflated = deflateRawSync(raw, { level: DEFLATE_LEVEL });
      // Kept only when it saves an eighth: the rest is not worth an inflate per delivery.
      if (deflated.length > length - (length >> 3)) deflated = undefined;
    }
    // A copy of its exact size: the deflate output's buffer is larger than what it wrote.
    this.#sections = deflated ? Buffer.from(deflated) : raw;
    this.#inflatedLength = deflated ? length : 0;
  }

  /** Whether the sections are kept deflated. */
  get deflated(): boolean {
    return this.#inflatedLength > 0;
  }

  /** Bytes the message holds in memory (sections as kept, annotations). */
  get storedBytes(): number {
    let n = this.#sections.length;
    for (const a of this.annotations) n += a.length;
    return n;
  }

  /** The message's size as sent (sections inflated, annotations): what the management API reports. */
  get sizeInBytes(): number {
    let n = this.#inflatedLength > 0 ? this.#inflatedLength : this.#sections.length;
    for (const a of this.annotations) n += a.length;
    return n;
  }

  /** properties ‖ application-properties ‖ body, as sent (inflated here when kept deflated). */
  sections(): Buffer {
    return this.#inflatedLength > 0
      ? inflateRawSync(this.#sections, { maxOutputLength: this.#inflatedLength })
      : this.#sections;
  }

  get properties(): Buffer {
    return this.sections().subarray(0, this.#applicationAt);
  }

  get applicationProperties(): Buffer | undefined {
    return this.#bodyAt > this.#applicationAt ? this.sections().subarray(this.#applicationAt, this.#bodyAt) : undefined;
  }

  get body(): Buffer {
    return this.sections().subarray(this.#bodyAt);
  }

  /** The parts as a plain {@link MessageWire} (one inflate for the three sections). */
  unpacked(): MessageWire {
    const sections = this.sections();
    return {
      durable: this.durable,
      priority: this.priority,
      ttlMs: this.ttlMs,
      annotations: this.annotations,
      properties: sections.subarray(0, this.#applicationAt),
      applicationProperties:
        this.#bodyAt > this.#applicationAt ? sections.subarray(this.#applicationAt, this.#bodyAt) : undefined,
      body: sections.subarray(this.#bodyAt),
    };
  }
}

/** Bytes the wire parts hold in memory: a packed wire's as kept, a parsed one's sections. */
export function storedBytesOf(wire: MessageWire): number {
  return wire instanceof PackedWire ? wire.storedBytes : sizeInBytesOf(wire);
}

/** The message's size as sent: properties, application properties, body and the sender's annotations. */
export function sizeInBytesOf(wire: MessageWire): number {
  if (wire instanceof PackedWire) return wire.sizeInBytes;
  let n = wire.properties.length + (wire.applicationProperties?.length ?? 0) + wire.body.length;
  for (const a of wire.annotations) n += a.length;
  return n;
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
  /** The available queue the message waits in, and its entry's number there (AvailableQueue's own bookkeeping). */
  waitingIn?: object | undefined;
  waitingEntry?: number;
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
export function withApplicationProperties(packed: MessageWire, values: Record<string, unknown>): MessageWire {
  const wire = packed instanceof PackedWire ? packed.unpacked() : packed;
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
  return {
    durable: wire.durable,
    priority: wire.priority,
    ttlMs: wire.ttlMs,
    annotations: wire.annotations,
    properties: wire.properties,
    applicationProperties: buildMapSection(SECTION.applicationProperties, entries),
    body: wire.body,
  };
}

/** The application properties decoded, for correlation filters. */
export function applicationPropertiesOf(wire: MessageWire): Record<string, unknown> {
  const section = wire.applicationProperties;
  if (!section) return {};
  const out: Record<string, unknown> = {};
  for (const e of mapEntries(sectionOf(section))) out[String(e.key)] = decodeValue(e.value);
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
  const parts = [header, buildMapSection(SECTION.messageAnnotations, annotations)!];
  if (w instanceof PackedWire) parts.push(w.sections());
  else {
    parts.push(w.properties);
    if (w.applicationProperties) parts.push(w.applicationProperties);
    parts.push(w.body);
  }
  return Buffer.concat(parts);
}
