/**
 * What the dispatch stage does after a failed provider call, decided in one place from the `ProviderError` code
 * (`decide`, never from a message string: the table is on `SendDecision`), and the retry policies that carry the
 * decision out (cockatiel).
 *
 * Invariants: a call whose answer was lost (`mayHaveSent`) is not made again blind where the provider can be asked;
 * a 2xx answer the adapter cannot read is never retried; the two kinds of retry are bounded separately, 429s around
 * transient failures (a 429 starts a fresh transient budget), so a message makes at most
 * `rateLimitAttempts × attempts` calls.
 */
import { ConstantBackoff, ExponentialBackoff, handleWhen, retry, wrap, type IPolicy } from 'cockatiel';
import { isProviderError, type ProviderError } from '../../errors.js';
import { maskDigits, redactString } from '../../log.js';
import { intOption } from '../../options.js';
import { resolveRetry, type RetryOptions } from '../../retry.js';
import { LOST_ANSWER_LOOKUP_DELAY_MS } from '../assumptions.js';

/**
 * | code                                                     | decision       | may have it | what happens                                      |
 * |----------------------------------------------------------|----------------|-------------|---------------------------------------------------|
 * | ProviderRateLimited                                      | `rateLimited`  | no          | pause the sender for `retryAfterMs` (at most `maxThrottleWaitMs`), call again |
 * | ProviderUnavailable (5xx, connection refused/reset)      | `transient`    | yes         | look it up where the provider can be asked; call again after an exponential backoff with jitter |
 * | ProviderTimeout                                          | `transient`    | yes         | as above                                          |
 * | ProviderBadResponse (a proxy's 502 page, a redirect)     | `transient`    | yes         | as above                                          |
 * | ProviderAnswerUnreadable (2xx, not the documented shape) | `unconfirmed`  | yes         | dead-letter with the provider's answer, never retried |
 * | ProviderRejected                                         | `rejected`     | no          | an outcome: the channel's failure response type    |
 * | ProviderUnauthorized                                     | `unauthorized` | no          | dead-letter, error log (configuration problem)    |
 * | anything that is not a ProviderError                     | `unexpected`   | no          | dead-letter (an adapter bug: nothing to retry)    |
 *
 * `unconfirmed`: the provider answered 2xx (it took the request) with an answer the adapter cannot read, so the
 * message may well have been sent; calling again could send it twice, and recording it as a failure could be wrong.
 * A person checks with the provider (the dead letter carries its answer).
 */
export type SendDecision = 'rateLimited' | 'transient' | 'unconfirmed' | 'rejected' | 'unauthorized' | 'unexpected';

/** The one place a provider failure becomes a decision. */
export function decide(error: unknown): SendDecision {
  if (!isProviderError(error)) return 'unexpected';
  switch (error.code) {
    case 'ProviderRateLimited':
      return 'rateLimited';
    case 'ProviderUnavailable':
    case 'ProviderTimeout':
    case 'ProviderBadResponse':
      return 'transient';
    case 'ProviderAnswerUnreadable':
      return 'unconfirmed';
    case 'ProviderRejected':
      return 'rejected';
    case 'ProviderUnauthorized':
      return 'unauthorized';
  }
}

/**
 * Whether the provider may have created the message although the call failed (its answer was lost): the "may have
 * it" column of `SendDecision`. Only for `transient` failures does it change what happens (the others are never
 * called again).
 *
 * A timeout or a connection lost after the request was written obviously; a 5xx too, because nothing says a provider
 * answers 5xx only before it creates anything (a gateway's 502/504 in front of a backend that went on, Twilio's 500
 * after the write), and the worst plausible reading is that it did; a non-2xx answer that is not the provider's (a
 * proxy's page) the same. A refused connection cannot have created anything, but the adapters give it the same code
 * as a reset one (`ProviderUnavailable`), so it costs one needless lookup. Where the provider can be asked (Twilio's
 * Messages list, `Provider.findSent`), dispatch looks the message up before it calls again (see `sendMessage`); a
 * contract endpoint is called again with the same `RequestId` (safe by the contract); Telegram cannot be asked, so a
 * lost answer may repeat there.
 */
