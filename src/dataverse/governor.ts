/**
 * The service-protection governor: every Dataverse call of one identity goes through one governor, which keeps the
 * identity within Dataverse's limits (reference/dataverse-contracts.md §3: per user, over a sliding window, requests,
 * combined execution time, 52 concurrent; 429 with `Retry-After` in seconds).
 *
 * - **Retry-After**: after a 429 no call starts until the `Retry-After` has run out; every caller waits. When it
 *   has, one call goes first (a probe); the others follow once it answered with anything but a 429, so a pause
 *   costs at most one more 429 however many callers wait.
 * - **Pacing**: from `x-ms-ratelimit-burst-remaining-xrm-requests` (requests left in the window) and
 *   `x-ms-ratelimit-time-remaining-xrm-requests` (execution seconds left, en-US grouping: `1,199.46`). While more
 *   than `paceBelow` of the most ever seen is left, calls start freely (the burst); below it, starts are spaced so
 *   that what is left lasts the window: `windowMs / requestsLeft`, and `windowMs × averageCost / timeLeft` where
 *   the average execution cost of a request is the time used over the requests used in the window. A client
 *   spending this way settles at about half of each budget and is never refused for it.
 * - **Concurrency** (AIMD): starts at `initialConcurrency`, grows by one per `concurrency` successful calls up to
 *   `maxConcurrency` (at most 52, Dataverse's concurrent-request limit), halves on a 429 (once per pause).
 * - Every call gets an AbortSignal that fires on the caller's signal and after `timeoutMs`; errors come out as
 *   `DataverseError` (errors.ts), a timeout as `DataverseTimeout`; the caller's own abort rethrows its reason.
 *
 * The headers come from `observe`, which `createDataverseClient({ onResponse: governor.observe })` feeds with every
 * response (dynamics-web-api does not expose headers on success; see client.ts). Without it the governor still
 * honours 429s and adapts its concurrency; it cannot pace.
 */
import { whenAborted } from '../abort.js';
import { DataverseError, isDataverseError } from '../errors.js';
import type { ObservedResponse } from './client.js';
import { DEFAULT_RETRY_AFTER_MS, parseRetryAfter, toDataverseError } from './errors.js';

export const DATAVERSE_MAX_CONCURRENT = 52;

export interface GovernorOptions {
  /** Calls in flight at first. @defaultValue 4 */
  initialConcurrency?: number;
  /** Calls in flight at most (≤ 52). @defaultValue 16 */
  maxConcurrency?: number;
  /** Calls in flight at least, after halving. @defaultValue 1 */
  minConcurrency?: number;
  /** The service protection window, over which pacing spreads what is left. @defaultValue 300000 (5 minutes) */
  windowMs?: number;
  /** Pacing starts when less than this fraction of the largest remaining budget seen is left. @defaultValue 0.5 */
  paceBelow?: number;
  /** Each call is aborted after this long (DataverseTimeout), unless `run` says otherwise (the reads and the writer pass the timeoutMs of a client made by createDataverseClient). @defaultValue 30000 */
  timeoutMs?: number;
  /** Pause after a 429 without a usable Retry-After. @defaultValue 1000 */
  defaultRetryAfterMs?: number;
  /**
   * Longest wait for the limits (a `Retry-After`, pacing, concurrency) before a call starts; then it fails with
   * `DataverseThrottled` (`retryAfterMs`: what is left of a pause, or the pacing interval), so that the caller's own
   * caps and lock budgets apply instead of a silent wait. @defaultValue 60000
   */
  maxQueueMs?: number;
}

export interface RunOptions {
  signal?: AbortSignal | undefined;
  /** For error messages, e.g. `retrieve contacts`. */
  operation?: string;
  /** Overrides the governor's `timeoutMs` for this call. */
  timeoutMs?: number;
}

