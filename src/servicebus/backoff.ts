/**
 * Backoff for the receive loops: after a failed receive (connection lost, entity missing, broker busy) a loop waits
 * before trying again, longer each time, so that it never spins; the first success resets it.
 */
import { intOption, numberOption } from '../options.js';
import type { RetryDelays } from '../retry.js';

/** `initialDelayMs` (the first delay, default 200) and `maxDelayMs` (the longest, default 30000); a loop never gives up. */
export interface BackoffOptions extends RetryDelays {
  /** Each delay is the previous one times this factor (before jitter). @defaultValue 2 */
  factor?: number;
  /** Random share taken off each delay (0.2: between 80 % and 100 % of it), so replicas do not retry in step. @defaultValue 0.2 */
  jitter?: number;
  /** The random source, for tests. @defaultValue Math.random */
  random?: () => number;
}

/** Exponential backoff with jitter: `next()` gives the delay before the next attempt, `reset()` after a success. */
export class Backoff {
  readonly #initialDelayMs: number;
  readonly #maxDelayMs: number;
  readonly #factor: number;
  readonly #jitter: number;
  readonly #random: () => number;
  #attempt = 0;

  constructor(options: BackoffOptions = {}) {
    this.#initialDelayMs = intOption('backoff', 'initialDelayMs', options.initialDelayMs, 200, 1);
    this.#maxDelayMs = intOption('backoff', 'maxDelayMs', options.maxDelayMs, 30_000, this.#initialDelayMs);
    this.#factor = numberOption('backoff', 'factor', options.factor, 2, { atLeast: 1 });
    this.#jitter = options.jitter ?? 0.2;
    if (!(this.#jitter >= 0 && this.#jitter < 1))
      throw new TypeError(`backoff: jitter must be a number from 0 to below 1, found ${String(options.jitter)}`);
    this.#random = options.random ?? Math.random;
  }

  /** How many delays were given since the last reset. */
  get attempt(): number {
    return this.#attempt;
  }

  /** The delay before the next attempt, in milliseconds. */
  next(): number {
    const base = Math.min(this.#maxDelayMs, this.#initialDelayMs * this.#factor ** this.#attempt);
    this.#attempt += 1;
    return Math.round(base * (1 - this.#jitter * this.#random()));
  }

  reset(): void {
    this.#attempt = 0;
  }
}
