/**
 * Telegram's answer to `sendMessage`, mapped to a send outcome.
 *
 * Success is `{"ok":true,"result":<Message>}` with an integer `result.message_id`. An error is
 * `{"ok":false,"error_code":403,"description":"Forbidden: bot was blocked by the user"}`, and for flood control
 * `{"ok":false,"error_code":429,"description":"Too Many Requests: retry after N","parameters":{"retry_after":N}}`
 * (core.telegram.org/bots/api#making-requests, #responseparameters; ../shared/reference/providers-and-limits.md).
 * The status decides (`error_code`, or the HTTP status when the body has none); the description only names the
 * reason in the message. `ok: false` is never a sent message: with a 2xx status and an `error_code` that names no
 * failure (or none), it is `ProviderRejected`.
 */
import { parseRetryAfter, type HttpResponse } from '../http.js';
import { bodySnippet, failure, isRecord, type ProviderErrorCode, type SendOutcome } from '../mapping.js';

/** The pause on a 429 that carries neither `parameters.retry_after` nor `Retry-After` (Telegram always sends the first). */
export const TELEGRAM_DEFAULT_RETRY_AFTER_MS = 1000;

/** What each status means for the relay; statuses not listed: other 4xx → rejected, 5xx → unavailable. */
export const TELEGRAM_STATUS_CODES: Readonly<Record<number, { code: ProviderErrorCode; reason: string }>> = {
  400: {
    code: 'ProviderRejected',
    reason: 'the request was refused for this chat (chat not found, migrated group, empty or too long text)',
  },
  401: { code: 'ProviderUnauthorized', reason: 'the bot token was refused' },
  403: {
    code: 'ProviderRejected',
    reason: 'the bot cannot write to this chat (blocked by the user, kicked, user deactivated)',
  },
  404: { code: 'ProviderUnauthorized', reason: 'no such bot or method (the bot token is malformed)' },
  429: { code: 'ProviderRateLimited', reason: 'flood control' },
};

/** Known descriptions, for a precise reason in the message (Telegram's wording; the status decides the outcome). */
export const TELEGRAM_DESCRIPTIONS: ReadonlyArray<readonly [RegExp, string]> = [
  [/bot was blocked by the user/i, 'the user blocked the bot'],
  [/user is deactivated/i, 'the user account is deleted'],
  [/bot was kicked/i, 'the bot was removed from the chat'],
  [/bot is not a member/i, 'the bot is not a member of the chat'],
  [/can't initiate conversation/i, 'the user never started a conversation with the bot'],
  [/chat not found/i, 'the chat does not exist or the bot never saw it'],
  [
    /upgraded to a supergroup|migrated to a supergroup/i,
    'the group became a supergroup (see parameters.migrate_to_chat_id)',
  ],
  [/message is too long/i, 'the text exceeds 4096 characters'],
  [/message text is empty/i, 'the text is empty'],
];

function describe(description: string | undefined): string {
  if (description === undefined) return '';
  const known = TELEGRAM_DESCRIPTIONS.find(([pattern]) => pattern.test(description));
  return known === undefined ? description : `${known[1]}: ${description}`;
}

/** Maps Telegram's answer to a `sendMessage` request. */
export function mapTelegramResponse(response: HttpResponse): SendOutcome {
  const { status, body } = response;
  if (status >= 500)
    return failure(
      'ProviderUnavailable',
      `telegram ${status}: ${bodySnippet(body)}`,
      response,
      isRecord(body) && typeof body['error_code'] === 'number' ? { upstreamCode: body['error_code'] } : {},
    );
  if (!isRecord(body) || typeof body['ok'] !== 'boolean') {
    return failure(
      'ProviderBadResponse',
      `telegram answered ${status} with a body that is not a Bot API response: ${bodySnippet(body)}`,
      response,
    );
  }
  if (body['ok'] === true) {
    const result = body['result'];
    const messageId = isRecord(result) ? result['message_id'] : undefined;
    if (status >= 200 && status < 300 && typeof messageId === 'number' && Number.isInteger(messageId)) {
      return { providerMessageId: String(messageId), status: 'sent' };
    }
    return failure(
      'ProviderBadResponse',
      `telegram answered ${status} ok without an integer result.message_id: ${bodySnippet(body)}`,
      response,
    );
  }
  const errorCode = typeof body['error_code'] === 'number' ? body['error_code'] : status;
  const description = typeof body['description'] === 'string' ? body['description'] : undefined;
  const detail = describe(description) || bodySnippet(body);
  const rule = TELEGRAM_STATUS_CODES[errorCode];
  if (errorCode === 429 || rule?.code === 'ProviderRateLimited') {
    const parameters = isRecord(body['parameters']) ? body['parameters'] : {};
    const seconds = parameters['retry_after'];
    const retryAfterMs =
      typeof seconds === 'number' && Number.isFinite(seconds) && seconds >= 0
        ? Math.round(seconds * 1000)
        : (parseRetryAfter(response.headers['retry-after']) ?? TELEGRAM_DEFAULT_RETRY_AFTER_MS);
    return failure(
      'ProviderRateLimited',
      `telegram 429: flood control, retry after ${retryAfterMs} ms (${detail})`,
      response,
      { upstreamCode: errorCode, retryAfterMs },
    );
  }
  if (rule !== undefined)
    return failure(rule.code, `telegram ${errorCode}: ${detail}`, response, { upstreamCode: errorCode });
  if (errorCode >= 500)
    return failure('ProviderUnavailable', `telegram ${errorCode}: ${detail}`, response, { upstreamCode: errorCode });
  if (errorCode >= 400)
    return failure('ProviderRejected', `telegram ${errorCode}: ${detail}`, response, { upstreamCode: errorCode });
  // `ok: false` is Telegram's own word that this message was not sent: with a 2xx (or 4xx) status and no error code
  // that names a failure, it is a refusal of this message, not an answer that cannot be read (nothing to check).
  if ((status >= 200 && status < 300) || (status >= 400 && status < 500)) {
    return failure(
      'ProviderRejected',
      `telegram answered ${status} with ok:false (error_code ${errorCode}): ${detail}`,
      response,
      { upstreamCode: errorCode },
    );
  }
  return failure(
    'ProviderBadResponse',
    `telegram answered ${status} not ok with error_code ${errorCode}: ${detail}`,
    response,
    { upstreamCode: errorCode },
  );
}
