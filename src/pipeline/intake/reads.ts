/**
 * Intake's Dataverse reads within a batch, with their rules: a retryable `DataverseError` is tried again up to
 * `readRetry.attempts` (`retryWithinBatch`), after a backoff or the `Retry-After` (while one runs no read of the batch starts); a `Retry-After`
 * above `maxThrottleWaitMs` or `DataverseUnauthorized` ends the batch's reads (its deliveries wait out a pause); no
 * read and no wait starts that could not end before the batch's deadline; a stop cuts the waits short. A read that
 * failed for good is judged by `failed`: dead-lettered when Dataverse refused the record, else set to be abandoned.
 */
import { raceAbort } from '../../abort.js';
import { errorMessage, isDataverseError, type CodeOf } from '../../errors.js';
import type { ResolvedRetry } from '../../retry.js';
import { count, markWaiting, outOfBudget, type AttemptRules, type BatchState, type Item } from './batch.js';
import { failedWith, retryWithinBatch } from '../batch-retry.js';

/** The rules of the reads (intake's options, validated) and what a read reports to the stage. */
export interface ReadRules extends AttemptRules {
  readRetry: ResolvedRetry;
  maxThrottleWaitMs: number;
  defaultThrottleWaitMs: number;
  identityPauseMs: number;
  /** Dead-letters an item whose record Dataverse refused for good. */
  deadLetter: (b: BatchState, item: Item, reason: CodeOf<'dataverse'>, description: string) => void;
}

/** What a read came to: the value, the error that ended its attempts, or `undefined` (nothing left to judge). */
export type ReadResult<T> = { ok: true; value: T } | { ok: false; error: unknown; attempts: number } | undefined;

/** Reads with retries within a batch, and the judgement of a read that failed for good. */
export class IntakeReads {
  readonly #rules: ReadRules;

  constructor(rules: ReadRules) {
    this.#rules = rules;
  }

