/**
 * The recorder stage: reads `interactions` in batches and writes them to Dataverse through an `InteractionWriter`
 * (`$batch` requests paced under the service protection limits by the writer's governor).
 *
 * Invariants: each delivery is settled by its own result (written → complete; unreadable or refused by Dataverse →
 * dead letter with Dataverse's code and message; retryable → retried within the batch, then abandoned; the relay's
 * identity refused → abandoned after a pause, so the messages wait in the queue); a batch ends within
 * `batchBudgetMs`; a `$batch` write in flight is let finish on stop (Dataverse may already have executed it; handing
 * its interactions back would write them twice): only the handler's signal aborts it. An interaction this process
 * wrote is remembered (`remember`) and, delivered again because its settlement failed (a lock lost while the process
 * was starved, a dropped link), completed without a second write: CreateInteraction has no idempotency key and nothing
 * readable in Dataverse says it was written. Only such interactions stay remembered: one whose completion the broker
 * confirmed (outcome `completed`) is gone from the queue and forgotten at once, so the set holds the writes in flight
 * and the failed settlements, not every interaction of the last hour.
 */
import type { Counter, Registry } from 'prom-client';
import { delayUnlessAborted, linkedController } from '../../abort.js';
import { TtlCache } from '../../cache.js';
import { errorMessage, isEventError, type DataverseError } from '../../errors.js';
import { METRIC_PREFIX, sharedCounter } from '../../health/index.js';
import { areaLogger, type Logger } from '../../log.js';
import { numberOption } from '../../options.js';
import { interactionMessageId, parseInteractionMessage, type InteractionMessage } from '../messages.js';
import type { Delivery, InteractionWriter, WriteResult } from '../ports.js';
import { budgetLeft, failedWith, resolveBudget, retryWithinBatch } from '../batch-retry.js';
import { resolveRetry, type ResolvedRetry, type RetryOptions } from '../../retry.js';
import { annotate, inBatchCallSpan, runInSpan } from '../../telemetry/index.js';
import { traceAttributes } from '../trace-attributes.js';

export interface RecorderOptions {
  writer: InteractionWriter;
  log: Logger;
  /** Counters are registered here when given. */
  registry?: Registry;
  /**
   * Writes within a batch, for retryable errors: `attempts` per interaction (1: no retry), and the wait between
   * attempts, from `initialDelayMs` doubling to at most `maxDelayMs`, or Dataverse's `Retry-After` when longer.
   * @defaultValue { attempts: 6, initialDelayMs: 500, maxDelayMs: 30000 }
   */
  retry?: RetryOptions;
  /**
   * The pause before abandoning when Dataverse refuses the relay's identity (`DataverseUnauthorized`): the
   * interactions are fine, the credentials are not, so they wait in the queue for a fix. @defaultValue 30000
   */
  identityPauseMs?: number;
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
  /**
   * The interactions this process wrote, by message id, kept so that one delivered again (its settlement failed after
   * the write) is completed without writing it twice: at most `max` ids (about 210 bytes each), each for `ttlMs`
   * (the `interactions` queue's message time to live bounds a redelivery: PT1H in the sample). An id is forgotten as
   * soon as the broker confirms its completion (the delivery's `outcome` is `completed`): only the writes in flight and
   * those whose settlement failed (a lost lock, a dropped link; or a delivery that does not tell its outcome) are held.
   * Another replica's writes are not known here. `max: 0` remembers nothing. @defaultValue { max: 100000, ttlMs: 3600000 }
   */
  remember?: { max: number; ttlMs: number };
}

export interface RecorderStats {
  written: number;
  /** Delivered again after this process had written them (a settlement failed): completed, not written twice. */
  alreadyWritten: number;
  deadLettered: number;
  abandoned: number;
  /** Write attempts that were retried. */
  retries: number;
}

type Outcome = 'written' | 'already_written' | 'dead_lettered' | 'abandoned';

