/**
 * The service-protection governor: every Dataverse call of one identity in a process goes through one governor, which
 * keeps the identity within Dataverse's limits (reference/dataverse-contracts.md §3: per user, over a sliding window,
 * 6,000 requests, 1,200 s of combined execution time, 52 concurrent; 429 with `Retry-After` in seconds).
 *
 * Invariants: after a 429 no call starts before its `Retry-After` has run out, and then one probe goes first, so a
 * pause costs at most one more 429 however many callers wait; pacing rests on the governor's own count of requests
 * and execution time (a `$batch` counts once toward requests, but every operation in it adds execution time: for
 * batched writes that is the limit that binds); a call that does not fit what the own count's window has left waits
 * for enough of it to slide out (what a burst spent counts for a whole window after it); a burst goes unpaced only
 * while the work in sight fits what the window has left (`burstReserve`); the `x-ms-ratelimit-*` headers are
 * debugging aids from whichever server answered (PA-docs api-limits.md), no contract: they can only slow calls down,
 * and the governor is correct without.
 */
import { whenAborted } from '../abort.js';
import { DataverseError, isDataverseError } from '../errors.js';
import type { ObservedResponse } from './client.js';
import { DEFAULT_RETRY_AFTER_MS, parseRetryAfter, toDataverseError } from './errors.js';
import { SERVICE_PROTECTION } from './assumptions.js';
import { ATTR, inClientSpan, setHttpStatus } from '../telemetry/index.js';

export const DATAVERSE_MAX_CONCURRENT = 52;

export interface GovernorOptions {
  /**
   * Calls in flight at first. Concurrency grows by one per successful call (slow start) until the first 429, then by
   * one per `concurrency` successful calls (AIMD), up to `maxConcurrency`, and halves on a 429 (once per pause).
   * @defaultValue 4
   */
  initialConcurrency?: number;
  /**
   * Calls in flight at most (≤ 52, Dataverse's concurrent-request limit). The `x-ms-dop-hint` response header (the
   * org's recommended degree of parallelism, PA-docs send-parallel-requests.md), when present, lowers this ceiling to
   * its value. @defaultValue 16
   */
  maxConcurrency?: number;
  /** Calls in flight at least, after halving. @defaultValue 1 */
  minConcurrency?: number;
  /** The service protection window, over which pacing spreads what is left. @defaultValue 300000 (5 minutes) */
  windowMs?: number;
  /**
   * Pacing starts when less than this fraction of a budget is left (unless a burst fits: `burstReserve`). By the own
   * count (`requestBudget`, `executionBudgetMs`), starts are then spaced at the budget's sustained rate
   * (`windowMs / requestBudget` apart, `windowMs × estimated cost of the next call / executionBudgetMs`), so that a
   * busy identity spends its whole budget window after window, and a call that does not fit what is left waits until
   * enough of the window has passed. By the headers, while they are believed (see `observe`), starts are spaced so that what
   * they say is left lasts the window (`windowMs / remaining`). @defaultValue 0.5
   */
  paceBelow?: number;
  /**
   * A burst spends what the window has left without pacing while the work in sight fits it: the own count of the
   * window, the calls in flight and the calls waiting (their estimated cost) stay within each budget less this
   * fraction (and within what believed headers say is left, less this fraction of the most they said), and neither
   * did the own count hold a call back nor did a 429 come within the last window (a backlog that did not fit: a stage
   * shows the governor only the calls it started, not its queue). Otherwise pacing follows `paceBelow`. The reserve
   * keeps room for the identity's other calls once a burst has spent the rest. @defaultValue 0.1
   */
  burstReserve?: number;
  /** Each call is aborted after this long (DataverseTimeout), unless `run` says otherwise (the reads and the writer pass the timeoutMs of a client made by createDataverseClient). @defaultValue 30000 */
  timeoutMs?: number;
  /**
   * Requests per window this governor may use: Dataverse's 6,000 per identity, shared by every process of the
   * identity (give each its part). @defaultValue 6000
   */
  requestBudget?: number;
  /**
   * Combined execution time per window this governor may use, ms: Dataverse's 1,200,000 (20 minutes) per identity,
   * shared by every process of the identity (give each its part). Counted from each call's observed duration (the
   * server's execution time plus the network: an upper bound), with an estimate per operation learned from those
   * durations for the calls in flight (`RunOptions.operations`); a 429 for execution time (`0x80072321`) says the
   * count fell short, and the estimate is raised to match. @defaultValue 1200000
   */
  executionBudgetMs?: number;
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
  /** Operations the call runs (a `$batch`: one per part), each adding execution time. @defaultValue 1 */
  operations?: number;
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
  /** Minimum spacing between starts from the headers, ms (0: not pacing on them). */
  intervalMs: number;
  /** From the last headers (believed or not); undefined until a response carried them. */
  requestsRemaining: number | undefined;
  timeRemainingMs: number | undefined;
  /** Whether the headers are believed now (see `observe`). */
  headersTrusted: boolean;
  /** The governor's own count over the window: requests started, execution ms spent (and estimated for calls in flight). */
  requestsUsed: number;
  executionUsedMs: number;
  /** Estimated execution time of one operation, ms, learned from observed durations (0 until a call ended). */
  operationEstimateMs: number;
  /** The last `x-ms-dop-hint`, when one came. */
  dopHint: number | undefined;
  /** 429s seen by calls through `run`. */
  throttled: number;
  calls: number;
}

