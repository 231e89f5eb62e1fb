/**
 * Telegram's Bot API `sendMessage`, `POST /bot{token}/sendMessage` (JSON, form or query parameters): `{"ok":true,
 * "result":<Message>}` or `{"ok":false,"error_code":N,"description":"…"}`, the flood limits (30 msg/s per bot, 1 msg/s
 * per chat) answered with 429 and `parameters.retry_after`. Telegram has no idempotency key: the relay's key, sent as
 * `X-Idempotency-Key`, is only kept in the simulator's log so duplicates can be counted.
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
}

export type ResolvedTelegram = Required<Omit<TelegramOptions, 'tokens'>> & Pick<TelegramOptions, 'tokens'>;

export const TELEGRAM_DEFAULTS: ResolvedTelegram = { blockedChats: [], unknownChats: [], perBot: 30, perChat: 1 };

const TOKEN = /^(\d+):([A-Za-z0-9_-]+)$/;
const CHAT_ID = /^(-?\d+|@[A-Za-z][A-Za-z0-9_]{4,})$/;

function telegramError(status: number, description: string, parameters?: Record<string, unknown>): Reply {
  return { status, body: { ok: false, error_code: status, description, ...(parameters ? { parameters } : {}) } };
}

const STATUS_TEXT: Record<number, string> = { 500: 'Internal Server Error', 502: 'Bad Gateway', 503: 'Service Unavailable' };

function tooManyRequests(retryAfter: number): Reply {
  return telegramError(429, `Too Many Requests: retry after ${retryAfter}`, { retry_after: retryAfter });
}

export class TelegramApi {
  readonly #options: ResolvedTelegram;
  readonly #blocked: Set<string>;
  readonly #unknown: Set<string>;
  readonly #nextMessageId = new Map<string, number>();
  readonly #windows: SlidingWindows;

  constructor(options: ResolvedTelegram, windowMs: number) {
    this.#options = options;
    this.#blocked = new Set(options.blockedChats.map(String));
    this.#unknown = new Set(options.unknownChats.map(String));
    this.#windows = new SlidingWindows(windowMs);
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
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return telegramError(400, "Bad Request: can't parse JSON object");
      for (const [k, v] of Object.entries(parsed)) out.set(k, typeof v === 'string' ? v : JSON.stringify(v));
      return out;
    }
    for (const [k, v] of new URLSearchParams(ex.body)) out.set(k, v);
    return out;
  }

  prepare(ex: Exchange, token: string, method: string): Prepared {
    const m = TOKEN.exec(token);
    if (!m) return { refuse: { reply: telegramError(404, 'Not Found'), code: 404 } };
    const botId = m[1]!;
    if (this.#options.tokens !== undefined && !this.#options.tokens.includes(token)) return { refuse: { reply: telegramError(401, 'Unauthorized'), code: 401 } };
    if (method.toLowerCase() !== 'sendmessage') return { sender: botId, refuse: { reply: telegramError(404, 'Not Found: method not found'), code: 404 } };
    const params = TelegramApi.params(ex);
    if (!(params instanceof Map)) return { sender: botId, refuse: { reply: params, code: 400 } };
    const key = ex.headers['x-idempotency-key'];
    const path = `/bot${botId}:***/${method}`;

    const execute = (now: number): Outcome => {
      const chatId = params.get('chat_id') ?? '';
      const text = params.get('text') ?? '';
      if (!chatId) return { reply: telegramError(400, 'Bad Request: chat_id is empty'), rejected: 400 };
      if (!text.trim()) return { reply: telegramError(400, 'Bad Request: message text is empty'), rejected: 400 };
      if ([...text].length > 4096) return { reply: telegramError(400, 'Bad Request: message is too long'), rejected: 400 };
      if (!CHAT_ID.test(chatId) || this.#unknown.has(chatId)) return { reply: telegramError(400, 'Bad Request: chat not found'), rejected: 400 };
      if (this.#blocked.has(chatId)) return { reply: telegramError(403, 'Forbidden: bot was blocked by the user'), rejected: 403 };

      const botWindow = this.#windows.get(botId);
      const chatWindow = this.#windows.get(`${botId}\u0000${chatId}`);
      const waitMs = Math.max(botWindow.waitMs(now, this.#options.perBot), chatWindow.waitMs(now, this.#options.perChat));
      if (waitMs > 0) return { reply: tooManyRequests(Math.max(1, Math.ceil(waitMs / 1000))), rateLimited: true };
      botWindow.add(now);
      chatWindow.add(now);

      const chatKey = `${botId}\u0000${chatId}`;
      const messageId = (this.#nextMessageId.get(chatKey) ?? 0) + 1;
      this.#nextMessageId.set(chatKey, messageId);
      const numericChat = /^-?\d+$/.test(chatId) ? Number(chatId) : undefined;
      const chat =
        numericChat === undefined
          ? { id: -1000000000000 - Number(botId.slice(-6)), title: chatId.slice(1), username: chatId.slice(1), type: 'channel' }
          : numericChat > 0
            ? { id: numericChat, first_name: 'Contact', type: 'private' }
            : { id: numericChat, title: 'Group', type: numericChat < -1000000000000 ? 'supergroup' : 'group' };
      const result = {
        message_id: messageId,
        from: { id: Number(botId), is_bot: true, first_name: 'Simulator', username: `sim${botId}_bot` },
        chat,
        date: Math.floor(now / 1000),
        text,
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
      };
      return { reply: { status: 200, body: { ok: true, result } }, accepted };
    };
    return { sender: botId, execute };
  }
}
