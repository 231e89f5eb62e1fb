/**
 * A test-only [MC-NBFX] decoder: reads the records the emulator's encoder writes, plus the fixed-value text records
 * (Zero/One/False/True/Empty, Int8/16/32, Uuid) so that byte examples written by WCF can be read too. Dictionary
 * records ([MC-NBFS]) are refused. Text is merged into one string per run of text records.
 */
import type { XmlElement } from '../../../../src/emulators/dataverse/xml-infoset.js';

class Reader {
  pos = 0;
  constructor(readonly buf: Buffer) {}

  byte(): number {
    if (this.pos >= this.buf.length) throw new Error(`unexpected end of data at ${this.pos}`);
    return this.buf[this.pos++]!;
  }

  peek(): number | undefined {
    return this.buf[this.pos];
  }

  int31(): number {
    let value = 0;
    for (let i = 0; i < 5; i += 1) {
      const b = this.byte();
      value += (b & 0x7f) * 2 ** (7 * i);
      if ((b & 0x80) === 0) return value;
    }
    throw new Error('MultiByteInt31 longer than 5 bytes');
  }

  take(n: number): Buffer {
    if (this.pos + n > this.buf.length) throw new Error(`unexpected end of data at ${this.pos}`);
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  string(): string {
    return this.take(this.int31()).toString('utf8');
  }
}

function guidText(bytes: Buffer): string {
  const hex = (b: Buffer): string => b.toString('hex');
  const le = (start: number, len: number): string => hex(Buffer.from(bytes.subarray(start, start + len)).reverse());
  return `${le(0, 4)}-${le(4, 2)}-${le(6, 2)}-${hex(bytes.subarray(8, 10))}-${hex(bytes.subarray(10, 16))}`;
}

/** Reads one text record of type `t` (even = plain, odd = WithEndElement); undefined when `t` is not a text record. */
function readText(r: Reader, t: number): string | undefined {
  switch (t & 0xfe) {
    case 0x80:
      return '0';
    case 0x82:
      return '1';
    case 0x84:
      return 'false';
    case 0x86:
      return 'true';
    case 0x88:
      return String(r.take(1).readInt8());
    case 0x8a:
      return String(r.take(2).readInt16LE());
    case 0x8c:
      return String(r.take(4).readInt32LE());
    case 0x98:
      return r.take(r.byte()).toString('utf8');
    case 0x9a:
      return r.take(r.take(2).readUInt16LE()).toString('utf8');
    case 0x9c:
      return r.take(r.take(4).readInt32LE()).toString('utf8');
    case 0xa8:
      return '';
    case 0xac:
      return guidText(r.take(16));
    default:
      return undefined;
  }
}

function readElementStart(r: Reader, t: number): XmlElement {
  let prefix: string;
  if (t === 0x40) prefix = '';
  else if (t === 0x41) prefix = r.string();
  else if (t >= 0x5e && t <= 0x77) prefix = String.fromCharCode(0x61 + t - 0x5e);
  else throw new Error(`record 0x${t.toString(16)} at ${r.pos - 1} is not an element record this decoder reads`);
  const el: XmlElement = { prefix, name: r.string(), namespaces: [], attributes: [], children: [] };
  // Attributes follow the element record.
  for (;;) {
    const a = r.peek();
    if (a === undefined) break;
    if (a === 0x08) {
      r.byte();
      el.namespaces.push({ prefix: '', uri: r.string() });
    } else if (a === 0x09) {
      r.byte();
      const p = r.string();
      el.namespaces.push({ prefix: p, uri: r.string() });
    } else if (a === 0x04 || a === 0x05 || (a >= 0x26 && a <= 0x3f)) {
      r.byte();
      const p = a === 0x04 ? '' : a === 0x05 ? r.string() : String.fromCharCode(0x61 + a - 0x26);
      const name = r.string();
      const tt = r.byte();
      if (tt & 1) throw new Error(`attribute value at ${r.pos - 1} is a WithEndElement text record`);
      const value = readText(r, tt);
      if (value === undefined) throw new Error(`record 0x${tt.toString(16)} at ${r.pos - 1} is not a text record`);
      el.attributes.push({ prefix: p, name, value });
    } else {
      break;
    }
  }
  return el;
}

/** Decodes one document (a single root element) and checks that nothing follows it. */
export function decodeNbfx(buf: Buffer): XmlElement {
  const r = new Reader(buf);
  const stack: XmlElement[] = [];
  let root: XmlElement | undefined;
  const addText = (text: string): void => {
    const top = stack[stack.length - 1];
    if (!top) throw new Error(`text outside the root element at ${r.pos}`);
    const last = top.children[top.children.length - 1];
    if (typeof last === 'string') top.children[top.children.length - 1] = last + text;
    else if (text !== '') top.children.push(text);
  };
  while (r.pos < buf.length) {
    const t = r.byte();
    if (t === 0x01) {
      if (!stack.pop()) throw new Error(`EndElement without an open element at ${r.pos - 1}`);
    } else {
      const text = readText(r, t);
      if (text !== undefined) {
        addText(text);
        if (t & 1 && !stack.pop()) throw new Error(`WithEndElement without an open element at ${r.pos}`);
      } else {
        if (root && stack.length === 0) throw new Error(`a second root element at ${r.pos - 1}`);
        const el = readElementStart(r, t);
        if (stack.length === 0) root = el;
        else stack[stack.length - 1]!.children.push(el);
        stack.push(el);
      }
    }
    if (root && stack.length === 0 && r.pos < buf.length)
      throw new Error(`${buf.length - r.pos} bytes after the root element`);
  }
  if (!root || stack.length > 0) throw new Error('the document ends inside an element');
  return root;
}
