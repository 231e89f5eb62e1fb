/**
 * Twilio's answer to `POST /2010-04-01/Accounts/{AccountSid}/Messages.json`, mapped to a send outcome.
 *
 * Success is `201` with the Message resource (`sid` `SM…`/`MM…`, `status` `queued` or `accepted` …). An error is
 * `{"code": 21211, "message": "…", "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400}`: the
 * error code decides first (table below), then the HTTP status. Sources: twilio.com/docs/api/errors/<code>,
 * twilio.com/docs/usage/twilios-response, ../shared/reference/providers-and-limits.md.
 */
import { parseRetryAfter, type HttpResponse } from '../http.js';
import type { ProviderError } from '../../errors.js';
import { bodySnippet, failure, isRecord, type ProviderErrorCode, type SendOutcome } from '../mapping.js';

/**
 * How long to pause when Twilio says 429 / 20429 without a `Retry-After`: 20429 is "never processed and always safe
 * to retry", and it means too many *concurrent* requests, which clear within about a request's duration.
 */
export const TWILIO_DEFAULT_RETRY_AFTER_MS = 1000;

/**
 * How long to pause a sender whose Twilio queue is full (21611), when Twilio gives no `Retry-After`. The queue
 * holds hours of traffic at the sender's MPS; sending again at once only refills it, so the pause is long enough
 * for it to drain by a useful amount (30 s at 1 MPS frees 30 places) and short next to the 10 h queue validity.
 */
export const TWILIO_QUEUE_FULL_RETRY_AFTER_MS = 30_000;

interface CodeRule {
  code: ProviderErrorCode;
  reason: string;
  /** For rate-limited codes: the pause when there is no `Retry-After`. */
  defaultRetryAfterMs?: number;
}

/**
 * Twilio error codes returned when creating a message, and what each means for the relay. Codes not listed fall
 * back to the HTTP status. Delivery failures (30xxx) come later, through status callbacks, not here.
 */
export const TWILIO_ERROR_CODES: Readonly<Record<number, CodeRule>> = {
  // Throughput: retry after a pause.
  20429: {
    code: 'ProviderRateLimited',
    reason: 'too many concurrent requests',
    defaultRetryAfterMs: TWILIO_DEFAULT_RETRY_AFTER_MS,
  },
  21611: {
    code: 'ProviderRateLimited',
    reason: "the sender's message queue is full",
    defaultRetryAfterMs: TWILIO_QUEUE_FULL_RETRY_AFTER_MS,
  },
  // Credentials and account: configuration, every message would fail alike.
  20003: { code: 'ProviderUnauthorized', reason: 'authentication failed (account SID or auth token)' },
  20404: { code: 'ProviderUnauthorized', reason: 'the account or resource does not exist (account SID)' },
  21212: { code: 'ProviderUnauthorized', reason: "the 'From' number is not valid (sender configuration)" },
  21601: {
    code: 'ProviderUnauthorized',
    reason: "the 'From' number is not an SMS-capable number of this account (sender configuration)",
  },
  21661: { code: 'ProviderUnauthorized', reason: "the 'From' number is not SMS-capable (sender configuration)" },
  21660: {
    code: 'ProviderUnauthorized',
    reason: "the 'From' number does not belong to this account (sender configuration)",
  },
  // This recipient or this message: permanent, an outcome.
  21211: { code: 'ProviderRejected', reason: "invalid 'To' phone number" },
  21408: { code: 'ProviderRejected', reason: "sending to the 'To' number's region is not enabled" },
  21602: { code: 'ProviderRejected', reason: 'the message body is required' },
  21606: { code: 'ProviderRejected', reason: "the 'From' number cannot send to this destination" },
  21608: { code: 'ProviderRejected', reason: "the 'To' number is unverified (trial account)" },
  21610: { code: 'ProviderRejected', reason: "the 'To' number has unsubscribed (replied STOP)" },
  21612: { code: 'ProviderRejected', reason: "the 'To' number is not reachable by SMS from this sender" },
  21614: { code: 'ProviderRejected', reason: "the 'To' number is not a mobile number" },
  21617: { code: 'ProviderRejected', reason: 'the message body exceeds 1,600 characters' },
};

function errorCode(body: unknown): number | undefined {
  if (!isRecord(body)) return undefined;
  const code = body['code'];
  if (typeof code === 'number' && Number.isInteger(code)) return code;
  if (typeof code === 'string' && /^\d+$/.test(code)) return Number(code);
  return undefined;
}

function errorText(body: unknown): string {
  return isRecord(body) && typeof body['message'] === 'string' ? body['message'] : bodySnippet(body);
}

/** Maps Twilio's answer to a create-message request. */
export function mapTwilioResponse(response: HttpResponse): SendOutcome {
  const { status, body } = response;
  if (status >= 200 && status < 300) {
    if (isRecord(body) && typeof body['sid'] === 'string' && body['sid'] !== '') {
      return { providerMessageId: body['sid'], status: typeof body['status'] === 'string' ? body['status'] : 'queued' };
    }
    return failure(
      'ProviderBadResponse',
      `twilio answered ${status} without a message sid: ${bodySnippet(body)}`,
      response,
    );
  }
  const code = errorCode(body);
  const retryAfter = parseRetryAfter(response.headers['retry-after']);
  const rule = code === undefined ? undefined : TWILIO_ERROR_CODES[code];
  const detail = `${code === undefined ? '' : `${code} `}${errorText(body)}`;
  if (rule !== undefined) {
    const retryAfterMs = rule.code === 'ProviderRateLimited' ? (retryAfter ?? rule.defaultRetryAfterMs) : undefined;
    return failure(rule.code, `twilio ${status}: ${rule.reason} (${detail})`, response, {
      upstreamCode: code,
      ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
    });
  }
  const extra = code === undefined ? {} : { upstreamCode: code };
  if (status === 429) {
    return failure('ProviderRateLimited', `twilio 429: too many requests (${detail})`, response, {
      ...extra,
      retryAfterMs: retryAfter ?? TWILIO_DEFAULT_RETRY_AFTER_MS,
    });
  }
  if (status === 401 || status === 403)
    return failure('ProviderUnauthorized', `twilio ${status}: credentials refused (${detail})`, response, extra);
  if (status >= 500) return failure('ProviderUnavailable', `twilio ${status}: ${detail}`, response, extra);
  if (status >= 400) return failure('ProviderRejected', `twilio ${status}: ${detail}`, response, extra);
  return failure('ProviderBadResponse', `twilio answered ${status}: ${bodySnippet(body)}`, response, extra);
}

