/**
 * Telegram's Bot API `sendMessage`, `sendPhoto` and `sendDocument` (the `photo` / `document` an HTTP URL or a file_id,
 * not fetched; the caption up to 1024 characters), `POST /bot{token}/sendMessage` (JSON, form or query parameters): `{"ok":true,
 * "result":<Message>}` or `{"ok":false,"error_code":N,"description":"…"}`, the flood limits (30 msg/s per bot, 1 msg/s
 * per chat, 20 msg/min per group: core.telegram.org/bots/faq) answered with 429 and `parameters.retry_after`. A group
 * is any chat with a negative id (groups, `-100…` supergroups) or an `@name` (public supergroups and channels: the
 * FAQ names groups only; the simulator holds channels to the group limit too, the reading that hurts the relay most).
 * Telegram has no idempotency key: the relay's key, sent as `X-Idempotency-Key`, is only kept in the simulator's log
 * so that repeats can be counted; a repeat is always a second message. `setWebhook`,
 * `deleteWebhook` and `getWebhookInfo` keep a webhook per bot, where recipients' replies go as updates.
 */
import type { FaultAction } from './faults.js';
import type { Exchange, Outcome, Prepared, Reply } from './exchange.js';
import type { SimulatedMessage } from './records.js';
import { SlidingWindows } from './window.js';

export const TELEGRAM_PATH = /^\/bot([^/]+)\/([A-Za-z]+)$/;

export interface TelegramOptions {
  /** Bot tokens (`123456:ABC…`) that exist; another gets 401. @defaultValue undefined: any well-formed token */
  tokens?: string[];
  /** Chat ids whose user blocked the bot: 403 "Forbidden: bot was blocked by the user". @defaultValue [] */
  blockedChats?: Array<string | number>;
  /** Chat ids that do not exist: 400 "Bad Request: chat not found" (as is any id that is neither an integer nor `@name`). @defaultValue [] */
  unknownChats?: Array<string | number>;
  /** Messages per second per bot. @defaultValue 30 */
  perBot?: number;
  /** Messages per second per chat. @defaultValue 1 */
  perChat?: number;
  /** Messages per minute per group chat (a negative id or `@name`). @defaultValue 20 */
  perGroupPerMinute?: number;
}

/** A bot's webhook, as `setWebhook` left it. */
export interface TelegramWebhook {
  url: string;
  secretToken?: string;
  maxConnections: number;
  allowedUpdates?: string[];
  lastErrorDate?: number;
  lastErrorMessage?: string;
}

const SECRET_TOKEN = /^[A-Za-z0-9_-]{1,256}$/;

export type ResolvedTelegram = Required<Omit<TelegramOptions, 'tokens'>> & Pick<TelegramOptions, 'tokens'>;

export const TELEGRAM_DEFAULTS: ResolvedTelegram = {
  blockedChats: [],
  unknownChats: [],
  perBot: 30,
  perChat: 1,
  perGroupPerMinute: 20,
};

const TOKEN = /^(\d+):([A-Za-z0-9_-]+)$/;
const CHAT_ID = /^(-?\d+|@[A-Za-z][A-Za-z0-9_]{4,})$/;

function telegramError(status: number, description: string, parameters?: Record<string, unknown>): Reply {
  return { status, body: { ok: false, error_code: status, description, ...(parameters ? { parameters } : {}) } };
}

const STATUS_TEXT: Record<number, string> = {
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
};

function tooManyRequests(retryAfter: number): Reply {
  return telegramError(429, `Too Many Requests: retry after ${retryAfter}`, { retry_after: retryAfter });
}

export class TelegramApi {
  readonly #options: ResolvedTelegram;
  readonly #blocked: Set<string>;
  readonly #unknown: Set<string>;
  readonly #nextMessageId = new Map<string, number>();
  readonly #windows: SlidingWindows;
  /** Per group chat, over a minute (less the same tolerance as the 1000 ms windows). */
  readonly #groupWindows: SlidingWindows;
  readonly #webhooks = new Map<string, TelegramWebhook>();
  /** Updates waiting for delivery per bot (set by the simulator: its callbacks know). */
  pendingUpdates: (botId: string) => number = () => 0;

  constructor(options: ResolvedTelegram, windowMs: number) {
    this.#options = options;
    this.#blocked = new Set(options.blockedChats.map(String));
    this.#unknown = new Set(options.unknownChats.map(String));
    this.#windows = new SlidingWindows(windowMs);
    this.#groupWindows = new SlidingWindows(60_000 - (1000 - windowMs));
  }

