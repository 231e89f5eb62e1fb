/**
 * The recorder stage: reads `interactions` in batches and writes them to Dataverse through an `InteractionWriter`
 * (`$batch` requests paced under the service protection limits by the writer's governor).
 *
 * Invariants: each delivery is settled by its own result (written → complete; unreadable or refused by Dataverse →
 * dead letter with Dataverse's code and message; retryable → retried within the batch, then abandoned; the relay's
 * identity refused → abandoned after a pause, so the messages wait in the queue); a batch ends within
 * `batchBudgetMs`; a `$batch` write in flight is let finish on stop (Dataverse may already have executed it; handing
 * its interactions back would write them twice): only the handler's signal aborts it.
 */
import type { Counter, Registry } from 'prom-client';
import { delay, linkedController } from '../../abort.js';
import { errorMessage, isEventError, type DataverseError } from '../../errors.js';
import { METRIC_PREFIX, sharedCounter } from '../../health/index.js';
import { areaLogger, type Logger } from '../../log.js';
import { intOption, numberOption } from '../../options.js';
import { interactionMessageId, parseInteractionMessage, type InteractionMessage } from '../messages.js';
import type { Delivery, InteractionWriter, WriteResult } from '../ports.js';
import { attemptFits, backoffDelay, budgetLeft, resolveBudget } from '../retry-budget.js';

export interface RecorderOptions {
  writer: InteractionWriter;
  log: Logger;
  /** Counters are registered here when given. */
  registry?: Registry;
  /** Write attempts per interaction within one delivery of the batch. An integer of at least 1. @defaultValue 6 */
  maxAttempts?: number;
  /** First backoff between attempts when Dataverse gave no Retry-After; doubles each time. @defaultValue 500 */
  backoffMs?: number;
  /** Longest wait between attempts, and the pause before abandoning when the relay's identity is refused. @defaultValue 30000 */
  maxBackoffMs?: number;
  /**
   * The longest `Retry-After` waited out within a batch before writing again. A longer one ends the batch's attempts:
   * its deliveries are abandoned after this wait. @defaultValue 30000
   */
  maxThrottleWaitMs?: number;
  /**
   * The longest a batch takes, from the start of `handle` to its last settlement: no write or wait starts that could
   * not end before then (counting `callTimeoutMs` per write). Keep it below the receive loop's `maxLockRenewalMs`
   * (300000 by default) with a margin for the settlements. At least `callTimeoutMs`. @defaultValue 240000
   */
  batchBudgetMs?: number;
  /**
   * How long one write may take at most: the Dataverse client's timeout (the relay passes `dataverse.timeoutMs`). A
   * write starts only when this much of the batch's budget is left. @defaultValue 30000
   */
  callTimeoutMs?: number;
  /** Waits, resolving early when the signal aborts (tests pass a fake). @defaultValue setTimeout, cut short by the signal */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}

export interface RecorderStats {
  written: number;
  deadLettered: number;
  abandoned: number;
  /** Write attempts that were retried. */
  retries: number;
}

type Outcome = 'written' | 'dead_lettered' | 'abandoned';

interface Pending {
  delivery: Delivery;
  item: InteractionMessage;
  id: string;
}

/** Names the component in option errors. */
const COMPONENT = 'RecorderStage';

export class RecorderStage {
  private readonly writer: InteractionWriter;
  private readonly log: Logger;
  private readonly maxAttempts: number;
  private readonly backoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly maxThrottleWaitMs: number;
  private readonly batchBudgetMs: number;
  private readonly callTimeoutMs: number;
  private readonly sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  private readonly counter: Counter<'outcome'> | undefined;
  private readonly counts: RecorderStats = { written: 0, deadLettered: 0, abandoned: 0, retries: 0 };
  /** Aborted by `stop()`. */
  private readonly stopping = new AbortController();