/**
 * A Message resource as `GET /2010-04-01/Accounts/{AccountSid}/Messages/{MessageSid}.json` answers it: the fields the
 * callbacks service checks before it believes an inbound reply (an opt-in).
 */
export interface TwilioMessage {
  sid: string;
  /** `inbound`, `outbound-api`, `outbound-call`, `outbound-reply`. */
  direction: string;
  /** E.164 sender; '' when Twilio gives null. */
  from: string;
  /** E.164 number (or Messaging Service SID) written to; '' when Twilio gives null. */
  to: string;
  body: string;
  /** `date_created` (RFC 2822, e.g. `Thu, 01 Jan 2026 12:00:00 +0000`), ms since the epoch. */
  dateCreated: number;
}

/**
 * Maps Twilio's answer to a Message fetch: 2xx → the message (a resource without a sid, direction or a readable
 * `date_created` → `ProviderAnswerUnreadable`); 404 → `undefined` (no such message in this account); any other
 * status as a send's answer ({@link mapTwilioResponse}: 429 rate limited, 5xx unavailable, 401/403 unauthorized …).
 */
export function mapTwilioFetchResponse(response: HttpResponse): TwilioMessage | undefined | ProviderError {
  const { status, body } = response;
  if (status === 404) return undefined;
  if (status >= 200 && status < 300) {
    const text = (v: unknown): string | undefined => (typeof v === 'string' ? v : v === null ? '' : undefined);
    if (isRecord(body)) {
      const sid = text(body['sid']);
      const direction = text(body['direction']);
      const created = typeof body['date_created'] === 'string' ? Date.parse(body['date_created']) : Number.NaN;
      if (sid && direction && Number.isFinite(created)) {
        return {
          sid,
          direction,
          from: text(body['from']) ?? '',
          to: text(body['to']) ?? '',
          body: text(body['body']) ?? '',
          dateCreated: created,
        };
      }
    }
    return failure(
      'ProviderBadResponse',
      `twilio answered ${status} to a message fetch without a sid, direction or date_created: ${bodySnippet(body)}`,
      response,
    );
  }
  return mapTwilioResponse(response) as ProviderError;
}

/** An outbound Message resource of a Messages list page: what a lookup matches on. */
export interface TwilioListedMessage {
  sid: string;
  status: string;
  direction: string;
  from: string;
  to: string;
  messagingServiceSid: string;
  body: string;
  /** `date_created`, ms since the epoch. */
  dateCreated: number;
}

/** One page of `GET /2010-04-01/Accounts/{AccountSid}/Messages.json`: its messages and `next_page_uri` (null on the last). */
export interface TwilioMessagePage {
  messages: TwilioListedMessage[];
  nextPageUri: string | undefined;
}

/**
 * Maps Twilio's answer to a Messages list request: 2xx → the page (`messages` an array of resources each with a `sid`,
 * `direction` and a readable `date_created`, and `next_page_uri` a string or null; anything else is
 * `ProviderAnswerUnreadable`: a lookup that cannot read the list cannot tell); any other status as a send's answer
 * ({@link mapTwilioResponse}).
 */
export function mapTwilioListResponse(response: HttpResponse): TwilioMessagePage | ProviderError {
  const { status, body } = response;
  if (status < 200 || status >= 300) return mapTwilioResponse(response) as ProviderError;
  const unreadable = (why: string): ProviderError =>
    failure(
      'ProviderBadResponse',
      `twilio answered ${status} to a Messages list with ${why}: ${bodySnippet(body)}`,
      response,
    );
  if (!isRecord(body) || !Array.isArray(body['messages'])) return unreadable('no messages array');
  const next = body['next_page_uri'];
  if (next !== null && next !== undefined && typeof next !== 'string')
    return unreadable('a next_page_uri that is not a string');
  const text = (v: unknown): string => (typeof v === 'string' ? v : '');
  const messages: TwilioListedMessage[] = [];
  for (const m of body['messages'] as unknown[]) {
    const created = isRecord(m) && typeof m['date_created'] === 'string' ? Date.parse(m['date_created']) : Number.NaN;
    if (!isRecord(m) || text(m['sid']) === '' || text(m['direction']) === '' || !Number.isFinite(created))
      return unreadable('a message without a sid, direction or date_created');
    messages.push({
      sid: text(m['sid']),
      status: text(m['status']),
      direction: text(m['direction']),
      from: text(m['from']),
      to: text(m['to']),
      messagingServiceSid: text(m['messaging_service_sid']),
      body: text(m['body']),
      dateCreated: created,
    });
  }
  return { messages, nextPageUri: typeof next === 'string' && next !== '' ? next : undefined };
}