  block(chatId: string | number): void {
    this.#blocked.add(String(chatId));
  }
  unblock(chatId: string | number): void {
    this.#blocked.delete(String(chatId));
  }
  blockedChats(): string[] {
    return [...this.#blocked];
  }

  reset(): void {
    this.#windows.clear();
    this.#groupWindows.clear();
  }

  /** The webhook of a bot (by bot id), when one is set. */
  webhookOf(botId: string): TelegramWebhook | undefined {
    const hook = this.#webhooks.get(botId);
    return hook === undefined ? undefined : { ...hook };
  }

  /** Notes a failed delivery for getWebhookInfo's `last_error_date` and `last_error_message`. */
  webhookFailed(botId: string, timeMs: number, message: string): void {
    const hook = this.#webhooks.get(botId);
    if (hook === undefined) return;
    hook.lastErrorDate = Math.floor(timeMs / 1000);
    hook.lastErrorMessage = message;
  }

  /** The next `message_id` of a chat (sent and received messages share the sequence, as in Telegram). */
  nextMessageId(botId: string, chatId: string): number {
    const chatKey = `${botId}\u0000${chatId}`;
    const messageId = (this.#nextMessageId.get(chatKey) ?? 0) + 1;
    this.#nextMessageId.set(chatKey, messageId);
    return messageId;
  }

  /** `setWebhook`, `deleteWebhook`, `getWebhookInfo`. */
  #webhookMethod(method: string, botId: string, params: Map<string, string>): Reply {
    if (method === 'getwebhookinfo') {
      const hook = this.#webhooks.get(botId);
      const result = {
        url: hook?.url ?? '',
        has_custom_certificate: false,
        pending_update_count: hook === undefined ? 0 : this.pendingUpdates(botId),
        ...(hook?.lastErrorDate === undefined
          ? {}
          : { last_error_date: hook.lastErrorDate, last_error_message: hook.lastErrorMessage }),
        ...(hook === undefined ? {} : { max_connections: hook.maxConnections }),
        ...(hook?.allowedUpdates === undefined ? {} : { allowed_updates: hook.allowedUpdates }),
      };
      return { status: 200, body: { ok: true, result } };
    }
    const url = method === 'deletewebhook' ? '' : params.get('url');
    if (url === undefined) return telegramError(400, 'Bad Request: parameter "url" is required');
    if (url === '') {
      const had = this.#webhooks.delete(botId);
      return {
        status: 200,
        body: { ok: true, result: true, description: had ? 'Webhook was deleted' : 'Webhook is already deleted' },
      };
    }
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      return telegramError(400, 'Bad Request: bad webhook: invalid URL');
    }
    // Telegram wants HTTPS on ports 443, 80, 88 or 8443; the simulator takes http too, to reach loopback servers.
    if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:')
      return telegramError(400, 'Bad Request: bad webhook: HTTPS url must be provided for webhook');
    const secretToken = params.get('secret_token');
    if (secretToken !== undefined && !SECRET_TOKEN.test(secretToken))
      return telegramError(400, 'Bad Request: secret token contains unallowed characters');
    const max = params.get('max_connections');
    const maxConnections = max === undefined ? 40 : Number(max);
    if (!Number.isInteger(maxConnections) || maxConnections < 1 || maxConnections > 100)
      return telegramError(400, 'Bad Request: bad max_connections');
    let allowedUpdates: string[] | undefined;
    const allowed = params.get('allowed_updates');
    if (allowed !== undefined) {
      try {
        const list: unknown = JSON.parse(allowed);
        if (Array.isArray(list)) allowedUpdates = list.map(String);
      } catch {
        return telegramError(400, "Bad Request: can't parse allowed updates");
      }
    }
    const same = this.#webhooks.get(botId);
    const unchanged = same !== undefined && same.url === url && same.secretToken === (secretToken ?? undefined);
    this.#webhooks.set(botId, {
      url,
      maxConnections,
      ...(secretToken === undefined ? {} : { secretToken }),
      ...(allowedUpdates === undefined ? {} : { allowedUpdates }),
    });
    return {
      status: 200,
      body: { ok: true, result: true, description: unchanged ? 'Webhook is already set' : 'Webhook was set' },
    };
  }

  renderFault(action: Exclude<FaultAction, { kind: 'none' | 'timeout' }>): Reply {
    if (action.kind === 'rateLimit') return tooManyRequests(action.retryAfterSeconds);
    return telegramError(action.status, STATUS_TEXT[action.status] ?? 'Internal Server Error');
  }

  /** The parameters of a call: the query string, then a JSON or form body. */
  static params(ex: Exchange): Map<string, string> | Reply {
    const out = new Map<string, string>();
    for (const [k, v] of ex.query) out.set(k, v);
    const type = (ex.headers['content-type'] ?? '').toLowerCase();
    if (ex.body.trim() === '') return out;
    if (type.includes('application/json')) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(ex.body);
      } catch {
        return telegramError(400, "Bad Request: can't parse JSON object");
      }
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
        return telegramError(400, "Bad Request: can't parse JSON object");
      for (const [k, v] of Object.entries(parsed)) out.set(k, typeof v === 'string' ? v : JSON.stringify(v));
      return out;
    }
    for (const [k, v] of new URLSearchParams(ex.body)) out.set(k, v);
    return out;
  }

  /** The bot id of a token the simulator accepts (well-formed, and one of `tokens` when configured); else undefined. */
  botIdOf(token: string): string | undefined {
    const m = TOKEN.exec(token);
    if (!m) return undefined;
    if (this.#options.tokens !== undefined && !this.#options.tokens.includes(token)) return undefined;
    return m[1];
  }

  prepare(ex: Exchange, token: string, method: string): Prepared {
    const m = TOKEN.exec(token);
    if (!m) return { refuse: { reply: telegramError(404, 'Not Found'), code: 404 } };
    const botId = m[1]!;
    if (this.#options.tokens !== undefined && !this.#options.tokens.includes(token))
      return { refuse: { reply: telegramError(401, 'Unauthorized'), code: 401 } };
    const lower = method.toLowerCase();
    const webhookMethod = lower === 'setwebhook' || lower === 'deletewebhook' || lower === 'getwebhookinfo';
    const fileMethod = lower === 'sendphoto' || lower === 'senddocument';
    if (lower !== 'sendmessage' && !fileMethod && !webhookMethod)
      return { sender: botId, refuse: { reply: telegramError(404, 'Not Found: method not found'), code: 404 } };
    const params = TelegramApi.params(ex);
    if (!(params instanceof Map)) return { sender: botId, refuse: { reply: params, code: 400 } };
    if (webhookMethod) return { sender: botId, execute: () => ({ reply: this.#webhookMethod(lower, botId, params) }) };
    const key = ex.headers['x-idempotency-key'];
    const path = `/bot${botId}:***/${method}`;

    const execute = (now: number): Outcome => {
      const chatId = params.get('chat_id') ?? '';
      // sendPhoto / sendDocument: the file (an HTTP URL Telegram would fetch, or a file_id), the caption as text.
      const kind = lower === 'sendphoto' ? 'photo' : lower === 'senddocument' ? 'document' : undefined;
      const file = kind === undefined ? undefined : (params.get(kind) ?? '');
      const text = (kind === undefined ? params.get('text') : params.get('caption')) ?? '';
      if (!chatId) return { reply: telegramError(400, 'Bad Request: chat_id is empty'), rejected: 400 };
      if (kind !== undefined && !file)
        return { reply: telegramError(400, `Bad Request: there is no ${kind} in the request`), rejected: 400 };
      if (kind === undefined && !text.trim())
        return { reply: telegramError(400, 'Bad Request: message text is empty'), rejected: 400 };
      if ([...text].length > (kind === undefined ? 4096 : 1024))
        return {
          reply: telegramError(400, `Bad Request: ${kind === undefined ? 'message' : 'message caption'} is too long`),
          rejected: 400,
        };
      if (!CHAT_ID.test(chatId) || this.#unknown.has(chatId))
        return { reply: telegramError(400, 'Bad Request: chat not found'), rejected: 400 };
      if (this.#blocked.has(chatId))
        return { reply: telegramError(403, 'Forbidden: bot was blocked by the user'), rejected: 403 };

      const botWindow = this.#windows.get(botId);
      const chatWindow = this.#windows.get(`${botId}\u0000${chatId}`);
      const groupWindow =
        /^-\d+$/.test(chatId) || chatId.startsWith('@') ? this.#groupWindows.get(`${botId}\u0000${chatId}`) : undefined;
      const waitMs = Math.max(
        botWindow.waitMs(now, this.#options.perBot),
        chatWindow.waitMs(now, this.#options.perChat),
        groupWindow?.waitMs(now, this.#options.perGroupPerMinute) ?? 0,
      );
      if (waitMs > 0) return { reply: tooManyRequests(Math.max(1, Math.ceil(waitMs / 1000))), rateLimited: true };
      botWindow.add(now);
      chatWindow.add(now);
      groupWindow?.add(now);

      const messageId = this.nextMessageId(botId, chatId);
      const numericChat = /^-?\d+$/.test(chatId) ? Number(chatId) : undefined;
      const chat =
        numericChat === undefined
          ? {
              id: -1000000000000 - Number(botId.slice(-6)),
              title: chatId.slice(1),
              username: chatId.slice(1),
              type: 'channel',
            }
          : numericChat > 0
            ? { id: numericChat, first_name: 'Contact', type: 'private' }
            : { id: numericChat, title: 'Group', type: numericChat < -1000000000000 ? 'supergroup' : 'group' };
      const fileId = `sim${kind ?? ''}${messageId}`;
      const result = {
        message_id: messageId,
        from: { id: Number(botId), is_bot: true, first_name: 'Simulator', username: `sim${botId}_bot` },
        chat,
        date: Math.floor(now / 1000),
        ...(kind === undefined
          ? { text }
          : {
              ...(text === '' ? {} : { caption: text }),
              ...(kind === 'photo'
                ? { photo: [{ file_id: fileId, file_unique_id: fileId, width: 800, height: 600 }] }
                : { document: { file_id: fileId, file_unique_id: fileId } }),
            }),
      };
      const accepted: SimulatedMessage = {
        time: now,
        provider: 'telegram',
        channel: botId,
        path,
        sender: botId,
        recipient: chatId,
        text,
        providerMessageId: String(messageId),
        ...(key ? { idempotencyKey: key } : {}),
        ...(kind === undefined || file === undefined ? {} : { attachments: [{ url: file, kind }] }),
      };
      return { reply: { status: 200, body: { ok: true, result } }, accepted };
    };
    return { sender: botId, execute };
  }
}
