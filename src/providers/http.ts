/**
 * The one HTTP call every adapter makes: a `node:http` / `node:https` request on a keep-alive agent per origin, the
 * answer read into a Buffer, with a timeout and the caller's signal.
 *
 * Invariants: answers of any status are returned, not thrown (each adapter's mapping decides what a status means);
 * a failure before an answer is a `ProviderError`, except the caller's own abort, rethrown as is so that a stop is
 * never mistaken for a provider fault; redirects are returned, never followed (the credentials stay with the
 * provider); no error holds the URL (a Telegram bot token is in its path), the request headers (basic auth) or a
 * secret the call names.
 */
import http from 'node:http';
import https from 'node:https';
import { urlToHttpOptions } from 'node:url';
import { parseRetryAfter } from '../http/index.js';
import { isProviderError, ProviderError } from '../errors.js';
import type { Logger } from '../log.js';
import { ATTR, inClientSpan, setHttpStatus, tracingOn } from '../telemetry/index.js';
import type { ProviderType } from './provider.js';

/** The `fetch` signature the adapters call; tests and callers may pass their own. */
export type FetchLike = (input: string, init: RequestInit) => Promise<Response>;

export interface HttpCall {
  /** Named in error messages. */
  provider: ProviderType;
  url: string;
  /** @defaultValue 'POST' */
  method?: 'POST' | 'GET';
  headers: Record<string, string>;
  /** The request body, already encoded ('' for a GET: none is sent). */
  body: string;
  /** Abort the call (and reading its answer) after this long. */
  timeoutMs: number;
  /** The caller's signal (shutdown): its abort is rethrown as is. */
  signal?: AbortSignal;
  /**
   * Send through this `fetch` instead of `node:http` (tests, proxies). Not global `fetch` by default: per call,
   * undici's fetch costs a web stream for the answer, a `Headers` and a `Response`; at hundreds of sends a second that
   * was about a fifth of the dispatch worker's CPU time (docs/benchmarks.md, "Pipeline").
   * @defaultValue undefined: `node:http` / `node:https`
   */
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
/** How long a kept-alive socket may stay idle before the agent closes it, ms (undici's default keep-alive is 4 s). */
const IDLE_SOCKET_MS = 4000;
/** Secrets shorter than this are not searched for in answers (no real token is this short). */
const MIN_SECRET_CHARS = 8;

/**
 * Sends one POST (or GET, `method`) and returns the answer, whatever its status. Failures:
 *
 * - the timeout (`timeoutMs`) → `ProviderTimeout`;
 * - a connection failure (refused, reset, DNS) → `ProviderUnavailable`;
 * - the caller's own abort (shutdown) → the abort reason rethrown as is.
 *
 * The timeout and the caller's signal stop the call through one {@link CallStop} whose timer and listener are removed
 * when the call ends: `node:http` destroys its request, a caller's `fetch` gets a signal. Not
 * `AbortSignal.any([signal, AbortSignal.timeout(ms)])`: on Node 20 (measured on 20.20.2) every combined signal stays
 * in the long-lived parent's dependant set (nodejs/node#55351, #54614), so a worker passing one shutdown signal to
 * every send would grow without bound (about 300,000 entries after 300,000 calls).
 */
export function httpPost(call: HttpCall): Promise<HttpResponse> {
  // With tracing off, no span's attributes (nor the URL parsed for its host) are made for nothing.
  if (!tracingOn()) return post(call);
  // A CLIENT span by the HTTP semantic conventions: method, host and status only (never the URL: a Telegram bot
  // token and chat ids are in it).
  const method = call.method ?? 'POST';
  return inClientSpan(
    method,
    { [ATTR.httpMethod]: method, [ATTR.serverAddress]: hostOf(call.url), [ATTR.provider]: call.provider },
    () => post(call),
    (span, result) => {
      if (result.ok) setHttpStatus(span, result.value.status);
      else if (isProviderError(result.error) && result.error.upstream?.status !== undefined)
        setHttpStatus(span, result.error.upstream.status);
    },
  );
}

function hostOf(url: string): string {
  try {
    return new URL(url).hostname;
  } catch {
    return '';
  }
}

/**
 * Stops one call (its timeout, the caller's abort) in the way its transport needs, without an `AbortController` per
 * `node:http` call: the transport says how with `onStop` once it has something to stop.
 */
class CallStop {
  #stopped = false;
  #reason: unknown;
  #destroy: ((reason: unknown) => void) | undefined;

