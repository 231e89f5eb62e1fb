/**
 * What the mapping functions share: each turns one `HttpResponse` into a `SendResult` or a `ProviderError`
 * (returned, not thrown, so that tables of fixtures can assert on either), keeping the upstream answer.
 *
 * An answer a mapping cannot read is `ProviderBadResponse` (retryable: a proxy's HTML 502, a redirect), except
 * with a 2xx status: then the provider took the request and may have sent the message, so `failure` makes it
 * `ProviderAnswerUnreadable` (not retryable: dead-lettered with the answer for a person to check).
 */
import { ProviderError, type CodeOf } from '../errors.js';
import type { HttpResponse } from './http.js';
import type { SendResult } from './provider.js';

/** A mapped answer: accepted, or the error the adapter throws. */
export type SendOutcome = SendResult | ProviderError;

export type ProviderErrorCode = CodeOf<'provider'>;

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A `ProviderError` that keeps the whole answer (status, headers, body) and the provider's own code. */
export function failure(
  code: ProviderErrorCode,
  message: string,
  response: HttpResponse,
  extra: { upstreamCode?: string | number; retryAfterMs?: number } = {},
): ProviderError {
  const taken = response.status >= 200 && response.status < 300;
  return new ProviderError(code === 'ProviderBadResponse' && taken ? 'ProviderAnswerUnreadable' : code, message, {
    upstream: {
      status: response.status,
      headers: response.headers,
      body: response.body,
      ...(extra.upstreamCode === undefined ? {} : { code: extra.upstreamCode }),
    },
    ...(extra.retryAfterMs === undefined ? {} : { retryAfterMs: extra.retryAfterMs }),
  });
}

/** A short, single-line rendering of a body for an error message. */
export function bodySnippet(body: unknown, max = 200): string {
  const text = typeof body === 'string' ? body : (JSON.stringify(body) ?? '');
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > max ? `${line.slice(0, max)}…` : line || '(empty)';
}
