/**
 * Just enough of the AMQP 1.0 type system, on raw bytes, to keep a message's wire bytes: find section boundaries,
 * list the entries of a map section without decoding their values, and write the few values the broker adds
 * (header, annotations). Decoding and re-encoding with rhea would lose type fidelity (pitfall 5) and cost time.
 */
import { amqpMessage, amqpTypes, type AmqpMessage } from './rhea-internals.js';

/** Section descriptor codes (`amqp:header:list` = 0x70 …). */
export const SECTION = {
  header: 0x70,
  deliveryAnnotations: 0x71,
  messageAnnotations: 0x72,
  properties: 0x73,
  applicationProperties: 0x74,
  data: 0x75,
  sequence: 0x76,
  value: 0x77,
  footer: 0x78,
} as const;

/** Thrown for bytes that are not a well-formed AMQP value. */
export class AmqpDecodeError extends Error {
  override readonly name = 'AmqpDecodeError';
}

function need(buf: Buffer, end: number): void {
  if (end > buf.length) throw new AmqpDecodeError(`truncated AMQP value: needs ${end} bytes, has ${buf.length}`);
}

/** The offset just past the value (with its constructor) that starts at `pos`. */
export function skipValue(buf: Buffer, pos: number): number {
  need(buf, pos + 1);
  const code = buf[pos]!;
  if (code === 0x00) return skipValue(buf, skipValue(buf, pos + 1));
  const p = pos + 1;
  switch (code >> 4) {
    case 0x4:
      return p;
    case 0x5:
      need(buf, p + 1);
      return p + 1;
    case 0x6:
      need(buf, p + 2);
      return p + 2;
    case 0x7:
      need(buf, p + 4);
      return p + 4;
    case 0x8:
      need(buf, p + 8);
      return p + 8;
    case 0x9:
      need(buf, p + 16);
      return p + 16;
    case 0xa:
    case 0xc:
    case 0xe: {
      need(buf, p + 1);
      const end = p + 1 + buf[p]!;
      need(buf, end);
      return end;
    }
    case 0xb:
    case 0xd:
    case 0xf: {
      need(buf, p + 4);
      const end = p + 4 + buf.readUInt32BE(p);
      need(buf, end);
      return end;
    }
    default:
      throw new AmqpDecodeError(`unknown AMQP type constructor 0x${code.toString(16)} at offset ${pos}`);
  }
}

/** The numeric descriptor of the described value at `pos`, or -1 when it has none or a symbolic one. */
function descriptorCode(buf: Buffer, pos: number): { code: number; valueAt: number } {
  if (buf[pos] !== 0x00) throw new AmqpDecodeError(`expected a described message section at offset ${pos}`);
  const d = pos + 1;
  const c = buf[d];
  if (c === 0x53) return { code: buf[d + 1]!, valueAt: d + 2 };
  if (c === 0x80) return { code: Number(buf.readBigUInt64BE(d + 1)), valueAt: d + 9 };
  if (c === 0x44) return { code: 0, valueAt: d + 1 };
  const valueAt = skipValue(buf, d);
  const symbol = amqpTypes.unwrap(new amqpTypes.Reader(buf.subarray(d, valueAt)).read()) as unknown;
  const codes: Record<string, number> = {
    'amqp:header:list': SECTION.header,
    'amqp:delivery-annotations:map': SECTION.deliveryAnnotations,
    'amqp:message-annotations:map': SECTION.messageAnnotations,
    'amqp:properties:list': SECTION.properties,
    'amqp:application-properties:map': SECTION.applicationProperties,
    'amqp:data:binary': SECTION.data,
    'amqp:amqp-sequence:list': SECTION.sequence,
    'amqp:value:*': SECTION.value,
    'amqp:footer:map': SECTION.footer,
  };
  return { code: typeof symbol === 'string' ? (codes[symbol] ?? -1) : -1, valueAt };
}

/** One section of an encoded message: its descriptor code and its bytes (descriptor included). */
export interface RawSection {
  code: number;
  bytes: Buffer;
  /** Offset of the section's value (after the descriptor) inside `bytes`. */
  valueAt: number;
}

/** Splits an encoded message into its sections without decoding them. */
export function splitSections(buf: Buffer): RawSection[] {
  const sections: RawSection[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const { code, valueAt } = descriptorCode(buf, pos);
    const end = skipValue(buf, valueAt);
    sections.push({ code, bytes: buf.subarray(pos, end), valueAt: valueAt - pos });
    pos = end;
  }
  return sections;
}

/** The payload of a `data` section (binary value). */
export function dataSectionPayload(section: RawSection): Buffer {
  const b = section.bytes;
  const at = section.valueAt;
  if (b[at] === 0xa0) return b.subarray(at + 2, at + 2 + b[at + 1]!);
  if (b[at] === 0xb0) return b.subarray(at + 5, at + 5 + b.readUInt32BE(at + 1));
  throw new AmqpDecodeError('expected binary in a data section');
}

/** One entry of a map section: its key (decoded) and the raw bytes of key and value together. */
export interface MapEntry {
  key: unknown;
  bytes: Buffer;
  /** The raw bytes of the value alone. */
  value: Buffer;
}

