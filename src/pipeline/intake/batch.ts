/**
 * The state of one intake batch as its reads and its send share it: each delivery's state (open, waiting to be
 * abandoned, settled), the batch's signals, deadline, running `Retry-After` and pause; and the two ways a delivery is
 * set to wait for its abandon when the batch ends (`markWaiting`, and `outOfBudget` when no attempt fits the budget).
 */
import type { Logger } from '../../log.js';
import type { Delivery } from '../ports.js';
import { attemptFits, budgetLeft } from '../batch-retry.js';

/**
 * One delivery of the batch and what is known about it. `open` until settled, or `waiting` to be abandoned when the
 * batch ends (after its `wait`).
 */
export interface Item {
  delivery: Delivery;
  state: 'open' | 'waiting' | 'settled';
  /** Correlation fields for every log line about it. */
  fields: Record<string, unknown>;
  /** Why it is abandoned when the batch ends with it unsettled. */
  pending?: string;
  /** The wait before it is abandoned: `redelivery` grows with the delivery count; `pause` is the batch's `pauseMs`. */
  wait?: 'redelivery' | 'pause';
}

export interface BatchState {
  /** The handler's signal: aborted, every read, send and wait ends and what is not settled is abandoned. */
  signal: AbortSignal;
  /** Aborts with `signal` or when the stage stops: cuts waits short (a wait cut short means no further attempt). */
  waits: AbortSignal;
  /** Settlements started; awaited before `handle` returns. */
  settling: Promise<void>[];
  /**
   * Set by a `Retry-After` above `maxThrottleWaitMs` or by `DataverseUnauthorized`: no more reads in this batch; how
   * long to wait before abandoning the deliveries that wait on it (the longest seen).
   */
  pauseMs: number | undefined;
  /** Resolves when the batch's longest running `Retry-After` has run out; every read attempt waits for it. */
  gate: Promise<void> | undefined;
  /** `Date.now()` by which the batch has ended (`batchBudgetMs` after the start of `handle`). */
  deadline: number;
  /** Whether running out of the budget was logged (once per batch). */
  outOfBudget: boolean;
}

/** What the batch's reads and its send share: the budget, the wait, the log, the retry count. */
export interface AttemptRules {
  /** The stage's `batchBudgetMs` (for the log line when it runs out). */
  batchBudgetMs: number;
  /** The stage's `callTimeoutMs`: the longest one attempt takes. */
  callTimeoutMs: number;
  sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  log: Logger;
  /** An attempt is tried again. */
  onRetry: () => void;
}

/** Whether an attempt started after waiting `waitMs` could end (taking `callTimeoutMs`) before the batch's deadline. */
export function fits(b: BatchState, rules: AttemptRules, waitMs = 0): boolean {
  return attemptFits(b.deadline, rules.callTimeoutMs, waitMs);
}

/** Sets an open item waiting to be abandoned when the batch ends, after `wait`. */
export function markWaiting(item: Item, why: string, wait: 'redelivery' | 'pause'): void {
  if (item.state !== 'open') return;
  item.state = 'waiting';
  item.pending = why;
  item.wait = wait;
}

/** Sets the items to be abandoned (at once, or within what is left of the budget): no attempt fits the budget. */
export function outOfBudget(b: BatchState, rules: AttemptRules, items: readonly Item[], what: string): void {
  const { batchBudgetMs, callTimeoutMs } = rules;
  const why = `${what}: the batch's time budget (batchBudgetMs ${batchBudgetMs} ms) has no room for another attempt (callTimeoutMs ${callTimeoutMs} ms)`;
  if (!b.outOfBudget) {
    b.outOfBudget = true;
    rules.log.warn(
      "the batch's time budget leaves no room for another attempt; abandoning what waits for one (the bus redelivers it)",
      {
        what,
        deliveries: items.length,
        leftMs: budgetLeft(b.deadline),
        batchBudgetMs,
        callTimeoutMs,
      },
    );
  }
  for (const item of items) markWaiting(item, why, 'redelivery');
}

/** `n` and the noun for it: `1 attempt`, `2 attempts`. */
export function count(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`;
}
