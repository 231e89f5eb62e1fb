/**
 * Starting and stopping the Direct Line emulator: Direct Line 3.0 (HTTP and the WebSocket stream) with the
 * Omnichannel agents behind it and `/_simulator/` on one `node:http` listener, and the identity platform's token
 * endpoint on an HTTPS listener of its own (MSAL accepts only an `https:` authority).
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { delayUnlessAborted } from '../../abort.js';
import { lowerHeaders, readBodyBytes } from '../../http/index.js';
import { areaLogger, silentLogger, type Logger } from '../../log.js';
import { AGENT_DEFAULTS, OmnichannelAgents, type AgentOptions, type ConversationRecord } from './agents.js';
import {
  ACTIVITIES_PAGE_SIZE,
  CONVERSATION_IDLE_SECONDS,
  ERROR_CODES,
  STREAM_CONNECT_WINDOW_SECONDS,
  TOKEN_LIFETIME_SECONDS,
} from './assumptions.js';
import {
  DirectLineRefusal,
  DirectLineState,
  refuse,
  type Activity,
  type Caller,
  type Conversation,
  type Reply,
} from './conversations.js';
import { FaultPlan, faultsSpecProblems, type FaultAction, type FaultScope, type FaultsSpec } from './faults.js';
import { IDENTITY_DEFAULTS, IdentityPlatform, type IdentityOptions, type TokenRequestRecord } from './identity.js';
import { selfSignedCertificate } from './tls.js';
import { parseUpload } from './upload.js';

export interface DirectLineEmulatorOptions {
  /** Port of Direct Line and `/_simulator/`; 0 picks a free one. @defaultValue 0 */
  port?: number;
  /** Port of the identity platform's HTTPS listener; 0 picks a free one. @defaultValue 0 */
  identityPort?: number;
  /** Address both listen on. @defaultValue '127.0.0.1' */
  host?: string;
  /**
   * More names the identity listener's certificate covers besides the host, `localhost`, `127.0.0.1` and `::1` (a
   * container's service name, when clients reach it by that name). @defaultValue []
   */
  identityHostNames?: string[];
  /** The Direct Line secrets of the bot (each opens any conversation). @defaultValue ['emulated-directline-secret'] */
  secrets?: string[];
  /** `expires_in` of Direct Line tokens, seconds. @defaultValue 1800 */
  tokenLifetimeSeconds?: number;
  /** A conversation without a new activity for this long answers 404 from then on, seconds. @defaultValue 86400 */
  conversationIdleSeconds?: number;
  /** How long a stream URL may wait for its connection, seconds. @defaultValue 60 */
  streamConnectWindowSeconds?: number;
  /** Most activities in one Get Activities answer. @defaultValue 20 */
  pageSize?: number;
  /** Interval of the stream's empty keep-alive messages, ms; 0: none. @defaultValue 30_000 */
  keepAliveMs?: number;
  /** Largest upload body, bytes (413 above). @defaultValue 4 MiB */
  maxUploadBytes?: number;
  /** The simulated Omnichannel agents. @defaultValue AGENT_DEFAULTS */
  agents?: AgentOptions;
  /** Apps, secrets and tenants of the identity platform. @defaultValue IDENTITY_DEFAULTS */
  identity?: IdentityOptions;
  /** Fault settings from the start (as a first `setFaults`). @defaultValue {} */
  faults?: FaultsSpec;
  /** Seed of the generator behind `errorRate`. @defaultValue a random seed */
  seed?: number;
  /** The emulator's clock (token and conversation expiry, timestamps), ms since the epoch. @defaultValue Date.now */
  clock?: () => number;
  /** @defaultValue silentLogger() */
  log?: Logger;
}

