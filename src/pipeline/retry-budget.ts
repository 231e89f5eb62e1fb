/**
 * The time bookkeeping of a stage's batch that must end within a budget (intake and recorder): how much of the batch's
 * deadline is left, whether an attempt (taking at most `callTimeoutMs`) started after a wait could still end before
 * it, and the doubling backoff between attempts. Pure arithmetic on `Date.now()`; no waiting, no state.
 */

/** What is left of a batch's budget: the milliseconds until `deadline` (a `Date.now()` value), at least 0. */
export function budgetLeft(deadline: number): number {
  return Math.max(0, deadline - Date.now());
}

/**
 * Whether an attempt started after waiting `waitMs` could end, taking `callTimeoutMs`, by `deadline` (a `Date.now()`
 * value).
 */
export function attemptFits(deadline: number, callTimeoutMs: number, waitMs = 0): boolean {
  return Date.now() + waitMs + callTimeoutMs <= deadline;
}

/** The wait before attempt `attempt + 1` after `attempt` failures: `backoffMs` doubling each attempt, at most `maxBackoffMs`. */
export function backoffDelay(attempt: number, backoffMs: number, maxBackoffMs: number): number {
  return Math.min(maxBackoffMs, backoffMs * 2 ** (attempt - 1));
}
