/**
 * The body of `POST …/upload?userId=`: one file with its `Content-Type` and `Content-Disposition`, or
 * multipart/form-data with a part per file and an optional `application/vnd.microsoft.activity` part holding the
 * activity that carries them (send-activity page, "Send attachment(s) by upload").
 */
import type { Activity } from './conversations.js';

export interface UploadedFile {
  contentType: string;
  name: string;
  data: Buffer;
}

export interface ParsedUpload {
  activity?: Activity;
  files: UploadedFile[];
}

/** `filename="…"` (or `filename*=UTF-8''…`, or `name="…"`) of a Content-Disposition value. */
function filenameOf(disposition: string | undefined, fallback: string): string {
  if (!disposition) return fallback;
  const star = /filename\*=(?:UTF-8'')?([^;]+)/i.exec(disposition);
  if (star) {
    const raw = star[1]!.trim().replace(/^"|"$/g, '');
    try {
      return decodeURIComponent(raw);
    } catch {
      return raw;
    }
  }
  const plain = /filename="([^"]*)"|filename=([^;\s]+)/i.exec(disposition);
  if (plain) return plain[1] ?? plain[2]!;
  const name = /name="([^"]*)"/i.exec(disposition);
  return name?.[1] || fallback;
}

/** Parses an upload body; throws an Error whose message says what is wrong. */
export function parseUpload(
  contentType: string | undefined,
  disposition: string | undefined,
  body: Buffer,
): ParsedUpload {
  const type = contentType ?? 'application/octet-stream';
  const boundary = /^multipart\/form-data;.*boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(type);
  if (!boundary) {
    if (body.length === 0) throw new Error('the upload has no content');
    return { files: [{ contentType: type.split(';')[0]!.trim(), name: filenameOf(disposition, 'file'), data: body }] };
  }
  const delimiter = Buffer.from(`--${boundary[1] ?? boundary[2]!}`);
  const files: UploadedFile[] = [];
  let activity: Activity | undefined;
  let at = body.indexOf(delimiter);
  if (at < 0) throw new Error('the multipart body holds no part with the boundary its Content-Type names');
  for (;;) {
    const start = at + delimiter.length;
    if (body.subarray(start, start + 2).toString() === '--') break;
    const next = body.indexOf(delimiter, start);
    if (next < 0) throw new Error('the multipart body is not closed by its boundary');
    const part = body.subarray(start, next);
    const headerEnd = part.indexOf('\r\n\r\n');
    if (headerEnd < 0) throw new Error('a multipart part has no blank line after its headers');
    const headers = new Map<string, string>();
    for (const line of part.subarray(0, headerEnd).toString('utf8').split('\r\n')) {
      const colon = line.indexOf(':');
      if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
    }
    let data = part.subarray(headerEnd + 4);
    if (data.subarray(-2).toString() === '\r\n') data = data.subarray(0, -2);
    const partType = (headers.get('content-type') ?? 'application/octet-stream').split(';')[0]!.trim();
    if (partType.toLowerCase() === 'application/vnd.microsoft.activity') {
      try {
        activity = JSON.parse(data.toString('utf8')) as Activity;
      } catch {
        throw new Error('the application/vnd.microsoft.activity part is not JSON');
      }
      if (typeof activity !== 'object' || activity === null || Array.isArray(activity))
        throw new Error('the application/vnd.microsoft.activity part is not an activity object');
    } else {
      files.push({
        contentType: partType,
        name: filenameOf(headers.get('content-disposition'), `file${files.length + 1}`),
        data: Buffer.from(data),
      });
    }
    at = next;
  }
  if (files.length === 0) throw new Error('the multipart body holds no file part');
  return { ...(activity ? { activity } : {}), files };
}
