/**
 * One mapping from whatever dynamics-web-api 2.5.0 (or the Node transport under it, or the token source) throws to a
 * `DataverseError` with a closed code, for every Dataverse call of the relay.
 *
 * Invariants: an answer's code follows from its HTTP status (`codeForStatus`), a failure without one from its kind
 * (a timeout, a missing token, "not reached"), never from message text; Dataverse's status, headers, code and message
 * are kept as `upstream`, and a 429's `Retry-After` as `retryAfterMs`. The shapes read, captured from the Dataverse
 * emulator through the real client (fixtures in test/unit/dataverse/fixtures/errors/), are listed on
 * `toDataverseError`.
 */
import { parseRetryAfter } from '../http/index.js';
import { DataverseError, isDataverseError, type CodeOf, type Upstream } from '../errors.js';

/** Used when a 429 carries no usable `Retry-After`. */
export const DEFAULT_RETRY_AFTER_MS = 1000;

type Loose = Record<string, unknown>;

/** What the caller knows about the failed call, for the message and the timeout case. */
export interface ErrorContext {
  /** What was being done (`retrieve contacts`, `$batch of 100 interactions`), for the message. */
  operation?: string;
  /** The relay's own timeout fired for this call: whatever the transport says, it is a `DataverseTimeout`. */
  timedOut?: boolean;
  /** The timeout in force, for the message. */
  timeoutMs?: number;
}

const NETWORK_TIMEOUT_CODES = new Set([
  'ETIMEDOUT',
  'ESOCKETTIMEDOUT',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
]);

function headersOf(value: unknown): Record<string, string> | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value as Loose)) {
    if (v === undefined || v === null) continue;
    out[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : String(v);
  }
  return out;
}

/** `Retry-After` in ms (delta-seconds or an HTTP date); the one reading for Dataverse and the providers. */
export { parseRetryAfter };

function codeForStatus(status: number): CodeOf<'dataverse'> {
  if (status === 429) return 'DataverseThrottled';
  if (status === 401 || status === 403) return 'DataverseUnauthorized';
  if (status === 404) return 'DataverseNotFound';
  if (status === 412) return 'DataversePreconditionFailed';
  if (status === 408) return 'DataverseTimeout';
  if (status >= 500) return 'DataverseUnavailable';
  return 'DataverseBadRequest';
}