  /** `destroy` stops the transport's request with the reason; called at once when the call was stopped already. */
  onStop(destroy: (reason: unknown) => void): void {
    if (this.#stopped) destroy(this.#reason);
    else this.#destroy = destroy;
  }

  /** Stops the call (the first reason wins). */
  stop(reason: unknown): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#reason = reason;
    this.#destroy?.(reason);
  }
}

async function post(call: HttpCall): Promise<HttpResponse> {
  const caller = call.signal;
  if (caller?.aborted) throw caller.reason;
  const stop = new CallStop();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    stop.stop(new DOMException(`timed out after ${call.timeoutMs} ms`, 'TimeoutError'));
  }, call.timeoutMs);
  const onCallerAbort = (): void => stop.stop(caller?.reason);
  caller?.addEventListener('abort', onCallerAbort, { once: true });
  const secrets = call.secrets ?? [];
  try {
    const answer = call.fetch === undefined ? await nodePost(call, stop) : await fetchPost(call, call.fetch, stop);
    let text: string;
    try {
      text = await answer.text();
    } catch (err) {
      // A 2xx status line means the provider took the request: a body lost after it (timeout, reset) must not turn
      // into a retryable failure, or the message is sent again. The mapping makes an empty 2xx body
      // ProviderAnswerUnreadable (maybe sent, not retried).
      if (answer.status >= 200 && answer.status < 300 && !caller?.aborted)
        return scrubSecrets({ status: answer.status, headers: answer.headers, body: '' }, secrets);
      throw err;
    }
    return scrubSecrets(
      { status: answer.status, headers: answer.headers, body: parseBody(text, answer.headers['content-type']) },
      secrets,
    );
  } catch (err) {
    // The caller's abort wins, even over a timeout that fired just before: a stop is not a provider fault.
    if (caller?.aborted) throw caller.reason;
    const cause = safeCause(err, secrets);
    if (timedOut) {
      throw new ProviderError('ProviderTimeout', `${call.provider} did not answer within ${call.timeoutMs} ms`, {
        cause,
      });
    }
    throw new ProviderError('ProviderUnavailable', `${call.provider} could not be reached: ${cause.message}`, {
      cause,
    });
  } finally {
    clearTimeout(timer);
    caller?.removeEventListener('abort', onCallerAbort);
  }
}

/** One adapter call: the request ({@link HttpCall}), how its answer is mapped, and the debug line it logs. */
export interface MappedCall<T> extends HttpCall {
  /** Turns the answer into the result, or into the `ProviderError` to throw (the adapter's mapping function). */
  map(response: HttpResponse): T | ProviderError;
  /** Where the debug line goes (the adapter's logger). */
  log: Logger;
  /** The debug line's message. @defaultValue 'provider answered' */
  message?: string;
  /** Fields of the debug line besides status, duration and outcome (never secrets, URLs or full numbers). @defaultValue none */
  fields?: Record<string, unknown>;
  /** The debug line's `outcome` for a result (an error's is its code). @defaultValue 'accepted' */
  outcome?: (result: T) => string;
}

/**
 * What every adapter call does around its own request and mapping: {@link httpPost}, the answer mapped, one debug
 * line (`status`, the call's `fields`, `durationMs`, `outcome`), and the mapped `ProviderError` thrown or the result
 * returned. A call that fails before an answer (timeout, unreachable, abort) throws as `httpPost` does, unlogged.
 */
export async function postAndMap<T>(call: MappedCall<T>): Promise<T> {
  const started = Date.now();
  const response = await httpPost(call);
  const result = call.map(response);
  if (call.log.isLevelEnabled('debug')) {
    const outcome = isProviderError(result) ? result.code : (call.outcome?.(result) ?? 'accepted');
    call.log.debug(call.message ?? 'provider answered', {
      status: response.status,
      ...call.fields,
      durationMs: Date.now() - started,
      outcome,
    });
  }
  if (isProviderError(result)) throw result;
  return result;
}

/** The status line and headers of an answer; `text()` reads its body (rejects when the body is lost). */
interface RawAnswer {
  status: number;
  /** Lower-case names; repeated headers joined with ', '. */
  headers: Record<string, string>;
  text(): Promise<string>;
}

/**
 * Keep-alive agents by origin (`http://host:port`), kept for the life of the process: calls to one provider reuse
 * their connections; idle sockets close after {@link IDLE_SOCKET_MS}.
 */
const agents = new Map<string, http.Agent>();