export interface Governor {
  /**
   * Runs `call` when the limits allow: after a 429 no call starts until its `Retry-After` has run out (every caller
   * waits); then one call goes first (a probe), and the others follow once it answered with anything but a 429. The
   * call's signal fires on the caller's signal and after `timeoutMs`; errors come out as `DataverseError` (errors.ts),
   * a timeout as `DataverseTimeout`, and the caller's own abort rethrows its reason.
   */
  run<T>(call: (signal: AbortSignal) => Promise<T>, options?: RunOptions): Promise<T>;
  /**
   * Feeds a response's status and headers (pacing, and a 429's Retry-After). Bound: pass it as a callback;
   * `createDataverseClient({ onResponse: governor.observe })` feeds it every response (dynamics-web-api does not
   * expose headers on success; see client.ts). Without it the governor paces from its own count and honours 429s.
   * `x-ms-ratelimit-burst-remaining-xrm-requests` and `x-ms-ratelimit-time-remaining-xrm-requests` (execution seconds
   * left, en-US grouping: `1,199.46`) pace like the own count, from what they say is left (they see the identity's
   * other processes). They are believed only while successive readings do not go up (a rise means another server
   * answered): after a rise, not until `HEADER_TRUST_READINGS` readings in a row went down or stayed.
   */
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
  burstReserve: 0.1,
  timeoutMs: 30_000,
  requestBudget: 6000,
  executionBudgetMs: 1_200_000,
  defaultRetryAfterMs: DEFAULT_RETRY_AFTER_MS,
  maxQueueMs: 60_000,
} as const;

const BURST = 'x-ms-ratelimit-burst-remaining-xrm-requests';
const TIME = 'x-ms-ratelimit-time-remaining-xrm-requests';
const DOP_HINT = 'x-ms-dop-hint';
/** The execution-time limit's code (-2147015903; reference/dataverse-contracts.md §3). */
const EXECUTION_CODE = '0x80072321';
/** Header readings in a row that must not go up before the headers are believed again (assumptions.ts). */
const HEADER_TRUST_READINGS = SERVICE_PROTECTION.headerTrustReadings;
/** The most an execution-time 429 multiplies the estimate per operation by (assumptions.ts). */
const MAX_ESTIMATE_STEP = SERVICE_PROTECTION.maxEstimateStep;
/**
 * What the estimate per operation keeps of what it learned, per operation of a new call: a dearer call outweighs the
 * past within about 70 operations, a cheaper one within about 700 (a `$batch` of 100 keeps 37 % and 90 %).
 */
const LEARN_KEEP = { dearer: 0.99, cheaper: 0.999 } as const;
/** How much longer than `windowMs` the own count keeps what it counted (assumptions.ts). */
const WINDOW_SLACK = SERVICE_PROTECTION.windowSlack;

