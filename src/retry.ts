/**
 * The one vocabulary of retries, for every component that tries something again (intake's reads and send, the
 * recorder's writes, dispatch's provider calls and its sends to `interactions`, the receive loops): how many attempts
 * in all, and the doubling wait between them. Waits honour a `Retry-After` where the component has one.
 */
import { intOption, numberOption } from './options.js';

/** The waits between attempts: `initialDelayMs`, doubling each attempt, at most `maxDelayMs`. */
export interface RetryDelays {
  /** The wait before the second attempt; doubles for each attempt after it. */
  initialDelayMs?: number;
  /** The longest wait between two attempts. */
  maxDelayMs?: number;
}

/** How often and how patiently something is tried again. */
export interface RetryOptions extends RetryDelays {
  /** Attempts in all, the first one included: an integer of at least 1 (1: never tried again). */
  attempts?: number;
}

/** `RetryOptions` with every field set and checked. */
export type ResolvedRetry = Required<RetryOptions>;

/**
 * `options` over `defaults`, checked once: `attempts` an integer of at least 1, the delays finite numbers of at least
 * 0 (`integers`: integers, and `initialDelayMs` at least 1) with `maxDelayMs` at least `initialDelayMs`. A bad value
 * throws a `TypeError` naming `component`, `key` and the value.
 */
export function resolveRetry(
  component: string,
  key: string,
  options: RetryOptions | undefined,
  defaults: ResolvedRetry,
  integers = false,
): ResolvedRetry {
  const o = options ?? {};
  const name = (field: string): string => `${key}.${field}`;
  const attempts = intOption(component, name('attempts'), o.attempts, defaults.attempts, 1);
  const initialDelayMs = integers
    ? intOption(component, name('initialDelayMs'), o.initialDelayMs, defaults.initialDelayMs, 1)
    : numberOption(component, name('initialDelayMs'), o.initialDelayMs, defaults.initialDelayMs, { atLeast: 0 });
  const maxDelayMs = integers
    ? intOption(component, name('maxDelayMs'), o.maxDelayMs, defaults.maxDelayMs, 1)
    : numberOption(component, name('maxDelayMs'), o.maxDelayMs, defaults.maxDelayMs, { atLeast: 0 });
  if (maxDelayMs < initialDelayMs) {
    throw new TypeError(
      `${component}: ${name('maxDelayMs')} (${maxDelayMs}) must be >= initialDelayMs (${initialDelayMs})`,
    );
  }
  return { attempts, initialDelayMs, maxDelayMs };
}

/** The wait after `failures` failed attempts (1 after the first): `initialDelayMs` doubling each time, at most `maxDelayMs`. */
export function retryDelay(failures: number, delays: Required<RetryDelays>): number {
  return Math.min(delays.maxDelayMs, delays.initialDelayMs * 2 ** (failures - 1));
}
