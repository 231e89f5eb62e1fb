/**
 * Reading an incoming HTTP request, for the project's HTTP servers (the emulators; the callbacks service): the body
 * with a size limit, and the headers with lower-case names and one value each.
 */
import type { IncomingMessage } from 'node:http';

/**
 * The body as bytes (uploads, binary formats). Past `maxBytes` it rejects at once with `tooLarge()`, so that the
 * server can answer 413 while the rest is read and dropped: destroying the request would reset the connection before
 * the answer arrives.
 */
export function readBodyBytes(req: IncomingMessage, maxBytes: number, tooLarge: () => Error): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (chunk: Buffer) => {
      if (over) return;
      size += chunk.length;
      if (size > maxBytes) {
        over = true;
        chunks.length = 0;
        reject(tooLarge());
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** The body as UTF-8 text, with `readBodyBytes`' limit. */
export async function readBody(req: IncomingMessage, maxBytes: number, tooLarge: () => Error): Promise<string> {
  return (await readBodyBytes(req, maxBytes, tooLarge)).toString('utf8');
}

/** Header names in lower case, repeated headers joined with `, `. */
export function lowerHeaders(req: IncomingMessage): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(req.headers)) out[k] = Array.isArray(v) ? v.join(', ') : v;
  return out;
}