function agentFor(url: URL): http.Agent {
  let agent = agents.get(url.origin);
  if (agent === undefined) {
    const options: http.AgentOptions = { keepAlive: true, timeout: IDLE_SOCKET_MS, scheduling: 'lifo' };
    agent = url.protocol === 'https:' ? new https.Agent(options) : new http.Agent(options);
    agents.set(url.origin, agent);
  }
  return agent;
}

/** Where requests to one URL go: its `request` function and options (host, port, path, agent). */
interface Target {
  request: typeof http.request;
  options: http.RequestOptions;
}

/** URLs parsed once ({@link targetOf}); forgotten all at once past {@link TARGETS_KEPT} (lookups vary their query). */
const targets = new Map<string, Target>();
const TARGETS_KEPT = 64;

/** The request target of `rawUrl` (an adapter calls the same few URLs: each is parsed once, not per call). */
function targetOf(rawUrl: string): Target {
  let target = targets.get(rawUrl);
  if (target === undefined) {
    const url = new URL(rawUrl);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`unsupported protocol ${url.protocol}`);
    target = {
      request: url.protocol === 'https:' ? https.request : http.request,
      options: { ...urlToHttpOptions(url), agent: agentFor(url) },
    };
    if (targets.size >= TARGETS_KEPT) targets.clear();
    targets.set(rawUrl, target);
  }
  return target;
}

/** One POST (or GET) through `node:http` / `node:https`; `stop` destroys the request (and the answer's body). */
function nodePost(call: HttpCall, stop: CallStop): Promise<RawAnswer> {
  return new Promise<RawAnswer>((resolve, reject) => {
    const { request, options } = targetOf(call.url);
    const get = call.method === 'GET';
    const headers = get
      ? call.headers
      : { ...call.headers, 'content-length': String(Buffer.byteLength(call.body, 'utf8')) };
    const req = request({ ...options, method: get ? 'GET' : 'POST', headers });
    // As a request `signal` would, without an AbortSignal and its listener per call.
    stop.onStop((reason) => req.destroy(reason instanceof Error ? reason : new Error(String(reason))));
    req.once('error', reject);
    req.once('response', (res) => {
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(res.headers)) {
        if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : value;
      }
      const text = new Promise<string>((resolveText, rejectText) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.once('end', () => resolveText(Buffer.concat(chunks).toString('utf8')));
        res.once('error', rejectText);
        // Destroyed (abort, timeout, reset) before its end: 'close' without 'end'.
        res.once('close', () => {
          if (!res.complete) rejectText(new Error('the connection closed before the answer ended'));
        });
      });
      resolve({ status: res.statusCode ?? 0, headers, text: () => text });
    });
    if (get) req.end();
    else req.end(call.body, 'utf8');
  });
}

/** A binary GET ({@link httpGetBytes}). */
export interface BytesCall {
  provider: ProviderType;
  url: string;
  headers: Record<string, string>;
  timeoutMs: number;
  /** More bytes than this (by `Content-Length`, or as they arrive) → `ProviderRejected`, the download stopped. */
  maxBytes: number;
  signal?: AbortSignal;
  /** Values that must never appear in an error. */
  secrets?: readonly string[];
}

/** A binary answer: any status; the body read whole (only for a 2xx: other bodies are read as text, at most 4 KiB). */
export interface BytesResponse {
  status: number;
  /** Lower-case names. */
  headers: Record<string, string>;
  body: Buffer;
}

/**
 * One GET whose answer is bytes (a media download), through `node:http`/`node:https` on the keep-alive agents, with
 * `httpPost`'s timeout, abort and failure mapping; redirects are returned, never followed (the caller decides what
 * goes to the next origin). A 2xx body longer than `maxBytes` stops the download: `ProviderRejected` naming the limit.
 */
