/**
 * The simulators' other direction: the HTTP calls a provider makes to the relay (status callbacks, inbound
 * messages, webhook updates, delivery reports) and the ones a recipient's phone makes (link clicks). This module
 * holds the options shared by all providers, the log of every such call (`CallbackRecord`), the statistics, and
 * the engine that schedules, sends, retries, repeats and cancels them. What each provider sends is in feedback.ts.
 */
import { sleepOrReject } from '../../abort.js';
import type { SimulatedProvider } from './faults.js';

/** What a simulated callback is. */
export const CALLBACK_KINDS = ['status', 'inbound', 'update', 'report', 'click'] as const;
/**
 * `status`: a Twilio status callback; `inbound`: a Twilio inbound SMS or a contract inbound message; `update`: a
 * Telegram webhook update; `report`: a contract delivery report; `click`: a recipient opening a link (GET).
 */
export type CallbackKind = (typeof CALLBACK_KINDS)[number];

export interface CallbackOptions {
  /** Wait before each callback, click or reply of a message, ms: fixed or uniform in `{min, max}` (seeded). @defaultValue { min: 20, max: 100 } */
  delayMs?: number | { min: number; max: number };
  /**
   * Share (0–1) of accepted messages that are not delivered: Twilio `undelivered` (or `failed`, see
   * `twilio.failedShare`), contract `NotDelivered`. Telegram has no delivery reports: all its messages count as
   * delivered. Recipients of undelivered messages neither click nor reply. @defaultValue 0
   */
  undeliveredRate?: number;
  /** Share (0–1) of delivered messages that are read: Twilio `read` status, contract `Read` report. @defaultValue 0 */
  readRate?: number;
  /** Share (0–1) of callbacks (of every kind, clicks too) sent a second time, after a delay, to exercise idempotency. @defaultValue 0 */
  repeatRate?: number;
  /** Timeout of one callback request, ms. @defaultValue 5000 */
  timeoutMs?: number;
  /**
   * Retries of a failed callback: Telegram updates and contract callbacks after a network error or a non-2xx
   * answer; Twilio only after a network error and at most once (its `#rc=1`, `#rp=ct` defaults); clicks never.
   * @defaultValue 2
   */
  maxRetries?: number;
  /** Wait before the first retry, ms; doubled for each further one. @defaultValue 50 */
  retryDelayMs?: number;
}

export interface RecipientOptions {
  /** Share (0–1) of the http(s) links in each delivered message that its recipient opens (a GET, redirects not followed). @defaultValue 0 */
  clickRate?: number;
  /** Share (0–1) of delivered messages answered with one of `keywords` (picked uniformly). @defaultValue 0 */
  replyRate?: number;
  /** Keywords a reply is made of. Required (non-empty) when `replyRate` > 0. @defaultValue [] */
  keywords?: string[];
  /** Share (0–1) of delivered messages answered with `stopWord`; `replyRate + stopRate` must not exceed 1. @defaultValue 0 */
  stopRate?: number;
  /** The opt-out word. @defaultValue 'STOP' */
  stopWord?: string;
}

export type ResolvedCallbacks = Required<CallbackOptions>;
export type ResolvedRecipients = Required<RecipientOptions>;

export const CALLBACK_DEFAULTS: ResolvedCallbacks = {
  delayMs: { min: 20, max: 100 },
  undeliveredRate: 0,
  readRate: 0,
  repeatRate: 0,
  timeoutMs: 5000,
  maxRetries: 2,
  retryDelayMs: 50,
};
export const RECIPIENT_DEFAULTS: ResolvedRecipients = {
  clickRate: 0,
  replyRate: 0,
  keywords: [],
  stopRate: 0,
  stopWord: 'STOP',
};

function fraction(v: unknown): boolean {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 && v <= 1;
}
function wholeMs(v: unknown, min = 0): boolean {
  return typeof v === 'number' && Number.isInteger(v) && v >= min;
}
const shown = (v: unknown): string => (v === undefined ? 'undefined' : JSON.stringify(v));

/** `value` as an options object and the problems of its shape (not an object, unknown keys); undefined: none given. */
function optionsObject(
  value: unknown,
  where: string,
  known: readonly string[],
): { o?: Record<string, unknown>; problems: string[] } {
  if (value === undefined) return { problems: [] };
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    return { problems: [`${where}: expected an object, found ${shown(value)}`] };
  const o = value as Record<string, unknown>;
  return {
    o,
    problems: Object.keys(o)
      .filter((key) => !known.includes(key))
      .map((key) => `${where}.${key}: unknown option (known: ${known.join(', ')})`),
  };
}

