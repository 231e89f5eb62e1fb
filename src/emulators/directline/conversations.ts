/**
 * Direct Line's state: secrets, tokens, conversations and their activities, watermarks, stream tickets. Time comes
 * from the clock given (expiry is decided when a call arrives, never by a timer), so a test moves it at will.
 */
import { randomBytes } from 'node:crypto';
import { ERROR_CODES, formatWatermark, parseWatermark } from './assumptions.js';

/** A Bot Framework activity as the emulator keeps it: the fields it reads, the rest kept as given. */
export interface Activity {
  type: string;
  id?: string;
  timestamp?: string;
  channelId?: string;
  conversation?: { id: string };
  from?: { id: string; name?: string; role?: string };
  text?: string;
  attachments?: Array<{ contentType?: string; contentUrl?: string; name?: string; content?: unknown }>;
  channelData?: unknown;
  [key: string]: unknown;
}

export interface ActivitySet {
  activities: Activity[];
  watermark?: string;
}

/** An answer to a Direct Line call. */
export interface Reply {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

/** A refusal, thrown by the state and written by the server. */
export class DirectLineRefusal extends Error {
  readonly reply: Reply;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.reply = { status, body: { error: { code, message } } };
  }
}

export const refuse = (status: number, code: string, message: string): DirectLineRefusal =>
  new DirectLineRefusal(status, code, message);

interface TokenRecord {
  conversationId: string;
  expiresAt: number;
  userId?: string;
}

interface StreamTicket {
  conversationId: string;
  /** The stream replays the activities after this position. */
  from: number;
  expiresAt: number;
}

export interface Conversation {
  id: string;
  createdAt: number;
  /** Set by Start Conversation (a token from Generate Token names a conversation not started yet). */
  started: boolean;
  lastActivityAt: number;
  activities: Activity[];
  /** Live stream subscribers: each gets every ActivitySet pushed from now on. */
  subscribers: Set<(set: ActivitySet) => void>;
}

/** Who a call authenticated as. */
export type Caller = { kind: 'secret' } | { kind: 'token'; token: string; record: TokenRecord };

export interface StateOptions {
  secrets: readonly string[];
  tokenLifetimeMs: number;
  idleMs: number;
  streamWindowMs: number;
  pageSize: number;
  clock: () => number;
  /** Told when a conversation ends by idling (the server closes its streams). */
  onExpired: (conversation: Conversation) => void;
}

export class DirectLineState {
  readonly #o: StateOptions;
  readonly #tokens = new Map<string, TokenRecord>();
  readonly #tickets = new Map<string, StreamTicket>();
  readonly #conversations = new Map<string, Conversation>();

  constructor(options: StateOptions) {
    this.#o = options;
  }

  /** The caller named by an `Authorization: Bearer …` header; 401 without one or for an unknown secret or token, 403 TokenExpired for an expired token. */
  authenticate(authorization: string | undefined): Caller {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
    if (!m)
      throw refuse(
        401,
        ERROR_CODES.unauthorized,
        'Missing or malformed Authorization header: expected "Bearer <secret or token>"',
      );
    const value = m[1]!;
    if (this.#o.secrets.includes(value)) return { kind: 'secret' };
    const record = this.#tokens.get(value);
    if (!record) throw refuse(401, ERROR_CODES.unauthorized, 'Invalid token or secret');
    if (this.#o.clock() >= record.expiresAt) throw refuse(403, ERROR_CODES.tokenExpired, 'Token expired');
    return { kind: 'token', token: value, record };
  }

  #issueToken(conversationId: string, userId: string | undefined): { token: string; expires_in: number } {
    const token = `dl.${randomBytes(30).toString('base64url')}`;
    this.#tokens.set(token, {
      conversationId,
      expiresAt: this.#o.clock() + this.#o.tokenLifetimeMs,
      ...(userId === undefined ? {} : { userId }),
    });
    return { token, expires_in: Math.floor(this.#o.tokenLifetimeMs / 1000) };
  }

  #newConversation(started: boolean): Conversation {
    const now = this.#o.clock();
    const c: Conversation = {
      id: randomBytes(16).toString('base64url'),
      createdAt: now,
      started,
      lastActivityAt: now,
      activities: [],
      subscribers: new Set(),
    };
    this.#conversations.set(c.id, c);
    return c;
  }

  /** The conversation, or 404 for an unknown one and for one that idled out (which is then forgotten). */
  conversation(id: string): Conversation {
    const c = this.#conversations.get(id);
    if (!c) throw refuse(404, ERROR_CODES.notFound, 'Unknown conversation');
    if (this.#o.clock() - c.lastActivityAt >= this.#o.idleMs) {
      this.#conversations.delete(id);
      this.#o.onExpired(c);
      throw refuse(404, ERROR_CODES.notFound, 'Unknown conversation');
    }
    return c;
  }

  /** The conversation a call names, checked against its caller: 403 for a token of another conversation. */
  authorized(caller: Caller, id: string): Conversation {
    if (caller.kind === 'token' && caller.record.conversationId !== id)
      throw refuse(403, ERROR_CODES.forbidden, 'Token not valid for this conversation');
    const c = this.conversation(id);
    if (!c.started) throw refuse(404, ERROR_CODES.notFound, 'Unknown conversation');
    return c;
  }