export function mayHaveSent(error: unknown): boolean {
  if (!isProviderError(error)) return false;
  switch (error.code) {
    case 'ProviderUnavailable':
    case 'ProviderTimeout':
    case 'ProviderBadResponse':
    case 'ProviderAnswerUnreadable':
      return true;
    case 'ProviderRateLimited':
    case 'ProviderRejected':
    case 'ProviderUnauthorized':
      return false;
  }
}

/**
 * The retries of provider calls. `attempts`: calls per message for transient failures (5xx, timeout, a non-2xx bad
 * answer), the first included (default 5); `initialDelayMs` (default 500): the first backoff delay, later ones growing
 * exponentially with decorrelated jitter, to at most `maxDelayMs` (default 10000).
 */
export interface SendRetryOptions extends RetryOptions {
  /** Calls per message for 429s, the first included (each one after the sender's pause). @defaultValue 11 */
  rateLimitAttempts?: number;
  /** The pause after a 429 that names no `Retry-After`. @defaultValue 1000 */
  defaultThrottleWaitMs?: number;
  /**
   * The longest pause one 429 causes: a longer `Retry-After` (Telegram's `retry_after` can be minutes) pauses the sender
   * this long; what waits past the session lock's deadline meanwhile is handed back, and a pause still running when
   * the session is released goes to the next holder with the session state. @defaultValue 60000
   */
  maxThrottleWaitMs?: number;
  /**
   * After a call whose answer was lost (`mayHaveSent`), on a provider that can be asked: the wait from the call's end
   * to the lookup of its message. A request the provider was still working on when the relay gave up (a timeout) is
   * created later than the relay's end of the call, and a list may show a message only some time after it was
   * created (UNVERIFIED for Twilio: see there); a lookup made at once could miss it and the call
   * made again would be a duplicate. @defaultValue {@link LOST_ANSWER_LOOKUP_DELAY_MS} (5000)
   */
  lostAnswerLookupDelayMs?: number;
}

export type ResolvedSendRetryOptions = Required<SendRetryOptions>;

export const SEND_RETRY_DEFAULTS: ResolvedSendRetryOptions = {
  attempts: 5,
  initialDelayMs: 500,
  maxDelayMs: 10_000,
  rateLimitAttempts: 11,
  defaultThrottleWaitMs: 1000,
  maxThrottleWaitMs: 60_000,
  lostAnswerLookupDelayMs: LOST_ANSWER_LOOKUP_DELAY_MS,
};

/** Validates once; a bad value throws a `TypeError` naming it. */
export function resolveSendRetryOptions(options: SendRetryOptions = {}): ResolvedSendRetryOptions {
  const resolved = {
    ...SEND_RETRY_DEFAULTS,
    ...options,
    ...resolveRetry('DispatchStage', 'retry', options, SEND_RETRY_DEFAULTS, true),
  };
  for (const [name, min] of [
    ['rateLimitAttempts', 1],
    ['defaultThrottleWaitMs', 1],
    ['maxThrottleWaitMs', 1],
    ['lostAnswerLookupDelayMs', 0],
  ] as const) {
    resolved[name] = intOption('DispatchStage', `retry.${name}`, resolved[name], SEND_RETRY_DEFAULTS[name], min);
  }
  return resolved;
}

/**
 * The retry policy of one provider call: 429s (outer, no backoff: the sender's pause is the wait) around transient
 * failures (inner, exponential backoff with decorrelated jitter). The function it runs must make one limited
 * provider call per invocation. Stops retrying once the signal given to `execute` has fired. Timers are
 * unreferenced, so a backoff abandoned on shutdown does not keep the process alive.
 *
 * `onBackoff(delayMs)` is told the delay of each transient backoff as it begins (before the wait), so that a caller
 * with a deadline can give up at once rather than wait past it: make one policy per message then (cheap); without
 * it, one policy serves every message.
 */