/** What the governor knows, for metrics and tests. */
export interface GovernorState {
  /** Calls allowed in flight now. */
  concurrency: number;
  inFlight: number;
  waiting: number;
  /** Epoch ms until which no call starts (0: not paused). */
  pausedUntil: number;
  /** Whether the next call after a pause is a probe (one at a time). */
  probing: boolean;
  /** Minimum spacing between starts from the headers, ms (0: not pacing). */
  intervalMs: number;
  requestsRemaining: number | undefined;
  timeRemainingMs: number | undefined;
  /** 429s seen by calls through `run`. */
  throttled: number;
  calls: number;
}

export interface Governor {
  /** Runs `call` when the limits allow, with a signal that fires on abort and timeout; errors as DataverseError. */
  run<T>(call: (signal: AbortSignal) => Promise<T>, options?: RunOptions): Promise<T>;
  /** Feeds a response's status and headers (pacing, and a 429's Retry-After). Bound: pass it as a callback. */
  readonly observe: (response: ObservedResponse) => void;
  state(): GovernorState;
  /** Rejects waiting callers and refuses new ones. Idempotent. */
  close(): void;
}

export const GOVERNOR_DEFAULTS = {
  initialConcurrency: 4,
  maxConcurrency: 16,
  minConcurrency: 1,
  windowMs: 300_000,
  paceBelow: 0.5,
  timeoutMs: 30_000,
  defaultRetryAfterMs: DEFAULT_RETRY_AFTER_MS,
  maxQueueMs: 60_000,
} as const;

const BURST = 'x-ms-ratelimit-burst-remaining-xrm-requests';
const TIME = 'x-ms-ratelimit-time-remaining-xrm-requests';

function validate(options: GovernorOptions): Required<GovernorOptions> {
  const o = { ...GOVERNOR_DEFAULTS, ...options };
  const fail = (key: string, expected: string): never => {
    throw new TypeError(`createGovernor: ${key} must be ${expected}, found ${String((options as Record<string, unknown>)[key])}`);
  };
  if (!Number.isInteger(o.maxConcurrency) || o.maxConcurrency < 1 || o.maxConcurrency > DATAVERSE_MAX_CONCURRENT) fail('maxConcurrency', `an integer 1-${DATAVERSE_MAX_CONCURRENT}`);
  if (!Number.isInteger(o.minConcurrency) || o.minConcurrency < 1 || o.minConcurrency > o.maxConcurrency) fail('minConcurrency', `an integer 1-maxConcurrency (${o.maxConcurrency})`);
  if (!Number.isInteger(o.initialConcurrency) || o.initialConcurrency < o.minConcurrency || o.initialConcurrency > o.maxConcurrency) {
    fail('initialConcurrency', `an integer ${o.minConcurrency}-${o.maxConcurrency}`);
  }
  if (!(o.windowMs > 0)) fail('windowMs', '> 0');
  if (!(o.paceBelow >= 0 && o.paceBelow <= 1)) fail('paceBelow', 'between 0 and 1');
  if (!(o.timeoutMs > 0)) fail('timeoutMs', '> 0');
  if (!(o.defaultRetryAfterMs >= 0)) fail('defaultRetryAfterMs', '>= 0');
  if (!(o.maxQueueMs > 0)) fail('maxQueueMs', '> 0');
  return o;
}

/** `1,199.46` → 1199460 ms; undefined when absent or unreadable. */
export function parseTimeRemaining(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const seconds = Number(value.replace(/,/g, '').trim());
  return value.trim() === '' || !Number.isFinite(seconds) ? undefined : seconds * 1000;
}

/** A function, so that TypeScript does not narrow `aborted` across awaits. */
function isAborted(signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true;
}

interface Waiter {
  /** `probe`: the one call let through after a pause. */
  resolve(probe: boolean): void;
  reject(reason: unknown): void;
}

class ServiceProtectionGovernor implements Governor {
  readonly #o: Required<GovernorOptions>;
  #limit: number;
  #inFlight = 0;
  readonly #waiters: Waiter[] = [];
  #pausedUntil = 0;
  #probing = false;
  #probeInFlight = false;
  #lastStartAt = Number.NEGATIVE_INFINITY;
  #intervalMs = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #timerAt = 0;
  #closed = false;
  #maxRequests = 0;
  #maxTimeMs = 0;
  #requests: number | undefined;
  #timeMs: number | undefined;
  #throttled = 0;
  #calls = 0;