export interface DirectLineEmulator {
  /** `http://<host>:<port>`: the Direct Line base URL (`…/v3/directline/…` follows) and `/_simulator/`. */
  url: string;
  port: number;
  /** `https://<host>:<port>`: the identity platform's authority host (`…/{tenant}/oauth2/v2.0/token` follows). */
  identityUrl: string;
  /** The identity listener's self-signed certificate (PEM): a client trusts it as its CA. */
  identityCa: string;
  /** The simulated conversations as the agents saw them, oldest first. */
  conversations(): ConversationRecord[];
  /** Every token request the identity platform answered. */
  tokenRequests(): TokenRequestRecord[];
  /** Replaces the fault settings of each scope named; throws a TypeError for bad settings. */
  setFaults(spec: FaultsSpec): void;
  faults(): FaultsSpec;
  clearFaults(): void;
  /** Closes every open stream as the service may ("forcibly close the WebSocket connection"); returns how many. */
  closeStreams(): number;
  /** Agent replies scheduled and not sent yet. */
  pendingReplies(): number;
  /** Stops the agents, closes every stream and connection, stops listening. Idempotent. */
  close(): Promise<void>;
}

const MIB = 1024 * 1024;
const JSON_BODY_LIMIT = MIB;
const UPLOAD_RETENTION_MS = 24 * 3600 * 1000;
/** A 1×1 PNG: the content of every simulated agent blob. */
const BLOB_PNG = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==',
  'base64',
);
const STREAM_PATH = /^\/v3\/directline\/conversations\/([^/]+)\/stream$/;
const CONVERSATION_PATH = /^\/v3\/directline\/conversations\/([^/]+)(\/activities|\/upload)?$/;

/** A conversation id from the path; a malformed escape names no conversation (404, never a 500). */
function pathSegment(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw refuse(404, ERROR_CODES.notFound, 'Unknown conversation');
  }
}

function check(condition: boolean, message: string): void {
  if (!condition) throw new TypeError(`startDirectLineEmulator: ${message}`);
}

const positive = (v: unknown): boolean => typeof v === 'number' && Number.isFinite(v) && v > 0;
const isPort = (v: unknown): boolean => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 65535;

