/**
 * Telegram Bot API: one `POST {baseUrl}/bot{token}/sendMessage` per message, JSON `{chat_id, text}`.
 *
 * The bot token is part of the URL, so the URL never appears in an error, a log line or an error's upstream (the
 * shared HTTP helper puts neither the URL nor the request into errors, and scrubs the token out of every answer).
 * `from` is ignored: the token names the bot.
 */
import { areaLogger, type Logger } from '../../log.js';
import { postAndMap } from '../http.js';
import type { AdapterOptions } from '../options.js';
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
  readonly #secrets: readonly string[];
  readonly #options: AdapterOptions;
  readonly #log: Logger;

  constructor(settings: TelegramSettings, options: AdapterOptions) {
    const base = (settings.baseUrl ?? TELEGRAM_BASE_URL).replace(/\/+$/, '');
    this.#url = `${base}/bot${settings.botToken}/sendMessage`;
    this.#secrets = [settings.botToken, encodeURIComponent(settings.botToken)];
    this.#options = options;
    this.#log = areaLogger(options.log, 'provider', { provider: 'telegram' });
  }

  async send(request: SendRequest): Promise<SendResult> {
    return postAndMap({
      provider: 'telegram',
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
      timeoutMs: this.#options.timeoutMs, fetch: this.#options.fetch, secrets: this.#secrets, log: this.#log, signal: request.signal,
      map: mapTelegramResponse,
      fields: { idempotencyKey: request.idempotencyKey },
    });
  }
}