  constructor(options: RecorderOptions) {
    this.writer = options.writer;
    this.log = areaLogger(options.log, 'recorder');
    this.maxAttempts = intOption(COMPONENT, 'maxAttempts', options.maxAttempts, 6, 1);
    this.backoffMs = numberOption(COMPONENT, 'backoffMs', options.backoffMs, 500, { atLeast: 0 });
    this.maxBackoffMs = numberOption(COMPONENT, 'maxBackoffMs', options.maxBackoffMs, 30_000, { atLeast: 0 });
    this.maxThrottleWaitMs = numberOption(COMPONENT, 'maxThrottleWaitMs', options.maxThrottleWaitMs, 30_000, { atLeast: 0 });
    const budget = resolveBudget(COMPONENT, options, 'write');
    this.callTimeoutMs = budget.callTimeoutMs;
    this.batchBudgetMs = budget.batchBudgetMs;
    this.sleep = options.sleep ?? delay;
    this.counter = options.registry === undefined ? undefined : sharedCounter(options.registry, `${METRIC_PREFIX}recorder_interactions_total`, 'Interactions handled by the recorder, by outcome.', ['outcome']);
  }

  stats(): RecorderStats {
    return { ...this.counts };
  }

  /**
   * The stage is stopping (call it when the receive loop stops, before draining): every wait in the batches in flight
   * (a backoff, a `Retry-After`, the pause of a refused identity) ends at once, no write is tried again, and what is
   * not written is abandoned, so that a drain is not held by a wait. A write in flight runs on (the handler's signal
   * ends it); a batch handled afterwards is written once, without retries. Idempotent.
   */
  stop(): void {
    this.stopping.abort();
  }

  /** Writes one received batch; every delivery is settled before this resolves (abandoned when `signal` aborts first). */
  async handle(batch: readonly Delivery[], signal: AbortSignal): Promise<void> {
    const deadline = Date.now() + this.batchBudgetMs;
    // Ends the waits: the handler's signal or stop(). Never given to a write (a stop lets a write in flight finish).
    const waits = linkedController(signal, this.stopping.signal);
    let todo: Pending[] = [];
    // The settlements of unreadable bodies run while the others are written.
    const settling: Promise<void>[] = [];
    try {
      for (const delivery of batch) {
        try {
          const item = parseInteractionMessage(delivery.body);
          todo.push({ delivery, item, id: interactionMessageId(item) });
        } catch (err) {
          if (!isEventError(err)) {
            // Not the message's fault (a bug of ours): handed back, not dead-lettered; the bus dead-letters it at MaxDeliveryCount.
            this.log.error('reading an interaction message failed unexpectedly: abandoned', { messageId: delivery.messageId, error: errorMessage(err) });
            settling.push(this.settle(delivery, 'abandoned', () => delivery.abandon()));
            continue;
          }
          this.log.warn('interaction message unreadable: dead-lettered', { messageId: delivery.messageId, code: err.code, reason: err.message });
          settling.push(this.settle(delivery, 'dead_lettered', () => delivery.deadLetter(err.code, err.message)));
        }
      }
      todo = await this.write(todo, signal, waits.signal, deadline);
    } finally {
      waits.dispose();
      await Promise.all([...settling, ...todo.map((t) => this.settle(t.delivery, 'abandoned', () => t.delivery.abandon()))]);
    }
  }

