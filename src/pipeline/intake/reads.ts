/**
 * Intake's Dataverse reads within a batch, with their rules: a retryable `DataverseError` is tried again up to
 * `readAttempts`, after a backoff or the `Retry-After` (while one runs no read of the batch starts); a `Retry-After`
 * above `maxThrottleWaitMs` or `DataverseUnauthorized` ends the batch's reads (its deliveries wait out a pause); no
 * read and no wait starts that could not end before the batch's deadline; a stop cuts the waits short. A read that
 * failed for good is judged by `failed`: dead-lettered when Dataverse refused the record, else set to be abandoned.
 */
import { raceAbort } from '../../abort.js';
import { errorMessage, isDataverseError, type CodeOf } from '../../errors.js';
import { count, fits, markWaiting, outOfBudget, type AttemptRules, type BatchState, type Item } from './batch.js';
import { backoffDelay } from '../retry-budget.js';

/** The rules of the reads (intake's options, validated) and what a read reports to the stage. */
export interface ReadRules extends AttemptRules {
  readAttempts: number;
  maxThrottleWaitMs: number;
  defaultThrottleWaitMs: number;
  unauthorizedPauseMs: number;
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
    const { sleep, log } = this.#rules;
    for (let attempt = 1; ; attempt++) {
      if (!(await this.#mayRead(b, items, what))) return undefined;
      try {
        return { ok: true, value: await raceAbort(call(), b.signal) };
      } catch (err) {
        if (b.signal.aborted) return undefined;
        const retry = this.#retryWait(b, err, attempt);
        if (retry === undefined) return { ok: false, error: err, attempts: attempt };
        const { waitMs, throttled } = retry;
        if (!fits(b, this.#rules, waitMs)) {
          outOfBudget(b, this.#rules, items, `${what}: ${errorMessage(err)} (${count(attempt, 'attempt', 'attempts')}); not tried again`);
          return undefined;
        }
        if (throttled) {
          // No read of this batch starts while the Retry-After runs.
          const wait = sleep(waitMs, b.waits);
          b.gate = b.gate === undefined ? wait : Promise.all([b.gate, wait]).then(() => undefined);
        }
        this.#rules.onRetry();
        log.warn(`${what} failed; trying again`, { error: err, attempt, waitMs, deliveries: items.length });
        await sleep(waitMs, b.waits);
        if (b.signal.aborted) return undefined;
        if (b.waits.aborted) {
          for (const item of items) markWaiting(item, `${what}: ${errorMessage(err)} (not tried again: the stage is stopping)`, 'redelivery');
          return undefined;
        }
      }
    }
  }

  /** Settles (or sets waiting) the items of a read that failed for good. */
  failed(b: BatchState, items: readonly Item[], err: unknown, what: string, attempts: number): void {
    const { log, defaultThrottleWaitMs, maxThrottleWaitMs } = this.#rules;
    if (b.signal.aborted) return; // handle() abandons them
    if (isDataverseError(err)) {
      const throttledForLong = err.code === 'DataverseThrottled' && (err.retryAfterMs ?? defaultThrottleWaitMs) > maxThrottleWaitMs;
      if (throttledForLong || err.code === 'DataverseUnauthorized') {
        const ms = err.code === 'DataverseThrottled' ? Math.min(err.retryAfterMs ?? defaultThrottleWaitMs, maxThrottleWaitMs) : this.#rules.unauthorizedPauseMs;
        if (throttledForLong) log.warn('Dataverse throttled a read for longer than intake waits; no more reads in this batch', { error: err, waitMs: ms, deliveries: items.length });
        else log.error("Dataverse refused the relay's identity; abandoning the deliveries after a pause", { error: err, waitMs: ms, deliveries: items.length });
        b.pauseMs = Math.max(b.pauseMs ?? 0, ms);
        for (const item of items) markWaiting(item, `${what}: ${err.code}: ${err.message}`, 'pause');
        return;
      }
      if (err.retryable) {
        log.warn(`${what} still failing after ${count(attempts, 'attempt', 'attempts')}; abandoning after a wait`, { error: err, deliveries: items.length });
        for (const item of items) markWaiting(item, `${what}: ${err.code}: ${err.message} (${count(attempts, 'attempt', 'attempts')})`, 'redelivery');
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
   * The wait before trying a failed read again (`throttled`: a `Retry-After` that holds every read of the batch), or
   * `undefined` when it is not tried again within the batch.
   */
  #retryWait(b: BatchState, err: unknown, attempt: number): { waitMs: number; throttled: boolean } | undefined {
    const { readAttempts, defaultThrottleWaitMs, maxThrottleWaitMs, backoffMs, maxBackoffMs } = this.#rules;
    if (!isDataverseError(err) || !err.retryable || attempt >= readAttempts || b.waits.aborted) return undefined;
    if (err.code === 'DataverseThrottled') {
      const ms = err.retryAfterMs ?? defaultThrottleWaitMs;
      if (ms > maxThrottleWaitMs) return undefined;
      return { waitMs: ms, throttled: true };
    }
    return { waitMs: Math.max(backoffDelay(attempt, backoffMs, maxBackoffMs), err.retryAfterMs ?? 0), throttled: false };
  }

  /**
   * Whether a read may start: not after an abort, not once the batch's reads have ended (the items then wait for its
   * pause), not when it could not end before the batch's deadline; after the running Retry-After, if any (a stop
   * during it ends the wait and the read is not made).
   */
  async #mayRead(b: BatchState, items: readonly Item[], what: string): Promise<boolean> {
    if (b.gate !== undefined) {
      await b.gate;
      if (!b.signal.aborted && b.waits.aborted) {
        for (const item of items) markWaiting(item, 'waiting out a Retry-After of this batch when the stage stopped', 'redelivery');
        return false;
      }
    }
    if (b.signal.aborted) return false;
    if (b.pauseMs === undefined) {
      if (fits(b, this.#rules)) return true;
      outOfBudget(b, this.#rules, items, `${what}: not started`);
      return false;
    }
    for (const item of items) markWaiting(item, 'an earlier read of this batch was throttled for long or refused; not reading until the next delivery', 'pause');
    return false;
  }
}
