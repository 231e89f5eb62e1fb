/**
 * Twilio's Programmable Messaging API, `POST /2010-04-01/Accounts/{AccountSid}/Messages.json`: form-encoded
 * parameters, HTTP basic auth, the Message resource on 201, Twilio's error JSON `{code, message, more_info, status}`,
 * `MediaUrl` (an MMS: at most 10, 21623 past that, 21620 for one that is not an http(s) URL; not fetched),
 * per-sender MPS counted in segments (messages over it are queued, as Twilio does: accepted, counted as rate
 * violations in segments, sent later; 21611 when the sender's queue is full, 30001 for a message that waited longer
 * than its ValidityPeriod), the per-account concurrency limit (429, 20429). `I-Twilio-Idempotency-Token` is not a
 * deduplication key of the real Messages API: repeats are new messages unless `honourIdempotencyToken`. And the Message fetch,
 * `GET /2010-04-01/Accounts/{AccountSid}/Messages/{MessageSid}.json`, for the messages sent (with their current
 * status) and the simulated recipients' inbound replies; and the Messages list,
 * `GET /2010-04-01/Accounts/{AccountSid}/Messages.json`, filtered by `To`, `From` and `DateSent`, paged.
 */
import { randomBytes } from 'node:crypto';
import type { FaultAction } from './faults.js';
import type { Exchange, Outcome, Prepared, Reply } from './exchange.js';
import type { SimulatedMessage } from './records.js';
import { SegmentQueue, smsSegments, type QueuePlace } from './segments.js';

export { smsSegments } from './segments.js';

/** The most `MediaUrl`s of one message: "up to 10 media files" (twilio.com/docs/messaging/api/media-resource); more: 21623. */
export const TWILIO_MAX_MEDIA = 10;

export const TWILIO_PATH = /^\/2010-04-01\/Accounts\/([^/]+)\/Messages\.json$/;
/** One Message resource: `[, AccountSid, MessageSid]`. */
export const TWILIO_MESSAGE_PATH = /^\/2010-04-01\/Accounts\/([^/]+)\/Messages\/([^/]+)\.json$/;

export interface TwilioOptions {
  /** AccountSid → AuthToken (an API key SID `SK…` as user name works too). @defaultValue undefined: any credentials are accepted (they must still be sent) */
  authTokens?: Record<string, string>;
  /** Recipients that have replied STOP: sends to them get 21610. @defaultValue [] */
  unsubscribed?: string[];
  /** MPS of a long code (any E.164 sender not toll-free). @defaultValue 1 */
  longCodeMps?: number;
  /** MPS of a US/Canada toll-free number (+1 800/833/844/855/866/877/888). @defaultValue 3 */
  tollFreeMps?: number;
  /** MPS of a short code (5–6 digits). @defaultValue 100 */
  shortCodeMps?: number;
  /** MPS of a Messaging Service (`MG…`) or alphanumeric sender not in `mpsBySender`. @defaultValue 1 */
  otherMps?: number;
  /** MPS per sender (`From` or `MessagingServiceSid`), over the defaults by kind, e.g. `{"+4915100000001": 10}`. @defaultValue {} */
  mpsBySender?: Record<string, number>;
  /** Concurrent API requests per account; one more gets 429 with code 20429. @defaultValue 100 */
  concurrency?: number;
  /**
   * How much a sender's queue holds, in seconds of its MPS (Twilio: 10 hours' worth): a message whose segments would
   * not fit gets 400 with code 21611. @defaultValue 36000
   */
  queueSeconds?: number;
  /**
   * The `ValidityPeriod` of a message that names none, seconds (Twilio: 1–36000, default 36000): a message still
   * queued after it is never sent and fails with ErrorCode 30001. @defaultValue 36000
   */
  validityPeriodSeconds?: number;
  /**
   * Answer a repeated `I-Twilio-Idempotency-Token` with the first message instead of sending again. Real Twilio does
   * not (the header is documented on the webhooks it sends, not as a key of message creation): only for a test that
   * asks for it. Repeats are counted (`repeatedKeys`) either way. @defaultValue false
   */
  honourIdempotencyToken?: boolean;
  /** Whether a message sent with a `StatusCallback` gets its status callbacks (see docs/emulators/providers.md). @defaultValue true */
  statusCallbacks?: boolean;
  /**
   * Whether a callback is sent for the initial status too (`queued`, or `accepted` through a Messaging Service).
   * Twilio sends none for it. @defaultValue false
   */
  initialStatusCallback?: boolean;
  /** Share (0–1) of the undelivered messages (`callbacks.undeliveredRate`) that end `failed` instead of `sent` → `undelivered`. @defaultValue 0 */
  failedShare?: number;
  /** The `ErrorCode`s of `undelivered` and `failed` callbacks, picked uniformly. @defaultValue [30003, 30005, 30006] */
  errorCodes?: number[];
  /**
   * Inbound webhook URL per sender (the number, short code or Messaging Service SID the relay sends from), where
   * recipients' replies are POSTed, signed with the account's auth token. @defaultValue {} (replies go nowhere)
   */
  inboundUrls?: Record<string, string>;
  /** How the callbacks (status and inbound) are signed; see {@link TwilioSigning}. @defaultValue { url: 'as-called' } (the auth token, HMAC-SHA1) */
  signing?: TwilioSigning;
}

