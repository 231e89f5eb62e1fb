/**
 * `$batch` bodies: the multipart/mixed parser for requests (with nested change sets, `Content-ID`) and the
 * writer for responses in the format Dataverse returns (`batchresponse_…`, `changesetresponse_…`, CRLF lines).
 */
import { randomUUID } from 'node:crypto';

export interface BatchRequestPart {
  method: string;
  /** As written on the request line: absolute URL, absolute path, relative path or `$1…`. */
  url: string;
  /** Lower-case header names. */
  headers: Record<string, string>;
  body: string;
  contentId?: string;
}

export type BatchItem =
  { kind: 'request'; request: BatchRequestPart } | { kind: 'changeset'; requests: BatchRequestPart[] };

export interface BatchResponsePart {
  status: number;
  headers: Record<string, string>;
  body?: string;
  contentId?: string;
}

export type BatchResponseItem =
  { kind: 'response'; response: BatchResponsePart } | { kind: 'changeset'; responses: BatchResponsePart[] };

export class MultipartError extends Error {
  override readonly name = 'MultipartError';
}

/** The boundary parameter of a `multipart/mixed` content type, or undefined. */
export function boundaryOf(contentType: string | undefined): string | undefined {
  if (!contentType || !/^\s*multipart\/mixed\b/i.test(contentType)) return undefined;
  const m = /boundary\s*=\s*(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  return m ? (m[1] ?? m[2]) : undefined;
}

/**
 * Where the next delimiter line starts at or after `from`: `--boundary` at the start of the text or of a line, and
 * followed by `--`, white space or the end of the line (so that boundary `b_1` does not match `--b_10`).
 */
function findDelimiter(text: string, delim: string, from: number): number {
  let at = text.indexOf(delim, from);
  while (at >= 0) {
    const lineStart = at === 0 || text[at - 1] === '\n';
    const after = text[at + delim.length];
    if (
      lineStart &&
      (after === undefined || after === '-' || after === '\r' || after === '\n' || after === ' ' || after === '\t')
    )
      return at;
    at = text.indexOf(delim, at + 1);
  }
  return -1;
}

/** Splits `text` into the bodies between `--boundary` delimiters (the preamble and epilogue are dropped). */
export function splitParts(text: string, boundary: string): string[] {
  const delim = `--${boundary}`;
  const parts: string[] = [];
  let pos = findDelimiter(text, delim, 0);
  if (pos < 0) throw new MultipartError(`the body has no delimiter '${delim}'`);
  for (;;) {
    let start = pos + delim.length;
    if (text.startsWith('--', start)) return parts;
    const eol = text.indexOf('\n', start);
    if (eol < 0) throw new MultipartError(`the body ends without the closing delimiter '${delim}--'`);
    start = eol + 1;
    const next = findDelimiter(text, delim, start);
    if (next < 0) throw new MultipartError(`the body ends without the closing delimiter '${delim}--'`);
    // The line break before a delimiter belongs to the delimiter.
    let end = next > start ? next - 1 : next;
    if (end > start && text[end - 1] === '\r') end -= 1;
    parts.push(text.slice(start, Math.max(start, end)));
    pos = next;
  }
}

/** Splits headers from the rest at the first empty line; header names are lower-cased. */
function splitHead(text: string): { lines: string[]; headers: Record<string, string>; rest: string } {
  let sep = text.indexOf('\r\n\r\n');
  let sepLen = 4;
  const lf = text.indexOf('\n\n');
  if (lf >= 0 && (sep < 0 || lf < sep)) {
    sep = lf;
    sepLen = 2;
  }
  const head = sep < 0 ? text : text.slice(0, sep);
  const rest = sep < 0 ? '' : text.slice(sep + sepLen);
  const lines = head.split(/\r?\n/);
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { lines, headers, rest };
}

const METHOD = /^[A-Z]+$/;
const VERSION = /\sHTTP\/\d\.\d$/;

/** `POST <url> HTTP/1.1` → method and URL (the URL may hold spaces; the version is optional). */
function parseRequestLine(line: string): { method: string; url: string } | undefined {
  const space = line.indexOf(' ');
  if (space <= 0) return undefined;
  const method = line.slice(0, space);
  if (!METHOD.test(method)) return undefined;
  const version = VERSION.exec(line);
  const url = line.slice(space + 1, version ? version.index : line.length).trim();
  return url === '' ? undefined : { method, url };
}

function parseHttpPart(text: string): BatchRequestPart {
  const outer = splitHead(text);
  const inner = splitHead(outer.rest);
  const requestLine = inner.lines.find((l) => l.trim() !== '')?.trim();
  const request = requestLine === undefined ? undefined : parseRequestLine(requestLine);
  if (!request)
    throw new MultipartError(
      `a part has no request line (expected 'METHOD URL HTTP/1.1', found '${requestLine ?? ''}')`,
    );
  const part: BatchRequestPart = {
    method: request.method,
    url: request.url,
    headers: inner.headers,
    body: inner.rest.trim(),
  };
  const contentId = outer.headers['content-id'];
  if (contentId !== undefined) part.contentId = contentId;
  return part;
}

/** Parses a `$batch` body. Throws {@link MultipartError} with what was wrong. */
export function parseBatch(body: string, boundary: string): BatchItem[] {
  const items: BatchItem[] = [];
  for (const part of splitParts(body, boundary)) {
    const { headers, rest } = splitHead(part);
    const nested = boundaryOf(headers['content-type']);
    if (nested) {
      const requests = splitParts(rest, nested).map(parseHttpPart);
      for (const r of requests) {
        if (r.method === 'GET') throw new MultipartError('GET requests are not allowed inside a change set');
      }
      items.push({ kind: 'changeset', requests });
    } else {
      const ct = headers['content-type'] ?? '';
      if (!/^application\/http/i.test(ct))
        throw new MultipartError(`a part has Content-Type '${ct}' (expected application/http or multipart/mixed)`);
      items.push({ kind: 'request', request: parseHttpPart(part) });
    }
  }
  return items;
}

const REASONS: Readonly<Record<number, string>> = {
  200: 'OK',
  201: 'Created',
  204: 'No Content',
  304: 'Not Modified',
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  412: 'Precondition Failed',
  413: 'Payload Too Large',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  501: 'Not Implemented',
  503: 'Service Unavailable',
};

export function reasonPhrase(status: number): string {
  return REASONS[status] ?? 'Unknown';
}

function writePart(out: string[], delim: string, part: BatchResponsePart): void {
  out.push(delim, 'Content-Type: application/http', 'Content-Transfer-Encoding: binary');
  if (part.contentId !== undefined) out.push(`Content-ID: ${part.contentId}`);
  out.push('', `HTTP/1.1 ${part.status} ${reasonPhrase(part.status)}`);
  for (const [k, v] of Object.entries(part.headers)) out.push(`${k}: ${v}`);
  out.push('');
  if (part.body !== undefined) out.push(part.body);
  else out.push('');
}

/** Writes a batch response; returns the body and its Content-Type. */
export function writeBatch(
  items: readonly BatchResponseItem[],
  id: string = randomUUID(),
): { body: string; contentType: string } {
  const boundary = `batchresponse_${id}`;
  const out: string[] = [];
  for (const item of items) {
    if (item.kind === 'response') {
      writePart(out, `--${boundary}`, item.response);
      continue;
    }
    const cs = `changesetresponse_${randomUUID()}`;
    out.push(`--${boundary}`, `Content-Type: multipart/mixed; boundary=${cs}`, '');
    for (const r of item.responses) writePart(out, `--${cs}`, r);
    out.push(`--${cs}--`);
  }
  out.push(`--${boundary}--`, '');
  return { body: out.join('\r\n'), contentType: `multipart/mixed; boundary=${boundary}` };
}
