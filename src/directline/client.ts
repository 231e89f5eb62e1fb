/**
 * The relay's Direct Line 3.0 client for one account (its secret and base URL): the `DirectLinePort` of the
 * conversations stage. Contract: learn.microsoft.com/azure/bot-service/rest-api/bot-framework-rest-direct-line-3-0-*
 * (MicrosoftDocs/bot-docs `articles/rest-api/`); the readings no page settles are in assumptions.ts.
 */
import type http from 'node:http';
import { DirectLineError, isDirectLineError } from '../errors.js';
import { areaLogger, silentLogger, type Logger } from '../log.js';
import { functionOption, intOption, stringOption } from '../options.js';
import type { DirectLineActivity, DirectLineConversation, DirectLinePort } from '../pipeline/index.js';
import { REDACTED, refusal, readActivity, scrub, successBody, unreadable, type Operation } from './answers.js';
import { DEFAULT_TIMEOUT_MS } from './assumptions.js';
import { keepAliveAgent, NoAnswer, send, type Answer } from './http.js';
import { uploadBody } from './multipart.js';

export interface DirectLineClientOptions {
  /**
   * Where Direct Line is, without the API path: `https://directline.botframework.com`, a regional endpoint
   * (`https://europe.directline.botframework.com`, `https://india.directline.botframework.com`) or an emulator.
   */
  baseUrl: string;
  /** The account's Direct Line secret: sent by `start` and `renew` only, never logged nor put in an error. */
  secret: string;
  /** How long one call may take, connection and answer included, ms. @defaultValue 20000 (DirectLineJS's) */
  timeoutMs?: number;
  /** Most Get Activities pages one `activities` call reads (the rest on the next call). @defaultValue 50 */
  maxPages?: number;
  /** Where the debug line of each call goes (area `directline`). @defaultValue silentLogger() */
  log?: Logger;
  /**
   * The agent of every call (to bound sockets, or for a proxy). @defaultValue a keep-alive agent of the client's own,
   * destroyed by `close()`
   */
  agent?: http.Agent;
  /** The clock `tokenExpiresAt` is counted from, ms since the epoch. @defaultValue Date.now */
  now?: () => number;
}

/** A `DirectLinePort` with its life cycle. */
export interface DirectLineClient extends DirectLinePort {
  /** The base URL calls go to (without a trailing slash). */
  readonly baseUrl: string;
  /** Closes the client's own agent's sockets (an agent passed in is the caller's). Idempotent. */
  close(): void;
}

const COMPONENT = 'createDirectLineClient';
const API = '/v3/directline';
/** Get Activities pages per `activities` call: 1,000 activities at the emulator's 20 a page. */
const DEFAULT_MAX_PAGES = 50;

/** The base URL checked: http(s), no credentials, query or fragment; trailing slashes dropped. */
function baseUrlOption(value: unknown): URL {
  const text = stringOption(COMPONENT, 'baseUrl', value);
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new TypeError(`${COMPONENT}: baseUrl must be an http(s) URL, found ${JSON.stringify(text)}`);
  }
  if (
    (url.protocol !== 'https:' && url.protocol !== 'http:') ||
    url.username !== '' ||
    url.password !== '' ||
    url.search !== '' ||
    url.hash !== ''
  )
    throw new TypeError(
      `${COMPONENT}: baseUrl must be an http(s) URL without credentials, query or fragment, found ${JSON.stringify(text)}`,
    );
  url.pathname = url.pathname.replace(/\/+$/, '');
  return url;
}

