/**
 * Telegram Bot API: one `POST {baseUrl}/bot{token}/sendMessage` per message, JSON `{chat_id, text}`.
 *
 * The bot token is part of the URL, so the URL never appears in an error, a log line or an error's upstream (the
 * shared HTTP helper puts neither the URL nor the request into errors, and scrubs the token out of every answer).
 * `from` is ignored: the token names the bot.
 */
import { postAndMap } from '../http.js';
import { adapterCall, type AdapterCall, type AdapterOptions } from '../options.js';
import type { Provider, SendRequest, SendResult } from '../provider.js';
import { mapTelegramResponse } from './map-response.js';

export const TELEGRAM_BASE_URL = 'https://api.telegram.org';

export interface TelegramSettings {
  botToken: string;
  /** @defaultValue {@link TELEGRAM_BASE_URL} */
  baseUrl?: string;
}

export class TelegramProvider implements Provider {
  readonly type = 'telegram' as const;
  readonly #url: string;
  readonly #call: AdapterCall;

  constructor(settings: TelegramSettings, options: AdapterOptions) {
    const base = (settings.baseUrl ?? TELEGRAM_BASE_URL).replace(/\/+$/, '');
    this.#url = `${base}/bot${settings.botToken}/sendMessage`;
    this.#call = adapterCall('telegram', options, [settings.botToken, encodeURIComponent(settings.botToken)]);
  }

  async send(request: SendRequest): Promise<SendResult> {
    return postAndMap({
      ...this.#call,
      url: this.#url,
      headers: {
        'content-type': 'application/json',
        accept: 'application/json',
        // Telegram has no idempotency key and ignores this header; it lets the provider simulator (or a proxy)
        // see that two calls are the same message, so tests can count duplicates.
        'x-idempotency-key': request.idempotencyKey,
      },
      // chat_id as given: Telegram takes an integer or a string (`@channelusername`, or digits).
      body: JSON.stringify({ chat_id: request.to, text: request.text }),
      signal: request.signal,
      map: mapTelegramResponse,
      fields: { idempotencyKey: request.idempotencyKey },
    });
  }
}