/** The algorithms a Webhooks Setting may sign with, as `X-Twilio-Webhooks-Signature-Settings` names them. */
export const TWILIO_SIGNING_ALGORITHMS = ['HMAC_SHA1', 'HMAC_SHA256'] as const;
/** The URL forms a signature may cover (see {@link TwilioSigning.url}). */
export const TWILIO_SIGNED_URLS = ['as-called', 'port-removed', 'default-port-added', 'legacy-query'] as const;

/**
 * How the simulator signs its callbacks. Twilio signs with the account's auth token and HMAC-SHA1, unless a Webhooks
 * Rule with a SharedKey matches the URL: then with the key's secret and the Setting's algorithm, and it adds
 * `X-Twilio-Webhooks-Signature-Settings: key=<SharedKey SID>,algorithm=<algorithm>` (twilio.com/docs/usage/webhooks/
 * webhook-shared-keys; twilio-node examples/WebhookSignatureValidation.md). Which URL it signs is inconsistent by
 * twilio-node's own account ("signature generation on the back end is inconsistent"), so `url` picks the form.
 */
export interface TwilioSigning {
  /** Sign as a Webhooks Rule with this SharedKey does. @defaultValue none: the auth token, HMAC-SHA1, no settings header */
  sharedKey?: { sid: string; secret: string; algorithm: (typeof TWILIO_SIGNING_ALGORITHMS)[number] };
  /**
   * The URL the signature covers: `as-called`; `port-removed` (an explicit port left out); `default-port-added` (the
   * scheme's port written out, `:443` or `:80`, when the URL has none); `legacy-query` (the query re-encoded by Node's
   * `querystring`, which leaves `'()*!` bare where a WHATWG URL has `%27`). @defaultValue 'as-called'
   */
  url?: (typeof TWILIO_SIGNED_URLS)[number];
}

export type ResolvedTwilio = Required<Omit<TwilioOptions, 'authTokens'>> & Pick<TwilioOptions, 'authTokens'>;

export const TWILIO_DEFAULTS: ResolvedTwilio = {
  unsubscribed: [],
  longCodeMps: 1,
  tollFreeMps: 3,
  shortCodeMps: 100,
  otherMps: 1,
  mpsBySender: {},
  concurrency: 100,
  queueSeconds: 36_000,
  validityPeriodSeconds: 36_000,
  honourIdempotencyToken: false,
  statusCallbacks: true,
  initialStatusCallback: false,
  failedShare: 0,
  errorCodes: [30003, 30005, 30006],
  inboundUrls: {},
  signing: { url: 'as-called' },
};

const E164 = /^\+[1-9]\d{1,14}$/;
const SHORT_CODE = /^\d{5,6}$/;
const TOLL_FREE = /^\+1(800|833|844|855|866|877|888)\d{7}$/;
const ALPHANUMERIC = /^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$/;
const MESSAGING_SERVICE = /^MG[0-9a-fA-F]{32}$/;

