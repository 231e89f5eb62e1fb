/**
 * Service protection limits, per caller identity over a sliding window: number of requests, combined execution
 * time, and concurrent requests (PA-docs api-limits.md). A `$batch` counts once toward requests and adds the
 * execution time of every operation in it. Scaled configurations let tests reach each limit in seconds.
 */
import { readFileSync } from 'node:fs';
import { DataverseFault } from './faults.js';
import { EXECUTION_COSTS, formatTimeRemaining } from './assumptions.js';

/**
 * What the `x-ms-ratelimit-*` headers say: `all` the identity's budgets as this emulator counts them; `omit` none
 * (Retry-After stays on a 429); `scramble` the budgets as another server would count them, each response its own
 * (a random share of the identity's use: never less left than the truth, and not consistent from one response to the
 * next). The headers are debugging aids from whichever server answered (PA-docs api-limits.md), not a contract.
 */
export type RateLimitHeaders = 'all' | 'omit' | 'scramble';
const HEADER_MODES: readonly RateLimitHeaders[] = ['all', 'omit', 'scramble'];

export interface LimitsConfig {
  /** Whether requests are refused over a limit. Counting for the stats happens either way. */
  enabled: boolean;
  /** Sliding window length. @defaultValue 300_000 */
  windowMs: number;
  /** Requests per identity per window. @defaultValue 6000 */
  maxRequests: number;
  /** Combined execution time per identity per window, in ms. @defaultValue 1_200_000 */
  maxExecutionMs: number;
  /** Requests in flight per identity. @defaultValue 52 */
  maxConcurrent: number;
  /**
   * Simulated execution time of one read (a GET, or each GET inside a $batch), in ms; also of each write when
   * `writeCostMs` is not given. @defaultValue 10 (EXECUTION_COSTS in assumptions.ts)
   */
  operationCostMs: number;
  /**
   * Simulated execution time of one write (create, update, delete, an action such as CreateInteraction; a request or
   * each inside a $batch), in ms. @defaultValue 20 (EXECUTION_COSTS), or `operationCostMs` when only that is given
   */
  writeCostMs: number;
  /** A response waits for the execution time it was charged, as a server that spends it would. @defaultValue true */
  holdResponses: boolean;
  /** What the `x-ms-ratelimit-*` headers say (see {@link RateLimitHeaders}). @defaultValue 'all' */
  headers: RateLimitHeaders;
  /** `x-ms-dop-hint` on every response (the recommended degree of parallelism); 0 sends none. @defaultValue 0 */
  dopHint: number;
}

export const REALISTIC_LIMITS: Readonly<LimitsConfig> = Object.freeze({
  enabled: true,
  windowMs: 300_000,
  maxRequests: 6000,
  maxExecutionMs: 1_200_000,
  maxConcurrent: 52,
  operationCostMs: EXECUTION_COSTS.readMs,
  writeCostMs: EXECUTION_COSTS.writeMs,
  holdResponses: true,
  headers: 'all',
  dopHint: 0,
});

export const LIMITS_OFF: Readonly<LimitsConfig> = Object.freeze({ ...REALISTIC_LIMITS, enabled: false });

const NUMERIC_KEYS = [
  'windowMs',
  'maxRequests',
  'maxExecutionMs',
  'maxConcurrent',
  'operationCostMs',
  'writeCostMs',
  'dopHint',
] as const;
const KEYS = ['enabled', ...NUMERIC_KEYS, 'holdResponses', 'headers'];

/** Checks a partial configuration (from a file, options or `PATCH /_emulator/limits`) and fills the rest from `base`. */
export function resolveLimits(
  partial: Partial<LimitsConfig>,
  source = 'limits',
  base: Readonly<LimitsConfig> = REALISTIC_LIMITS,
): LimitsConfig {
  const config: LimitsConfig = {
    ...base,
    ...(partial.operationCostMs !== undefined && partial.writeCostMs === undefined
      ? { writeCostMs: partial.operationCostMs }
      : {}),
    ...partial,
  };
  for (const key of Object.keys(partial)) {
    if (!KEYS.includes(key)) throw new TypeError(`${source}: unknown key '${key}' (expected ${KEYS.join(', ')})`);
  }
  for (const key of NUMERIC_KEYS) {
    const value = config[key];
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
      throw new TypeError(`${source}: '${key}' must be a number >= 0, found ${JSON.stringify(value)}`);
    }
  }
  for (const key of ['enabled', 'holdResponses'] as const) {
    if (typeof config[key] !== 'boolean')
      throw new TypeError(`${source}: '${key}' must be true or false, found ${JSON.stringify(config[key])}`);
  }
  if (!HEADER_MODES.includes(config.headers))
    throw new TypeError(
      `${source}: 'headers' must be ${HEADER_MODES.join(', ')}, found ${JSON.stringify(config.headers)}`,
    );
  return config;
}