/** Problems of the `callbacks` options, each naming its key. */
export function callbackOptionsProblems(value: unknown, where = 'callbacks'): string[] {
  const { o, problems } = optionsObject(value, where, Object.keys(CALLBACK_DEFAULTS));
  if (o === undefined) return problems;
  const d = o['delayMs'];
  if (d !== undefined) {
    const range = d as { min?: unknown; max?: unknown };
    const ok =
      wholeMs(d) ||
      (typeof d === 'object' &&
        d !== null &&
        wholeMs(range.min) &&
        wholeMs(range.max) &&
        (range.max as number) >= (range.min as number));
    if (!ok)
      problems.push(`${where}.delayMs: expected whole ms >= 0 or {min, max} with 0 <= min <= max, found ${shown(d)}`);
  }
  for (const key of ['undeliveredRate', 'readRate', 'repeatRate'])
    if (o[key] !== undefined && !fraction(o[key]))
      problems.push(`${where}.${key}: expected a fraction from 0 to 1, found ${shown(o[key])}`);
  if (o['timeoutMs'] !== undefined && !wholeMs(o['timeoutMs'], 1))
    problems.push(`${where}.timeoutMs: expected whole ms >= 1, found ${shown(o['timeoutMs'])}`);
  if (o['maxRetries'] !== undefined && !(wholeMs(o['maxRetries']) && (o['maxRetries'] as number) <= 10))
    problems.push(`${where}.maxRetries: expected an integer from 0 to 10, found ${shown(o['maxRetries'])}`);
  if (o['retryDelayMs'] !== undefined && !wholeMs(o['retryDelayMs']))
    problems.push(`${where}.retryDelayMs: expected whole ms >= 0, found ${shown(o['retryDelayMs'])}`);
  return problems;
}

/** Problems of the `recipients` options, each naming its key. */
export function recipientOptionsProblems(value: unknown, where = 'recipients'): string[] {
  const { o, problems } = optionsObject(value, where, Object.keys(RECIPIENT_DEFAULTS));
  if (o === undefined) return problems;
  for (const key of ['clickRate', 'replyRate', 'stopRate'])
    if (o[key] !== undefined && !fraction(o[key]))
      problems.push(`${where}.${key}: expected a fraction from 0 to 1, found ${shown(o[key])}`);
  const keywords = o['keywords'];
  const keywordsOk =
    keywords === undefined ||
    (Array.isArray(keywords) && keywords.every((k) => typeof k === 'string' && k.trim() !== ''));
  if (!keywordsOk) problems.push(`${where}.keywords: expected an array of non-empty strings, found ${shown(keywords)}`);
  if (o['stopWord'] !== undefined && !(typeof o['stopWord'] === 'string' && o['stopWord'].trim() !== ''))
    problems.push(`${where}.stopWord: expected a non-empty string, found ${shown(o['stopWord'])}`);
  const reply = fraction(o['replyRate']) ? (o['replyRate'] as number) : 0;
  const stop = fraction(o['stopRate']) ? (o['stopRate'] as number) : 0;
  if (reply + stop > 1) problems.push(`${where}: replyRate + stopRate must not exceed 1, found ${reply} + ${stop}`);
  if (reply > 0 && keywordsOk && (keywords === undefined || (keywords as unknown[]).length === 0))
    problems.push(
      `${where}.keywords: expected at least one keyword when replyRate > 0, found ${shown(keywords ?? [])}`,
    );
  return problems;
}

/** One HTTP call a simulator made towards the relay, as `GET /_simulator/callbacks` lists it. */
export interface CallbackRecord {
  /** When the attempt started, ms since the epoch (the simulators' clock). */
  time: number;
  provider: SimulatedProvider;
  kind: CallbackKind;
  method: 'POST' | 'GET';
  /** The target, with query values and long opaque path segments (tokens, link codes, bot tokens) masked. */
  url: string;
  /** The accepted message it belongs to: its `providerMessageId` and `idempotencyKey` (contract `RequestId`, relay key). */
  providerMessageId: string;
  idempotencyKey?: string;
  /** The recipient of that message (the replying or clicking party). */
  recipient: string;
  /**
   * What was sent: status `{status, errorCode?}`; Twilio inbound / Telegram update / contract inbound
   * `{text, intent: 'keyword' | 'stop', updateId?}`; report `{status}`; click `{link}` (the link index in the text).
   */
  summary: Record<string, string>;
  /** The HTTP status answered; absent after a network error. */
  status?: number;
  /** The network error (`ECONNREFUSED`, `TimeoutError`…); absent when an answer came. */
  error?: string;
  /** 1 for the first attempt, 2… for retries. */
  attempt: number;
  /** Whether this is a deliberate repeat (`callbacks.repeatRate`) of a callback already sent. */
  repeat: boolean;
  /** Whether the attempt succeeded: 2xx (a click: any status below 400). */
  ok: boolean;
}

