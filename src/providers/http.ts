/**
 * The one HTTP call every adapter makes: global `fetch` (undici in Node 20) with a timeout, the caller's signal, and
 * failures turned into `ProviderError`s:
 *
 * - the timeout (`timeoutMs`) → `ProviderTimeout`;
 * - a connection failure (refused, reset, DNS) → `ProviderUnavailable`;
 * - the caller's own abort (shutdown) → the abort reason rethrown as is, so that a stop is never mistaken for a
 *   provider fault.
 *
 * Answers of any status are returned, not thrown: each adapter's mapping function decides what a status means.
 * Nothing here puts the URL (a Telegram bot token is in its path) or the request headers (basic auth) into an error.
 */
import { parseRetryAfter } from '../http/index.js';
import { ProviderError } from '../errors.js';
import type { ProviderType } from './provider.js';

/** The `fetch` signature the adapters call; tests and callers may pass their own. */
export type FetchLike = (input: string, init: RequestInit) => Promise<Response>;

export interface HttpCall {
  /** Named in error messages. */
  provider: ProviderType;
  url: string;
  headers: Record<string, string>;
  /** The request body, already encoded. */
  body: string;
  /** Abort the call (and reading its answer) after this long. */
  timeoutMs: number;
  /** The caller's signal (shutdown): its abort is rethrown as is. */
  signal?: AbortSignal;
  /** @defaultValue globalThis.fetch */
  fetch?: FetchLike;
  /** Values that must never appear in an error (tokens, passwords); replaced by `[REDACTED]`. */
  secrets?: readonly string[];
}

/** What the provider answered. */
export interface HttpResponse {
  status: number;
  /** Response headers, lower-case names. */
  headers: Record<string, string>;
  /** Parsed JSON when the body is JSON, else the text ('' when empty). */
  body: unknown;
}

export const REDACTED = '[REDACTED]';
/** Secrets shorter than this are not searched for in answers (no real token is this short). */
const MIN_SECRET_CHARS = 8;

/**
 * Sends one POST and returns the answer, whatever its status; see the module comment for the failures.
 *
 * The timeout and the caller's signal feed one per-call `AbortController` whose timer and listener are removed
 * when the call ends. Not `AbortSignal.any([signal, AbortSignal.timeout(ms)])`: on Node 20 (measured on 20.20.2)
 * every combined signal stays in the long-lived parent's dependant set (nodejs/node#55351, #54614), so a worker
 * passing one shutdown signal to every send would grow without bound (about 300,000 entries after 300,000 calls).
 */
export async function httpPost(call: HttpCall): Promise<HttpResponse> {
  const caller = call.signal;
  if (caller?.aborted) throw caller.reason;
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort(new DOMException(`timed out after ${call.timeoutMs} ms`, 'TimeoutError'));
  }, call.timeoutMs);
  const onCallerAbort = (): void => controller.abort(caller?.reason);
  caller?.addEventListener('abort', onCallerAbort, { once: true });
  const doFetch = call.fetch ?? (globalThis.fetch as FetchLike);
  const secrets = call.secrets ?? [];
  try {
    // redirect 'manual': a 3xx is returned (and mapped as a bad response), never followed with the credentials.
    const response = await doFetch(call.url, { method: 'POST', headers: call.headers, body: call.body, signal: controller.signal, redirect: 'manual' });
    const headers: Record<string, string> = {};
    response.headers.forEach((value, name) => {
      headers[name.toLowerCase()] = value;
    });
    let text: string;
    try {
      text = await response.text();
    } catch (err) {
      // A 2xx status line means the provider took the request: a body lost after it (timeout, reset) must not turn
      // into a retryable failure, or the message is sent again. The mapping makes an empty 2xx body
      // ProviderAnswerUnreadable (maybe sent, not retried).
      if (response.status >= 200 && response.status < 300 && !caller?.aborted) return scrubSecrets({ status: response.status, headers, body: '' }, secrets);
      throw err;
    }
    return scrubSecrets({ status: response.status, headers, body: parseBody(text, headers['content-type']) }, secrets);
  } catch (err) {
    // The caller's abort wins, even over a timeout that fired just before: a stop is not a provider fault.
    if (caller?.aborted) throw caller.reason;
    const cause = safeCause(err, secrets);
    if (timedOut) {
      throw new ProviderError('ProviderTimeout', `${call.provider} did not answer within ${call.timeoutMs} ms`, { cause });
    }
    throw new ProviderError('ProviderUnavailable', `${call.provider} could not be reached: ${cause.message}`, { cause });
  } finally {
    clearTimeout(timer);
    caller?.removeEventListener('abort', onCallerAbort);
  }
}

/** JSON when it parses as JSON (by content type or by shape), else the text itself. */
function parseBody(text: string, contentType: string | undefined): unknown {
  const trimmed = text.trim();
  const looksJson = /\bjson\b/i.test(contentType ?? '') || trimmed.startsWith('{') || trimmed.startsWith('[');
  if (looksJson && trimmed !== '') {
    try {
      return JSON.parse(trimmed) as unknown;
    } catch {
      return text;
    }
  }
  return text;
}

/** Returns a copy of `value` in which every occurrence of each secret, in any string, is `[REDACTED]`. */
export function scrubSecrets<T>(value: T, secrets: readonly string[]): T {
  // A real credential is long; scrubbing a very short one would mangle every answer that contains its characters.
  const live = secrets.filter((s) => s.length >= MIN_SECRET_CHARS);
  if (live.length === 0) return value;
  const scrub = (v: unknown, depth: number): unknown => {
    if (typeof v === 'string') return live.reduce((s, secret) => s.split(secret).join(REDACTED), v);
    if (typeof v !== 'object' || v === null || depth > 16) return v;
    if (Array.isArray(v)) return v.map((x) => scrub(x, depth + 1));
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[scrub(k, depth + 1) as string] = scrub(x, depth + 1);
    return out;
  };
  return scrub(value, 0) as T;
}

/**
 * An `Error` standing for a fetch failure, safe to keep as `cause`: undici's `TypeError: fetch failed` says nothing,
 * its own cause (`connect ECONNREFUSED 127.0.0.1:4010`, code `ECONNREFUSED`) says what happened. Secrets are scrubbed.
 */
function safeCause(err: unknown, secrets: readonly string[]): Error & { code?: string } {
  const inner = err instanceof Error && err.cause instanceof Error ? err.cause : err;
  const message = inner instanceof Error ? inner.message : String(inner);
  const out: Error & { code?: string } = new Error(scrubSecrets(message, secrets));
  out.name = inner instanceof Error ? inner.name : 'Error';
  const code = (inner as { code?: unknown } | null)?.code;
  if (typeof code === 'string') out.code = code;
  return out;
}

export { parseRetryAfter };
