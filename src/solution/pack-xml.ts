/**
 * The XML of a Dataverse solution as `channel pack` and `channel check` read and write it: a small element tree in
 * document order in which every element remembers the file and line it came from, so that a problem found after the
 * folder's files are merged into `customizations.xml` still names the file a person edits.
 */
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import type { SolutionProblem } from '../errors.js';
import { XML_EOL as EOL } from './pack-assumptions.js';

export interface XmlElement {
  name: string;
  attributes: Record<string, string>;
  /** Child elements in document order. */
  children: XmlElement[];
  /** The element's own text (its text nodes joined), trimmed; '' when none. */
  text: string;
  /** Where the element was read: the solution file (folder path or zip entry) and its 1-based line. */
  file: string;
  line: number;
}

const parser = new XMLParser({
  preserveOrder: true,
  ignoreAttributes: false,
  attributeNamePrefix: '',
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: true,
  captureMetaData: true,
  // The predefined entities and character references only: a DOCTYPE is refused before parsing.
  processEntities: true,
  htmlEntities: false,
});
const META = XMLParser.getMetaDataSymbol();

type Ordered = Record<string, unknown> & { ':@'?: Record<string, string> };

/** The text of a file: UTF-8, without the byte-order mark that Windows tools write. */
export function decodeText(bytes: Uint8Array): string {
  const text = new TextDecoder('utf-8').decode(bytes);
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

function lineOf(starts: readonly number[], index: number): number {
  let lo = 0;
  let hi = starts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if ((starts[mid] as number) <= index) lo = mid;
    else hi = mid - 1;
  }
  return lo + 1;
}

function toElement(node: Ordered, file: string, starts: readonly number[]): XmlElement | undefined {
  const name = Object.keys(node).find((k) => k !== ':@');
  if (name === undefined || name === '#text' || name.startsWith('?') || name.startsWith('!')) return undefined;
  const meta = (node as unknown as Record<symbol, { startIndex?: number } | undefined>)[META as unknown as symbol];
  const element: XmlElement = {
    name,
    attributes: { ...(node[':@'] ?? {}) },
    children: [],
    text: '',
    file,
    line: lineOf(starts, meta?.startIndex ?? 0),
  };
  const texts: string[] = [];
  for (const child of (node[name] as Ordered[] | undefined) ?? []) {
    if ('#text' in child) texts.push(String(child['#text']));
    else {
      const sub = toElement(child, file, starts);
      if (sub !== undefined) element.children.push(sub);
    }
  }
  element.text = texts.join('').trim();
  return element;
}

/**
 * Parses one XML document of the solution. Not well-formed: the problem, with the line and column the parser stopped
 * at; `file` names the document in both.
 */
export function parseXml(text: string, file: string): XmlElement | SolutionProblem {
  const doctype = /<!DOCTYPE/i.exec(text);
  if (doctype !== null) {
    // No solution file has one; refused so that no entity a hostile file declares is ever expanded.
    return {
      file,
      line: text.slice(0, doctype.index).split('\n').length,
      message: 'a DOCTYPE is not allowed in a solution file',
    };
  }
  const valid = XMLValidator.validate(text);
  if (valid !== true) {
    return {
      file,
      line: valid.err.line,
      message: `not well-formed XML (line ${valid.err.line}, column ${valid.err.col}): ${valid.err.msg}`,
    };
  }
  const starts = [0];
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) starts.push(i + 1);
  const nodes = parser.parse(text) as Ordered[];
  for (const node of nodes) {
    const element = toElement(node, file, starts);
    if (element !== undefined) return element;
  }
  return { file, line: 1, message: 'not well-formed XML: no root element' };
}

export function isProblem(value: XmlElement | SolutionProblem): value is SolutionProblem {
  return 'message' in value;
}

/** The first child named `name`. */
export function child(element: XmlElement | undefined, name: string): XmlElement | undefined {
  return element?.children.find((c) => c.name === name);
}

/** Every child named `name`. */
export function children(element: XmlElement | undefined, name: string): XmlElement[] {
  return element?.children.filter((c) => c.name === name) ?? [];
}

/** The text of the first child named `name`, or undefined when it is absent or empty. */
export function childText(element: XmlElement | undefined, name: string): string | undefined {
  const text = child(element, name)?.text;
  return text === undefined || text === '' ? undefined : text;
}

/** A new element (for what pack adds around the files it merges), located at `file`'s first line. */
export function newElement(
  name: string,
  file: string,
  children: XmlElement[] = [],
  attributes: Record<string, string> = {},
): XmlElement {
  return { name, attributes, children, text: '', file, line: 1 };
}

function escapeText(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function escapeAttribute(text: string): string {
  return escapeText(text).replace(/"/g, '&quot;');
}

function write(el: XmlElement, indent: string, out: string[]): void {
  const attrs = Object.entries(el.attributes)
    .map(([k, v]) => ` ${k}="${escapeAttribute(v)}"`)
    .join('');
  if (el.children.length === 0) {
    out.push(
      el.text === ''
        ? `${indent}<${el.name}${attrs} />`
        : `${indent}<${el.name}${attrs}>${escapeText(el.text)}</${el.name}>`,
    );
    return;
  }
  out.push(`${indent}<${el.name}${attrs}>${el.text === '' ? '' : escapeText(el.text)}`);
  for (const c of el.children) write(c, `${indent}  `, out);
  out.push(`${indent}</${el.name}>`);
}

/** Serializes a document: two-space indentation, CRLF, no XML declaration (as Dataverse exports solution files). */
export function serializeXml(root: XmlElement): string {
  const out: string[] = [];
  write(root, '', out);
  return out.join(EOL) + EOL;
}