export interface CallbackFilter {
  provider?: SimulatedProvider;
  kind?: CallbackKind;
}

/** Counts for one kind of callback. */
export interface CallbackKindStats {
  /** Callbacks sent (first attempts, repeats excluded). */
  sent: number;
  /** Of those, how many finally succeeded (after retries). */
  succeeded: number;
  /** …and how many finally failed (non-2xx or network error once retries ran out). */
  failed: number;
  /** Retry attempts. */
  retries: number;
  /** Deliberate repeats sent (`repeatRate`). */
  repeats: number;
  /** Callbacks that had nowhere to go (no StatusCallback, no inbound URL for the sender, no webhook set, no reports URL). */
  unroutable: number;
}

export interface CallbackStats {
  kinds: Record<CallbackKind, CallbackKindStats>;
  /** Messages whose callbacks are still scheduled or running. */
  pending: number;
  /** Requests in flight now. */
  inFlight: number;
}

function emptyKind(): CallbackKindStats {
  return { sent: 0, succeeded: 0, failed: 0, retries: 0, repeats: 0, unroutable: 0 };
}
function emptyKinds(): Record<CallbackKind, CallbackKindStats> {
  return Object.fromEntries(CALLBACK_KINDS.map((k) => [k, emptyKind()])) as Record<CallbackKind, CallbackKindStats>;
}

const BOT_TOKEN_SEGMENT = /^(bot)?(\d+):[A-Za-z0-9_-]+$/;

/** A URL as records show it: query values `***`, a bot token's secret part `***`, path segments of 24+ characters cut to 4 + `***`. */
export function maskUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return '<invalid url>';
  }
  const path = u.pathname
    .split('/')
    .map((seg) => {
      const token = BOT_TOKEN_SEGMENT.exec(seg);
      if (token) return `${token[1] ?? ''}${token[2]}:***`;
      return seg.length >= 24 ? `${seg.slice(0, 4)}***` : seg;
    })
    .join('/');
  const query = [...u.searchParams.keys()].map((k) => `${encodeURIComponent(k)}=***`).join('&');
  return `${u.protocol}//${u.host}${path}${query ? `?${query}` : ''}`;
}

/** What one callback sends. `headers` is called per attempt (Standard Webhooks stamp each attempt anew). */
export interface Callback {
  provider: SimulatedProvider;
  kind: CallbackKind;
  method: 'POST' | 'GET';
  url: string;
  headers: () => Record<string, string>;
  body?: string;
  /** Which failures are retried: `connection` (network errors only, at most once: Twilio), `any`, `none` (clicks). */
  retry: 'connection' | 'any' | 'none';
  providerMessageId: string;
  idempotencyKey?: string;
  recipient: string;
  summary: Record<string, string>;
  /** Told the final outcome (Telegram keeps the last webhook error for getWebhookInfo). */
  onFinal?: (ok: boolean, error: string | undefined, time: number) => void;
}

class Cancelled extends Error {}

/** Schedules, sends, retries and repeats callbacks; logs them; cancels them on close. */
export class CallbackEngine {
  readonly #options: ResolvedCallbacks;
  readonly #clock: () => number;
  readonly #abort = new AbortController();
  #records: CallbackRecord[] = [];
  #kinds = emptyKinds();
  #pending = 0;
  #inFlight = 0;
  #idleWaiters: Array<() => void> = [];

  constructor(options: ResolvedCallbacks, clock: () => number) {
    this.#options = options;
    this.#clock = clock;
  }

  get options(): ResolvedCallbacks {
    return this.#options;
  }

  get closed(): boolean {
    return this.#abort.signal.aborted;
  }

  /** A delay drawn from `delayMs` with `random`. */
  delay(random: () => number): number {
    const d = this.#options.delayMs;
    return typeof d === 'number' ? d : Math.round(d.min + random() * (d.max - d.min));
  }