  /**
   * One read with its retries within the batch. `undefined` when no answer is left to judge: aborted (handle()
   * abandons), the batch's reads ended (the items wait for its pause), or the stage stopping during a wait (the items
   * wait to be abandoned, at once). Otherwise the value, or the error that ended the attempts.
   */
  async read<T>(b: BatchState, items: readonly Item[], what: string, call: () => Promise<T>): Promise<ReadResult<T>> {
    const { log, defaultThrottleWaitMs, maxThrottleWaitMs } = this.#rules;
    const result = await retryWithinBatch<T>({
      retry: this.#rules.readRetry,
      deadline: b.deadline,
      callTimeoutMs: this.#rules.callTimeoutMs,
      signal: b.signal,
      waits: b.waits,
      sleep: this.#rules.sleep,
      attempt: () => raceAbort(call(), b.signal),
      ready: () => this.#mayRead(b, items),
      judge: (failure, { delayMs }) => {
        const error = failedWith(failure);
        if (!isDataverseError(error) || !error.retryable) return false;
        if (error.code !== 'DataverseThrottled') return { waitMs: Math.max(delayMs, error.retryAfterMs ?? 0) };
        const waitMs = error.retryAfterMs ?? defaultThrottleWaitMs;
        return waitMs > maxThrottleWaitMs ? 'throttled' : { waitMs };
      },
      onRetry: (failure, { failures, waitMs }) => {
        const error = failedWith(failure);
        if (isDataverseError(error) && error.code === 'DataverseThrottled') {
          // No read of this batch starts while the Retry-After runs.
          const wait = this.#rules.sleep(waitMs, b.waits);
          b.gate = b.gate === undefined ? wait : Promise.all([b.gate, wait]).then(() => undefined);
        }
        this.#rules.onRetry();
        log.warn(`${what} failed; trying again`, { error, attempt: failures, waitMs, deliveries: items.length });
      },
    });
    if (result.ok) return { ok: true, value: result.value };
    const error = failedWith(result.failure);
    switch (result.end) {
      case 'aborted':
      case 'held':
        return undefined;
      case 'noRoom':
        outOfBudget(b, this.#rules, items, `${what}: not started`);
        return undefined;
      case 'noRoomToRetry':
        outOfBudget(
          b,
          this.#rules,
          items,
          `${what}: ${errorMessage(error)} (${count(result.failures, 'attempt', 'attempts')}); not tried again`,
        );
        return undefined;
      case 'cut':
        for (const item of items)
          markWaiting(item, `${what}: ${errorMessage(error)} (not tried again: the stage is stopping)`, 'redelivery');
        return undefined;
      default:
        return { ok: false, error, attempts: result.failures };
    }
  }

  /** Settles (or sets waiting) the items of a read that failed for good. */
  failed(b: BatchState, items: readonly Item[], err: unknown, what: string, attempts: number): void {
    const { log, defaultThrottleWaitMs, maxThrottleWaitMs } = this.#rules;
    if (b.signal.aborted) return; // handle() abandons them
    if (isDataverseError(err)) {
      const throttledForLong =
        err.code === 'DataverseThrottled' && (err.retryAfterMs ?? defaultThrottleWaitMs) > maxThrottleWaitMs;
      if (throttledForLong || err.code === 'DataverseUnauthorized') {
        const ms =
          err.code === 'DataverseThrottled'
            ? Math.min(err.retryAfterMs ?? defaultThrottleWaitMs, maxThrottleWaitMs)
            : this.#rules.identityPauseMs;
        if (throttledForLong)
          log.warn('Dataverse throttled a read for longer than intake waits; no more reads in this batch', {
            error: err,
            waitMs: ms,
            deliveries: items.length,
          });
        else
          log.error("Dataverse refused the relay's identity; abandoning the deliveries after a pause", {
            error: err,
            waitMs: ms,
            deliveries: items.length,
          });
        b.pauseMs = Math.max(b.pauseMs ?? 0, ms);
        for (const item of items) markWaiting(item, `${what}: ${err.code}: ${err.message}`, 'pause');
        return;
      }
      if (err.retryable) {
        log.warn(`${what} still failing after ${count(attempts, 'attempt', 'attempts')}; abandoning after a wait`, {
          error: err,
          deliveries: items.length,
        });
        for (const item of items)
          markWaiting(
            item,
            `${what}: ${err.code}: ${err.message} (${count(attempts, 'attempt', 'attempts')})`,
            'redelivery',
          );
        return;
      }
      const code = err.upstream?.code === undefined ? '' : ` (Dataverse code ${err.upstream.code})`;
      for (const item of items) this.#rules.deadLetter(b, item, err.code, `${what} failed: ${err.message}${code}`);
      return;
    }
    // Not one of ours: a bug or an unforeseen failure of the port; not retried here, but handed back after a wait (the
    // bus dead-letters after MaxDeliveryCount), which is safer than guessing that the event itself is bad.
    log.error(`${what} failed with an unexpected error`, { error: err, deliveries: items.length });
    for (const item of items) markWaiting(item, `${what}: ${errorMessage(err)}`, 'redelivery');
  }

  /**
   * Whether a read may start (the budget aside): after the running Retry-After, if any (a stop during it ends the wait
   * and the read is not made); not after an abort; not once the batch's reads have ended (the items then wait for its
   * pause).
   */
  async #mayRead(b: BatchState, items: readonly Item[]): Promise<boolean> {
    if (b.gate !== undefined) {
      await b.gate;
      if (!b.signal.aborted && b.waits.aborted) {
        for (const item of items)
          markWaiting(item, 'waiting out a Retry-After of this batch when the stage stopped', 'redelivery');
        return false;
      }
    }
    if (b.signal.aborted) return false;
    if (b.pauseMs === undefined) return true;
    for (const item of items)
      markWaiting(
        item,
        'an earlier read of this batch was throttled for long or refused; not reading until the next delivery',
        'pause',
      );
    return false;
  }
}