function validate(options: GovernorOptions): Required<GovernorOptions> {
  const o = { ...GOVERNOR_DEFAULTS, ...options };
  const fail = (key: string, expected: string): never => {
    throw new TypeError(
      `createGovernor: ${key} must be ${expected}, found ${String((options as Record<string, unknown>)[key])}`,
    );
  };
  if (!Number.isInteger(o.maxConcurrency) || o.maxConcurrency < 1 || o.maxConcurrency > DATAVERSE_MAX_CONCURRENT)
    fail('maxConcurrency', `an integer 1-${DATAVERSE_MAX_CONCURRENT}`);
  if (!Number.isInteger(o.minConcurrency) || o.minConcurrency < 1 || o.minConcurrency > o.maxConcurrency)
    fail('minConcurrency', `an integer 1-maxConcurrency (${o.maxConcurrency})`);
  if (
    !Number.isInteger(o.initialConcurrency) ||
    o.initialConcurrency < o.minConcurrency ||
    o.initialConcurrency > o.maxConcurrency
  ) {
    fail('initialConcurrency', `an integer ${o.minConcurrency}-${o.maxConcurrency}`);
  }
  if (!(o.windowMs > 0)) fail('windowMs', '> 0');
  if (!(o.paceBelow >= 0 && o.paceBelow <= 1)) fail('paceBelow', 'between 0 and 1');
  if (!(o.burstReserve >= 0 && o.burstReserve <= 1)) fail('burstReserve', 'between 0 and 1');
  if (!(o.timeoutMs > 0)) fail('timeoutMs', '> 0');
  if (!(o.requestBudget >= 1)) fail('requestBudget', '>= 1');
  if (!(o.executionBudgetMs > 0)) fail('executionBudgetMs', '> 0');
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
  /** Operations of the call (its estimated cost). */
  operations: number;
  /** `probe`: the one call let through after a pause. */
  resolve(probe: boolean): void;
  reject(reason: unknown): void;
}

/** A sliding window of (time, amount) entries with a running sum. */
class Window {
  #entries: Array<{ at: number; amount: number }> = [];
  #head = 0;
  sum = 0;

  add(at: number, amount: number): void {
    this.#entries.push({ at, amount });
    this.sum += amount;
  }

  /** Drops the entries at or before `before`. */
  prune(before: number): void {
    while (this.#head < this.#entries.length && this.#entries[this.#head]!.at <= before) {
      this.sum -= this.#entries[this.#head]!.amount;
      this.#head++;
    }
    if (this.#head > 1024 && this.#head * 2 > this.#entries.length) {
      this.#entries = this.#entries.slice(this.#head);
      this.#head = 0;
    }
    if (this.#head === this.#entries.length) this.sum = 0;
  }

  /** When (an entry's time) enough has left for the sum to be at most `target`; undefined if it already is. */
  whenAtMost(target: number): number | undefined {
    let sum = this.sum;
    for (let i = this.#head; i < this.#entries.length && sum > target; i++) {
      sum -= this.#entries[i]!.amount;
      if (sum <= target) return this.#entries[i]!.at;
    }
    return sum <= target ? undefined : this.#entries.at(-1)?.at;
  }
}

class ServiceProtectionGovernor implements Governor {
  readonly #o: Required<GovernorOptions>;
  #limit: number;
  #inFlight = 0;
  readonly #waiters: Waiter[] = [];
  /** Operations of the waiting calls. */
  #waitingOperations = 0;
  #pausedUntil = 0;
  #probing = false;
  #probeInFlight = false;
  #lastStartAt = Number.NEGATIVE_INFINITY;
  /** Spacing between starts from the headers (0: not pacing on them). */
  #intervalMs = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #timerAt = 0;
  #closed = false;
  #maxRequests = 0;
  #maxTimeMs = 0;
  #requests: number | undefined;
  #timeMs: number | undefined;
  /** Readings still needed before the headers are believed (0: believed). */
  #distrust = 0;
  #dopHint: number | undefined;
  /** The own count: requests started, execution ms spent, in the window. */
  readonly #used = { requests: new Window(), executionMs: new Window() };
  /** Estimated execution ms of the calls in flight. */
  #inFlightCostMs = 0;
  #operationMs = 0;
  /** The durations and operations the estimate is learned from, faded (`#spent`). */
  readonly #learned = { ms: 0, operations: 0 };
  #throttled = 0;
  #calls = 0;
  /** Growing by one per success until the first 429 (slow start); then one per `concurrency` successes. */
  #slowStart = true;
  /** When the own count last held a call back (a backlog that did not fit the window's budget), or a 429 came. */
  #heldBackAt = Number.NEGATIVE_INFINITY;

