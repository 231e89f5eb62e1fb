/**
 * The time bookkeeping of a stage's batch that must end within a budget (intake and recorder): how much of the batch's
 * deadline is left, whether an attempt (taking at most `callTimeoutMs`) started after a wait could still end before
 * it, and the doubling backoff between attempts; and the validation of the two options that set the budget. Pure
 * arithmetic on `Date.now()`; no waiting, no state.
 */
import { numberOption } from '../options.js';

/**
 * A stage's validated `callTimeoutMs` (default 30000) and `batchBudgetMs` (default 240000); the budget must hold one
 * call (`calls` names what a call is, for the error).
 */
export function resolveBudget(
  component: string,
  options: { callTimeoutMs?: number | undefined; batchBudgetMs?: number | undefined },
  calls: string,
): { callTimeoutMs: number; batchBudgetMs: number } {
  const callTimeoutMs = numberOption(component, 'callTimeoutMs', options.callTimeoutMs, 30_000, { above: 0 });
  const batchBudgetMs = numberOption(component, 'batchBudgetMs', options.batchBudgetMs, 240_000, { above: 0 });
  if (batchBudgetMs < callTimeoutMs) {
    throw new TypeError(`${component}: batchBudgetMs (${batchBudgetMs}) must be at least callTimeoutMs (${callTimeoutMs}): no ${calls} could start within the budget`);
  }
  return { callTimeoutMs, batchBudgetMs };
}

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
