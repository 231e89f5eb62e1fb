/**
 * One Direct Line request: `node:http` / `node:https` on the client's keep-alive agent, a Buffer body, the answer read
 * whole, a timeout and the caller's signal (as `src/providers/http.ts` does for the providers; that one sends text
 * bodies and throws `ProviderError`s, so it does not fit an upload).
 */
import http from 'node:http';
import https from 'node:https';
import { linkedController } from '../abort.js';

export interface Request {
  method: 'GET' | 'POST';
  url: URL;
  headers: Record<string, string>;
  /** Sent with its `content-length` (POST only). */
  body?: Buffer;
  timeoutMs: number;
  signal: AbortSignal | undefined;
  agent: http.Agent;
}

/** What Direct Line answered: the status, lower-case headers (repeated ones joined with ', ') and the raw body. */
export interface Answer {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/** Why a request got no answer: its timeout, or a connection failure (refused, reset, DNS, a body cut off). */
export class NoAnswer extends Error {
  constructor(
    readonly reason: 'timeout' | 'connection',
    message: string,
    readonly errno?: string,
  ) {
    super(message);
  }
}

/** A keep-alive agent for `url`'s protocol; idle sockets close after 4 s (below Node's 5 s server keep-alive). */
export function keepAliveAgent(url: URL): http.Agent {
  const options: http.AgentOptions = { keepAlive: true, timeout: 4000, scheduling: 'lifo' };
  return url.protocol === 'https:' ? new https.Agent(options) : new http.Agent(options);
}

/**
 * Sends the request and returns the answer, whatever its status. Rejects with {@link NoAnswer} on the timeout or a
 * connection failure, and with the caller's abort reason, as is, when the caller's signal aborts (a stop is never a
 * Direct Line fault). A 2xx whose body is cut off is returned with the part that arrived (the request took effect).
 */
export async function send(request: Request): Promise<Answer> {
  const caller = request.signal;
  if (caller?.aborted) throw caller.reason;
  const link = linkedController(caller);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    link.abort(new DOMException(`timed out after ${request.timeoutMs} ms`, 'TimeoutError'));
  }, request.timeoutMs);
  try {
    return await exchange(request, link.signal);
  } catch (err) {
    if (caller?.aborted) throw caller.reason;
    if (timedOut) throw new NoAnswer('timeout', `no answer within ${request.timeoutMs} ms`);
    const errno = (err as { code?: unknown }).code;
    throw new NoAnswer(
      'connection',
      err instanceof Error ? err.message : String(err),
      typeof errno === 'string' ? errno : undefined,
    );
  } finally {
    clearTimeout(timer);
    link.dispose();
  }
}

function exchange(request: Request, signal: AbortSignal): Promise<Answer> {
  return new Promise<Answer>((resolve, reject) => {
    const body = request.method === 'POST' ? (request.body ?? Buffer.alloc(0)) : undefined;
    const headers =
      body === undefined ? request.headers : { ...request.headers, 'content-length': String(body.length) };
    const call = request.url.protocol === 'https:' ? https.request : http.request;
    const req = call(request.url, { method: request.method, headers, agent: request.agent, signal });
    req.once('error', reject);
    req.once('response', (res) => {
      const answerHeaders: Record<string, string> = {};
      for (const [name, value] of Object.entries(res.headers))
        if (value !== undefined) answerHeaders[name] = Array.isArray(value) ? value.join(', ') : value;
      const status = res.statusCode ?? 0;
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      // A body cut off emits 'error' then 'close': the outcome is decided on 'close'.
      res.on('error', () => undefined);
      res.once('end', () => resolve({ status, headers: answerHeaders, body: Buffer.concat(chunks) }));
      res.once('close', () => {
        if (res.complete) return;
        // Cut off after the status line: a 2xx took effect (its unreadable body says so); anything else is a failure.
        if (status >= 200 && status < 300 && !signal.aborted)
          resolve({ status, headers: answerHeaders, body: Buffer.concat(chunks) });
        else reject(new Error('the connection closed before the answer ended'));
      });
    });
    req.end(body);
  });
}