/** What one write left to try again. */
interface WriteRound {
  retry: Pending[];
  /** The longest `Retry-After` among what is to be tried again (0: none). */
  retryAfterMs: number;
  /** Dataverse refused the relay's identity. */
  unauthorized: DataverseError | undefined;
}

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
  private readonly retry: ResolvedRetry;
  private readonly identityPauseMs: number;
  private readonly maxThrottleWaitMs: number;
  private readonly batchBudgetMs: number;
  private readonly callTimeoutMs: number;
  private readonly sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  private readonly counter: Counter<'outcome'> | undefined;
  private readonly counts: RecorderStats = { written: 0, alreadyWritten: 0, deadLettered: 0, abandoned: 0, retries: 0 };
  /** Message ids of the interactions this process wrote (see `remember`). */
  private readonly written: TtlCache<string, true>;
  /** Aborted by `stop()`. */
  private readonly stopping = new AbortController();

  constructor(options: RecorderOptions) {
    this.writer = options.writer;
    this.log = areaLogger(options.log, 'recorder');
    this.retry = resolveRetry(COMPONENT, 'retry', options.retry, {
      attempts: 6,
      initialDelayMs: 500,
      maxDelayMs: 30_000,
    });
    this.identityPauseMs = numberOption(COMPONENT, 'identityPauseMs', options.identityPauseMs, 30_000, { atLeast: 0 });
    this.maxThrottleWaitMs = numberOption(COMPONENT, 'maxThrottleWaitMs', options.maxThrottleWaitMs, 30_000, {
      atLeast: 0,
    });
    const budget = resolveBudget(COMPONENT, options, 'write');
    this.callTimeoutMs = budget.callTimeoutMs;
    this.batchBudgetMs = budget.batchBudgetMs;
    this.sleep = options.sleep ?? delayUnlessAborted;
    this.written = new TtlCache({
      ...(options.remember ?? { max: 100_000, ttlMs: 3_600_000 }),
      name: `${COMPONENT}.remember`,
    });
    this.counter =
      options.registry === undefined
        ? undefined
        : sharedCounter(
            options.registry,
            `${METRIC_PREFIX}recorder_interactions_total`,
            'Interactions handled by the recorder, by outcome.',
            ['outcome'],
          );
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
          if (delivery.span !== undefined) annotate(delivery.span, traceAttributes(item.channel, item.context));
          const id = interactionMessageId(item);
          if (this.written.get(id) !== undefined) {
            this.log.info('interaction delivered again after this process wrote it: completed, not written twice', {
              messageId: id,
              deliveryCount: delivery.deliveryCount,
            });
            settling.push(this.settle(delivery, 'already_written', () => delivery.complete(), id));
            continue;
          }
          todo.push({ delivery, item, id });
        } catch (err) {
          if (!isEventError(err)) {
            // Not the message's fault (a bug of ours): handed back, not dead-lettered; the bus dead-letters it at MaxDeliveryCount.
            this.log.error('reading an interaction message failed unexpectedly: abandoned', {
              messageId: delivery.messageId,
              error: errorMessage(err),
            });
            settling.push(this.settle(delivery, 'abandoned', () => delivery.abandon()));
            continue;
          }
          this.log.warn('interaction message unreadable: dead-lettered', {
            messageId: delivery.messageId,
            code: err.code,
            reason: err.message,
          });
          settling.push(this.settle(delivery, 'dead_lettered', () => delivery.deadLetter(err.code, err.message)));
        }
      }
      todo = await this.write(todo, signal, waits.signal, deadline);
    } finally {
      waits.dispose();
      await Promise.all([
        ...settling,
        ...todo.map((t) => this.settle(t.delivery, 'abandoned', () => t.delivery.abandon())),
      ]);
    }
  }

  /** Writes with retries (`retryWithinBatch`); settles what was written or refused; returns what is to be abandoned. */
  private async write(
    pending: Pending[],
    signal: AbortSignal,
    waits: AbortSignal,
    deadline: number,
  ): Promise<Pending[]> {
    const left = (): number => budgetLeft(deadline);
    let todo = pending;
    if (todo.length === 0) return todo;
    const result = await retryWithinBatch<WriteRound>({
      retry: this.retry,
      deadline,
      callTimeoutMs: this.callTimeoutMs,
      signal,
      waits,
      sleep: this.sleep,
      attempt: async () => {
        const round = await this.writeOnce(todo, signal);
        todo = round.retry;
        return round;
      },
      unfinished: () => todo.length > 0,
      judge: (failure, { delayMs }) => {
        // No result at all (aborted, or the writer itself failed), or the identity refused: not tried again.
        if (!('value' in failure) || failure.value.unauthorized !== undefined) return false;
        const { retryAfterMs } = failure.value;
        return retryAfterMs > this.maxThrottleWaitMs ? 'throttled' : { waitMs: Math.max(retryAfterMs, delayMs) };
      },
      onRetry: () => {
        this.counts.retries += todo.length;
      },
    });
    if (result.ok) return todo;
    const { failures, failure } = result;
    const round = failure !== undefined && 'value' in failure ? failure.value : undefined;
    switch (result.end) {
      case 'aborted':
        break;
      case 'refused':
        if (round?.unauthorized === undefined) {
          this.log.warn('interaction write failed as a whole: abandoned', {
            count: todo.length,
            error: errorMessage(failedWith(failure)),
          });
          break;
        }
        {
          const pauseMs = Math.min(this.identityPauseMs, left());
          const { code, upstream, message } = round.unauthorized;
          this.log.error(
            'Dataverse refused the relay identity: interactions stay in the queue until the credentials are fixed',
            { code, status: upstream?.status, reason: message, pauseMs },
          );
          await this.sleep(pauseMs, waits);
        }
        break;
      case 'throttled': {
        const pauseMs = Math.min(this.maxThrottleWaitMs, left());
        this.log.warn(
          'Dataverse throttled the writes for longer than the recorder waits: abandoned for redelivery after a pause',
          { count: todo.length, retryAfterMs: round?.retryAfterMs, pauseMs },
        );
        await this.sleep(pauseMs, waits);
        break;
      }
      case 'stopped':
      case 'cut':
        this.log.info('the stage is stopping: interactions not written are abandoned for redelivery', {
          count: todo.length,
          attempts: failures,
        });
        break;
      case 'spent':
        this.log.warn('interactions still failing after every attempt: abandoned for redelivery', {
          count: todo.length,
          attempts: failures,
        });
        break;
      case 'noRoom':
      case 'noRoomToRetry':
        this.outOfBudget(todo, failures, left());
        break;
      case 'held':
        break;
    }
    return todo;
  }

  /**
   * One `$batch` write of `todo`: settles what was written (complete) or refused for good (dead letter); what is to be
   * tried again, with the longest `Retry-After` among it and the refusal of the identity, if any.
   */
  private async writeOnce(todo: readonly Pending[], signal: AbortSignal): Promise<WriteRound> {
    // One `$batch` for many activities: its span is linked to each interaction's `process interactions` span.
    const results: WriteResult[] = await inBatchCallSpan(
      'Dataverse $batch',
      todo.map((t) => t.delivery.span),
      {},
      () =>
        this.writer.write(
          todo.map((t) => t.item),
          signal,
        ),
    );
    const round: WriteRound = { retry: [], retryAfterMs: 0, unauthorized: undefined };
    await Promise.all(
      todo.map(async (t, i) => {
        const result = results[i];
        if (result === undefined) {
          round.retry.push(t);
          return;
        }
        if (result.ok) {
          this.written.set(t.id, true);
          await this.settle(t.delivery, 'written', () => t.delivery.complete(), t.id);
          return;
        }
        const error = result.error;
        if (error.code === 'DataverseUnauthorized') {
          round.unauthorized = error;
          round.retry.push(t);
        } else if (error.retryable) {
          round.retryAfterMs = Math.max(round.retryAfterMs, error.retryAfterMs ?? 0);
          round.retry.push(t);
        } else {
          const detail = [
            error.message,
            error.upstream?.code === undefined ? '' : `(Dataverse code ${String(error.upstream.code)})`,
          ]
            .filter(Boolean)
            .join(' ');
          runInSpan(t.delivery.span, () =>
            this.log.warn('Dataverse refused an interaction: dead-lettered', {
              messageId: t.id,
              code: error.code,
              status: error.upstream?.status,
              reason: error.message,
            }),
          );
          await this.settle(t.delivery, 'dead_lettered', () =>
            t.delivery.deadLetter(error.code, `${describe(t.item)}: ${detail}`),
          );
        }
      }),
    );
    return round;
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

  /**
   * Settles one delivery and counts the outcome. `written` is the remembered id of a written interaction: forgotten
   * when the broker confirmed the completion, kept otherwise. A confirmed completion deletes the message ("Completes a
   * ServiceBusReceivedMessage. This will delete the message from the service", learn.microsoft.com/dotnet/api/
   * azure.messaging.servicebus.servicebusreceiver.completemessageasync): it cannot be delivered again; a repeat sent
   * later under the same MessageId is duplicate detection's to drop, not this set's (docs/architecture.md).
   */
  private async settle(
    delivery: Delivery,
    outcome: Outcome,
    how: () => Promise<void>,
    written?: string,
  ): Promise<void> {
    try {
      await how();
      if (written !== undefined && delivery.outcome === 'completed') this.written.delete(written);
    } catch (err) {
      // The bus redelivers what could not be settled; the next delivery is recorded again (at least once).
      this.log.warn('settlement failed; the message will be redelivered', {
        messageId: delivery.messageId,
        outcome,
        error: errorMessage(err),
      });
      return;
    }
    if (outcome === 'written') this.counts.written++;
    else if (outcome === 'already_written') this.counts.alreadyWritten++;
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
