/**
 * A small XML writer for the solution files: elements built as plain objects, written with two-space indentation,
 * attributes in the order given, text and attribute values escaped. The same tree always gives the same bytes.
 */

/** An element: its name, attributes in order, and children (elements or text). */
export interface XmlElement {
  name: string;
  attributes?: ReadonlyArray<readonly [string, string]>;
  children?: ReadonlyArray<XmlElement | string>;
}

/** An element with attributes and children; attributes whose value is undefined are left out. */
export function el(
  name: string,
  attributes: Record<string, string | number | undefined> = {},
  ...children: ReadonlyArray<XmlElement | string | ReadonlyArray<XmlElement>>
): XmlElement {
  const attrs: Array<readonly [string, string]> = [];
  for (const [key, value] of Object.entries(attributes)) if (value !== undefined) attrs.push([key, String(value)]);
  return { name, attributes: attrs, children: children.flat() };
}

/** An element holding only text (`<name>text</name>`); a number or boolean written as Dataverse does (1/0). */
export function leaf(name: string, value: string | number | boolean): XmlElement {
  const text = typeof value === 'boolean' ? (value ? '1' : '0') : String(value);
  return { name, children: [text] };
}

/** Escapes text content: `&`, `<` and `>`. */
export function escapeText(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Escapes an attribute value written in double quotes. */
export function escapeAttribute(value: string): string {
  return escapeText(value).replace(/"/g, '&quot;');
}

function write(node: XmlElement, indent: string, out: string[]): void {
  const attrs = (node.attributes ?? []).map(([k, v]) => ` ${k}="${escapeAttribute(v)}"`).join('');
  const children = node.children ?? [];
  if (children.length === 0) {
    out.push(`${indent}<${node.name}${attrs} />`);
    return;
  }
  if (children.every((c) => typeof c === 'string')) {
    out.push(`${indent}<${node.name}${attrs}>${escapeText(children.join(''))}</${node.name}>`);
    return;
  }
  out.push(`${indent}<${node.name}${attrs}>`);
  for (const child of children) {
    if (typeof child === 'string') out.push(`${indent}  ${escapeText(child)}`);
    else write(child, `${indent}  `, out);
  }
  out.push(`${indent}</${node.name}>`);
}

/** A whole document: the XML declaration (utf-8), the root element, a final newline; CRLF-free. */
export function xmlDocument(root: XmlElement): string {
  const out = ['<?xml version="1.0" encoding="utf-8"?>'];
  write(root, '', out);
  return `${out.join('\n')}\n`;
}

/** The `xmlns:xsi` attribute every SolutionPackager file's root carries. */
export const XSI = { 'xmlns:xsi': 'http://www.w3.org/2001/XMLSchema-instance' } as const;

/** `<tag><tag2 description="…" languagecode="1033" /></tag>`: a label list with the one language the generator writes. */
export function labels(list: string, item: string, description: string): XmlElement {
  return el(list, {}, el(item, { description, languagecode: 1033 }));
}
