/**
 * A sender's calls in flight, sized at run time from its rate and the provider's observed latency (Little's law: the
 * calls in flight a rate needs are the rate times the time each call takes), within the channel's
 * `rateLimit.concurrency` (the ceiling, for a provider that limits concurrent connections).
 *
 * Invariants: the size is an integer from 1 to the ceiling (and to `messages`: each call holds a rate slot, so more
 * calls than that never run at once anyway); it only caps calls in flight, never lets one start: the rate limiter's
 * slots stay the authority on the rate (`sender-limiter.ts`); it rises as soon as the latency calls for more and falls
 * only when the latency calls for clearly fewer (a step of at least 2, or a tenth), so that jitter does not make it
 * oscillate.
 */

/**
 * The provider's latency for one sender, smoothed: the mean and mean deviation of Jacobson and Karels, with the gains
 * TCP uses for its round-trip time (RFC 6298 §2: 1/8 for the mean, 1/4 for the deviation; the first sample sets the
 * mean and half of it as the deviation). Kept by the stage per sender, so a session taken again starts from what the
 * last one saw.
 */
export class LatencyEstimate {
  #mean: number | undefined;
  #deviation = 0;

  /** Adds one call's duration (ms, from its start to its answer or its failure: a call that hangs occupies a slot too). */
  observe(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) return;
    if (this.#mean === undefined) {
      this.#mean = ms;
      this.#deviation = ms / 2;
      return;
    }
    this.#deviation += (Math.abs(ms - this.#mean) - this.#deviation) / 4;
    this.#mean += (ms - this.#mean) / 8;
  }

  /** The smoothed latency (ms); undefined before the first call ended. */
  get meanMs(): number | undefined {
    return this.#mean;
  }

  /** The smoothed mean deviation (ms). */
  get deviationMs(): number {
    return this.#deviation;
  }

  /**
   * A latency few calls exceed: mean + 4 deviations, TCP's retransmission timeout (RFC 6298 §2). Sizing from it rather
   * than the mean leaves headroom for the variance: a call slower than the mean keeps its place in flight while the
   * next ones start, and more calls in flight than the mean needs cost nothing but connections (the rate limit still
   * decides when each starts). Undefined before the first call ended.
   */
  get highMs(): number | undefined {
    return this.#mean === undefined ? undefined : this.#mean + 4 * this.#deviation;
  }
}

export interface ConcurrencyChange {
  from: number;
  to: number;
  /** The estimate it was sized from. */
  latency: LatencyEstimate;
}

export interface AdaptiveConcurrencyOptions {
  /** The sender's rate: calls per window (`rateLimit.messages`). */
  messages: number;
  /** The window (ms). */
  intervalMs: number;
  /** The most calls in flight (`rateLimit.concurrency`). */
  maxConcurrency: number;
  /** The sender's latency so far (shared with the sender's earlier sessions). */
  latency: LatencyEstimate;
}

export class AdaptiveConcurrency {
  /** The most calls in flight: the configured ceiling, and never more than the window's slots. */
  readonly limit: number;
  readonly latency: LatencyEstimate;
  readonly #perMs: number;
  #current: number;

  /**
   * Starts from the latency seen so far when there is one; otherwise at the limit: before any call has ended nothing
   * says how long calls take, and a start below rate × latency would leave the first window (a backlog's cold start)
   * partly unused, while one above it costs nothing the rate limiter lets through: the first window still starts at
   * most `messages` calls, and the first answers size it down.
   */
  constructor(options: AdaptiveConcurrencyOptions) {
    this.limit = Math.max(1, Math.min(options.maxConcurrency, options.messages));
    this.latency = options.latency;
    this.#perMs = options.messages / options.intervalMs;
    this.#current = this.#needed() ?? this.limit;
  }

  /** Calls allowed in flight now. */
  get current(): number {
    return this.#current;
  }

  /** Calls in flight the rate needs at the estimate's high latency, within 1 and the limit; undefined without one. */
  #needed(): number | undefined {
    const high = this.latency.highMs;
    if (high === undefined) return undefined;
    return Math.min(this.limit, Math.max(1, Math.ceil(this.#perMs * high)));
  }

  /**
   * Adds one call's duration; returns the change when the size changed: up at once to what the latency needs, down
   * only when it needs at least 2 (or a tenth) fewer.
   */
  observe(ms: number): ConcurrencyChange | undefined {
    this.latency.observe(ms);
    const needed = this.#needed();
    const from = this.#current;
    if (needed === undefined || needed === from) return undefined;
    if (needed < from && from - needed < Math.max(2, Math.ceil(from / 10))) return undefined;
    this.#current = needed;
    return { from, to: needed, latency: this.latency };
  }
}
