/**
 * The small XML infoset the emulator posts for `messageformat` 3 (Text XML) and 1 (.NET Binary XML): elements with
 * namespace declarations, attributes and children (elements or text). The text writer (here) and the [MC-NBFX]
 * encoder (`nbfx.ts`) write the same tree, so a consumer reads the same document from either format.
 */

export interface XmlNamespaceDeclaration {
  /** `''` for the default namespace (`xmlns="…"`). */
  prefix: string;
  uri: string;
}

export interface XmlAttribute {
  /** `''` for an unprefixed attribute. */
  prefix: string;
  name: string;
  value: string;
}

export interface XmlElement {
  /** `''` for an unprefixed element. */
  prefix: string;
  name: string;
  /** Declarations written on this element, in order. */
  namespaces: XmlNamespaceDeclaration[];
  attributes: XmlAttribute[];
  /** Elements and text, in document order; adjacent text nodes are not expected (they would merge when read back). */
  children: XmlNode[];
}

export type XmlNode = XmlElement | string;

export function element(
  prefix: string,
  name: string,
  children: XmlNode[] = [],
  extra: { namespaces?: XmlNamespaceDeclaration[]; attributes?: XmlAttribute[] } = {},
): XmlElement {
  return { prefix, name, namespaces: extra.namespaces ?? [], attributes: extra.attributes ?? [], children };
}

function qname(prefix: string, name: string): string {
  return prefix === '' ? name : `${prefix}:${name}`;
}

function escapeText(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/\r/g, '&#xD;');
}

function escapeAttribute(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/\r/g, '&#xD;')
    .replace(/\n/g, '&#xA;')
    .replace(/\t/g, '&#x9;');
}

/**
 * Text XML without an XML declaration and without whitespace between elements, as an `XmlDictionaryWriter` text
 * writer produces it; an element without children (an empty string included) is written `<x/>`.
 */
export function writeXml(root: XmlElement): string {
  const out: string[] = [];
  const write = (el: XmlElement): void => {
    out.push('<', qname(el.prefix, el.name));
    // `i:type="c:string" xmlns:c="…"`: the attribute, then the declaration its value needed (as WCF writes it).
    for (const a of el.attributes) out.push(' ', qname(a.prefix, a.name), '="', escapeAttribute(a.value), '"');
    for (const ns of el.namespaces)
      out.push(' ', ns.prefix === '' ? 'xmlns' : `xmlns:${ns.prefix}`, '="', escapeAttribute(ns.uri), '"');
    if (el.children.length === 0) {
      out.push('/>');
      return;
    }
    out.push('>');
    for (const child of el.children) {
      if (typeof child === 'string') out.push(escapeText(child));
      else write(child);
    }
    out.push('</', qname(el.prefix, el.name), '>');
  };
  write(root);
  return out.join('');
}