function prefix(ctx: ErrorContext): string {
  return ctx.operation === undefined ? 'Dataverse' : `Dataverse (${ctx.operation})`;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/**
 * Maps anything thrown by a Dataverse call to a `DataverseError`, keeping Dataverse's status, headers, body, code
 * and message. A `DataverseError` is returned as it is. The shapes it reads:
 *
 * - a plain call that failed: an `Error` with `status`, `statusMessage`, `headers` (lower-case names), and
 *   Dataverse's `{"error": {...}}` body merged into it: `code` (`0x80040217`), `message`;
 * - a failed part of a `$batch` (continue-on-error): an `Error` with `status`, `statusText`, `headers` of the part
 *   and Dataverse's body under `error` (`err.error.code`, `err.error.message`); `err.message` is empty;
 * - a `$batch` without continue-on-error: the client rejects with the ARRAY of parts parsed so far;
 * - an aborted request: `AbortError` (`code` `ABORT_ERR`) whose `cause` is the signal's reason (`TimeoutError`
 *   for `AbortSignal.timeout`);
 * - a connection failure: a Node system error without `status` (`ECONNREFUSED`, `ECONNRESET` …); the client's own
 *   `timeout` option ends as `ECONNRESET` "socket hang up", which is why the relay times calls out with a signal;
 * - the token source: @azure/identity's `CredentialUnavailableError` / `AuthenticationError` (the relay's source
 *   throws rather than return an empty token, so dynamics-web-api's "Token is empty" never happens);
 * - TLS failures: a string `code` without status (`CERT_HAS_EXPIRED` …), like connection failures.
 */
export function toDataverseError(error: unknown, ctx: ErrorContext = {}): DataverseError {
  if (isDataverseError(error)) return error;
  // $batch without continue-on-error: the parts parsed so far; the failure is the first Error among them.
  if (Array.isArray(error)) {
    const failed = error.find(
      (p) => p instanceof Error || (typeof p === 'object' && p !== null && typeof (p as Loose)['status'] === 'number'),
    );
    return toDataverseError(failed ?? new Error('the $batch failed without a failed part'), ctx);
  }
  const e = (typeof error === 'object' && error !== null ? error : { message: String(error) }) as Loose;
  const name = str(e['name']) ?? '';
  const cause = e['cause'] as Loose | undefined;

  if (
    ctx.timedOut === true ||
    name === 'TimeoutError' ||
    (name === 'AbortError' && cause?.['name'] === 'TimeoutError')
  ) {
    const within = ctx.timeoutMs === undefined ? '' : ` within ${ctx.timeoutMs} ms`;
    return new DataverseError('DataverseTimeout', `${prefix(ctx)}: no answer${within}`, { cause: error });
  }
  if (name === 'AbortError') {
    return new DataverseError(
      'DataverseUnavailable',
      `${prefix(ctx)}: the call was aborted before Dataverse answered`,
      { cause: error },
    );
  }

  const status = typeof e['status'] === 'number' ? e['status'] : undefined;
  if (status !== undefined) {
    // Batch parts keep Dataverse's body under `error`; plain calls have it merged into the Error.
    const body = (typeof e['error'] === 'object' && e['error'] !== null ? e['error'] : undefined) as Loose | undefined;
    const code = str(body?.['code']) ?? str(e['code']);
    const dvMessage =
      str(body?.['message']) ??
      str(e['message']) ??
      str(e['statusMessage']) ??
      str(e['statusText']) ??
      `HTTP ${status}`;
    const headers = headersOf(e['headers']);
    const upstream: Upstream = {
      status,
      body: { error: { ...(code === undefined ? {} : { code }), message: dvMessage } },
    };
    if (headers !== undefined) upstream.headers = headers;
    if (code !== undefined) upstream.code = code;
    const mapped = codeForStatus(status);
    const message = `${prefix(ctx)} answered ${status}${code === undefined ? '' : ` ${code}`}: ${dvMessage}`;
    if (mapped === 'DataverseThrottled') {
      const retryAfterMs = parseRetryAfter(headers?.['retry-after']) ?? DEFAULT_RETRY_AFTER_MS;
      return new DataverseError(mapped, message, { cause: error, upstream, retryAfterMs });
    }
    return new DataverseError(mapped, message, { cause: error, upstream });
  }

  const message = str(e['message']) ?? 'unknown error';
  const sysCode = str(e['code']);
  if (sysCode !== undefined && NETWORK_TIMEOUT_CODES.has(sysCode)) {
    return new DataverseError('DataverseTimeout', `${prefix(ctx)}: ${message}`, {
      cause: error,
      upstream: { code: sysCode },
    });
  }
  // The relay's token source never hands dynamics-web-api an empty token (it throws one of these instead).
  if (
    name === 'CredentialUnavailableError' ||
    name === 'AuthenticationError' ||
    name === 'AuthenticationRequiredError'
  ) {
    return new DataverseError('DataverseUnauthorized', `${prefix(ctx)}: no access token: ${message}`, { cause: error });
  }
  // Anything from the transport carries a string code and no status: connection refused/reset, DNS (E…), and TLS
  // (CERT_HAS_EXPIRED, UNABLE_TO_VERIFY_LEAF_SIGNATURE …). All mean "not reached": retry, never dead-letter.
  if (sysCode !== undefined) {
    return new DataverseError('DataverseUnavailable', `${prefix(ctx)}: cannot reach Dataverse: ${message}`, {
      cause: error,
      upstream: { code: sysCode },
    });
  }
  // What is left is thrown before any request: dynamics-web-api's parameter checks, a programming error.
  return new DataverseError('DataverseBadRequest', `${prefix(ctx)}: the request was not sent: ${message}`, {
    cause: error,
  });
}
