/**
 * Direct Line's answers read: a refusal mapped to a `DirectLineError` by its status (and `TokenExpired`), a success
 * checked against the documented shape. Pure functions over {@link Answer}s.
 */
import { DirectLineError, type CodeOf } from '../errors.js';
import { parseRetryAfter } from '../http/index.js';
import type { DirectLineActivity } from '../pipeline/index.js';
import { TOKEN_EXPIRED_CODE } from './assumptions.js';
import type { Answer } from './http.js';

/** The client's calls, named in errors and logs. */
export type Operation = 'start' | 'renew' | 'refresh' | 'post' | 'upload' | 'activities';

export const REDACTED = '[REDACTED]';

/** `text` with every secret replaced (a service or a proxy may echo the Authorization header). */
export function scrub(text: string, secrets: readonly string[]): string {
  return secrets.reduce((t, s) => (s !== '' && t.includes(s) ? t.split(s).join(REDACTED) : t), text);
}

function parse(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The `DirectLineError` for an answer that is not a 2xx (api-reference, "HTTP status codes" and "Errors": an
 * `ErrorResponse` `{"error": {"code", "message"}}`; status and `code` are stable, `message` is not):
 * 429 → throttled (`Retry-After`); 5xx and 408 → unavailable (`Retry-After` kept when sent); 403 `TokenExpired` →
 * token expired; other 403 and 401 → unauthorized; 404 → conversation gone (unauthorized for Start Conversation, see
 * assumptions.ts); 400, 413 and other 4xx → bad request; anything else (1xx, 3xx: a redirect is never followed) →
 * answer unreadable. The error's `context` holds the operation, the status and Direct Line's `code` and `message`.
 */
export function refusal(
  operation: Operation,
  answer: Answer,
  secrets: readonly string[],
  conversationId?: string,
): DirectLineError {
  const { status, headers } = answer;
  const text = scrub(answer.body.toString('utf8'), secrets);
  const body = parse(text) ?? text;
  const error = isObject(body) && isObject(body['error']) ? body['error'] : undefined;
  const code = typeof error?.['code'] === 'string' ? error['code'] : undefined;
  const message = typeof error?.['message'] === 'string' ? error['message'] : undefined;
  const context = {
    operation,
    status,
    ...(conversationId === undefined ? {} : { conversationId }),
    ...(code === undefined ? {} : { code }),
    ...(message === undefined ? {} : { message }),
  };
  const retryAfterMs = parseRetryAfter(headers['retry-after']);
  const said = `Direct Line answered ${operation} with ${status}${code === undefined ? '' : ` ${code}`}${message === undefined ? '' : `: ${message}`}`;
  const options = {
    upstream: { status, headers, body, ...(code === undefined ? {} : { code }) },
    context,
    ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
  };
  const make = (c: CodeOf<'directline'>, why: string): DirectLineError =>
    new DirectLineError(c, `${said} (${why})`, options);
  if (status === 429) return make('DirectLineThrottled', 'throttled');
  if (status >= 500 || status === 408) return make('DirectLineUnavailable', 'the service or the bot failed');
  if (status === 403 && code === TOKEN_EXPIRED_CODE)
    return make('DirectLineTokenExpired', 'refresh or renew the token');
  if (status === 401 || status === 403) return make('DirectLineUnauthorized', 'the secret or token is refused');
  if (status === 404)
    return operation === 'start'
      ? make('DirectLineUnauthorized', "no Direct Line service at this URL: check the account's directLineUrl")
      : make('DirectLineConversationGone', 'the conversation is unknown or expired: start a new one');
  if (status >= 400 && status < 500) return make('DirectLineBadRequest', 'the request itself is refused');
  return make('DirectLineAnswerUnreadable', 'not an answer of the Direct Line API');
}

/** A 2xx answer's JSON object, or the `DirectLineAnswerUnreadable` to throw. */
export function successBody(
  operation: Operation,
  answer: Answer,
  secrets: readonly string[],
  conversationId?: string,
): Record<string, unknown> | DirectLineError {
  const text = scrub(answer.body.toString('utf8'), secrets);
  const body = parse(text);
  return isObject(body) ? body : unreadable(operation, answer, text, 'the body is not a JSON object', conversationId);
}

/** A `DirectLineAnswerUnreadable` for a 2xx answer whose body is not the documented shape (`why` says how). */
export function unreadable(
  operation: Operation,
  answer: Answer,
  body: unknown,
  why: string,
  conversationId?: string,
): DirectLineError {
  return new DirectLineError(
    'DirectLineAnswerUnreadable',
    `Direct Line answered ${operation} with ${answer.status} but ${why}`,
    {
      upstream: { status: answer.status, headers: answer.headers, body },
      context: { operation, status: answer.status, ...(conversationId === undefined ? {} : { conversationId }) },
    },
  );
}

/**
 * One activity of an `ActivitySet` in the port's shape, or a description of what is wrong with it. Read: `type`
 * (string), `from.id` (string; the stage tells the customer's own activities from the agents' by it), and, when
 * present, `id`, `text`, `timestamp`, `channelData` (object), `attachments` (objects with a `contentType`).
 */
export function readActivity(value: unknown): DirectLineActivity | string {
  if (!isObject(value)) return 'an activity is not an object';
  const { id, type, from, text, timestamp, channelData, attachments } = value;
  if (typeof type !== 'string' || type === '') return 'an activity has no type';
  if (!isObject(from) || typeof from['id'] !== 'string') return `activity ${String(id)} has no from.id`;
  if (id !== undefined && typeof id !== 'string') return 'an activity id is not a string';
  if (text !== undefined && text !== null && typeof text !== 'string')
    return `activity ${String(id)} has a text that is not a string`;
  if (channelData !== undefined && channelData !== null && !isObject(channelData))
    return `activity ${String(id)} has channelData that is not an object`;
  if (attachments !== undefined && attachments !== null && !Array.isArray(attachments))
    return `activity ${String(id)} has attachments that are not a list`;
  const read: DirectLineActivity['attachments'] = [];
  for (const a of (attachments as unknown[] | undefined | null) ?? []) {
    if (!isObject(a) || typeof a['contentType'] !== 'string')
      return `activity ${String(id)} has an attachment without a contentType`;
    read.push({
      contentType: a['contentType'],
      ...(typeof a['contentUrl'] === 'string' ? { contentUrl: a['contentUrl'] } : {}),
      ...(typeof a['name'] === 'string' ? { name: a['name'] } : {}),
    });
  }
  return {
    ...(id === undefined ? {} : { id }),
    type,
    from: {
      id: from['id'],
      ...(typeof from['name'] === 'string' ? { name: from['name'] } : {}),
      ...(typeof from['role'] === 'string' ? { role: from['role'] } : {}),
    },
    ...(typeof text === 'string' ? { text } : {}),
    ...(read.length > 0 ? { attachments: read } : {}),
    ...(isObject(channelData) ? { channelData } : {}),
    ...(typeof timestamp === 'string' ? { timestamp } : {}),
  };
}
