/**
 * Telegram Bot API: one `POST {baseUrl}/bot{token}/sendMessage` per message, JSON `{chat_id, text}`; a message with
 * attachments is several messages: its text through `sendMessage`, then each file through `sendPhoto` (JPEG, PNG,
 * WebP images) or `sendDocument` (anything else), by URL (Telegram fetches it: "Pass … an HTTP URL as a String for
 * Telegram to get a file from the Internet", core.telegram.org/bots/api#sending-files), spaced as Telegram's per-chat
 * limit asks.
 *
 * The bot token is part of the URL, so the URL never appears in an error, a log line or an error's upstream (the
 * shared HTTP helper puts neither the URL nor the request into errors, and scrubs the token out of every answer).
 * `from` is ignored: the token names the bot.
 */
import { sleepOrReject } from '../../abort.js';
import { postAndMap } from '../http.js';
import { adapterCall, type AdapterCall, type AdapterOptions } from '../options.js';
import type { Provider, SendAttachment, SendRequest, SendResult } from '../provider.js';
import { TELEGRAM_CHAT_SPACING_MS, TELEGRAM_PHOTO_TYPES } from './assumptions.js';
import { isTelegramGroupChat, TELEGRAM_GROUP_SPACING_MS } from './chats.js';
import { mapTelegramResponse } from './map-response.js';

export const TELEGRAM_BASE_URL = 'https://api.telegram.org';

/** The most files of one message (each is a Telegram message of its own, so a send stays within its timeout). */
export const TELEGRAM_MAX_ATTACHMENTS = 10;

/** Sends whose first messages went out and whose next one failed: retried, they go on from there (bounded). */
const MAX_PARTIAL_SENDS = 1000;

/** The spacing between two messages of one send to `chatId` ({@link TELEGRAM_CHAT_SPACING_MS}, a group 3 s). */
export function telegramPartSpacingMs(chatId: string): number {
  return isTelegramGroupChat(chatId) ? TELEGRAM_GROUP_SPACING_MS : TELEGRAM_CHAT_SPACING_MS;
}

/** The Telegram messages one send makes: the text (unless empty beside files) and one per file. */
export function telegramMessagesOf(request: Pick<SendRequest, 'text' | 'attachments'>): number {
  const files = request.attachments?.length ?? 0;
  return files === 0 ? 1 : files + (request.text.trim() === '' ? 0 : 1);
}

/** An image Telegram takes as a photo (sendPhoto); anything else is a document. */
function isPhoto(file: SendAttachment): boolean {
  return TELEGRAM_PHOTO_TYPES.test(file.contentType ?? '');
}

export interface TelegramSettings {
  botToken: string;
  /** @defaultValue {@link TELEGRAM_BASE_URL} */
  baseUrl?: string;
}

export class TelegramProvider implements Provider {
  readonly type = 'telegram' as const;
  readonly maxAttachments = TELEGRAM_MAX_ATTACHMENTS;
  readonly #base: string;
  readonly #call: AdapterCall;
  /** Per idempotency key, how many messages of a send with files went out, and the first one's result. */
  readonly #partial = new Map<string, { done: number; first: SendResult }>();

  constructor(settings: TelegramSettings, options: AdapterOptions) {
    this.#base = `${(settings.baseUrl ?? TELEGRAM_BASE_URL).replace(/\/+$/, '')}/bot${settings.botToken}`;
    this.#call = adapterCall('telegram', options, [settings.botToken, encodeURIComponent(settings.botToken)]);
  }

  /**
   * Sends the text, or with attachments the text and then each file, one message each, {@link telegramPartSpacingMs}
   * apart. Resolves to the first message's id. A failure part-way rejects as that call failed; the same send again
   * (same idempotency key, same adapter) goes on with the message that failed, so a retry does not repeat what
   * Telegram already has (a crash does: Telegram cannot be asked).
   */
  async send(request: SendRequest): Promise<SendResult> {
    const files = request.attachments ?? [];
    if (files.length > TELEGRAM_MAX_ATTACHMENTS)
      throw new TypeError(
        `telegram: a message carries at most ${TELEGRAM_MAX_ATTACHMENTS} attachments, this one has ${files.length}`,
      );
    if (files.length === 0) return this.#method('sendMessage', { text: request.text }, request, request.idempotencyKey);
    const parts: Array<[string, Record<string, string>]> = [];
    if (request.text.trim() !== '') parts.push(['sendMessage', { text: request.text }]);
    for (const file of files)
      parts.push(isPhoto(file) ? ['sendPhoto', { photo: file.url }] : ['sendDocument', { document: file.url }]);
    const key = request.idempotencyKey;
    const progress = this.#partial.get(key);
    const start = progress?.done ?? 0;
    let first = progress?.first;
    for (let i = start; i < parts.length; i++) {
      if (i > start) await sleepOrReject(telegramPartSpacingMs(request.to), request.signal);
      const [method, fields] = parts[i] as [string, Record<string, string>];
      // Each message its own key for the simulator's log: the second is not a repeat of the first.
      const result = await this.#method(method, fields, request, i === 0 ? key : `${key}#${i}`);
      first ??= result;
      this.#partial.delete(key);
      if (i + 1 < parts.length) {
        this.#partial.set(key, { done: i + 1, first });
        if (this.#partial.size > MAX_PARTIAL_SENDS) this.#partial.delete(this.#partial.keys().next().value as string);
      }
    }
    return first as SendResult;
  }

  #method(method: string, fields: Record<string, string>, request: SendRequest, key: string): Promise<SendResult> {
    return postAndMap({
      ...this.#call,
      url: `${this.#base}/${method}`,
      headers: {
        'content-type': 'application/json',
        accept: 'application/json',
        // Telegram has no idempotency key and ignores this header; it lets the provider simulator (or a proxy)
        // see that two calls are the same message, so tests can count duplicates.
        'x-idempotency-key': key,
      },
      // chat_id as given: Telegram takes an integer or a string (`@channelusername`, or digits).
      body: JSON.stringify({ chat_id: request.to, ...fields }),
      signal: request.signal,
      map: mapTelegramResponse,
      fields: { idempotencyKey: request.idempotencyKey, ...(method === 'sendMessage' ? {} : { method }) },
    });
  }
}
