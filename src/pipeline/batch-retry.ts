/**
 * Retries within a batch that must end within a time budget (intake's reads and send, the recorder's writes): one
 * cockatiel retry policy per call, whose waits honour the `Retry-After` the stage reads from its errors, never start an
 * attempt that could not end before the batch's deadline, and end at once when the stage stops. Also the two options
 * that set the budget. The stage decides what a failure means (`judge`) and what each way of ending means for its
 * deliveries (`BatchRetryEnd`); this module only counts, waits and keeps time.
 */
import { ConstantBackoff, handleWhen, retry } from 'cockatiel';
import { numberOption } from '../options.js';
import { retryDelay, type ResolvedRetry } from '../retry.js';

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
    throw new TypeError(
      `${component}: batchBudgetMs (${batchBudgetMs}) must be at least callTimeoutMs (${callTimeoutMs}): no ${calls} could start within the budget`,
    );
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

/** A failed attempt: the error it threw, or the value it returned that `unfinished` calls not done. */
export type Failure<T> = { error: unknown } | { value: T };

/**
 * What a stage makes of a failed attempt: not tried again (`false`); a `Retry-After` longer than the stage waits
 * (`'throttled'`); or tried again after `waitMs` (the stage's own choice from `delayMs`, the doubling delay of this
 * failure, and the failure's `Retry-After`).
 */
export type Verdict = false | 'throttled' | { waitMs: number };

/**
 * How the retries ended without success, checked in this order:
 * - `aborted`: the handler's signal aborted (nothing is left to judge);
 * - `held`: `ready` said no attempt may start;
 * - `noRoom`: the next attempt could not end before the deadline (not started);
 * - `refused`: `judge` said the failure is not tried again;
 * - `stopped`: the stage stops (`waits` aborted) after a failure, before any wait;
 * - `spent`: every attempt failed;
 * - `throttled`: `judge` said the `Retry-After` is longer than the stage waits;
 * - `noRoomToRetry`: the wait and the attempt after it could not end before the deadline;
 * - `cut`: the stage stopped during the wait before the next attempt.
 */
export type BatchRetryEnd =
  'aborted' | 'held' | 'noRoom' | 'refused' | 'stopped' | 'spent' | 'throttled' | 'noRoomToRetry' | 'cut';

/** The outcome: the value of the attempt that succeeded, or how the retries ended, after how many failures. */
export type BatchRetryResult<T> =
  { ok: true; value: T } | { ok: false; end: BatchRetryEnd; failures: number; failure: Failure<T> | undefined };

export interface BatchRetry<T> {
  /** Attempts in all (`attempts`) and the doubling backoff (`initialDelayMs` … `maxDelayMs`). */
  retry: ResolvedRetry;
  /** `Date.now()` by which the batch has ended. */
  deadline: number;
  /** The longest one attempt takes: an attempt starts only when this much is left before `deadline`. */
  callTimeoutMs: number;
  /** The handler's signal: once aborted, nothing more is tried or judged. */
  signal: AbortSignal;
  /** Aborts with `signal` or when the stage stops: cuts the wait short, and no attempt follows. */
  waits: AbortSignal;
  /** Waits `ms`, resolving early when the signal aborts (the stage's `sleep`, by default `delayUnlessAborted`). */
  sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  /** One attempt (`attempt` counts from 1). */
  attempt: (attempt: number) => Promise<T>;
  /** Whether a returned value is not done (tried again like an error). @defaultValue never */
  unfinished?: (value: T) => boolean;
  /** What to make of a failed attempt; `failures` counts it. */
  judge: (failure: Failure<T>, info: { failures: number; delayMs: number }) => Verdict;
  /** Told when the wait before the next attempt begins (to count, log, or hold the batch's other calls). */
  onRetry?: (failure: Failure<T>, info: { failures: number; waitMs: number }) => void;
  /** Asked before each attempt, after its wait: `false` ends the retries (`held`). @defaultValue always ready */
  ready?: () => Promise<boolean>;
}