function resolveOptions(o: DirectLineEmulatorOptions) {
  const r = {
    port: o.port ?? 0,
    identityPort: o.identityPort ?? 0,
    host: o.host ?? '127.0.0.1',
    identityHostNames: o.identityHostNames ?? [],
    secrets: o.secrets ?? ['emulated-directline-secret'],
    tokenLifetimeSeconds: o.tokenLifetimeSeconds ?? TOKEN_LIFETIME_SECONDS,
    conversationIdleSeconds: o.conversationIdleSeconds ?? CONVERSATION_IDLE_SECONDS,
    streamConnectWindowSeconds: o.streamConnectWindowSeconds ?? STREAM_CONNECT_WINDOW_SECONDS,
    pageSize: o.pageSize ?? ACTIVITIES_PAGE_SIZE,
    keepAliveMs: o.keepAliveMs ?? 30_000,
    maxUploadBytes: o.maxUploadBytes ?? 4 * MIB,
    agents: { ...AGENT_DEFAULTS, ...o.agents },
    identity: { ...IDENTITY_DEFAULTS, ...o.identity },
  };
  check(isPort(r.port), `port must be an integer 0-65535, found ${String(o.port)}`);
  check(isPort(r.identityPort), `identityPort must be an integer 0-65535, found ${String(o.identityPort)}`);
  check(typeof r.host === 'string' && r.host !== '', `host must be a host name or address, found ${String(o.host)}`);
  check(
    Array.isArray(r.identityHostNames) &&
      r.identityHostNames.every((n) => typeof n === 'string' && /^[A-Za-z0-9.:-]+$/.test(n)),
    `identityHostNames must be a list of host names, found ${JSON.stringify(o.identityHostNames)}`,
  );
  check(
    Array.isArray(r.secrets) && r.secrets.length > 0 && r.secrets.every((s) => typeof s === 'string' && s.length >= 8),
    'secrets must be a non-empty list of strings of 8 characters or more',
  );
  for (const key of [
    'tokenLifetimeSeconds',
    'conversationIdleSeconds',
    'streamConnectWindowSeconds',
    'maxUploadBytes',
  ] as const)
    check(positive(r[key]), `${key} must be a number > 0, found ${String(r[key])}`);
  check(
    Number.isInteger(r.pageSize) && r.pageSize >= 1,
    `pageSize must be an integer >= 1, found ${String(r.pageSize)}`,
  );
  check(
    typeof r.keepAliveMs === 'number' && r.keepAliveMs >= 0,
    `keepAliveMs must be ms >= 0, found ${String(r.keepAliveMs)}`,
  );
  const a = r.agents;
  check(Array.isArray(a.channels), 'agents.channels must be a list of channels');
  const types = new Set<string>();
  a.channels.forEach((ch, i) => {
    check(
      typeof ch === 'object' &&
        ch !== null &&
        typeof ch.channelType === 'string' &&
        ch.channelType !== '' &&
        typeof ch.workstream === 'string' &&
        ch.workstream !== '',
      `agents.channels[${i}] must have a channelType and a workstream, found ${JSON.stringify(ch)}`,
    );
    check(
      !types.has(ch.channelType),
      `agents.channels[${i}].channelType '${ch.channelType}' is used twice (one channel per channel type)`,
    );
    types.add(ch.channelType);
    if (ch.surveyUrl !== undefined)
      check(
        /^https?:\/\//.test(ch.surveyUrl),
        `agents.channels[${i}].surveyUrl must be an http(s) URL, found ${JSON.stringify(ch.surveyUrl)}`,
      );
  });
  check(
    typeof a.replyDelayMs === 'number' && a.replyDelayMs >= 0,
    `agents.replyDelayMs must be ms >= 0, found ${String(a.replyDelayMs)}`,
  );
  for (const key of ['endAfterTurns', 'attachmentEvery'] as const)
    check(Number.isInteger(a[key]) && a[key] >= 0, `agents.${key} must be an integer >= 0, found ${String(a[key])}`);
  const id = r.identity;
  check(Array.isArray(id.apps) && Array.isArray(id.tenants), 'identity.apps and identity.tenants must be lists');
  id.apps.forEach((app, i) => {
    check(
      typeof app === 'object' &&
        app !== null &&
        /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(app.clientId),
      `identity.apps[${i}].clientId must be a GUID, found ${JSON.stringify(app?.clientId)}`,
    );
    check(
      Array.isArray(app.secrets) &&
        app.secrets.every(
          (s) =>
            typeof s?.value === 'string' &&
            s.value !== '' &&
            (s.expiresAt === undefined ||
              !Number.isNaN(typeof s.expiresAt === 'number' ? s.expiresAt : Date.parse(s.expiresAt))),
        ),
      `identity.apps[${i}].secrets must be a list of {value, expiresAt?: ISO 8601 or ms}`,
    );
  });
  check(
    positive(id.tokenLifetimeSeconds),
    `identity.tokenLifetimeSeconds must be > 0, found ${String(id.tokenLifetimeSeconds)}`,
  );
  const problems = o.faults === undefined ? [] : faultsSpecProblems(o.faults);
  check(problems.length === 0, problems.join('; '));
  check(o.seed === undefined || Number.isInteger(o.seed), `seed must be an integer, found ${String(o.seed)}`);
  return r;
}

/** Reads a body up to `limit` bytes; rejects with a 413 refusal past it (the rest is read and dropped). */
function readRaw(req: IncomingMessage, limit: number): Promise<Buffer> {
  return readBodyBytes(req, limit, () => refuse(413, ERROR_CODES.tooLarge, `the request body exceeds ${limit} bytes`));
}

function write(res: ServerResponse, reply: Reply): void {
  if (res.headersSent || res.destroyed) return;
  if (Buffer.isBuffer(reply.body)) {
    res.writeHead(reply.status, { 'Content-Length': String(reply.body.length), ...reply.headers });
    res.end(reply.body);
    return;
  }
  const text = JSON.stringify(reply.body);
  res.writeHead(reply.status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': String(Buffer.byteLength(text)),
    ...reply.headers,
  });
  res.end(text);
}

function faultReply(action: Exclude<FaultAction, { kind: 'none' }>): Reply {
  if (action.kind === 'rateLimit')
    return {
      status: 429,
      body: {
        error: { code: ERROR_CODES.throttled, message: `Too many requests: retry after ${action.retryAfterSeconds} s` },
      },
      headers: { 'Retry-After': String(action.retryAfterSeconds) },
    };
  const code = action.status === 502 ? ERROR_CODES.botFailed : ERROR_CODES.serviceError;
  return {
    status: action.status,
    body: {
      error: {
        code,
        message: action.status === 502 ? 'Failed to send activity: bot returned an error' : 'Internal service error',
      },
    },
  };
}

