/**
 * The one interface every provider adapter implements. An adapter turns a send into the provider's HTTP call and
 * the provider's answer into a `SendResult` or a `ProviderError` whose code says what the stage does next:
 * `ProviderRejected` (permanent: an outcome, recorded as the channel's failure response type),
 * `ProviderRateLimited` (pause the sender for `retryAfterMs`, then retry), `ProviderUnavailable` /
 * `ProviderTimeout` / `ProviderBadResponse` (retry with backoff), `ProviderAnswerUnreadable` (a 2xx the adapter
 * cannot read: maybe sent, never retried), `ProviderUnauthorized` (stop: configuration).
 */

/** The provider types channels.json can name. */
export type ProviderType = 'twilio' | 'telegram' | 'contract';

/** A provider's settings as a channel gives them; secrets already resolved from their `env:` references. */
export type ProviderSettings =
  | { type: 'twilio'; accountSid: string; authToken: string; baseUrl?: string }
  | { type: 'telegram'; botToken: string; baseUrl?: string }
  | {
      type: 'contract';
      url: string;
      signingSecret: string;
      /**
       * The channel definition's message parts that carry a file's URL (the i-th attachment in `mediaParts[i]`);
       * none: the contract channel takes no attachments.
       */
      mediaParts?: readonly string[];
    };

/** A file sent with a message, by URL: the provider fetches it (Twilio `MediaUrl`, Telegram `document`/`photo`). */
export interface SendAttachment {
  url: string;
  /** MIME type, when known (Telegram: an image goes as a photo). */
  contentType?: string;
  /** File name, when known. */
  name?: string;
}

export interface SendRequest {
  /** Stable per message (the activity row id / real-time RequestId): sent as the provider's idempotency key where it has one. */
  idempotencyKey: string;
  /** The sender: phone number, Messaging Service SID, bot (ignored by Telegram: the token names the bot), contract `From`. */
  from: string;
  /** The recipient: phone number, chat id, contract `To`. */
  to: string;
  /** The text to send. */
  text: string;
  /** Real-time journeys: all message parts by name (the contract adapter sends these as `Message`). */
  parts?: Record<string, string>;
  /** Real-time journeys: the channel definition (the contract adapter sends it as `ChannelDefinitionId`). */
  channelDefinitionId?: string;
  /**
   * Files sent with the text (an agent's attachments in an Omnichannel conversation), at most the provider's
   * `maxAttachments`: an adapter refuses more (a `TypeError`, before any call). @defaultValue none
   */
  attachments?: SendAttachment[];
  /** A per-message status callback URL (Twilio `StatusCallback`), when the channel has a public base URL. */
  statusCallbackUrl?: string;
  /**
   * Aborts the call (shutdown, or the caller's timeout). The send then rejects with the signal's `reason` as is (an
   * `AbortError` by default), never with a `ProviderError`, so that a stop is not taken for a provider fault.
   */
  signal?: AbortSignal;
}

export interface SendResult {
  /** The provider's id for the message (Twilio SID, Telegram `message_id`, contract `MessageId`). */
  providerMessageId: string;
  /** The provider's status on acceptance (`queued`, `sent`, `Sent` …), as it said it. */
  status: string;
}

/** What {@link Provider.findSent} looks for: a message this sender sent to this recipient with this text, in a time span. */
export interface SentQuery {
  from: string;
  to: string;
  /** The text exactly as it was sent. */
  text: string;
  /** The span in which the provider may have created it (ms since the epoch, our clock). */
  since: number;
  until: number;
  /** Provider message ids already matched to other messages: not matched again. */
  exclude?: ReadonlySet<string>;
  signal?: AbortSignal;
}

export interface Provider {
  readonly type: ProviderType;
  /**
   * The most attachments one message may carry (Twilio: 10 `MediaUrl`s; Telegram: 10, each its own message; the
   * contract: one per media part of `mediaParts`, none without them). @defaultValue 0
   */
  readonly maxAttachments?: number;
  /**
   * Sends one message; resolves on acceptance, rejects with a `ProviderError` (keeping the provider's status,
   * headers, body and own code in `upstream`, never a credential). Has its own timeout (`ProviderTimeout`).
   */
  send(request: SendRequest): Promise<SendResult>;
  /**
   * For a message whose call may have been made by a holder that died, or whose call's answer was lost: the message the provider holds for it
   * (`undefined`: none), so that it is recorded instead of sent again. Only providers that can be asked have it
   * (Twilio); a contract endpoint is safe to call again with the same `RequestId`, and Telegram cannot be asked.
   * Rejects (a `ProviderError`, or the signal's reason) when the provider could not tell.
   */
  findSent?(query: SentQuery): Promise<SendResult | undefined>;
}