/** The entries of a map-valued section (annotations, application properties), values left encoded. */
export function mapEntries(section: RawSection): MapEntry[] {
  const b = section.bytes;
  let pos = section.valueAt;
  const code = b[pos];
  if (code === 0x40) return [];
  let count: number;
  if (code === 0xc1) {
    count = b[pos + 2]!;
    pos += 3;
  } else if (code === 0xd1) {
    count = b.readUInt32BE(pos + 5);
    pos += 9;
  } else {
    throw new AmqpDecodeError(`expected a map section, found constructor 0x${String(code?.toString(16))}`);
  }
  const entries: MapEntry[] = [];
  for (let i = 0; i < count; i += 2) {
    const keyEnd = skipValue(b, pos);
    const valueEnd = skipValue(b, keyEnd);
    const key = amqpTypes.unwrap(new amqpTypes.Reader(b.subarray(pos, keyEnd)).read()) as unknown;
    entries.push({ key, bytes: b.subarray(pos, valueEnd), value: b.subarray(keyEnd, valueEnd) });
    pos = valueEnd;
  }
  return entries;
}

/** Decodes one encoded value with rhea. */
export function decodeValue(bytes: Buffer): unknown {
  return amqpTypes.unwrap(new amqpTypes.Reader(bytes).read());
}

/** Decodes a list or map section (header, properties) with rhea's message decoder. */
export function decodeSections(...sections: RawSection[]): AmqpMessage {
  return amqpMessage.decode(Buffer.concat(sections.map((s) => s.bytes)));
}

/** A map section (descriptor `code`) from raw entries; `undefined` when there are none. */
export function buildMapSection(code: number, entries: readonly Buffer[]): Buffer | undefined {
  if (entries.length === 0) return undefined;
  let size = 4;
  for (const e of entries) size += e.length;
  const out = Buffer.allocUnsafe(3 + 1 + 4 + size);
  out[0] = 0x00;
  out[1] = 0x53;
  out[2] = code;
  out[3] = 0xd1;
  out.writeUInt32BE(size, 4);
  out.writeUInt32BE(entries.length * 2, 8);
  let pos = 12;
  for (const e of entries) pos += e.copy(out, pos);
  return out;
}

const symbolCache = new Map<string, Buffer>();

/** An encoded symbol (annotation keys), cached. */
export function encodeSymbol(name: string): Buffer {
  let b = symbolCache.get(name);
  if (!b) {
    const text = Buffer.from(name, 'ascii');
    b = Buffer.concat([Buffer.from([0xa3, text.length]), text]);
    symbolCache.set(name, b);
  }
  return b;
}

/** An encoded string (str8 or str32). */
export function encodeString(value: string): Buffer {
  const text = Buffer.from(value, 'utf8');
  if (text.length < 256) return Buffer.concat([Buffer.from([0xa1, text.length]), text]);
  const head = Buffer.allocUnsafe(5);
  head[0] = 0xb1;
  head.writeUInt32BE(text.length, 1);
  return Buffer.concat([head, text]);
}

/** An encoded signed 64-bit long. */
export function encodeLong(value: number): Buffer {
  const b = Buffer.allocUnsafe(9);
  b[0] = 0x81;
  b.writeBigInt64BE(BigInt(value), 1);
  return b;
}

/** An encoded timestamp (ms since the epoch). */
export function encodeTimestamp(ms: number): Buffer {
  const b = Buffer.allocUnsafe(9);
  b[0] = 0x83;
  b.writeBigInt64BE(BigInt(Math.trunc(ms)), 1);
  return b;
}

/** An encoded signed 32-bit int. */
export function encodeInt(value: number): Buffer {
  const b = Buffer.allocUnsafe(5);
  b[0] = 0x71;
  b.writeInt32BE(value, 1);
  return b;
}

/** Any JavaScript value, encoded as rhea would (for values that came decoded, e.g. properties to modify). */
export function encodeAny(value: unknown): Buffer {
  const w = new amqpTypes.Writer();
  w.write(amqpTypes.wrap(value));
  return w.toBuffer();
}

export interface HeaderFields {
  durable: boolean;
  priority: number;
  /** Time to live in ms; undefined for none. */
  ttl: number | undefined;
  deliveryCount: number;
}

/** The header section: durable, priority, ttl, first-acquirer, delivery-count. */
export function encodeHeader(h: HeaderFields): Buffer {
  const out = Buffer.allocUnsafe(3 + 3 + 1 + 2 + 5 + 1 + 5);
  out[0] = 0x00;
  out[1] = 0x53;
  out[2] = SECTION.header;
  out[3] = 0xc0;
  let pos = 6;
  out[pos++] = h.durable ? 0x41 : 0x42;
  out[pos++] = 0x50;
  out[pos++] = h.priority & 0xff;
  if (h.ttl === undefined) {
    out[pos++] = 0x40;
  } else {
    out[pos++] = 0x70;
    out.writeUInt32BE(Math.min(h.ttl, 0xffffffff), pos);
    pos += 4;
  }
  out[pos++] = h.deliveryCount === 0 ? 0x41 : 0x42;
  out[pos++] = 0x70;
  out.writeUInt32BE(h.deliveryCount, pos);
  pos += 4;
  out[4] = pos - 5;
  out[5] = 5;
  return out.subarray(0, pos);
}