  /** Generate Token: a token for a conversation to be started with it. */
  generateToken(userId: string | undefined): { conversationId: string; token: string; expires_in: number } {
    const c = this.#newConversation(false);
    return { conversationId: c.id, ...this.#issueToken(c.id, userId) };
  }

  /** Refresh Token: a new token for the same conversation (the old one stays valid until its own expiry). */
  refreshToken(caller: Caller): { conversationId: string; token: string; expires_in: number } {
    if (caller.kind !== 'token')
      throw refuse(400, ERROR_CODES.badArgument, 'Only a token can be refreshed, not a secret');
    this.conversation(caller.record.conversationId);
    return {
      conversationId: caller.record.conversationId,
      ...this.#issueToken(caller.record.conversationId, caller.record.userId),
    };
  }

  /**
   * Start Conversation: with a secret, a new conversation (201); with a token from Generate Token, its conversation
   * (201 the first time, 200 after).
   */
  start(
    caller: Caller,
    streamBase: string,
  ): { status: 200 | 201; conversation: Conversation; body: Record<string, unknown> } {
    let c: Conversation;
    let status: 200 | 201 = 201;
    let tokenBody: { token: string; expires_in: number };
    if (caller.kind === 'secret') {
      c = this.#newConversation(true);
      tokenBody = this.#issueToken(c.id, undefined);
    } else {
      c = this.conversation(caller.record.conversationId);
      if (c.started) status = 200;
      c.started = true;
      tokenBody = {
        token: caller.token,
        expires_in: Math.max(0, Math.floor((caller.record.expiresAt - this.#o.clock()) / 1000)),
      };
    }
    return {
      status,
      conversation: c,
      body: { conversationId: c.id, ...tokenBody, streamUrl: this.#streamUrl(streamBase, c, c.activities.length) },
    };
  }

  /** Get Conversation (reconnect): a new stream URL replaying from `watermark` (or from now), and a token. */
  reconnect(caller: Caller, id: string, watermark: string | undefined, streamBase: string): Record<string, unknown> {
    const c = this.authorized(caller, id);
    const from =
      watermark === undefined || watermark === '' ? c.activities.length : (parseWatermark(c.id, watermark) ?? 0);
    const token =
      caller.kind === 'token'
        ? {
            token: caller.token,
            expires_in: Math.max(0, Math.floor((caller.record.expiresAt - this.#o.clock()) / 1000)),
          }
        : this.#issueToken(c.id, undefined);
    return {
      conversationId: c.id,
      ...token,
      streamUrl: this.#streamUrl(streamBase, c, Math.min(from, c.activities.length)),
    };
  }

  #streamUrl(base: string, c: Conversation, from: number): string {
    const now = this.#o.clock();
    for (const [key, t] of this.#tickets) if (now >= t.expiresAt) this.#tickets.delete(key);
    const ticket = randomBytes(24).toString('base64url');
    this.#tickets.set(ticket, {
      conversationId: c.id,
      from,
      expiresAt: now + this.#o.streamWindowMs,
    });
    const watermark = from > 0 ? `&watermark=${formatWatermark(c.id, from)}` : '';
    return `${base}/v3/directline/conversations/${encodeURIComponent(c.id)}/stream?t=${ticket}${watermark}`;
  }

  /** Checks a stream URL's ticket (used once: it is forgotten here; within the connect window); returns the conversation and where to replay from. */
  openStream(conversationId: string, ticket: string | null): { conversation: Conversation; from: number } {
    const t = ticket === null ? undefined : this.#tickets.get(ticket);
    if (!t || t.conversationId !== conversationId) throw refuse(403, ERROR_CODES.forbidden, 'Invalid stream URL');
    this.#tickets.delete(ticket!);
    if (this.#o.clock() >= t.expiresAt)
      throw refuse(
        403,
        ERROR_CODES.tokenExpired,
        'Stream URL expired: ask for a new one (GET /v3/directline/conversations/{id})',
      );
    return { conversation: this.conversation(conversationId), from: t.from };
  }

  /** Get Activities: at most a page of activities after `watermark`, and the watermark of the last one given. */
  activities(c: Conversation, watermark: string | undefined): ActivitySet {
    const from = watermark === undefined || watermark === '' ? 0 : (parseWatermark(c.id, watermark) ?? 0);
    const page = c.activities.slice(from, from + this.#o.pageSize);
    const end = Math.min(from + page.length, c.activities.length);
    return {
      activities: structuredClone(page),
      watermark: formatWatermark(c.id, Math.max(end, Math.min(from, c.activities.length))),
    };
  }

  /** The activities after `from`, as one ActivitySet (the stream's replay), or undefined when there are none. */
  since(c: Conversation, from: number): ActivitySet | undefined {
    if (from >= c.activities.length) return undefined;
    return {
      activities: structuredClone(c.activities.slice(from)),
      watermark: formatWatermark(c.id, c.activities.length),
    };
  }

  /** Appends an activity (id, timestamp, channel and conversation filled in), pushes it to the stream, returns it. */
  append(c: Conversation, activity: Activity): Activity {
    const now = this.#o.clock();
    const stored: Activity = {
      ...activity,
      id: `${c.id}|${String(c.activities.length).padStart(7, '0')}`,
      timestamp: new Date(now).toISOString(),
      channelId: 'directline',
      conversation: { id: c.id },
    };
    c.activities.push(stored);
    c.lastActivityAt = now;
    const set: ActivitySet = {
      activities: [structuredClone(stored)],
      watermark: formatWatermark(c.id, c.activities.length),
    };
    for (const push of c.subscribers) push(set);
    return stored;
  }

  /** Pushes an activity to the stream only (typing): no id, no watermark, not in Get Activities. */
  pushOnly(c: Conversation, activity: Activity): void {
    const set: ActivitySet = {
      activities: [
        {
          ...activity,
          channelId: 'directline',
          conversation: { id: c.id },
          timestamp: new Date(this.#o.clock()).toISOString(),
        },
      ],
    };
    for (const push of c.subscribers) push(set);
  }

  /** Every conversation (started or not) that has not idled out, oldest first. */
  all(): Conversation[] {
    return [...this.#conversations.values()];
  }
}