export async function httpGetBytes(call: BytesCall): Promise<BytesResponse> {
  const caller = call.signal;
  if (caller?.aborted) throw caller.reason;
  const controller = new AbortController();
  let timedOut = false;
  let tooLarge: ProviderError | undefined;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort(new DOMException(`timed out after ${call.timeoutMs} ms`, 'TimeoutError'));
  }, call.timeoutMs);
  const onCallerAbort = (): void => controller.abort(caller?.reason);
  caller?.addEventListener('abort', onCallerAbort, { once: true });
  const secrets = call.secrets ?? [];
  try {
    return await new Promise<BytesResponse>((resolve, reject) => {
      const url = new URL(call.url);
      if (url.protocol !== 'http:' && url.protocol !== 'https:')
        throw new Error(`unsupported protocol ${url.protocol}`);
      const request = url.protocol === 'https:' ? https.request : http.request;
      const req = request(url, {
        method: 'GET',
        agent: agentFor(url),
        headers: call.headers,
        signal: controller.signal,
      });
      req.once('error', reject);
      req.once('response', (res) => {
        const headers: Record<string, string> = {};
        for (const [name, value] of Object.entries(res.headers))
          if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : value;
        const status = res.statusCode ?? 0;
        const ok = status >= 200 && status < 300;
        const limit = ok ? call.maxBytes : 4096;
        const over = (): ProviderError =>
          new ProviderError(
            'ProviderRejected',
            `${call.provider} media is larger than the limit of ${call.maxBytes} bytes`,
            { context: { maxBytes: call.maxBytes } },
          );
        const declared = Number(headers['content-length']);
        if (ok && Number.isFinite(declared) && declared > limit) {
          tooLarge = over();
          res.destroy();
          reject(tooLarge);
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > limit) {
            if (ok) {
              tooLarge = over();
              res.destroy();
              reject(tooLarge);
            }
            return;
          }
          chunks.push(chunk);
        });
        res.once('end', () => resolve({ status, headers, body: Buffer.concat(chunks) }));
        res.once('error', reject);
        res.once('close', () => {
          if (!res.complete) reject(new Error('the connection closed before the answer ended'));
        });
      });
      req.end();
    });
  } catch (err) {
    if (caller?.aborted) throw caller.reason;
    if (tooLarge !== undefined) throw tooLarge;
    const cause = safeCause(err, secrets);
    if (timedOut)
      throw new ProviderError('ProviderTimeout', `${call.provider} media did not arrive within ${call.timeoutMs} ms`, {
        cause,
      });
    throw new ProviderError('ProviderUnavailable', `${call.provider} media could not be fetched: ${cause.message}`, {
      cause,
    });
  } finally {
    clearTimeout(timer);
    caller?.removeEventListener('abort', onCallerAbort);
  }
}

/** One POST through a caller's `fetch`. */
async function fetchPost(call: HttpCall, doFetch: FetchLike, stop: CallStop): Promise<RawAnswer> {
  const controller = new AbortController();
  const signal = controller.signal;
  stop.onStop((reason) => controller.abort(reason));
  // redirect 'manual': a 3xx is returned (and mapped as a bad response), never followed with the credentials.
  const get = call.method === 'GET';
  const response = await doFetch(call.url, {
    method: get ? 'GET' : 'POST',
    headers: call.headers,
    ...(get ? {} : { body: call.body }),
    signal,
    redirect: 'manual',
  });
  const headers: Record<string, string> = {};
  response.headers.forEach((value, name) => {
    headers[name.toLowerCase()] = value;
  });
  return { status: response.status, headers, text: () => response.text() };
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

/**
 * `value` with every occurrence of each secret, in any string (keys included), replaced by `[REDACTED]`: a copy of
 * each object or array on the way to a string that held one; `value` itself, untouched, when none holds one (every
 * answer of a working provider: copying each was a few per cent of the dispatch worker's CPU time).
 */
export function scrubSecrets<T>(value: T, secrets: readonly string[]): T {
  // A real credential is long; scrubbing a very short one would mangle every answer that contains its characters.
  const live = secrets.filter((s) => s.length >= MIN_SECRET_CHARS);
  if (live.length === 0) return value;
  const scrub = (v: unknown, depth: number): unknown => {
    // includes() first: splitting every string of every answer cost about 5 % of the dispatch worker's CPU time.
    if (typeof v === 'string')
      return live.reduce((s, secret) => (s.includes(secret) ? s.split(secret).join(REDACTED) : s), v);
    if (typeof v !== 'object' || v === null || depth > 16) return v;
    if (Array.isArray(v)) {
      let copy: unknown[] | undefined;
      v.forEach((x, i) => {
        const scrubbed = scrub(x, depth + 1);
        if (scrubbed !== x) (copy ??= [...v])[i] = scrubbed;
      });
      return copy ?? v;
    }
    const entries = Object.entries(v);
    let copy: Record<string, unknown> | undefined;
    entries.forEach(([k, x], i) => {
      const key = scrub(k, depth + 1) as string;
      const scrubbed = scrub(x, depth + 1);
      // The first change copies the entries before it; every entry after it goes into the copy.
      if (copy === undefined && (key !== k || scrubbed !== x)) copy = Object.fromEntries(entries.slice(0, i));
      if (copy !== undefined) copy[key] = scrubbed;
    });
    return copy ?? v;
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