export function createSendPolicy(options: ResolvedSendRetryOptions, onBackoff?: (delayMs: number) => void): IPolicy {
  const rateLimited = retry(
    handleWhen((err) => decide(err) === 'rateLimited'),
    { maxAttempts: options.rateLimitAttempts - 1, backoff: new ConstantBackoff(0) },
  ).dangerouslyUnref();
  const transient = retry(
    handleWhen((err) => decide(err) === 'transient'),
    {
      maxAttempts: options.attempts - 1,
      backoff: new ExponentialBackoff({ initialDelay: options.initialDelayMs, maxDelay: options.maxDelayMs }),
    },
  ).dangerouslyUnref();
  if (onBackoff !== undefined) transient.onRetry(({ delay }) => onBackoff(delay));
  return wrap(rateLimited, transient);
}

/** How long to pause the sender after a 429: the provider's `Retry-After` (or the fallback when it names none). */
export function retryAfterMs(error: ProviderError, fallbackMs: number): number {
  const ms = error.retryAfterMs;
  return typeof ms === 'number' && Number.isFinite(ms) && ms > 0 ? ms : fallbackMs;
}

/** The pause a 429 causes: `retryAfterMs`, at most `maxThrottleWaitMs`; `askedMs` is what the provider asked for. */
export function rateLimitPause(
  error: ProviderError,
  options: Pick<ResolvedSendRetryOptions, 'defaultThrottleWaitMs' | 'maxThrottleWaitMs'>,
): { pauseMs: number; askedMs: number } {
  const askedMs = retryAfterMs(error, options.defaultThrottleWaitMs);
  return { pauseMs: Math.min(askedMs, options.maxThrottleWaitMs), askedMs };
}

/** Removes the recipient (and anything shaped like a phone number, e-mail or secret) from provider text. */
export function scrub(text: string, recipient: string): string {
  const shown = /\d/.test(recipient) ? maskDigits(recipient) : '***';
  const masked = recipient.length > 0 ? text.split(recipient).join(shown) : text;
  return redactString(masked);
}

/** The provider's error for a person: code, HTTP status, the provider's own code and message, without the recipient. */
export function describeProviderError(error: unknown, recipient: string): string {
  if (!isProviderError(error)) {
    return scrub(error instanceof Error ? `${error.name}: ${error.message}` : String(error), recipient);
  }
  const parts: string[] = [error.code];
  if (error.upstream?.status !== undefined) parts.push(`status ${error.upstream.status}`);
  if (error.upstream?.code !== undefined) parts.push(`upstream code ${String(error.upstream.code)}`);
  if (error.retryAfterMs !== undefined) parts.push(`retry after ${error.retryAfterMs} ms`);
  return scrub(`${parts.join(', ')}: ${error.message}`, recipient);
}

/** The detail of a failure interaction: the provider's own code when it has one, and its message. */
export function failureDetail(error: unknown, recipient: string): { code: string | number; message: string } {
  if (!isProviderError(error)) return { code: 'unexpected', message: describeProviderError(error, recipient) };
  return { code: error.upstream?.code ?? error.code, message: scrub(error.message, recipient) };
}

/** The longest rendering of a provider's answer in a dead-letter description. */
export const ANSWER_MAX_CHARS = 2000;

/**
 * The provider's answer for a person (status, content type and body, at most `ANSWER_MAX_CHARS` of body), without the
 * recipient or anything shaped like a secret; '(no answer)' when the error carries none.
 */
export function describeProviderAnswer(error: unknown, recipient: string): string {
  if (!isProviderError(error) || error.upstream === undefined) return '(no answer)';
  const { status, headers, body } = error.upstream;
  const raw = typeof body === 'string' ? body : (JSON.stringify(body) ?? '');
  const text = raw.length > ANSWER_MAX_CHARS ? `${raw.slice(0, ANSWER_MAX_CHARS)}… (${raw.length} characters)` : raw;
  const type = headers?.['content-type'];
  return scrub(
    `HTTP ${status ?? '?'}${type === undefined ? '' : ` (${type})`}, body: ${text === '' ? '(empty)' : text}`,
    recipient,
  );
}