function identityFaultReply(action: Exclude<FaultAction, { kind: 'none' }>): Reply {
  if (action.kind === 'rateLimit')
    return {
      status: 429,
      body: {
        error: 'temporarily_unavailable',
        error_description: 'The service is temporarily unavailable (injected 429).',
      },
      headers: { 'Retry-After': String(action.retryAfterSeconds) },
    };
  return {
    status: action.status,
    body: { error: 'server_error', error_description: `The server failed (injected ${action.status}).` },
  };
}

async function listen(server: Server, port: number, host: string): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return (server.address() as AddressInfo).port;
}

export async function startDirectLineEmulator(options: DirectLineEmulatorOptions = {}): Promise<DirectLineEmulator> {
  const o = resolveOptions(options);
  const clock = options.clock ?? Date.now;
  const log = areaLogger(options.log ?? silentLogger(), 'directline-emulator');
  const debug = log.isDebugEnabled();
  const faults = new FaultPlan(options.seed ?? Math.floor(Math.random() * 2 ** 31));
  if (options.faults) faults.set(options.faults);
  /** The open stream of each conversation (one per conversation). */
  const streams = new Map<string, WebSocket>();
  /** Uploaded files by key; each is served for 24 h ("Uploaded files are deleted after 24 hours", api-reference). */
  const uploads = new Map<string, { contentType: string; data: Buffer; at: number }>();
  const hostPart = o.host.includes(':') ? `[${o.host}]` : o.host;
  let url = '';

  const state: DirectLineState = new DirectLineState({
    secrets: o.secrets,
    tokenLifetimeMs: o.tokenLifetimeSeconds * 1000,
    idleMs: o.conversationIdleSeconds * 1000,
    streamWindowMs: o.streamConnectWindowSeconds * 1000,
    pageSize: o.pageSize,
    clock,
    onExpired: (c) => {
      streams.get(c.id)?.close(1000, 'conversation expired');
      agents.expired(c.id);
    },
  });
  const live = (id: string): Conversation | undefined => {
    try {
      return state.conversation(id);
    } catch {
      return undefined;
    }
  };
  const agents: OmnichannelAgents = new OmnichannelAgents(o.agents, {
    post: (id, activity) => {
      const c = live(id);
      if (!c) return false;
      Object.assign(activity, state.append(c, activity));
      return true;
    },
    typing: (id, from) => {
      const c = live(id);
      if (c) state.pushOnly(c, { type: 'typing', ...(from ? { from } : {}) });
    },
    blobUrl: (name) => `${url}/_simulator/blobs/${encodeURIComponent(name)}`,
    clock,
  });
  const identity = new IdentityPlatform(o.identity, clock);

  /** The Direct Line call `method path`, for a caller already past faults; throws DirectLineRefusal. */
  async function directLine(req: IncomingMessage, path: string, query: URLSearchParams): Promise<Reply> {
    const method = req.method ?? 'GET';
    const headers = lowerHeaders(req);
    const caller: Caller = state.authenticate(headers['authorization']);
    const jsonBody = async (): Promise<Record<string, unknown> | undefined> => {
      const raw = await readRaw(req, JSON_BODY_LIMIT);
      if (raw.length === 0) return undefined;
      let parsed: unknown;
      try {
        parsed = JSON.parse(raw.toString('utf8'));
      } catch {
        throw refuse(400, ERROR_CODES.badArgument, 'The request body is not JSON');
      }
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
        throw refuse(400, ERROR_CODES.badArgument, 'The request body must be a JSON object');
      return parsed as Record<string, unknown>;
    };
    if (path === '/v3/directline/tokens/generate' && method === 'POST') {
      if (caller.kind !== 'secret')
        throw refuse(403, ERROR_CODES.forbidden, 'Generate Token takes a secret, not a token');
      const body = await jsonBody();
      const user = body?.['user'] ?? body?.['User'];
      const userId =
        typeof user === 'object' && user !== null
          ? ((user as Record<string, unknown>)['id'] ?? (user as Record<string, unknown>)['Id'])
          : undefined;
      return {
        status: 200,
        body: state.generateToken(typeof userId === 'string' && userId !== '' ? userId : undefined),
      };
    }
    if (path === '/v3/directline/tokens/refresh' && method === 'POST')
      return { status: 200, body: state.refreshToken(caller) };
    if (path === '/v3/directline/conversations' && method === 'POST') {
      const started = state.start(caller, url.replace(/^http/, 'ws'));
      if (started.status === 201) agents.started(started.conversation.id);
      return { status: started.status, body: started.body };
    }
    const m = CONVERSATION_PATH.exec(path);
    if (!m) throw refuse(404, ERROR_CODES.notFound, `No Direct Line route for ${method} ${path}`);
    const id = pathSegment(m[1]!);
    if (m[2] === undefined && method === 'GET')
      return {
        status: 200,
        body: state.reconnect(caller, id, query.get('watermark') ?? undefined, url.replace(/^http/, 'ws')),
      };
    if (m[2] === '/activities' && method === 'GET')
      return { status: 200, body: state.activities(state.authorized(caller, id), query.get('watermark') ?? undefined) };
    if (m[2] === '/activities' && method === 'POST') {
      const c = state.authorized(caller, id);
      const body = await jsonBody();
      if (!body) throw refuse(400, ERROR_CODES.badArgument, 'Missing activity');
      if (typeof body['type'] !== 'string' || body['type'] === '')
        throw refuse(400, ERROR_CODES.badArgument, 'The activity has no type');
      const activity = body as Activity;
      const userId = caller.kind === 'token' ? caller.record.userId : undefined;
      if (userId !== undefined)
        activity.from = {
          ...(typeof activity.from === 'object' && activity.from !== null ? activity.from : {}),
          id: userId,
        };
      if (typeof activity.from?.id !== 'string' || activity.from.id === '')
        throw refuse(400, ERROR_CODES.badArgument, 'The activity has no from.id');
      const stored = state.append(c, { ...activity, from: { ...activity.from, role: 'user' } });
      agents.customer(c.id, stored);
      return { status: 200, body: { id: stored.id } };
    }
    if (m[2] === '/upload' && method === 'POST') {
      const c = state.authorized(caller, id);
      const userId = query.get('userId');
      if (!userId) throw refuse(400, ERROR_CODES.badArgument, 'The userId query parameter is required');
      const raw = await readRaw(req, o.maxUploadBytes);
      let parsed;
      try {
        parsed = parseUpload(headers['content-type'], headers['content-disposition'], raw);
      } catch (err) {
        throw refuse(400, ERROR_CODES.badArgument, (err as Error).message);
      }
      const attachments = parsed.files.map((f) => {
        const key = randomBytes(12).toString('base64url');
        uploads.set(key, { contentType: f.contentType, data: f.data, at: clock() });
        return {
          contentType: f.contentType,
          contentUrl: `${url}/attachments/${key}/${encodeURIComponent(f.name)}`,
          name: f.name,
        };
      });
      const base: Activity = parsed.activity ?? { type: 'message' };
      const stored = state.append(c, {
        ...base,
        type: typeof base.type === 'string' && base.type !== '' ? base.type : 'message',
        from: {
          ...(base.from ?? {}),
          id: caller.kind === 'token' && caller.record.userId !== undefined ? caller.record.userId : userId,
          role: 'user',
        },
        attachments: [...(base.attachments ?? []), ...attachments],
      });
      agents.customer(c.id, stored);
      return { status: 200, body: { id: stored.id } };
    }
    throw refuse(405, ERROR_CODES.badArgument, `${method} is not allowed on ${path}`);
  }

  async function withFaults(
    scope: FaultScope,
    res: ServerResponse,
    render: (a: Exclude<FaultAction, { kind: 'none' }>) => Reply,
    run: () => Promise<Reply>,
  ): Promise<void> {
    const decision = faults.decide(scope);
    if (decision.delayMs > 0) await delayUnlessAborted(decision.delayMs);
    const action = decision.action;
    if (action.kind === 'rateLimit' || (action.kind === 'error' && !action.afterAccept))
      return write(res, render(action));
    const reply = await run();
    write(res, action.kind === 'error' ? render(action) : reply);
  }

  /** `/_simulator/…`: the record, the faults, the streams, the blobs. */
  function control(method: string, path: string, body: string): Reply {
    const route = `${method} ${path}`;
    if (method === 'GET' && path.startsWith('/_simulator/blobs/'))
      return { status: 200, body: BLOB_PNG, headers: { 'Content-Type': 'image/png' } };
    const one = /^GET \/_simulator\/conversations\/([^/]+)$/.exec(route);
    if (one) {
      const id = pathSegment(one[1]!);
      live(id);
      const r = agents.record(id);
      return r
        ? { status: 200, body: r }
        : { status: 404, body: { error: { code: 'NotFound', message: `no conversation ${id}` } } };
    }
    switch (route) {
      case 'GET /_simulator/conversations':
        for (const c of state.all()) live(c.id);
        return { status: 200, body: agents.records() };
      case 'DELETE /_simulator/conversations':
        agents.reset();
        identity.reset();
        return { status: 200, body: { reset: true } };
      case 'GET /_simulator/identity/requests':
        return { status: 200, body: identity.requests() };
      case 'GET /_simulator/faults':
        return { status: 200, body: faults.current() };
      case 'PUT /_simulator/faults': {
        let spec: unknown;
        try {
          spec = JSON.parse(body);
        } catch {
          return { status: 400, body: { error: { code: 'InvalidJson', message: 'the body must be JSON' } } };
        }
        const problems = faultsSpecProblems(spec);
        if (problems.length > 0)
          return { status: 400, body: { error: { code: 'InvalidFaults', message: problems.join('; ') } } };
        faults.set(spec as FaultsSpec);
        return { status: 200, body: faults.current() };
      }
      case 'DELETE /_simulator/faults':
        faults.clear();
        return { status: 200, body: faults.current() };
      case 'POST /_simulator/streams/close':
        return { status: 200, body: { closed: closeStreams() } };
      default:
        return {
          status: 404,
          body: {
            error: {
              code: 'NotFound',
              message: `no simulator route for ${route}; routes: GET/DELETE /_simulator/conversations, GET /_simulator/conversations/{id}, GET /_simulator/identity/requests, GET/PUT/DELETE /_simulator/faults, POST /_simulator/streams/close, GET /_simulator/blobs/{name}`,
            },
          },
        };
    }
  }

  function closeStreams(): number {
    const n = streams.size;
    for (const ws of streams.values()) ws.close(1011, 'closed by the service');
    return n;
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const u = new URL(req.url ?? '/', 'http://emulator');
    const method = req.method ?? 'GET';
    if (u.pathname.startsWith('/_simulator/')) {
      const body = method === 'GET' ? '' : (await readRaw(req, JSON_BODY_LIMIT)).toString('utf8');
      return write(res, control(method, u.pathname, body));
    }
    const attachment = /^\/attachments\/([^/]+)\/[^/]+$/.exec(u.pathname);
    if (attachment && method === 'GET') {
      const key = attachment[1]!;
      if ((uploads.get(key)?.at ?? Infinity) <= clock() - UPLOAD_RETENTION_MS) uploads.delete(key);
      const file = uploads.get(key);
      return write(
        res,
        file
          ? { status: 200, body: file.data, headers: { 'Content-Type': file.contentType } }
          : { status: 404, body: { error: { code: ERROR_CODES.notFound, message: 'Unknown attachment' } } },
      );
    }
    await withFaults('directline', res, faultReply, () => directLine(req, u.pathname, u.searchParams));
    if (debug) log.debug('direct line call', { method, path: u.pathname, status: res.statusCode });
  }

  const server = createServer({ keepAlive: true }, (req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (err instanceof DirectLineRefusal) return write(res, err.reply);
      log.error('direct line request failed', { err });
      write(res, {
        status: 500,
        body: { error: { code: ERROR_CODES.serviceError, message: err instanceof Error ? err.message : String(err) } },
      });
    });
  });

  const wss = new WebSocketServer({ noServer: true });
  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    const u = new URL(req.url ?? '/', 'http://emulator');
    const m = STREAM_PATH.exec(u.pathname);
    let opened: { conversation: Conversation; from: number };
    try {
      if (!m) throw refuse(404, ERROR_CODES.notFound, `No stream at ${u.pathname}`);
      opened = state.openStream(pathSegment(m[1]!), u.searchParams.get('t'));
    } catch (err) {
      const reply =
        err instanceof DirectLineRefusal
          ? err.reply
          : { status: 500, body: { error: { code: ERROR_CODES.serviceError, message: String(err) } } };
      const text = JSON.stringify(reply.body);
      socket.end(
        `HTTP/1.1 ${reply.status} Refused\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n${text}`,
      );
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      const c = opened.conversation;
      if (streams.has(c.id)) {
        ws.close(4001, 'collision');
        return;
      }
      streams.set(c.id, ws);
      const replay = state.since(c, opened.from);
      if (replay) ws.send(JSON.stringify(replay));
      const push = (set: unknown): void => {
        if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(set));
      };
      c.subscribers.add(push);
      const keepAlive =
        o.keepAliveMs > 0 ? setInterval(() => ws.readyState === ws.OPEN && ws.send(''), o.keepAliveMs) : undefined;
      ws.on('close', () => {
        clearInterval(keepAlive);
        c.subscribers.delete(push);
        if (streams.get(c.id) === ws) streams.delete(c.id);
      });
      ws.on('error', (err) => log.warn('stream error', { conversationId: c.id, err }));
    });
  });

  const names = [
    ...new Set([
      o.host === '0.0.0.0' || o.host === '::' ? '127.0.0.1' : o.host,
      'localhost',
      '127.0.0.1',
      '::1',
      ...o.identityHostNames,
    ]),
  ];
  const tls = selfSignedCertificate(names);
  const identityServer = createHttpsServer({ cert: tls.cert, key: tls.key, keepAlive: true }, (req, res) => {
    void (async () => {
      const u = new URL(req.url ?? '/', 'https://identity');
      const form = new URLSearchParams(
        req.method === 'POST' ? (await readRaw(req, JSON_BODY_LIMIT)).toString('utf8') : '',
      );
      const method = req.method ?? 'GET';
      const isToken = u.pathname.endsWith('/oauth2/v2.0/token');
      const answer = (): Promise<Reply> =>
        Promise.resolve(
          identity.handle(method, u.pathname, form) ?? {
            status: 404,
            body: { error: 'invalid_request', error_description: `no identity route ${u.pathname}` },
          },
        );
      if (isToken) await withFaults('identity', res, identityFaultReply, answer);
      else write(res, await answer());
    })().catch((err: unknown) => {
      log.error('identity request failed', { err });
      write(res, { status: 500, body: { error: 'server_error', error_description: String(err) } });
    });
  });

  const port = await listen(server, o.port, o.host);
  url = `http://${hostPart}:${port}`;
  let identityPort: number;
  try {
    identityPort = await listen(identityServer, o.identityPort, o.host);
  } catch (err) {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    throw err;
  }
  identity.url = `https://${hostPart}:${identityPort}`;
  log.info('Direct Line emulator listening', {
    url,
    identityUrl: identity.url,
    channels: o.agents.channels.map((c) => c.channelType),
    apps: o.identity.apps.length,
  });

  let closing: Promise<void> | undefined;
  return {
    url,
    port,
    identityUrl: identity.url,
    identityCa: tls.cert,
    conversations: () => {
      for (const c of state.all()) live(c.id);
      return agents.records();
    },
    tokenRequests: () => identity.requests(),
    setFaults: (spec) => faults.set(spec),
    faults: () => faults.current(),
    clearFaults: () => faults.clear(),
    closeStreams,
    pendingReplies: () => agents.pending(),
    close() {
      closing ??= (async () => {
        agents.close();
        for (const ws of streams.values()) ws.terminate();
        await Promise.all(
          [server, identityServer].map(
            (s) =>
              new Promise<void>((resolve) => {
                s.close(() => resolve());
                s.closeAllConnections();
              }),
          ),
        );
        wss.close();
        log.info('Direct Line emulator closed', { url });
      })();
      return closing;
    },
  };
}
