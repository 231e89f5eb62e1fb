/**
 * The multipart/form-data body of an upload (send-activity page, "Send multiple attachments by upload"; part names as
 * DirectLineJS sends them, see assumptions.ts): the activity part, then one part per file.
 */
import { randomBytes } from 'node:crypto';
import type { DirectLineActivity, UploadFile } from '../pipeline/index.js';
import { UPLOAD_FORM } from './assumptions.js';

export const ACTIVITY_CONTENT_TYPE = 'application/vnd.microsoft.activity';

/**
 * A quoted-string value of a Content-Disposition parameter as the WHATWG form encoder writes it: `"`, CR and LF
 * percent-encoded, the rest as UTF-8.
 */
function quoted(value: string): string {
  return `"${value.replace(/"/g, '%22').replace(/\r/g, '%0D').replace(/\n/g, '%0A')}"`;
}

/** A header value without line breaks (a content type comes from a provider). */
function headerValue(value: string): string {
  return value.replace(/[\r\n]+/g, ' ').trim();
}

/** The body and its `content-type` (with a random boundary that no part contains). */
export function uploadBody(
  activity: DirectLineActivity,
  files: readonly UploadFile[],
): { contentType: string; body: Buffer } {
  const json = Buffer.from(JSON.stringify(activity), 'utf8');
  let boundary: string;
  do boundary = `----channel-relay-${randomBytes(16).toString('hex')}`;
  while ([json, ...files.map((f) => f.data)].some((data) => data.includes(boundary)));
  const parts: Buffer[] = [];
  const part = (headers: string[], data: Buffer): void => {
    parts.push(Buffer.from(`--${boundary}\r\n${headers.join('\r\n')}\r\n\r\n`, 'utf8'), data, Buffer.from('\r\n'));
  };
  part(
    [
      `Content-Disposition: form-data; name=${quoted(UPLOAD_FORM.activityPart)}`,
      `Content-Type: ${ACTIVITY_CONTENT_TYPE}`,
    ],
    json,
  );
  for (const file of files)
    part(
      [
        `Content-Disposition: form-data; name=${quoted(UPLOAD_FORM.filePart)}; filename=${quoted(file.name)}`,
        `Content-Type: ${headerValue(file.contentType) || 'application/octet-stream'}`,
      ],
      file.data,
    );
  parts.push(Buffer.from(`--${boundary}--\r\n`, 'utf8'));
  return { contentType: `multipart/form-data; boundary=${boundary}`, body: Buffer.concat(parts) };
}