function twilioError(status: number, code: number, message: string, headers?: Record<string, string>): Reply {
  return {
    status,
    body: { code, message, more_info: `https://www.twilio.com/docs/errors/${code}`, status },
    ...(headers ? { headers } : {}),
  };
}

/** RFC 2822 dates as Twilio writes them: `Sun, 22 Nov 2026 01:02:03 +0000`. */
export function twilioDate(ms: number): string {
  return new Date(ms).toUTCString().replace(/GMT$/, '+0000');
}

/** The `error_message` Twilio gives the simulator's default `ErrorCode`s (others: null). */
const ERROR_MESSAGES: Record<number, string> = {
  30001: 'Queue overflow',
  30003: 'Unreachable destination handset',
  30005: 'Unknown destination handset',
  30006: 'Landline or unreachable carrier',
  30007: 'Message filtered',
  30008: 'Unknown error',
};

/** A Message resource the simulated account holds: what the fetch answers. */
interface StoredMessage {
  sid: string;
  accountSid: string;
  direction: 'outbound-api' | 'inbound';
  from: string | null;
  to: string;
  body: string;
  messagingServiceSid: string | null;
  status: string;
  segments: number;
  /** Media sent with it (`MediaUrl`s). */
  numMedia: number;
  created: number;
  sent: number | null;
  updated: number;
  errorCode: number | null;
}

/** One reply a simulated recipient sent to a Twilio inbound URL (`sim.inboundReplies()`, `GET /_simulator/inbound`). */
export interface InboundReply {
  /** The reply's `MessageSid` (`SM…`), as POSTed to the inbound URL and fetchable. */
  sid: string;
  /** The account (`AccountSid`) of the message replied to. */
  accountSid: string;
  /** The replying recipient (`From`). */
  from: string;
  /** The sender replied to (`To`): the number, short code or Messaging Service SID of the message. */
  to: string;
  /** `Body`. */
  body: string;
  /** When the simulated Twilio received it (its `date_created`/`date_sent`), ms since the epoch (the simulators' clock). */
  time: number;
  /** The `SM…` sid of the outbound message it answers; absent for a message the customer wrote first (`customerMessage`). */
  inReplyTo?: string;
  /** Whether it is one of `recipients.keywords` or the `stopWord`; `customer`: written first, not a reply. */
  intent: 'keyword' | 'stop' | 'customer';
  /** Its media (`MediaUrl{N}`), when it is an MMS. */
  media?: Array<{ url: string; contentType: string }>;
}

/** A Twilio status, in the order a message goes through them (a callback never moves a message back). */
const STATUS_ORDER = ['accepted', 'queued', 'sending', 'sent', 'failed', 'undelivered', 'delivered', 'read'];

function messageResource(m: StoredMessage): Record<string, unknown> {
  return {
    account_sid: m.accountSid,
    api_version: '2010-04-01',
    body: m.body,
    date_created: twilioDate(m.created),
    date_sent: m.sent === null ? null : twilioDate(m.sent),
    date_updated: twilioDate(m.updated),
    direction: m.direction,
    error_code: m.errorCode,
    error_message: m.errorCode === null ? null : (ERROR_MESSAGES[m.errorCode] ?? null),
    from: m.from,
    messaging_service_sid: m.messagingServiceSid,
    num_media: String(m.numMedia),
    num_segments: String(m.segments),
    price: null,
    price_unit: 'USD',
    sid: m.sid,
    status: m.status,
    subresource_uris: { media: `/2010-04-01/Accounts/${m.accountSid}/Messages/${m.sid}/Media.json` },
    to: m.to,
    uri: `/2010-04-01/Accounts/${m.accountSid}/Messages/${m.sid}.json`,
  };
}

export class TwilioApi {
  readonly #options: ResolvedTwilio;
  readonly #unsubscribed: Set<string>;
  readonly #inFlight = new Map<string, number>();
  readonly #idempotent = new Map<string, Reply>();
  readonly #queues: Map<string, SegmentQueue> = new Map();
  readonly #windowMs: number;
  readonly #lastToken = new Map<string, string>();
  /** Every message sent or received, by sid: kept across `reset()`, as an account keeps its messages. */
  readonly #stored = new Map<string, StoredMessage>();
  readonly #inbound: InboundReply[] = [];