  constructor(options: GovernorOptions) {
    this.#o = validate(options);
    this.#limit = this.#o.initialConcurrency;
  }

  readonly observe = (response: ObservedResponse): void => {
    const requests = Number(response.headers[BURST]);
    if (response.headers[BURST] !== undefined && Number.isFinite(requests)) {
      this.#requests = requests;
      this.#maxRequests = Math.max(this.#maxRequests, requests);
    }
    const timeMs = parseTimeRemaining(response.headers[TIME]);
    if (timeMs !== undefined) {
      this.#timeMs = timeMs;
      this.#maxTimeMs = Math.max(this.#maxTimeMs, timeMs);
    }
    this.#intervalMs = this.#pacing();
    if (response.status === 429) this.#pause(parseRetryAfter(response.headers['retry-after']) ?? this.#o.defaultRetryAfterMs);
    this.#pump();
  };

  #pacing(): number {
    const { windowMs, paceBelow } = this.#o;
    let interval = 0;
    const r = this.#requests;
    if (r !== undefined && this.#maxRequests > 0 && r < paceBelow * this.#maxRequests) interval = Math.max(interval, windowMs / Math.max(r, 1));
    const t = this.#timeMs;
    if (t !== undefined && this.#maxTimeMs > 0 && t < paceBelow * this.#maxTimeMs) {
      const usedRequests = r === undefined ? 1 : Math.max(this.#maxRequests - r, 1);
      const averageCostMs = (this.#maxTimeMs - t) / usedRequests;
      interval = Math.max(interval, (windowMs * averageCostMs) / Math.max(t, 1));
    }
    return interval;
  }

  #pause(retryAfterMs: number): void {
    const now = Date.now();
    // Halve once per pause: the 429s of calls that were already in flight are the same event.
    if (now >= this.#pausedUntil) this.#limit = Math.max(this.#o.minConcurrency, Math.floor(this.#limit / 2));
    this.#pausedUntil = Math.max(this.#pausedUntil, now + retryAfterMs);
    this.#probing = true;
  }

  #schedule(at: number): void {
    if (this.#timer !== undefined && this.#timerAt <= at) return;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timerAt = at;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#pump();
    }, Math.max(0, at - Date.now()));
  }