/** Thrown inside the policy to end it: not a failure of the call, never judged. */
const ENDED = Symbol('batch retry ended');
type Ended = { [ENDED]: BatchRetryEnd };

function ended(end: BatchRetryEnd): Ended {
  return { [ENDED]: end };
}

function isEnded(value: unknown): value is Ended {
  return typeof value === 'object' && value !== null && ENDED in value;
}

/**
 * Ends the retries from inside an attempt that made a further call of its own (not counted as an attempt) and finds
 * no room for it before the deadline: the result is `noRoom`, as if the next attempt had not been started.
 */
export function noRoomLeft(): never {
  throw ended('noRoom');
}

/**
 * Runs `attempt` until it succeeds or the retries end (see `BatchRetryEnd`). Never rejects: an error of the last
 * attempt comes back as its `failure`.
 *
 * The counting and the classification are cockatiel's (`retry` with `maxAttempts` and a handler that asks `judge`);
 * cockatiel's own wait is 0, and the wait is the stage's `sleep` on `waits`, because a stop must cut it short (cockatiel
 * 3's delay takes no signal) and the stage's tests drive the waits with fake timers.
 */
export async function retryWithinBatch<T>(run: BatchRetry<T>): Promise<BatchRetryResult<T>> {
  const { retry: options, deadline, callTimeoutMs, signal, waits } = run;
  let failures = 0;
  let last: Failure<T> | undefined;
  let end: BatchRetryEnd | undefined;
  let wait: Promise<void> | undefined;

  /** Counts a failure and decides: `true` tries again (the wait has begun). */
  const again = (failure: Failure<T>): boolean => {
    if ('error' in failure && isEnded(failure.error)) return false;
    failures += 1;
    last = failure;
    if (signal.aborted) return stop('aborted');
    const verdict = run.judge(failure, { failures, delayMs: retryDelay(failures, options) });
    if (verdict === false) return stop('refused');
    if (waits.aborted) return stop('stopped');
    if (failures >= options.attempts) return stop('spent');
    if (verdict === 'throttled') return stop('throttled');
    if (!attemptFits(deadline, callTimeoutMs, verdict.waitMs)) return stop('noRoomToRetry');
    run.onRetry?.(failure, { failures, waitMs: verdict.waitMs });
    wait = run.sleep(verdict.waitMs, waits);
    return true;
  };
  const stop = (why: BatchRetryEnd): false => {
    end = why;
    return false;
  };

  const unfinished = run.unfinished;
  let handler = handleWhen((error) => again({ error }));
  if (unfinished !== undefined)
    handler = handler.orWhenResult((value) => unfinished(value as T) && again({ value: value as T }));
  const policy = retry(handler, { maxAttempts: options.attempts - 1, backoff: new ConstantBackoff(0) });

  try {
    const value = await policy.execute(async ({ attempt }) => {
      if (wait !== undefined) {
        await wait;
        if (signal.aborted) throw ended('aborted');
        if (waits.aborted) throw ended('cut');
      }
      if (signal.aborted) throw ended('aborted');
      if (run.ready !== undefined && !(await run.ready())) throw ended('held');
      if (signal.aborted) throw ended('aborted');
      if (!attemptFits(deadline, callTimeoutMs)) throw ended('noRoom');
      return run.attempt(attempt + 1);
    });
    if (end !== undefined) return { ok: false, end, failures, failure: last };
    return { ok: true, value };
  } catch (err) {
    if (isEnded(err)) return { ok: false, end: err[ENDED], failures, failure: last };
    return { ok: false, end: end ?? 'refused', failures, failure: last ?? { error: err } };
  }
}

/** The error of a failure (`undefined` for none, or for a value that was not done). */
export function failedWith(failure: Failure<unknown> | undefined): unknown {
  return failure !== undefined && 'error' in failure ? failure.error : undefined;
}