  constructor(options: GovernorOptions) {
    this.#o = validate(options);
    this.#limit = this.#o.initialConcurrency;
  }

  readonly observe = (response: ObservedResponse): void => {
    const burst = response.headers[BURST];
    const requests = burst === undefined || burst.trim() === '' ? undefined : Number(burst);
    const timeMs = parseTimeRemaining(response.headers[TIME]);
    const readRequests = requests !== undefined && Number.isFinite(requests) ? requests : undefined;
    // A reading above the last one came from another server (or the window moved on): stop believing for a while.
    const rose = (now: number | undefined, last: number | undefined, max: number): boolean =>
      now !== undefined && last !== undefined && now > last + 0.01 * max;
    if (rose(readRequests, this.#requests, this.#maxRequests) || rose(timeMs, this.#timeMs, this.#maxTimeMs))
      this.#distrust = HEADER_TRUST_READINGS;
    else if ((readRequests !== undefined || timeMs !== undefined) && this.#distrust > 0) this.#distrust--;
    if (readRequests !== undefined) {
      this.#requests = readRequests;
      this.#maxRequests = Math.max(this.#maxRequests, readRequests);
    }
    if (timeMs !== undefined) {
      this.#timeMs = timeMs;
      this.#maxTimeMs = Math.max(this.#maxTimeMs, timeMs);
    }
    const hint = Number(response.headers[DOP_HINT]);
    if (response.headers[DOP_HINT] !== undefined && Number.isInteger(hint) && hint >= 1) {
      this.#dopHint = hint;
      this.#limit = Math.min(this.#limit, this.#ceiling());
    }
    this.#intervalMs = this.#headerPacing();
    if (response.status === 429)
      this.#pause(parseRetryAfter(response.headers['retry-after']) ?? this.#o.defaultRetryAfterMs);
    this.#pump();
  };

  /** The most calls in flight: `maxConcurrency`, lowered to the org's `x-ms-dop-hint` when it sent one. */
  #ceiling(): number {
    return Math.max(
      this.#o.minConcurrency,
      Math.min(this.#o.maxConcurrency, this.#dopHint ?? Number.POSITIVE_INFINITY),
    );
  }

  /**
   * Whether slow start may grow: more than `paceBelow` of each budget left by the own count and by the headers while
   * they are believed (else growth is one per `concurrency` successes, as after a 429).
   */
  #plenty(): boolean {
    const { paceBelow, requestBudget, executionBudgetMs } = this.#o;
    this.#prune(Date.now());
    if (this.#used.requests.sum > (1 - paceBelow) * requestBudget) return false;
    if (this.#used.executionMs.sum + this.#inFlightCostMs > (1 - paceBelow) * executionBudgetMs) return false;
    if (this.#distrust > 0) return true;
    // A reading was taken when its request arrived: up to twice the calls allowed in flight may have started since.
    const r = this.#requests;
    const t = this.#timeMs;
    return (
      (r === undefined || r - 2 * this.#limit >= paceBelow * this.#maxRequests) &&
      (t === undefined || t >= paceBelow * this.#maxTimeMs)
    );
  }

  /** Spacing from the headers while they are believed: what they say is left, spread over the window. */
  #headerPacing(): number {
    if (this.#distrust > 0) return 0;
    const { windowMs, paceBelow } = this.#o;
    let interval = 0;
    const r = this.#requests;
    if (r !== undefined && this.#maxRequests > 0 && r < paceBelow * this.#maxRequests)
      interval = Math.max(interval, windowMs / Math.max(r, 1));
    const t = this.#timeMs;
    if (t !== undefined && this.#maxTimeMs > 0 && t < paceBelow * this.#maxTimeMs) {
      const usedRequests = r === undefined ? 1 : Math.max(this.#maxRequests - r, 1);
      const averageCostMs = (this.#maxTimeMs - t) / usedRequests;
      interval = Math.max(interval, (windowMs * averageCostMs) / Math.max(t, 1));
    }
    return interval;
  }

  #prune(now: number): void {
    const before = now - this.#o.windowMs * (1 + WINDOW_SLACK);
    this.#used.requests.prune(before);
    this.#used.executionMs.prune(before);
  }

  /**
   * Whether a burst may spend what the window has left (`burstReserve`): the own count held no call back and no 429
   * came within the window, and the work in sight (counted, in flight, waiting) fits each budget less the reserve, by
   * the own count and by the headers while they are believed (they see the identity's other processes).
   */
  #burstFits(now: number): boolean {
    const { burstReserve, requestBudget, executionBudgetMs } = this.#o;
    this.#prune(now);
    if (now - this.#heldBackAt <= this.#o.windowMs * (1 + WINDOW_SLACK)) return false;
    const waitingMs = this.#operationMs * this.#waitingOperations;
    if (this.#used.requests.sum + this.#waiters.length > (1 - burstReserve) * requestBudget) return false;
    if (this.#used.executionMs.sum + this.#inFlightCostMs + waitingMs > (1 - burstReserve) * executionBudgetMs)
      return false;
    if (this.#distrust > 0) return true;
    // A reading was taken when its request arrived: up to twice the calls allowed in flight may have started since.
    const r = this.#requests;
    const t = this.#timeMs;
    return (
      (r === undefined || this.#waiters.length + 2 * this.#limit <= r - burstReserve * this.#maxRequests) &&
      (t === undefined || this.#inFlightCostMs + waitingMs <= t - burstReserve * this.#maxTimeMs)
    );
  }

  /**
   * The earliest start for a call of `operations` from the own count: at once while a `burst` fits the window
   * (`#burstFits`) or more than `paceBelow` of each budget is left, else spaced at the budget's sustained rate (a busy
   * identity spends the whole budget in every window, where spreading only what is left over the window would settle
   * at half of it); when the call does not fit what is left, once enough of the window has passed.
   */
  #ownStart(now: number, operations: number, burst: boolean): number {
    const { paceBelow, requestBudget, executionBudgetMs } = this.#o;
    const windowMs = this.#o.windowMs * (1 + WINDOW_SLACK);
    this.#prune(now);
    let at = now;
    const requestsLeft = requestBudget - this.#used.requests.sum;
    if (requestsLeft < 1) at = Math.max(at, (this.#used.requests.whenAtMost(requestBudget - 1) ?? now) + windowMs);
    else if (!burst && requestsLeft < paceBelow * requestBudget)
      at = Math.max(at, this.#lastStartAt + windowMs / requestBudget);
    const cost = this.#operationMs * operations;
    const timeLeft = executionBudgetMs - this.#used.executionMs.sum - this.#inFlightCostMs;
    if (cost > 0 && timeLeft < cost) {
      // Wait for the window to free what the call needs (calls in flight end meanwhile and are counted then).
      const freed = this.#used.executionMs.whenAtMost(executionBudgetMs - this.#inFlightCostMs - cost);
      at = Math.max(at, freed === undefined ? now : freed + windowMs);
    } else if (!burst && cost > 0 && timeLeft < paceBelow * executionBudgetMs) {
      at = Math.max(at, this.#lastStartAt + (windowMs * cost) / executionBudgetMs);
    }
    return at;
  }

  #pause(retryAfterMs: number): void {
    const now = Date.now();
    // Halve once per pause: the 429s of calls that were already in flight are the same event.
    if (now >= this.#pausedUntil) this.#limit = Math.max(this.#o.minConcurrency, Math.floor(this.#limit / 2));
    this.#slowStart = false;
    // Dataverse's count did not fit (other processes, or a shorter window than read): no burst for a window.
    this.#heldBackAt = now;
    this.#pausedUntil = Math.max(this.#pausedUntil, now + retryAfterMs);
    this.#probing = true;
  }

  /**
   * A 429 for execution time: Dataverse counted at least the budget in its window, more than the own count says
   * (other processes of the identity, or durations that understate). Raise the estimate per operation by what was
   * missing (at most ×10), so that pacing after the pause spends less. The pause itself is the Retry-After's.
   */
  #overBudget(code: string | number | undefined): void {
    if (code !== EXECUTION_CODE || this.#operationMs === 0) return;
    this.#prune(Date.now());
    const counted = this.#used.executionMs.sum + this.#inFlightCostMs;
    const budget = this.#o.executionBudgetMs;
    if (counted >= budget) return;
    const factor = Math.min(MAX_ESTIMATE_STEP, budget / Math.max(counted, 1));
    this.#operationMs *= factor;
    this.#learned.ms *= factor;
  }

  /**
   * Learns from a call that ran `durationMs` for `operations`: counts it, and moves the estimate per operation, the
   * ratio of the durations learned to their operations, each call weighted by its operations (a call's fixed cost,
   * its network and latency, spread over one operation would make a 100-write `$batch` look 100 times dearer), what
   * was learned before fading by `LEARN_KEEP` per operation: fast for a dearer call, slowly for a cheaper one.
   */
  #spent(durationMs: number, operations: number, learn: boolean): void {
    this.#used.executionMs.add(Date.now(), durationMs);
    if (!learn) return;
    const keep = (durationMs / operations > this.#operationMs ? LEARN_KEEP.dearer : LEARN_KEEP.cheaper) ** operations;
    this.#learned.ms = this.#learned.ms * keep + durationMs;
    this.#learned.operations = this.#learned.operations * keep + operations;
    this.#operationMs = this.#learned.ms / this.#learned.operations;
  }

  #schedule(at: number): void {
    if (this.#timer !== undefined && this.#timerAt <= at) return;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timerAt = at;
    this.#timer = setTimeout(
      () => {
        this.#timer = undefined;
        this.#pump();
      },
      Math.max(0, at - Date.now()),
    );
  }

  #pump(): void {
    while (!this.#closed && this.#waiters.length > 0) {
      const now = Date.now();
      if (now < this.#pausedUntil) return this.#schedule(this.#pausedUntil);
      // After a pause one new call (the probe) goes alone, whatever was already in flight before the pause.
      if (this.#probing ? this.#probeInFlight : this.#inFlight >= Math.floor(this.#limit)) return;
      const head = this.#waiters[0]!;
      const burst = this.#burstFits(now);
      const own = this.#ownStart(now, head.operations, burst);
      if (now < own) this.#heldBackAt = now;
      const at = burst ? own : Math.max(this.#lastStartAt + this.#intervalMs, own);
      if (now < at) return this.#schedule(at);
      this.#waiters.shift();
      this.#waitingOperations -= head.operations;
      this.#inFlight++;
      this.#lastStartAt = now;
      this.#used.requests.add(now, 1);
      if (this.#probing) this.#probeInFlight = true;
      head.resolve(this.#probing);
    }
  }

  #acquire(signal: AbortSignal | undefined, operations: number): Promise<boolean> {
    if (this.#closed)
      return Promise.reject(new DataverseError('DataverseUnavailable', 'the Dataverse governor is closed'));
    if (signal?.aborted === true) return Promise.reject(signal.reason);
    return new Promise<boolean>((resolve, reject) => {
      let stopListening = (): void => undefined;
      const waiter: Waiter = {
        operations,
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
        if (i < 0) return;
        this.#waiters.splice(i, 1);
        this.#waitingOperations -= operations;
      };
      const giveUp = setTimeout(() => {
        leave();
        stopListening();
        const now = Date.now();
        const retryAfterMs = Math.max(
          this.#pausedUntil - now,
          this.#intervalMs,
          this.#ownStart(now, operations, false) - now,
          this.#o.defaultRetryAfterMs,
        );
        reject(
          new DataverseError(
            'DataverseThrottled',
            `waited ${this.#o.maxQueueMs} ms for the service protection limits without a call starting`,
            { retryAfterMs },
          ),
        );
      }, this.#o.maxQueueMs);
      stopListening = whenAborted(signal, (reason) => {
        leave();
        clearTimeout(giveUp);
        reject(reason);
      });
      this.#waiters.push(waiter);
      this.#waitingOperations += operations;
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
    if (outcome === 'ok' && !this.#probing)
      this.#limit = Math.min(
        this.#ceiling(),
        this.#limit + (this.#slowStart && this.#plenty() ? 1 : 1 / Math.max(1, Math.floor(this.#limit))),
      );
    this.#pump();
  }

  async run<T>(call: (signal: AbortSignal) => Promise<T>, options: RunOptions = {}): Promise<T> {
    const { signal } = options;
    const operations = options.operations ?? 1;
    if (!(Number.isInteger(operations) && operations >= 1))
      throw new TypeError(`governor.run: operations must be an integer >= 1, found ${String(options.operations)}`);
    const probe = await this.#acquire(signal, operations);
    if (signal?.aborted === true) {
      // Aborted between being let in and running.
      this.#release('cancelled', probe);
      throw signal.reason;
    }
    this.#calls++;
    const estimateMs = this.#operationMs * operations;
    this.#inFlightCostMs += estimateMs;
    const startedAt = Date.now();
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
    const ended = (learn: boolean): void => {
      this.#inFlightCostMs -= estimateMs;
      this.#spent(Date.now() - startedAt, operations, learn);
    };
    try {
      // The race ends the call at once even when the callee does not honour the signal (e.g. a token request).
      // A CLIENT span per call (child of the active span: the recorder's `$batch`, a callback's request).
      const pending = inClientSpan(
        'Dataverse',
        { [ATTR.dataverseOperation]: options.operation ?? 'call', [ATTR.operationCount]: operations },
        () => call(controller.signal),
        (span, result) => {
          if (!result.ok && isDataverseError(result.error) && result.error.upstream?.status !== undefined)
            setHttpStatus(span, result.error.upstream.status);
        },
      );
      pending.catch(() => undefined);
      const result = await Promise.race([pending, stopped]);
      ended(true);
      this.#release('ok', probe);
      return result;
    } catch (err) {
      if (!timedOut && isAborted(signal)) {
        // The server may have run it: counted, not learned from.
        ended(false);
        this.#release('cancelled', probe);
        throw signal!.reason;
      }
      const error = isDataverseError(err)
        ? err
        : toDataverseError(err, {
            timedOut,
            timeoutMs,
            ...(options.operation === undefined ? {} : { operation: options.operation }),
          });
      if (error.code === 'DataverseThrottled') {
        // Refused before running: nothing spent.
        this.#inFlightCostMs -= estimateMs;
        this.#overBudget(error.upstream?.code);
        this.#release('throttled', probe, error.retryAfterMs);
      } else {
        // A failure that Dataverse answered ran like any call; a timeout ran at least that long.
        ended(!timedOut && error.upstream?.status !== undefined);
        this.#release('failed', probe);
      }
      throw error;
    } finally {
      clearTimeout(timer);
      stopListening();
      stopped.catch(() => undefined);
    }
  }

  state(): GovernorState {
    this.#prune(Date.now());
    return {
      concurrency: this.#probing ? 1 : Math.floor(this.#limit),
      inFlight: this.#inFlight,
      waiting: this.#waiters.length,
      pausedUntil: this.#pausedUntil > Date.now() ? this.#pausedUntil : 0,
      probing: this.#probing,
      intervalMs: this.#intervalMs,
      requestsRemaining: this.#requests,
      timeRemainingMs: this.#timeMs,
      headersTrusted: this.#distrust === 0,
      requestsUsed: this.#used.requests.sum,
      executionUsedMs: this.#used.executionMs.sum + this.#inFlightCostMs,
      operationEstimateMs: this.#operationMs,
      dopHint: this.#dopHint,
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
    this.#waitingOperations = 0;
    for (const w of this.#waiters.splice(0)) w.reject(error);
  }
}

/** One governor per Dataverse identity, shared by every call of that identity (reads and writes). */
export function createGovernor(options: GovernorOptions = {}): Governor {
  return new ServiceProtectionGovernor(options);
}
