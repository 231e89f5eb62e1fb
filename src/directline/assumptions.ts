/**
 * How the relay's Direct Line client reads the parts of the contract no source settles, each with its source and what
 * would change if it were wrong. Sources: MicrosoftDocs/bot-docs `articles/rest-api/bot-framework-rest-direct-line-3-0-
 * {api-reference,authentication,start-conversation,reconnect-to-conversation,receive-activities,send-activity}.md`
 * (learn.microsoft.com/azure/bot-service/rest-api/…), microsoft/BotFramework-DirectLineJS `src/directLine.ts`.
 */

/** The `code` of a 403 for an expired token (api-reference, "HTTP status codes": documented, stable). */
export const TOKEN_EXPIRED_CODE = 'TokenExpired';

/**
 * Upload: always multipart/form-data, the activity part first (`name="activity"`, `application/vnd.microsoft.activity`)
 * then one `name="file"` part per file with its `filename` and `Content-Type`, as DirectLineJS
 * `postMessageWithAttachments` builds it; the send page documents the parts' headers, not their names. Multipart even
 * for one file, so that the activity (its `channelData`) travels with it. If the service wanted other part names, every
 * upload would fail with a 400 (`DirectLineBadRequest`), loudly.
 */
export const UPLOAD_FORM = { activityPart: 'activity', filePart: 'file' } as const;

/**
 * The default timeout of a call, ms: DirectLineJS's (`private timeout = 20 * 1000`). A Send Activity is answered after
 * the bot took it ("When the activity is delivered to the bot, the service responds …", send page), so it may be slow.
 */
export const DEFAULT_TIMEOUT_MS = 20_000;

/*
 * Further readings, each applied where the code does it:
 *
 * - `Retry-After` (on a 429, and on a 503 when there is one) is read as delta-seconds or an HTTP date (RFC 9110 §10.2.3)
 *   with `parseRetryAfter`. UNVERIFIED: the docs do not mention the header. DirectLineJS waits `Number(Retry-After)`
 *   MILLISECONDS (`wrapAjaxWithRetry`; its test `RetryAfterHeader` expects 10 ms for `Retry-After: 10`). If the service
 *   sends milliseconds, `retryAfterMs` is 1000 times too long: callers cap it (the conversations stage's
 *   `retry.maxDelayMs`), so the cost is a longer pause, never a lost message. A 503 with `Retry-After` is announced in
 *   BotFramework-DirectLineJS#339 ("The directline service will soon return 503's with Retry-After header").
 * - A 404 to Start Conversation names no conversation: "Typically this status code indicates an invalid request URI"
 *   (api-reference), so the base URL is wrong. UNVERIFIED reading: the client calls it `DirectLineUnauthorized` (the
 *   account cannot work until its configuration changes) rather than `DirectLineConversationGone`, which would have the
 *   stage start a new conversation, get a 404 again, and so on. A 404 on a conversation's calls, Refresh Token included
 *   (DirectLineJS `refreshToken`: "If the bot is gone, we should stop retrying"), is `DirectLineConversationGone`.
 * - Get Conversation (how `renew` gets a fresh token with the secret) returns "A Conversation object" with `expires_in`
 *   (api-reference), but the reconnect page's example answer has no `expires_in`. UNVERIFIED which is right: when it is
 *   missing, the client refreshes the new token at once (Refresh Token's `expires_in` is documented) instead of guessing
 *   a lifetime. If the field is always there, the extra call never happens.
 * - Get Activities may answer a part of what there is: "Clients should page through the available activities by
 *   advancing the watermark value until no activities are returned" (api-reference). The client reads pages until one
 *   is empty, at most `maxPages` per call (the rest on the next call, from the watermark returned). UNVERIFIED: the page
 *   size and the watermark's form; the client never parses a watermark, replays it verbatim ("A client will not miss any
 *   messages as long as it replays the watermark verbatim", receive page), keeps the previous one when a page carries
 *   none, and stops when a non-empty page does not move it (else it would read the same page forever).
 * - Any 2xx with the documented body is a success (Start Conversation answers 201 with a secret, 200 for a token
 *   already started: start-conversation page). A 2xx whose body is cut off or not the documented shape is
 *   `DirectLineAnswerUnreadable` (retryable): a post may have been taken, so a caller that tries again must look for
 *   it first (the conversations stage's `relayMessageId` check).
 * - Get Activities returns the client's own activities too ("messages sent by the bot and by all users", receive
 *   page): the client returns them all; the stage skips its own by `from.id`.
 * - "The total size of the activity, when serialized to JSON and encrypted, must not exceed 256K characters"
 *   (api-reference): not checked here; the service's 400 or 413 is `DirectLineBadRequest`.
 */
