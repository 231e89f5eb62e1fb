/**
 * Every choice the Direct Line emulator, its Omnichannel agents and its identity endpoint make, with the source read
 * and what would change if it were wrong. Documented behaviour cites its page; where the sources are silent the
 * emulator takes the reading that hurts a relay most (UNVERIFIED). `docs/emulators/directline.md` lists them too.
 *
 * Sources: MicrosoftDocs/bot-docs `articles/rest-api/bot-framework-rest-direct-line-3-0-{api-reference,
 * authentication,start-conversation,reconnect-to-conversation,receive-activities,send-activity}.md` (learn.microsoft.com
 * …/azure/bot-service/rest-api/…); microsoft/BotFramework-DirectLineJS `src/directLine.ts`.
 */

/** `expires_in` of every token: 1800 s in each example of the authentication and start-conversation pages. */
export const TOKEN_LIFETIME_SECONDS = 1800;

/**
 * A stream URL must be connected to within 60 s (start-conversation "Tip", reconnect page), else a new one is asked
 * for. UNVERIFIED: that a stream URL serves one connection only; the emulator refuses a second use of the same URL
 * (worst reading: a client that reconnects with an old stream URL instead of asking for a new one fails at once).
 * DirectLineJS always asks for a new one (`reconnectToConversation`), so nothing changes if URLs are reusable.
 */
export const STREAM_CONNECT_WINDOW_SECONDS = 60;

/**
 * Idle conversations end: after this long without an activity the conversation is gone and every call on it answers
 * 404. Sources: a Bot Framework engineer on BotFramework-Services#52 and botframework-sdk#5291/#5334 ("Conversation
 * messages are only stored for 24 hours … metadata removed after a period of inactivity (15 to 20 days)"); the docs
 * say nothing. UNVERIFIED: the emulator takes the shorter figure, 24 h, as the default; a relay that keeps a
 * conversation id for a customer must expect a 404 on any call and start over. If conversations lived longer, a
 * correct relay would only start over less often.
 */
export const CONVERSATION_IDLE_SECONDS = 24 * 3600;

/**
 * Get Activities may answer with fewer activities than there are: the docs tell clients to "page through the
 * available activities by advancing the watermark value until no activities are returned". UNVERIFIED: the page
 * size; the emulator answers at most this many per call (worst reading: a client that reads one page per poll falls
 * behind and one that takes a page for the whole history misses activities).
 */
export const ACTIVITIES_PAGE_SIZE = 20;

/**
 * Watermarks are strings (`"0001a-95"` in the docs) that a client must replay verbatim ("A client will not miss any
 * messages as long as it replays the watermark verbatim"). UNVERIFIED: their form. The emulator's are opaque (not
 * numbers, not ordered as strings), so a client that parses or compares them breaks here.
 */
export function formatWatermark(conversationId: string, position: number): string {
  return Buffer.from(`${conversationId.slice(0, 6)}:${position}`, 'utf8').toString('base64url');
}

/**
 * The position a watermark stands for, or `undefined` for one this conversation never gave. UNVERIFIED: what the
 * service does with a watermark it cannot read; the emulator replays the whole history (worst reading: duplicates
 * for a client that does not keep activity ids, which the receive page tells clients to keep anyway).
 */
export function parseWatermark(conversationId: string, watermark: string): number | undefined {
  const text = Buffer.from(watermark, 'base64url').toString('utf8');
  const m = /^(.{0,6}):(\d+)$/.exec(text);
  if (!m || m[1] !== conversationId.slice(0, 6)) return undefined;
  return Number(m[2]);
}

/**
 * Error bodies are `{"error": {"code", "message"}}` (api-reference "Errors"); the status and `code` are stable,
 * `message` is not. `TokenExpired` (403) and `BotRejectedActivity` (502) are documented; `BadArgument` with
 * "Unknown conversation" for a 404 is quoted in botframework-sdk#5773. UNVERIFIED: every other code below. A relay
 * should decide on the status, and on `code` only for `TokenExpired`.
 */
export const ERROR_CODES = {
  /** 401: no Authorization header, or a secret or token the service does not know. UNVERIFIED code. */
  unauthorized: 'BadArgument',
  /** 403: a token that has expired (documented). */
  tokenExpired: 'TokenExpired',
  /** 403: a token for another conversation. UNVERIFIED code. */
  forbidden: 'BadArgument',
  /** 404: unknown or expired conversation. */
  notFound: 'BadArgument',
  /** 400: a malformed request (no `from`, no `userId`, bad JSON). UNVERIFIED code. */
  badArgument: 'BadArgument',
  /** 413: an upload over the size limit. UNVERIFIED status and code. */
  tooLarge: 'MessageSizeTooBig',
  /** 429: an injected throttling answer. UNVERIFIED code; `Retry-After` is in seconds (RFC 9110). */
  throttled: 'Throttled',
  /** 502: the bot failed (documented, the api-reference example). */
  botFailed: 'BotRejectedActivity',
  /** 500 and 503: the service failed. UNVERIFIED code. */
  serviceError: 'ServiceError',
} as const;