/** `realistic`, `off`, or a JSON file with some of {@link LimitsConfig}'s fields. */
export function loadLimits(spec: string): LimitsConfig {
  if (spec === 'realistic') return { ...REALISTIC_LIMITS };
  if (spec === 'off') return { ...LIMITS_OFF };
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(spec, 'utf8'));
  } catch (err) {
    throw new TypeError(
      `--limits ${spec}: expected realistic, off, or a readable JSON file (${(err as Error).message})`,
      { cause: err },
    );
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw new TypeError(`${spec}: expected a JSON object`);
  return resolveLimits(parsed as Partial<LimitsConfig>, spec);
}

/** A sliding window of (time, amount) entries with a running sum. */
class Window {
  #times: number[] = [];
  #amounts: number[] = [];
  #head = 0;
  sum = 0;

  push(at: number, amount: number): void {
    this.#times.push(at);
    this.#amounts.push(amount);
    this.sum += amount;
  }
  prune(before: number): void {
    while (this.#head < this.#times.length && this.#times[this.#head]! <= before) {
      this.sum -= this.#amounts[this.#head]!;
      this.#head += 1;
    }
    if (this.#head > 1024 && this.#head * 2 > this.#times.length) {
      this.#times = this.#times.slice(this.#head);
      this.#amounts = this.#amounts.slice(this.#head);
      this.#head = 0;
    }
  }
  /** The time at which the sum will have dropped to at most `target`, or undefined if it already has. */
  timeWhenAtMost(target: number): number | undefined {
    let sum = this.sum;
    for (let i = this.#head; i < this.#times.length; i += 1) {
      if (sum <= target) return i === this.#head ? undefined : this.#times[i - 1];
      sum -= this.#amounts[i]!;
    }
    return this.#times[this.#times.length - 1];
  }
}

export interface IdentityStats {
  served: number;
  throttled: { requests: number; executionTime: number; concurrency: number };
  /** Execution time counted in the current window, ms. */
  executionMsInWindow: number;
  /** Execution time counted since start, ms. */
  executionMsTotal: number;
  requestsInWindow: number;
  inFlight: number;
}

class IdentityState {
  readonly requests = new Window();
  readonly execution = new Window();
  inFlight = 0;
  served = 0;
  executionMsTotal = 0;
  readonly throttled = { requests: 0, executionTime: 0, concurrency: 0 };
}

/** A request let in by the governor; `finish` must be called once it has been answered. */
export interface Admission {
  identity: string;
  /** Headers to add to the response (`x-ms-ratelimit-*` as `headers` says, `x-ms-dop-hint`), when limits are enabled. */
  headers: Record<string, string>;
}

/** The operations a request ran, by kind, for its execution time. */
export interface OperationCount {
  reads: number;
  writes: number;
}

export class Governor {
  readonly #states = new Map<string, IdentityState>();
  readonly #now: () => number;
  readonly #random: () => number;
  #config: LimitsConfig;

  constructor(config: LimitsConfig, now: () => number = Date.now, random: () => number = Math.random) {
    this.#config = config;
    this.#now = now;
    this.#random = random;
  }

  get config(): Readonly<LimitsConfig> {
    return this.#config;
  }

  /** Changes the limits while running (`PATCH /_emulator/limits`); what was counted stays. */
  configure(partial: Partial<LimitsConfig>, source = 'limits'): LimitsConfig {
    this.#config = resolveLimits(partial, source, this.#config);
    return this.#config;
  }