  /** Writes with retries; settles what was written or refused; returns what is to be abandoned. */
  private async write(pending: Pending[], signal: AbortSignal, waits: AbortSignal, deadline: number): Promise<Pending[]> {
    const left = (): number => budgetLeft(deadline);
    let todo = pending;
    for (let attempt = 1; todo.length > 0; attempt++) {
      if (signal.aborted) return todo;
      if (!attemptFits(deadline, this.callTimeoutMs)) {
        this.outOfBudget(todo, attempt - 1, left());
        return todo;
      }
      let results: WriteResult[];
      try {
        results = await this.writer.write(todo.map((t) => t.item), signal);
      } catch (err) {
        // No result at all (aborted, or the writer itself failed): hand everything back.
        this.log.warn('interaction write failed as a whole: abandoned', { count: todo.length, error: errorMessage(err) });
        return todo;
      }
      const retry: Pending[] = [];
      let retryAfterMs = 0;
      let unauthorized: DataverseError | undefined;
      await Promise.all(
        todo.map(async (t, i) => {
          const result = results[i];
          if (result === undefined) {
            retry.push(t);
            return;
          }
          if (result.ok) {
            await this.settle(t.delivery, 'written', () => t.delivery.complete());
            return;
          }
          const error = result.error;
          if (error.code === 'DataverseUnauthorized') {
            unauthorized = error;
            retry.push(t);
          } else if (error.retryable) {
            retryAfterMs = Math.max(retryAfterMs, error.retryAfterMs ?? 0);
            retry.push(t);
          } else {
            const detail = [error.message, error.upstream?.code === undefined ? '' : `(Dataverse code ${String(error.upstream.code)})`].filter(Boolean).join(' ');
            this.log.warn('Dataverse refused an interaction: dead-lettered', { messageId: t.id, code: error.code, status: error.upstream?.status, reason: error.message });
            await this.settle(t.delivery, 'dead_lettered', () => t.delivery.deadLetter(error.code, `${describe(t.item)}: ${detail}`));
          }
        }),
      );
      todo = retry;
      if (todo.length === 0 || signal.aborted) return todo;
      if (unauthorized) {
        const pauseMs = Math.min(this.maxBackoffMs, left());
        this.log.error('Dataverse refused the relay identity: interactions stay in the queue until the credentials are fixed', {
          code: unauthorized.code,
          status: unauthorized.upstream?.status,
          reason: unauthorized.message,
          pauseMs,
        });
        await this.sleep(pauseMs, waits);
        return todo;
      }
      if (waits.aborted) {
        this.log.info('the stage is stopping: interactions not written are abandoned for redelivery', { count: todo.length, attempts: attempt });
        return todo;
      }
      if (attempt >= this.maxAttempts) {
        this.log.warn('interactions still failing after every attempt: abandoned for redelivery', { count: todo.length, attempts: attempt });
        return todo;
      }
      if (retryAfterMs > this.maxThrottleWaitMs) {
        const pauseMs = Math.min(this.maxThrottleWaitMs, left());
        this.log.warn('Dataverse throttled the writes for longer than the recorder waits: abandoned for redelivery after a pause', { count: todo.length, retryAfterMs, pauseMs });
        await this.sleep(pauseMs, waits);
        return todo;
      }
      const waitMs = Math.max(retryAfterMs, backoffDelay(attempt, this.backoffMs, this.maxBackoffMs));
      if (!attemptFits(deadline, this.callTimeoutMs, waitMs)) {
        this.outOfBudget(todo, attempt, left());
        return todo;
      }
      this.counts.retries += todo.length;
      await this.sleep(waitMs, waits);
      if (waits.aborted && !signal.aborted) {
        this.log.info('the stage is stopping: interactions not written are abandoned for redelivery', { count: todo.length, attempts: attempt });
        return todo;
      }
    }
    return todo;
  }

  private outOfBudget(todo: readonly Pending[], attempts: number, leftMs: number): void {
    this.log.warn("the batch's time budget leaves no room for another write: abandoned for redelivery", {
      count: todo.length,
      attempts,
      leftMs,
      batchBudgetMs: this.batchBudgetMs,
      callTimeoutMs: this.callTimeoutMs,
    });
  }

  private async settle(delivery: Delivery, outcome: Outcome, how: () => Promise<void>): Promise<void> {
    try {
      await how();
    } catch (err) {
      // The bus redelivers what could not be settled; the next delivery is recorded again (at least once).
      this.log.warn('settlement failed; the message will be redelivered', { messageId: delivery.messageId, outcome, error: errorMessage(err) });
      return;
    }
    if (outcome === 'written') this.counts.written++;
    else if (outcome === 'dead_lettered') this.counts.deadLettered++;
    else this.counts.abandoned++;
    this.counter?.inc({ outcome });
  }
}

/** Which interaction, for a dead-letter description (no contact data beyond ids). */
function describe(item: InteractionMessage): string {
  const c = item.context;
  return c.kind === 'marketing'
    ? `interaction '${item.responseType}' of activity row ${c.activityRowId} (msdyncrm_activityid ${c.activityId}, contact ${c.contactId}, journey ${c.journeyId})`
    : `notification '${item.responseType}' of request ${c.requestId} (channel definition ${c.channelDefinitionId})`;
}