/*
 * Further readings, each applied where the code does it:
 *
 * - Start Conversation with a token that already started its conversation answers 200 and the same conversation
 *   (start-conversation page); a token from Generate Token starts the conversation it was made for. UNVERIFIED:
 *   a conversation whose token was generated but that was never started answers 404 to every other call (Generate
 *   Token "doesn't start the conversation"); a client that skips Start Conversation fails at once.
 * - Refresh: "An expired token can't be refreshed" (403 TokenExpired). UNVERIFIED: the old token stays valid until
 *   its own expiry after a refresh (Direct Line tokens are self-contained; revoking them would need state). If the
 *   service revoked it, a relay that refreshes in one replica while another still holds the old token gets a 403.
 *   A secret cannot be refreshed: 400 (UNVERIFIED).
 * - Get Conversation (reconnect) answers "an ID for the conversation, a token, and a new WebSocket stream URL"
 *   (reconnect page). UNVERIFIED: whether the token is new. The emulator gives back the caller's own token with
 *   its remaining `expires_in` (a secret caller gets a new one): reconnecting never extends a token, so a client
 *   that counts on it instead of refreshing sees 403 TokenExpired. If the service did give a fresh token, a
 *   correct client (one that refreshes) is unaffected.
 * - A token made with `user.id` fixes `from.id` of what it posts (authentication page, "Security considerations");
 *   the emulator overwrites `from.id` the same way.
 * - Get Activities and the stream carry the client's own activities as well as the bot's (receive page: "An
 *   ActivitySet contains messages sent by the bot and by all users"): a relay must skip its own.
 * - `typing` reaches the stream only, never Get Activities (receive page table); an ActivitySet on the stream may
 *   lack `watermark` ("ignore that value"). The emulator's typing sets carry none.
 * - The stream sends empty messages to keep the connection (receive page). UNVERIFIED: their interval, an option.
 * - "The service allows only 1 WebSocket connection per conversation. Direct Line may close additional WebSocket
 *   connections with a reason value of collision" (receive page, current version). UNVERIFIED: the close code; the
 *   emulator closes the newer connection with 4001 and reason `collision`.
 * - A send is "delivered to the bot" before it is answered; a 502 means the bot failed (send-activity page).
 *   UNVERIFIED: whether the activity is in the conversation after a 502. Fault `errorAfterAccept` makes it so
 *   (worst reading for a client that retries: a duplicate).
 * - Upload: `userId` is required; one file in the body with `Content-Type` and `Content-Disposition`, or
 *   multipart/form-data with an optional `application/vnd.microsoft.activity` part (send-activity page); "Uploaded
 *   files are deleted after 24 hours" (api-reference). UNVERIFIED: the size limit (an option, default 4 MiB) and the
 *   form of the private link the attachment gets (`/attachments/{id}/{name}` on the emulator, no authentication).
 * - After the agents end a conversation (`endOfConversation`), Direct Line still accepts posts, but nobody reads
 *   them. UNVERIFIED (Omnichannel's handling of a message after the end is not documented for custom channels): a
 *   relay that keeps posting into an ended conversation loses those messages; the record counts them
 *   (`postedAfterEnd`).
 * - Omnichannel routes by the first customer activity's `channelData` (`channeltype`, `conversationcontext`,
 *   `customercontext`: the seed's "bring your own channel" sample). UNVERIFIED: a first activity without a
 *   `channeltype` the agents know is never answered (the record shows it `unrouted`).
 * - A customer attachment on a channel whose "customers can send file attachments" is off never reaches an agent:
 *   the upload succeeds and the attachment is dropped (UNVERIFIED; the record counts `attachmentsDropped`).
 *
 * Identity platform (the v2.0 token endpoint, client-credentials grant), from captured answers quoted in public
 * issues (Azure-Samples/ms-identity-python-webapp#67, microsoft/botframework-sdk#6221, MicrosoftDocs/azure-docs
 * #21690, microsoftgraph/windowsupdates-webapplication-sample#6) and the AADSTS code list
 * (learn.microsoft.com/entra/identity-platform/reference-error-codes):
 * - wrong secret: 401 `invalid_client` AADSTS7000215; expired secret: 401 `invalid_client` AADSTS7000222;
 * - app unknown in the tenant asked (including an app registered in another tenant): 400 `unauthorized_client`
 *   AADSTS700016 ("… was not found in the directory '…'"). UNVERIFIED: the status 400 (the captures give the body);
 * - unknown tenant: 400 `invalid_tenant` AADSTS90002 (on the token endpoint and on OpenID discovery);
 * - missing parameter: 400 `invalid_request` AADSTS900144; a scope without `/.default` in a client-credentials
 *   request: 400 `invalid_scope` AADSTS1002012; another grant: 400 `unsupported_grant_type` AADSTS70003.
 * - Multi-tenant bots get their tokens from the `botframework.com` tenant (the Bot Framework authentication docs);
 *   the emulator treats it as one more tenant where such apps are registered.
 */