  #pump(): void {
    while (!this.#closed && this.#waiters.length > 0) {
      const now = Date.now();
      if (now < this.#pausedUntil) return this.#schedule(this.#pausedUntil);
      // After a pause one new call (the probe) goes alone, whatever was already in flight before the pause.
      if (this.#probing ? this.#probeInFlight : this.#inFlight >= Math.floor(this.#limit)) return;
      const at = this.#lastStartAt + this.#intervalMs;
      if (now < at) return this.#schedule(at);
      const waiter = this.#waiters.shift()!;
      this.#inFlight++;
      this.#lastStartAt = now;
      if (this.#probing) this.#probeInFlight = true;
      waiter.resolve(this.#probing);
    }
  }

  #acquire(signal: AbortSignal | undefined): Promise<boolean> {
    if (this.#closed) return Promise.reject(new DataverseError('DataverseUnavailable', 'the Dataverse governor is closed'));
    if (signal?.aborted === true) return Promise.reject(signal.reason);
    return new Promise<boolean>((resolve, reject) => {
      let stopListening = (): void => undefined;
      const waiter: Waiter = {
        resolve: (probe) => {
          stopListening();
          clearTimeout(giveUp);
          resolve(probe);
        },
        reject: (reason) => {
          stopListening();
          clearTimeout(giveUp);
          reject(reason);
        },
      };
      const leave = (): void => {
        const i = this.#waiters.indexOf(waiter);
        if (i >= 0) this.#waiters.splice(i, 1);
      };
      const giveUp = setTimeout(() => {
        leave();
        stopListening();
        const now = Date.now();
        const retryAfterMs = Math.max(this.#pausedUntil - now, this.#intervalMs, this.#o.defaultRetryAfterMs);
        reject(new DataverseError('DataverseThrottled', `waited ${this.#o.maxQueueMs} ms for the service protection limits without a call starting`, { retryAfterMs }));
      }, this.#o.maxQueueMs);
      stopListening = whenAborted(signal, (reason) => {
        leave();
        clearTimeout(giveUp);
        reject(reason);
      });
      this.#waiters.push(waiter);
      this.#pump();
    });
  }

  /** `cancelled`: the caller gave up; says nothing about Dataverse (a probe cancelled leaves the next call to probe). */
  #release(outcome: 'ok' | 'throttled' | 'failed' | 'cancelled', probe: boolean, retryAfterMs?: number): void {
    this.#inFlight--;
    if (probe) this.#probeInFlight = false;
    if (outcome === 'throttled') {
      this.#throttled++;
      this.#pause(retryAfterMs ?? this.#o.defaultRetryAfterMs);
    } else if (probe && outcome !== 'cancelled') {
      // The probe was answered with something else than a 429: the pause is over.
      this.#probing = false;
    }
    // Grow on success, except while probing (successes of calls sent before the pause say nothing).
    if (outcome === 'ok' && !this.#probing) this.#limit = Math.min(this.#o.maxConcurrency, this.#limit + 1 / Math.max(1, Math.floor(this.#limit)));
    this.#pump();
  }

  async run<T>(call: (signal: AbortSignal) => Promise<T>, options: RunOptions = {}): Promise<T> {
    const { signal } = options;
    const probe = await this.#acquire(signal);
    if (signal?.aborted === true) {
      // Aborted between being let in and running.
      this.#release('cancelled', probe);
      throw signal.reason;
    }
    this.#calls++;
    const timeoutMs = options.timeoutMs ?? this.#o.timeoutMs;
    const controller = new AbortController();
    let timedOut = false;
    let stop: (reason: unknown) => void = () => undefined;
    const stopped = new Promise<never>((_, reject) => {
      stop = reject;
    });
    const timer = setTimeout(() => {
      timedOut = true;
      const reason = new DOMException(`no answer within ${timeoutMs} ms`, 'TimeoutError');
      controller.abort(reason);
      stop(reason);
    }, timeoutMs);
    const stopListening = whenAborted(signal, (reason) => {
      controller.abort(reason);
      stop(reason);
    });
    try {
      // The race ends the call at once even when the callee does not honour the signal (e.g. a token request).
      const pending = call(controller.signal);
      pending.catch(() => undefined);
      const result = await Promise.race([pending, stopped]);
      this.#release('ok', probe);
      return result;
    } catch (err) {
      if (!timedOut && isAborted(signal)) {
        this.#release('cancelled', probe);
        throw signal!.reason;
      }
      const error = isDataverseError(err) ? err : toDataverseError(err, { timedOut, timeoutMs, ...(options.operation === undefined ? {} : { operation: options.operation }) });
      if (error.code === 'DataverseThrottled') this.#release('throttled', probe, error.retryAfterMs);
      else this.#release('failed', probe);
      throw error;
    } finally {
      clearTimeout(timer);
      stopListening();
      stopped.catch(() => undefined);
    }
  }

  state(): GovernorState {
    return {
      concurrency: this.#probing ? 1 : Math.floor(this.#limit),
      inFlight: this.#inFlight,
      waiting: this.#waiters.length,
      pausedUntil: this.#pausedUntil > Date.now() ? this.#pausedUntil : 0,
      probing: this.#probing,
      intervalMs: this.#intervalMs,
      requestsRemaining: this.#requests,
      timeRemainingMs: this.#timeMs,
      throttled: this.#throttled,
      calls: this.#calls,
    };
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    const error = new DataverseError('DataverseUnavailable', 'the Dataverse governor is closed');
    for (const w of this.#waiters.splice(0)) w.reject(error);
  }
}

/** One governor per Dataverse identity, shared by every call of that identity (reads and writes). */
export function createGovernor(options: GovernorOptions = {}): Governor {
  return new ServiceProtectionGovernor(options);
}
