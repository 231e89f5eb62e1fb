/**
 * The import job's log (`importjob.data`) read into what an operator needs: which component failed or warned, and
 * what Dataverse said. Pure; the shape it reads is listed in `import-assumptions.ts` (the comment on the log's shape).
 */
import { XMLParser } from 'fast-xml-parser';

export interface ImportLogEntry {
  level: 'failure' | 'warning';
  /** The component: its kind (the element's name) and its name or id, e.g. `entity sample_specialmessage`. */
  component: string;
  /** Dataverse's error code, e.g. `0x80040216`, when the log gives one other than 0. */
  code?: string;
  message: string;
}

type Node = Record<string, unknown>;

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@_',
  parseAttributeValue: false,
  parseTagValue: false,
  processEntities: true,
  htmlEntities: false,
});

/** The names an element of the log may carry for its component, in the order they are preferred. */
const NAME_ATTRIBUTES = ['@_LocalizedName', '@_OriginalName', '@_name', '@_Name', '@_schemaName', '@_id'];

function text(value: unknown): string | undefined {
  if (typeof value === 'string' && value.trim() !== '') return value.trim();
  if (typeof value === 'object' && value !== null && typeof (value as Node)['#text'] === 'string')
    return text((value as Node)['#text']);
  return undefined;
}

function label(tag: string, node: Node): string {
  for (const key of NAME_ATTRIBUTES) {
    const v = text(node[key]);
    if (v !== undefined) return `${tag} ${v}`;
  }
  const unique = text(node['UniqueName']);
  return unique === undefined ? tag : `${tag} ${unique}`;
}

function entry(result: Node, component: string): ImportLogEntry | undefined {
  const level = text(result['@_result'])?.toLowerCase();
  if (level !== 'failure' && level !== 'warning') return undefined;
  const code = text(result['@_errorcode']);
  const message = text(result['@_errortext']) ?? (code === undefined ? `${level} without a message` : `error ${code}`);
  return { level, component, message, ...(code === undefined || code === '0' ? {} : { code }) };
}

function walk(tag: string, node: Node, out: ImportLogEntry[]): void {
  const component = label(tag, node);
  // A result given as the component's own attributes (`<attribute id="…" result="failure" errortext="…"/>`).
  const own = entry(node, component);
  if (own !== undefined) out.push(own);
  for (const [key, value] of Object.entries(node)) {
    if (key.startsWith('@_') || key === '#text') continue;
    for (const child of Array.isArray(value) ? value : [value]) {
      if (typeof child !== 'object' || child === null) continue;
      if (key === 'result') {
        const found = entry(child as Node, component);
        if (found !== undefined) out.push(found);
      } else walk(key, child as Node, out);
    }
  }
}

/**
 * Every failure and warning in an import job's `data`, in document order, with the component it belongs to.
 * Never throws: a log that is not XML gives one failure entry holding its first line.
 */
export function readImportLog(data: string | null | undefined): ImportLogEntry[] {
  if (data === null || data === undefined || data.trim() === '') return [];
  let doc: Node;
  try {
    doc = parser.parse(data, true) as Node;
  } catch {
    const first = data.trim().split('\n')[0]?.slice(0, 200) ?? '';
    return [{ level: 'failure', component: 'import log', message: `not readable as XML: ${first}` }];
  }
  const out: ImportLogEntry[] = [];
  for (const [key, value] of Object.entries(doc)) {
    if (key.startsWith('?') || typeof value !== 'object' || value === null) continue;
    for (const root of Array.isArray(value) ? value : [value]) walk(key, root as Node, out);
  }
  return out;
}