/** Creates the client; checks its options once (a bad one throws a `TypeError` naming it). */
export function createDirectLineClient(options: DirectLineClientOptions): DirectLineClient {
  const base = baseUrlOption(options.baseUrl);
  const secret = stringOption(COMPONENT, 'secret', options.secret);
  const timeoutMs = intOption(COMPONENT, 'timeoutMs', options.timeoutMs, DEFAULT_TIMEOUT_MS, 1);
  const maxPages = intOption(COMPONENT, 'maxPages', options.maxPages, DEFAULT_MAX_PAGES, 1);
  const now = functionOption(COMPONENT, 'now', options.now ?? Date.now);
  const log = areaLogger(options.log ?? silentLogger(), 'directline');
  const ownAgent = options.agent === undefined ? keepAliveAgent(base) : undefined;
  const agent = options.agent ?? ownAgent!;
  const baseUrl = base.href.replace(/\/$/, '');

  interface Call {
    operation: Operation;
    method: 'GET' | 'POST';
    path: string;
    query?: Record<string, string>;
    /** The secret or the conversation's token. */
    auth: string;
    conversationId?: string;
    json?: unknown;
    body?: { contentType: string; data: Buffer };
    signal: AbortSignal | undefined;
  }

  /** One call: the 2xx answer and when the call started, or the `DirectLineError` thrown. */
  async function call(c: Call): Promise<{ answer: Answer; started: number }> {
    const url = new URL(`${baseUrl}${API}${c.path}`);
    for (const [name, value] of Object.entries(c.query ?? {})) url.searchParams.set(name, value);
    const headers: Record<string, string> = { authorization: `Bearer ${c.auth}`, accept: 'application/json' };
    let body: Buffer | undefined;
    if (c.json !== undefined) {
      headers['content-type'] = 'application/json; charset=utf-8';
      body = Buffer.from(JSON.stringify(c.json), 'utf8');
    } else if (c.body !== undefined) {
      headers['content-type'] = c.body.contentType;
      body = c.body.data;
    }
    const started = now();
    const sentAt = Date.now();
    const secrets = [secret, c.auth];
    const fields = {
      operation: c.operation,
      ...(c.conversationId === undefined ? {} : { conversationId: c.conversationId }),
    };
    let answer: Answer;
    try {
      answer = await send({
        method: c.method,
        url,
        headers,
        ...(body ? { body } : {}),
        timeoutMs,
        signal: c.signal,
        agent,
      });
    } catch (err) {
      if (!(err instanceof NoAnswer)) throw err;
      const failure = new DirectLineError(
        'DirectLineUnavailable',
        `Direct Line did not answer ${c.operation}: ${err.reason === 'timeout' ? err.message : `connection failed: ${scrub(err.message, secrets)}`}`,
        {
          cause: err,
          context: { ...fields, reason: err.reason, ...(err.errno === undefined ? {} : { errno: err.errno }) },
        },
      );
      log.debug('direct line call failed', { ...fields, durationMs: Date.now() - sentAt, outcome: failure.code });
      throw failure;
    }
    const ok = answer.status >= 200 && answer.status < 300;
    const error = ok ? undefined : refusal(c.operation, answer, secrets, c.conversationId);
    log.debug('direct line answered', {
      ...fields,
      status: answer.status,
      durationMs: Date.now() - sentAt,
      outcome: error?.code ?? 'ok',
    });
    if (error) throw error;
    return { answer, started };
  }

  /** The 2xx answer's JSON object, or throws `DirectLineAnswerUnreadable`. */
  function objectOf(c: Call, answer: Answer): Record<string, unknown> {
    const body = successBody(c.operation, answer, [secret, c.auth], c.conversationId);
    if (isDirectLineError(body)) throw body;
    return body;
  }

  /** What a token operation granted; `expiresIn` (seconds) undefined when the answer has no `expires_in`. */
  interface Grant {
    conversationId: string;
    token: string;
    expiresIn: number | undefined;
  }

  /**
   * A Conversation object (api-reference, "Conversation object": `conversationId`, `token`, `expires_in` seconds),
   * checked: the conversation asked for, a token, `expires_in` a number of seconds > 0 when there is one.
   */
  function grantOf(c: Call, answer: Answer): Grant {
    const body = objectOf(c, answer);
    const { conversationId, token, expires_in: expiresIn } = body;
    const bad = (why: string): DirectLineError =>
      unreadable(c.operation, answer, redacted(body), why, c.conversationId);
    const id = conversationId ?? c.conversationId;
    if (typeof id !== 'string' || id === '') throw bad('it names no conversationId');
    if (c.conversationId !== undefined && id !== c.conversationId)
      throw bad(`it names conversation ${id}, not ${c.conversationId}`);
    if (typeof token !== 'string' || token === '') throw bad('it holds no token');
    if (expiresIn !== undefined && (typeof expiresIn !== 'number' || !Number.isFinite(expiresIn) || expiresIn <= 0))
      throw bad(`its expires_in is not a number of seconds > 0 (${JSON.stringify(expiresIn)})`);
    return { conversationId: id, token, expiresIn };
  }

  /**
   * The port's conversation: `tokenExpiresAt` counted from when the call started, so never later than the service's
   * own count. An answer without `expires_in` is unreadable here (Start Conversation, Refresh Token document it).
   */
  function conversationOf(c: Call, answer: Answer, grant: Grant, started: number): DirectLineConversation {
    if (grant.expiresIn === undefined)
      throw unreadable(c.operation, answer, undefined, 'it has no expires_in', c.conversationId);
    return {
      conversationId: grant.conversationId,
      token: grant.token,
      tokenExpiresAt: started + grant.expiresIn * 1000,
    };
  }

  /** A ResourceResponse's `id` (send page: `{"id": "0001"}`). */
  function activityIdOf(c: Call, answer: Answer): string {
    const body = objectOf(c, answer);
    if (typeof body['id'] !== 'string' || body['id'] === '')
      throw unreadable(c.operation, answer, body, 'it holds no activity id', c.conversationId);
    return body['id'];
  }

  const conversationPath = (id: string, rest = ''): string => `/conversations/${encodeURIComponent(id)}${rest}`;

  async function refresh(conversation: DirectLineConversation, signal?: AbortSignal): Promise<DirectLineConversation> {
    const c: Call = {
      operation: 'refresh',
      method: 'POST',
      path: '/tokens/refresh',
      auth: conversation.token,
      conversationId: conversation.conversationId,
      signal,
    };
    const { answer, started } = await call(c);
    return conversationOf(c, answer, grantOf(c, answer), started);
  }

  return {
    baseUrl,

    async start(signal) {
      const c: Call = { operation: 'start', method: 'POST', path: '/conversations', auth: secret, signal };
      const { answer, started } = await call(c);
      return conversationOf(c, answer, grantOf(c, answer), started);
    },

    async renew(conversationId, signal) {
      const c: Call = {
        operation: 'renew',
        method: 'GET',
        path: conversationPath(conversationId),
        auth: secret,
        conversationId,
        signal,
      };
      const { answer, started } = await call(c);
      const grant = grantOf(c, answer);
      if (grant.expiresIn !== undefined) return conversationOf(c, answer, grant, started);
      // No expires_in (as in the reconnect page's example): a refreshed token's lifetime is documented.
      return refresh({ conversationId: grant.conversationId, token: grant.token, tokenExpiresAt: started }, signal);
    },

    refresh,

    async post(conversation, activity, signal) {
      const c: Call = {
        operation: 'post',
        method: 'POST',
        path: conversationPath(conversation.conversationId, '/activities'),
        auth: conversation.token,
        conversationId: conversation.conversationId,
        json: activity,
        signal,
      };
      const { answer } = await call(c);
      return activityIdOf(c, answer);
    },

    async upload(conversation, activity, files, signal) {
      const userId = activity.from?.id;
      if (typeof userId !== 'string' || userId === '')
        throw new TypeError('DirectLineClient.upload: the activity needs a from.id (the userId of the upload)');
      if (files.length === 0) throw new TypeError('DirectLineClient.upload: at least one file is needed');
      const { contentType, body } = uploadBody(activity, files);
      const c: Call = {
        operation: 'upload',
        method: 'POST',
        path: conversationPath(conversation.conversationId, '/upload'),
        query: { userId },
        auth: conversation.token,
        conversationId: conversation.conversationId,
        body: { contentType, data: body },
        signal,
      };
      const { answer } = await call(c);
      return activityIdOf(c, answer);
    },

    async activities(conversation, watermark, signal) {
      const read: DirectLineActivity[] = [];
      let mark = watermark;
      for (let page = 0; page < maxPages; page++) {
        const c: Call = {
          operation: 'activities',
          method: 'GET',
          path: conversationPath(conversation.conversationId, '/activities'),
          ...(mark === undefined ? {} : { query: { watermark: mark } }),
          auth: conversation.token,
          conversationId: conversation.conversationId,
          signal,
        };
        const { answer } = await call(c);
        const body = objectOf(c, answer);
        const { activities, watermark: next } = body;
        if (!Array.isArray(activities))
          throw unreadable(
            c.operation,
            answer,
            body,
            'it is not an ActivitySet (no activities list)',
            c.conversationId,
          );
        if (next !== undefined && next !== null && typeof next !== 'string')
          throw unreadable(c.operation, answer, body, 'its watermark is not a string', c.conversationId);
        for (const value of activities) {
          const activity = readActivity(value);
          if (typeof activity === 'string') throw unreadable(c.operation, answer, body, activity, c.conversationId);
          read.push(activity);
        }
        const moved = typeof next === 'string' && next !== mark;
        if (typeof next === 'string') mark = next;
        if (activities.length === 0 || !moved) break;
      }
      return { activities: read, watermark: mark };
    },

    close() {
      ownAgent?.destroy();
    },
  };
}

/** A Conversation object fit to keep on an error: its token and stream URL (a credential too) replaced. */
function redacted(body: Record<string, unknown>): Record<string, unknown> {
  const out = { ...body };
  for (const key of ['token', 'streamUrl']) if (key in out) out[key] = REDACTED;
  return out;
}