  constructor(options: ResolvedTwilio, windowMs: number) {
    this.#options = options;
    this.#unsubscribed = new Set(options.unsubscribed);
    this.#windowMs = windowMs;
  }

  unsubscribe(number: string): void {
    this.#unsubscribed.add(number);
  }
  resubscribe(number: string): void {
    this.#unsubscribed.delete(number);
  }
  unsubscribedNumbers(): string[] {
    return [...this.#unsubscribed];
  }

  /**
   * The auth token callbacks of an account are signed with: the configured one (`authTokens`), else the password of
   * the newest authenticated send of that account (for an API key user name: its secret).
   */
  authTokenOf(accountSid: string): string | undefined {
    return this.#options.authTokens?.[accountSid] ?? this.#lastToken.get(accountSid);
  }

  /**
   * Moves an outbound message to `status` at `now` (`ErrorCode` on `undelivered`/`failed`); `date_sent` is set
   * when it reaches `sent` or later (not `failed`). A status earlier than the current one is ignored; an unknown sid too.
   */
  advance(sid: string, status: string, now: number, errorCode?: number): void {
    const m = this.#stored.get(sid);
    if (!m || m.direction !== 'outbound-api') return;
    if (STATUS_ORDER.indexOf(status) < STATUS_ORDER.indexOf(m.status)) return;
    m.status = status;
    m.updated = now;
    if (m.sent === null && status !== 'failed' && STATUS_ORDER.indexOf(status) >= STATUS_ORDER.indexOf('sent'))
      m.sent = now;
    if ((status === 'undelivered' || status === 'failed') && errorCode !== undefined) m.errorCode = errorCode;
  }

  /** Remembers an inbound message (fetchable as a Message resource with direction `inbound`, status `received`). */
  received(reply: InboundReply): void {
    this.#inbound.push(reply);
    this.#stored.set(reply.sid, {
      sid: reply.sid,
      accountSid: reply.accountSid,
      direction: 'inbound',
      from: reply.from,
      to: reply.to,
      body: reply.body,
      messagingServiceSid: MESSAGING_SERVICE.test(reply.to) ? reply.to : null,
      status: 'received',
      segments: smsSegments(reply.body),
      numMedia: reply.media?.length ?? 0,
      created: reply.time,
      sent: reply.time,
      updated: reply.time,
      errorCode: null,
    });
  }

  /** The inbound replies received, oldest first (copies). */
  inboundReplies(): InboundReply[] {
    return this.#inbound.map((r) => ({ ...r }));
  }

  /** Whether the request carries this account's credentials (HTTP basic auth, as a send): the media URLs' check. */
  authenticated(ex: Exchange, accountSid: string): boolean {
    return this.#authenticate(ex, accountSid) !== undefined;
  }

  /** HTTP basic auth as Twilio checks it: the password (AuthToken, or an API key's secret), or undefined when refused. */
  #authenticate(ex: Exchange, accountSid: string): string | undefined {
    // User = AccountSid (or an API key SID), password = AuthToken.
    const basic = /^Basic\s+(.+)$/i.exec(ex.headers['authorization'] ?? '')?.[1];
    const decoded = basic === undefined ? undefined : Buffer.from(basic, 'base64').toString('utf8');
    const colon = decoded?.indexOf(':') ?? -1;
    const user = colon > 0 ? decoded!.slice(0, colon) : undefined;
    const password = colon > 0 ? decoded!.slice(colon + 1) : undefined;
    const tokens = this.#options.authTokens;
    const ok =
      user !== undefined &&
      password !== undefined &&
      password !== '' &&
      (user === accountSid || user.startsWith('SK')) &&
      (tokens === undefined || tokens[accountSid] === password);
    return ok ? password : undefined;
  }

  /**
   * `GET /2010-04-01/Accounts/{AccountSid}/Messages/{MessageSid}.json`: 200 with the Message resource (outbound with
   * its current status, inbound `received`); 401 (20003) as the send; 404 (20404) for a sid this account does not hold.
   */
  fetch(ex: Exchange, accountSid: string, sid: string): Reply {
    if (this.#authenticate(ex, accountSid) === undefined)
      return twilioError(401, 20003, 'Authenticate', { 'WWW-Authenticate': 'Basic realm="Twilio API"' });
    const m = this.#stored.get(sid);
    if (!m || m.accountSid !== accountSid)
      return twilioError(404, 20404, `The requested resource ${ex.path} was not found`);
    return { status: 200, body: messageResource(m) };
  }

  /**
   * `GET /2010-04-01/Accounts/{AccountSid}/Messages.json`: a page of this account's messages (sent and received),
   * most recent `date_sent` first, filtered by `To`, `From` (the number; a Messaging Service send has the sender in
   * `messaging_service_sid`, and `from` null until Twilio picks a number), `DateSent` (that UTC day), `DateSent<`
   * (on or before it) and `DateSent>` (on or after it), each a `YYYY-MM-DD` day or an ISO 8601 date-time. The worst
   * reading of what Twilio leaves undocumented: a DateSent filter leaves out the messages not sent yet (`date_sent`
   * null: `queued`, `accepted`), and those sort after every sent one. `PageSize` 1–1000 (default 50); `next_page_uri`
   * carries `Page` and `PageToken` (the last sid of the page: a page after it, even when messages came in between).
   * 401 (20003) as the send; 400 (20001) for a bad filter or page size.
   */
  list(ex: Exchange, accountSid: string): Reply {
    if (this.#authenticate(ex, accountSid) === undefined)
      return twilioError(401, 20003, 'Authenticate', { 'WWW-Authenticate': 'Basic realm="Twilio API"' });
    const q = ex.query;
    const pageSizeText = q.get('PageSize') ?? '50';
    const pageSize = /^\d{1,4}$/.test(pageSizeText) ? Number(pageSizeText) : Number.NaN;
    if (!(pageSize >= 1 && pageSize <= 1000))
      return twilioError(400, 20001, `PageSize must be an integer from 1 to 1000, found '${pageSizeText}'`);
    const pageText = q.get('Page') ?? '0';
    if (!/^\d{1,6}$/.test(pageText))
      return twilioError(400, 20001, `Page must be an integer from 0, found '${pageText}'`);
    const page = Number(pageText);
    const dayMs = 86_400_000;
    const bounds: Array<(sent: number) => boolean> = [];
    for (const [name, kind] of [
      ['DateSent', '='],
      ['DateSent<', '<'],
      ['DateSent>', '>'],
    ] as const) {
      const value = q.get(name);
      if (value === null) continue;
      const day = /^\d{4}-\d{2}-\d{2}$/.test(value);
      const at = Date.parse(day ? `${value}T00:00:00Z` : value);
      if (!Number.isFinite(at) || !(day || /^\d{4}-\d{2}-\d{2}T/.test(value)))
        return twilioError(400, 20001, `${name} must be a date YYYY-MM-DD or an ISO 8601 date-time, found '${value}'`);
      if (kind === '=') bounds.push(day ? (t) => t >= at && t < at + dayMs : (t) => t === at);
      else if (kind === '<') bounds.push(day ? (t) => t < at + dayMs : (t) => t <= at);
      else bounds.push((t) => t >= at);
    }
    const to = q.get('To');
    const from = q.get('From');
    // Ties (the same ms) in the reverse order of arrival: the store keeps arrival order.
    const matching = [...this.#stored.values()]
      .map((m, arrival) => ({ m, arrival }))
      .filter(
        ({ m }) => m.accountSid === accountSid && (to === null || m.to === to) && (from === null || m.from === from),
      )
      .filter(({ m }) => bounds.length === 0 || (m.sent !== null && bounds.every((b) => b(m.sent as number))))
      .sort(
        (a, b) =>
          (b.m.sent ?? -Infinity) - (a.m.sent ?? -Infinity) || b.m.created - a.m.created || b.arrival - a.arrival,
      )
      .map(({ m }) => m);
    const token = q.get('PageToken');
    const after = token?.startsWith('PA') ? matching.findIndex((m) => m.sid === token.slice(2)) : -1;
    const start = after >= 0 ? after + 1 : page * pageSize;
    const messages = matching.slice(start, start + pageSize);
    const base = `/2010-04-01/Accounts/${accountSid}/Messages.json`;
    const pageUri = (n: number, extra: Record<string, string> = {}): string => {
      const params = new URLSearchParams();
      for (const [k, v] of q) if (k !== 'Page' && k !== 'PageToken' && k !== 'PageSize') params.append(k, v);
      params.set('PageSize', String(pageSize));
      params.set('Page', String(n));
      for (const [k, v] of Object.entries(extra)) params.set(k, v);
      return `${base}?${params.toString()}`;
    };
    const last = messages[messages.length - 1];
    const more = start + pageSize < matching.length && last !== undefined;
    return {
      status: 200,
      body: {
        end: start + Math.max(0, messages.length - 1),
        first_page_uri: pageUri(0),
        messages: messages.map(messageResource),
        next_page_uri: more ? pageUri(page + 1, { PageToken: `PA${last.sid}` }) : null,
        page,
        page_size: pageSize,
        previous_page_uri: page > 0 ? pageUri(page - 1) : null,
        start,
        uri: `${base}?${ex.query.toString()}`,
      },
    };
  }

  /** Forgets the senders' queues and the idempotency records. */
  reset(): void {
    this.#idempotent.clear();
    this.#queues.clear();
  }

  /** The MPS that applies to a sender. */
  mpsOf(sender: string): number {
    const o = this.#options;
    const own = o.mpsBySender[sender];
    if (own !== undefined) return own;
    if (SHORT_CODE.test(sender)) return o.shortCodeMps;
    if (TOLL_FREE.test(sender)) return o.tollFreeMps;
    if (E164.test(sender)) return o.longCodeMps;
    return o.otherMps;
  }

  renderFault(action: Exclude<FaultAction, { kind: 'none' | 'timeout' }>): Reply {
    if (action.kind === 'rateLimit')
      return twilioError(429, 20429, 'Too Many Requests', { 'Retry-After': String(action.retryAfterSeconds) });
    if (action.status === 503) return twilioError(503, 20503, 'Service Unavailable');
    return twilioError(action.status, 20500, 'Internal Server Error');
  }

  prepare(ex: Exchange, accountSid: string): Prepared {
    const password = this.#authenticate(ex, accountSid);
    if (password === undefined) {
      return {
        refuse: {
          reply: twilioError(401, 20003, 'Authenticate', { 'WWW-Authenticate': 'Basic realm="Twilio API"' }),
          code: 20003,
        },
      };
    }
    this.#lastToken.set(accountSid, password);
    const params = new URLSearchParams(ex.body);
    const to = params.get('To') ?? '';
    const from = params.get('From') ?? '';
    const service = params.get('MessagingServiceSid') ?? '';
    const body = params.get('Body') ?? '';
    const mediaUrls = params.getAll('MediaUrl');
    const sender = from || service || undefined;

    // The per-account concurrency limit, counted from arrival to the end of the answer.
    const inFlight = (this.#inFlight.get(accountSid) ?? 0) + 1;
    this.#inFlight.set(accountSid, inFlight);
    const onEnd = (): void => {
      const n = (this.#inFlight.get(accountSid) ?? 1) - 1;
      if (n <= 0) this.#inFlight.delete(accountSid);
      else this.#inFlight.set(accountSid, n);
    };
    if (inFlight > this.#options.concurrency) {
      return {
        ...(sender ? { sender } : {}),
        onEnd,
        refuse: { reply: twilioError(429, 20429, 'Too Many Requests'), code: 20429, rateLimited: true },
      };
    }

    const token = ex.headers['i-twilio-idempotency-token'];
    const validity = params.get('ValidityPeriod');
    const execute = (now: number): Outcome => {
      if (token && this.#options.honourIdempotencyToken) {
        const first = this.#idempotent.get(`${accountSid}\u0000${token}`);
        if (first) return { reply: first, duplicate: true };
      }
      if (!to) return { reply: twilioError(400, 21604, "A 'To' phone number is required."), rejected: 21604 };
      if (!from && !service)
        return { reply: twilioError(400, 21603, "A 'From' phone number is required."), rejected: 21603 };
      if (mediaUrls.length > TWILIO_MAX_MEDIA)
        return {
          reply: twilioError(400, 21623, `Number of media files exceeds allowed limit of ${TWILIO_MAX_MEDIA}`),
          rejected: 21623,
        };
      if (mediaUrls.some((u) => !/^https?:\/\/[^\s]+$/i.test(u)))
        return { reply: twilioError(400, 21620, 'Invalid media URL(s)'), rejected: 21620 };
      if (!body && mediaUrls.length === 0 && !params.get('ContentSid'))
        return { reply: twilioError(400, 21602, 'Message body is required.'), rejected: 21602 };
      if (!E164.test(to))
        return { reply: twilioError(400, 21211, `Invalid 'To' Phone Number: ${to}`), rejected: 21211 };
      if (from && !(E164.test(from) || SHORT_CODE.test(from) || ALPHANUMERIC.test(from)))
        return { reply: twilioError(400, 21212, `Invalid 'From' Phone Number: ${from}`), rejected: 21212 };
      if (!from && !MESSAGING_SERVICE.test(service))
        return { reply: twilioError(400, 21701, `The Messaging Service ${service} does not exist`), rejected: 21701 };
      if (body.length > 1600)
        return {
          reply: twilioError(400, 21617, 'The concatenated message body exceeds the 1600 character limit.'),
          rejected: 21617,
        };
      const validitySeconds = validity === null ? this.#options.validityPeriodSeconds : Number(validity);
      if (!(Number.isInteger(validitySeconds) && validitySeconds >= 1 && validitySeconds <= 36_000))
        return { reply: twilioError(400, 21624, 'Invalid validity period value'), rejected: 21624 };
      if (this.#unsubscribed.has(to))
        return { reply: twilioError(400, 21610, 'Attempt to send to unsubscribed recipient'), rejected: 21610 };

      const senderKey = sender!;
      const segments = smsSegments(body);
      const mps = this.mpsOf(senderKey);
      let queue = this.#queues.get(senderKey);
      if (queue === undefined) this.#queues.set(senderKey, (queue = new SegmentQueue(this.#windowMs)));
      if (queue.waiting(now) + segments > Math.max(1, Math.floor(mps * this.#options.queueSeconds))) {
        return {
          reply: twilioError(400, 21611, "This 'From' number has exceeded the maximum number of queued messages"),
          rejected: 21611,
        };
      }
      // A message that would wait past its validity is never sent: it takes no sending capacity.
      const expired = (p: QueuePlace): boolean => p.firstAt - now > validitySeconds * 1000;
      const place = queue.enqueue(now, segments, mps, (p) => !expired(p));
      const expires = expired(place);
      const sid = `SM${randomBytes(16).toString('hex')}`;
      const callback = params.get('StatusCallback') ?? undefined;
      const stored: StoredMessage = {
        sid,
        accountSid,
        direction: 'outbound-api',
        from: from || null,
        to,
        body,
        messagingServiceSid: service || null,
        // A Messaging Service send starts as `accepted` (the sender is picked later), a direct send as `queued`.
        status: from ? 'queued' : 'accepted',
        segments,
        numMedia: mediaUrls.length,
        created: now,
        sent: null,
        updated: now,
        errorCode: null,
      };
      this.#stored.set(sid, stored);
      const resource = messageResource(stored);
      const reply: Reply = { status: 201, body: resource };
      if (token && this.#options.honourIdempotencyToken) this.#idempotent.set(`${accountSid}\u0000${token}`, reply);
      const accepted: SimulatedMessage = {
        time: now,
        provider: 'twilio',
        channel: accountSid,
        path: ex.path,
        sender: senderKey,
        recipient: to,
        text: body,
        segments,
        queuedMs: place.queuedMs,
        ...(expires ? { expiresAfterMs: validitySeconds * 1000 } : {}),
        providerMessageId: sid,
        ...(token ? { idempotencyKey: token } : {}),
        ...(callback ? { statusCallback: callback } : {}),
        ...(mediaUrls.length === 0 ? {} : { attachments: mediaUrls.map((url) => ({ url })) }),
      };
      return { reply, accepted, ...(place.queuedMs > 0 ? { rateViolation: segments } : {}), authToken: password };
    };
    return { ...(sender ? { sender } : {}), onEnd, execute };
  }
}
