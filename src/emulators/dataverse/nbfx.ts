/**
 * [MC-NBFX] .NET Binary Format: XML Data Structure, the encoder for `messageformat` 1 (`application/msbin1`): writes an
 * {@link XmlElement} tree with the records that need no dictionary (the {@link NBFX} table), so every name and
 * namespace is inline; strings are a MultiByteInt31 byte length followed by UTF-8.
 *
 * Invariant: the same infoset as real Dataverse (WCF), not the same bytes. WCF also uses the [MC-NBFS] static
 * dictionary, a binary session dictionary and typed text records (UuidText, Int32Text, TrueText, DateTimeText…); the
 * emulator writes none of those (docs/emulators/dataverse.md).
 */
import type { XmlElement } from './xml-infoset.js';

/**
 * The records written:
 *
 * | Record | Byte | Used for |
 * |---|---|---|
 * | EndElement | 0x01 | end of an element whose last child is not text |
 * | ShortAttribute / Attribute | 0x04 / 0x05 | unprefixed / multi-letter-prefixed attribute |
 * | ShortXmlnsAttribute / XmlnsAttribute | 0x08 / 0x09 | `xmlns="…"` / `xmlns:p="…"` |
 * | PrefixAttributeA..Z | 0x26-0x3F | attribute with a one-letter prefix (`i:type`) |
 * | ShortElement / Element | 0x40 / 0x41 | unprefixed / multi-letter-prefixed element |
 * | PrefixElementA..Z | 0x5E-0x77 | element with a one-letter prefix (`a:key`) |
 * | EmptyText | 0xA8 | an empty attribute value |
 * | Chars8Text / Chars16Text / Chars32Text | 0x98 / 0x9A / 0x9C | text, by UTF-8 length; +1 (WithEndElement) when the text is the element's last child, which then needs no EndElement |
 */
export const NBFX = {
  EndElement: 0x01,
  ShortAttribute: 0x04,
  Attribute: 0x05,
  ShortXmlnsAttribute: 0x08,
  XmlnsAttribute: 0x09,
  PrefixAttributeA: 0x26,
  ShortElement: 0x40,
  Element: 0x41,
  PrefixElementA: 0x5e,
  EmptyText: 0xa8,
  Chars8Text: 0x98,
  Chars16Text: 0x9a,
  Chars32Text: 0x9c,
} as const;

/** [MC-NBFX] 2.1.2 MultiByteInt31: 7 bits a byte, least significant first, the high bit set on every byte but the last. */
export function multiByteInt31(value: number): number[] {
  if (!Number.isInteger(value) || value < 0 || value > 0x7fffffff)
    throw new RangeError(`MultiByteInt31 out of range: ${value}`);
  const bytes: number[] = [];
  let v = value;
  while (v >= 0x80) {
    bytes.push((v & 0x7f) | 0x80);
    v = Math.floor(v / 0x80);
  }
  bytes.push(v);
  return bytes;
}

/** A one-letter lowercase prefix has its own record type (PrefixElement/PrefixAttribute A..Z). */
function letterIndex(prefix: string): number {
  return /^[a-z]$/.test(prefix) ? prefix.charCodeAt(0) - 0x61 : -1;
}

class Writer {
  readonly #chunks: Buffer[] = [];
  #pending: number[] = [];

  byte(b: number): void {
    this.#pending.push(b);
  }

  bytes(bs: number[]): void {
    for (const b of bs) this.#pending.push(b);
  }

  buffer(buf: Buffer): void {
    this.#flushPending();
    this.#chunks.push(buf);
  }

  /** [MC-NBFX] 2.1.3 String: MultiByteInt31 byte count + UTF-8. */
  string(s: string): void {
    const utf8 = Buffer.from(s, 'utf8');
    this.bytes(multiByteInt31(utf8.length));
    this.buffer(utf8);
  }

  /** A Chars text record (or EmptyText for ''), the WithEndElement variant when `endsElement`. */
  text(s: string, endsElement: boolean): void {
    const utf8 = Buffer.from(s, 'utf8');
    const end = endsElement ? 1 : 0;
    if (utf8.length === 0) {
      this.byte(NBFX.EmptyText + end);
      return;
    }
    if (utf8.length <= 0xff) {
      this.bytes([NBFX.Chars8Text + end, utf8.length]);
    } else if (utf8.length <= 0xffff) {
      this.bytes([NBFX.Chars16Text + end, utf8.length & 0xff, utf8.length >> 8]);
    } else {
      const len = Buffer.alloc(4);
      len.writeInt32LE(utf8.length);
      this.byte(NBFX.Chars32Text + end);
      this.buffer(len);
    }
    this.buffer(utf8);
  }

  #flushPending(): void {
    if (this.#pending.length === 0) return;
    this.#chunks.push(Buffer.from(this.#pending));
    this.#pending = [];
  }

  result(): Buffer {
    this.#flushPending();
    return Buffer.concat(this.#chunks);
  }
}

function writeElement(w: Writer, el: XmlElement): void {
  const letter = letterIndex(el.prefix);
  if (el.prefix === '') {
    w.byte(NBFX.ShortElement);
  } else if (letter >= 0) {
    w.byte(NBFX.PrefixElementA + letter);
  } else {
    w.byte(NBFX.Element);
    w.string(el.prefix);
  }
  w.string(el.name);
  for (const ns of el.namespaces) {
    if (ns.prefix === '') {
      w.byte(NBFX.ShortXmlnsAttribute);
    } else {
      w.byte(NBFX.XmlnsAttribute);
      w.string(ns.prefix);
    }
    w.string(ns.uri);
  }
  for (const a of el.attributes) {
    const l = letterIndex(a.prefix);
    if (a.prefix === '') {
      w.byte(NBFX.ShortAttribute);
    } else if (l >= 0) {
      w.byte(NBFX.PrefixAttributeA + l);
    } else {
      w.byte(NBFX.Attribute);
      w.string(a.prefix);
    }
    w.string(a.name);
    w.text(a.value, false);
  }
  el.children.forEach((child, i) => {
    const last = i === el.children.length - 1;
    if (typeof child === 'string') w.text(child, last);
    else writeElement(w, child);
  });
  const lastChild = el.children[el.children.length - 1];
  if (typeof lastChild !== 'string') w.byte(NBFX.EndElement);
}

/** Encodes a document (its root element) in [MC-NBFX]. */
export function encodeNbfx(root: XmlElement): Buffer {
  const w = new Writer();
  writeElement(w, root);
  return w.result();
}