  /** Waits `ms`; rejects (with an internal cancellation) when the engine closes. */
  sleep(ms: number): Promise<void> {
    return sleepOrReject(ms, this.#abort.signal);
  }

  /** Runs one message's script, counted as pending until it ends; a cancellation ends it quietly. */
  run(script: () => Promise<void>, onError: (err: unknown) => void): void {
    if (this.closed) return;
    this.#pending += 1;
    script()
      .catch((err: unknown) => {
        if (!(err instanceof Cancelled) && !this.closed) onError(err);
      })
      .finally(() => {
        this.#pending -= 1;
        this.#checkIdle();
      });
  }

  unroutable(kind: CallbackKind): void {
    this.#kinds[kind].unroutable += 1;
  }

  /** Sends a callback with its retries; then, with probability `repeatRate` (drawn from `random`), once more after a delay. */
  async deliver(cb: Callback, random: () => number): Promise<void> {
    await this.#attempts(cb, false);
    if (this.#options.repeatRate > 0 && random() < this.#options.repeatRate) {
      await this.sleep(this.delay(random));
      await this.#attempts(cb, true);
    }
  }

  async #attempts(cb: Callback, repeat: boolean): Promise<void> {
    const stats = this.#kinds[cb.kind];
    if (repeat) stats.repeats += 1;
    else stats.sent += 1;
    const retries =
      cb.retry === 'none'
        ? 0
        : cb.retry === 'connection'
          ? Math.min(1, this.#options.maxRetries)
          : this.#options.maxRetries;
    for (let attempt = 1; ; attempt += 1) {
      if (attempt > 1) stats.retries += 1;
      const { ok, status, error, time } = await this.#send(cb, attempt, repeat);
      const retryable = cb.retry === 'any' || (cb.retry === 'connection' && status === undefined);
      if (ok || !retryable || attempt > retries) {
        if (!repeat) {
          if (ok) stats.succeeded += 1;
          else stats.failed += 1;
        }
        cb.onFinal?.(ok, ok ? undefined : (error ?? `HTTP ${status}`), time);
        return;
      }
      await this.sleep(this.#options.retryDelayMs * 2 ** (attempt - 1));
    }
  }

  async #send(
    cb: Callback,
    attempt: number,
    repeat: boolean,
  ): Promise<{ ok: boolean; status?: number; error?: string; time: number }> {
    if (this.closed) throw new Cancelled();
    const time = this.#clock();
    const record: CallbackRecord = {
      time,
      provider: cb.provider,
      kind: cb.kind,
      method: cb.method,
      url: maskUrl(cb.url),
      providerMessageId: cb.providerMessageId,
      ...(cb.idempotencyKey === undefined ? {} : { idempotencyKey: cb.idempotencyKey }),
      recipient: cb.recipient,
      summary: cb.summary,
      attempt,
      repeat,
      ok: false,
    };
    this.#inFlight += 1;
    try {
      const res = await fetch(cb.url, {
        method: cb.method,
        headers: cb.headers(),
        redirect: 'manual',
        signal: AbortSignal.any([this.#abort.signal, AbortSignal.timeout(this.#options.timeoutMs)]),
        ...(cb.body === undefined ? {} : { body: cb.body }),
      });
      await res.arrayBuffer().catch(() => undefined);
      record.status = res.status;
      record.ok = cb.kind === 'click' ? res.status < 400 : res.status >= 200 && res.status < 300;
    } catch (err) {
      if (this.closed) throw new Cancelled();
      const cause = err instanceof Error ? (err.cause as { code?: string } | undefined) : undefined;
      record.error = cause?.code ?? (err instanceof Error ? err.name : String(err));
    } finally {
      this.#inFlight -= 1;
    }
    this.#records.push(record);
    return {
      ok: record.ok,
      ...(record.status === undefined ? {} : { status: record.status }),
      ...(record.error === undefined ? {} : { error: record.error }),
      time,
    };
  }

  records(filter: CallbackFilter = {}): CallbackRecord[] {
    return this.#records
      .filter(
        (r) =>
          (filter.provider === undefined || r.provider === filter.provider) &&
          (filter.kind === undefined || r.kind === filter.kind),
      )
      .map((r) => structuredClone(r));
  }

  stats(): CallbackStats {
    return { kinds: structuredClone(this.#kinds), pending: this.#pending, inFlight: this.#inFlight };
  }

  /** Empties the log and the statistics; what is scheduled keeps running. */
  reset(): void {
    this.#records = [];
    this.#kinds = emptyKinds();
  }

  /** Resolves when nothing is scheduled or in flight (at once if nothing is; after `close()`, at once). */
  idle(): Promise<void> {
    if (this.#pending === 0 || this.closed) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  #checkIdle(): void {
    if (this.#pending > 0 && !this.closed) return;
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const w of waiters) w();
  }

  /** Cancels everything scheduled and aborts the requests in flight. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.#abort.abort(new Cancelled());
    this.#checkIdle();
  }
}
