/**
 * The record format of the journal. An enqueue record holds the whole message with its broker state; a later
 * enqueue record with the same sequence number replaces it (abandon: delivery count, modified properties). A record is `[u32 body length][u32 CRC-32 of body][body]`; the body starts with
 * a type byte. A torn or corrupt tail (a crash during a write) fails the length or CRC check and ends the replay.
 */
import { crc32 } from 'node:zlib';
import { PackedWire, type MessageProperties, type MessageState, type StoredMessage } from './message.js';

export const RECORD = { enqueue: 1, remove: 2, defer: 3, sessionState: 4, nextSeq: 5, duplicateId: 6 } as const;

const STATES: readonly MessageState[] = ['active', 'deferred', 'scheduled'];
const PROP_FIELDS = [
  'sessionId',
  'correlationId',
  'subject',
  'to',
  'replyTo',
  'replyToSessionId',
  'contentType',
] as const;

class Writer {
  readonly parts: Buffer[] = [];

  u8(v: number): this {
    this.parts.push(Buffer.from([v]));
    return this;
  }
  u32(v: number): this {
    const b = Buffer.allocUnsafe(4);
    b.writeUInt32BE(v);
    this.parts.push(b);
    return this;
  }
  f64(v: number): this {
    const b = Buffer.allocUnsafe(8);
    b.writeDoubleBE(v);
    this.parts.push(b);
    return this;
  }
  bytes(b: Buffer): this {
    this.u32(b.length);
    this.parts.push(b);
    return this;
  }
  str(s: string): this {
    return this.bytes(Buffer.from(s, 'utf8'));
  }
  optStr(s: string | undefined): this {
    if (s === undefined) return this.u8(0);
    return this.u8(1).str(s);
  }
  optBytes(b: Buffer | undefined): this {
    if (b === undefined) return this.u8(0);
    return this.u8(1).bytes(b);
  }

  /** The framed record. */
  record(): Buffer {
    const body = Buffer.concat(this.parts);
    const head = Buffer.allocUnsafe(8);
    head.writeUInt32BE(body.length, 0);
    head.writeUInt32BE(crc32(body), 4);
    return Buffer.concat([head, body]);
  }
}

export class RecordReader {
  #pos = 0;
  constructor(private readonly b: Buffer) {}
  u8(): number {
    return this.b[this.#pos++]!;
  }
  u32(): number {
    const v = this.b.readUInt32BE(this.#pos);
    this.#pos += 4;
    return v;
  }
  f64(): number {
    const v = this.b.readDoubleBE(this.#pos);
    this.#pos += 8;
    return v;
  }
  bytes(): Buffer {
    const n = this.u32();
    const v = Buffer.from(this.b.subarray(this.#pos, this.#pos + n));
    this.#pos += n;
    return v;
  }
  str(): string {
    return this.bytes().toString('utf8');
  }
  optStr(): string | undefined {
    return this.u8() === 0 ? undefined : this.str();
  }
  optBytes(): Buffer | undefined {
    return this.u8() === 0 ? undefined : this.bytes();
  }
}

export function enqueueRecord(path: string, m: StoredMessage): Buffer {
  const w = new Writer().u8(RECORD.enqueue).str(path).f64(m.seq).f64(m.enqueuedAt).f64(m.expiresAt).f64(m.ttlMs);
  w.u32(m.deliveryCount)
    .u8(STATES.indexOf(m.state))
    .f64(m.scheduledAt ?? Number.NaN)
    .str(m.props.messageId);
  for (const f of PROP_FIELDS) w.optStr(m.props[f]);
  w.optStr(m.deadLetterSource);
  // One inflate for the three sections of a message kept deflated.
  const wire = m.wire instanceof PackedWire ? m.wire.unpacked() : m.wire;
  w.u8(wire.durable ? 1 : 0)
    .u8(wire.priority)
    .f64(wire.ttlMs ?? Number.NaN);
  w.u32(wire.annotations.length);
  for (const a of wire.annotations) w.bytes(a);
  w.bytes(wire.properties).optBytes(wire.applicationProperties).bytes(wire.body);
  return w.record();
}

export function readEnqueue(r: RecordReader): { path: string; msg: StoredMessage } {
  const path = r.str();
  const seq = r.f64();
  const enqueuedAt = r.f64();
  const expiresAt = r.f64();
  const ttlMs = r.f64();
  const deliveryCount = r.u32();
  const state = STATES[r.u8()] ?? 'active';
  const scheduledAt = r.f64();
  const props: MessageProperties = { messageId: r.str() };
  for (const f of PROP_FIELDS) {
    const v = r.optStr();
    if (v !== undefined) props[f] = v;
  }
  const deadLetterSource = r.optStr();
  const durable = r.u8() === 1;
  const priority = r.u8();
  const wireTtl = r.f64();
  const annotations: Buffer[] = [];
  for (let n = r.u32(); n > 0; n--) annotations.push(r.bytes());
  const properties = r.bytes();
  const applicationProperties = r.optBytes();
  const body = r.bytes();
  return {
    path,
    msg: {
      seq,
      enqueuedAt,
      expiresAt,
      ttlMs,
      deliveryCount,
      state,
      scheduledAt: Number.isNaN(scheduledAt) ? undefined : scheduledAt,
      props,
      wire: {
        durable,
        priority,
        ttlMs: Number.isNaN(wireTtl) ? undefined : wireTtl,
        annotations,
        properties,
        applicationProperties,
        body,
      },
      deadLetterSource,
      removed: false,
    },
  };
}

export function seqRecord(type: typeof RECORD.remove | typeof RECORD.defer, path: string, seq: number): Buffer {
  return new Writer().u8(type).str(path).f64(seq).record();
}

/** The next sequence number of a store, written by compaction: removed messages must not give theirs out again. */
export function nextSeqRecord(path: string, next: number): Buffer {
  return new Writer().u8(RECORD.nextSeq).str(path).f64(next).record();
}

/** A duplicate-detection id still within its window (written by compaction), by queue or topic path. */
export function duplicateIdRecord(path: string, messageId: string, seenAt: number): Buffer {
  return new Writer().u8(RECORD.duplicateId).str(path).str(messageId).f64(seenAt).record();
}

export function sessionStateRecord(path: string, sessionId: string, state: Buffer | undefined): Buffer {
  return new Writer().u8(RECORD.sessionState).str(path).str(sessionId).optBytes(state).record();
}

/** Splits journal bytes into record bodies; `validBytes` is where the last intact record ends. */
export function splitRecords(data: Buffer): { bodies: Buffer[]; validBytes: number } {
  const bodies: Buffer[] = [];
  let pos = 0;
  while (pos + 8 <= data.length) {
    const len = data.readUInt32BE(pos);
    const end = pos + 8 + len;
    if (end > data.length) break;
    const body = data.subarray(pos + 8, end);
    if (crc32(body) !== data.readUInt32BE(pos + 4)) break;
    bodies.push(body);
    pos = end;
  }
  return { bodies, validBytes: pos };
}