  #state(identity: string): IdentityState {
    let s = this.#states.get(identity);
    if (!s) this.#states.set(identity, (s = new IdentityState()));
    return s;
  }

  /** Lets a request in, or throws the 429 fault of the first limit it is over. */
  admit(identity: string): Admission {
    const s = this.#state(identity);
    const c = this.#config;
    const now = this.#now();
    if (c.enabled) {
      const before = now - c.windowMs;
      s.requests.prune(before);
      s.execution.prune(before);
      if (s.inFlight >= c.maxConcurrent) {
        s.throttled.concurrency += 1;
        throw this.#fault(
          'ThrottledConcurrency',
          `Number of concurrent requests exceeded the limit of ${c.maxConcurrent}.`,
          1000,
          s,
        );
      }
      if (s.requests.sum >= c.maxRequests) {
        s.throttled.requests += 1;
        const at = s.requests.timeWhenAtMost(c.maxRequests - 1) ?? now;
        throw this.#fault(
          'ThrottledRequests',
          `Number of requests exceeded the limit of ${c.maxRequests} over time window of ${c.windowMs / 1000} seconds.`,
          at + c.windowMs - now,
          s,
        );
      }
      if (s.execution.sum >= c.maxExecutionMs) {
        s.throttled.executionTime += 1;
        const at = s.execution.timeWhenAtMost(c.maxExecutionMs - 1) ?? now;
        throw this.#fault(
          'ThrottledTime',
          `Combined execution time of incoming requests exceeded limit of ${c.maxExecutionMs} milliseconds over time window of ${c.windowMs / 1000} seconds. Decrease number of concurrent requests or reduce the duration of requests and try again later.`,
          at + c.windowMs - now,
          s,
        );
      }
    }
    if (c.enabled) s.requests.push(now, 1);
    s.inFlight += 1;
    s.served += 1;
    const headers: Record<string, string> = c.enabled
      ? { ...this.#budgetHeaders(s), ...(c.dopHint > 0 ? { 'x-ms-dop-hint': String(c.dopHint) } : {}) }
      : {};
    return { identity, headers };
  }

  /** The execution time of a request that ran `count` operations: what `finish` charges and a held response waits. */
  cost(count: OperationCount): number {
    return count.reads * this.#config.operationCostMs + count.writes * this.#config.writeCostMs;
  }

  /** Records the execution time of an admitted request and frees its slot. */
  finish(admission: Admission, count: OperationCount): void {
    const s = this.#state(admission.identity);
    s.inFlight -= 1;
    const ms = this.cost(count);
    s.executionMsTotal += ms;
    if (this.#config.enabled && ms > 0) s.execution.push(this.#now(), ms);
  }

  /** The `x-ms-ratelimit-*` headers as `headers` says: the identity's budgets, none, or another server's view. */
  #budgetHeaders(s: IdentityState): Record<string, string> {
    const c = this.#config;
    if (c.headers === 'omit') return {};
    const seen = c.headers === 'scramble' ? this.#random() : 1;
    return {
      'x-ms-ratelimit-burst-remaining-xrm-requests': String(
        Math.max(0, c.maxRequests - Math.round(s.requests.sum * seen)),
      ),
      'x-ms-ratelimit-time-remaining-xrm-requests': formatTimeRemaining(c.maxExecutionMs - s.execution.sum * seen),
    };
  }

  /** A 429: `Retry-After` in whole seconds, rounded up (at least 1), and the budgets as `headers` says. */
  #fault(
    kind: 'ThrottledConcurrency' | 'ThrottledRequests' | 'ThrottledTime',
    message: string,
    retryMs: number,
    s: IdentityState,
  ): DataverseFault {
    const retryAfter = Math.max(1, Math.ceil(retryMs / 1000));
    return new DataverseFault(kind, message, { 'Retry-After': String(retryAfter), ...this.#budgetHeaders(s) });
  }

  stats(): Record<string, IdentityStats> {
    const out: Record<string, IdentityStats> = {};
    const before = this.#now() - this.#config.windowMs;
    for (const [identity, s] of this.#states) {
      s.requests.prune(before);
      s.execution.prune(before);
      out[identity] = {
        served: s.served,
        throttled: { ...s.throttled },
        executionMsInWindow: s.execution.sum,
        executionMsTotal: s.executionMsTotal,
        requestsInWindow: s.requests.sum,
        inFlight: s.inFlight,
      };
    }
    return out;
  }
}
