/**
 * The recorder stage: reads `interactions` in batches and writes them to Dataverse through an `InteractionWriter`
 * (`$batch` requests of CreateInteraction / msdyn_D365ChannelsNotification, paced under service protection limits by
 * the writer's governor). Each delivery is settled by its own result:
 *
 * - written → complete;
 * - a body that is not an interaction, or a permanent Dataverse refusal of that one interaction → dead-letter, with
 *   Dataverse's code and message;
 * - a retryable failure (throttled, unavailable, timeout) → retried here, within the batch, after the `Retry-After`
 *   or a backoff, so throttling does not burn the messages' delivery counts; still failing after `maxAttempts`, or
 *   when the stage is stopping → abandoned (the bus redelivers it);
 * - the relay's identity refused (`DataverseUnauthorized`) → abandoned after a pause: the interactions are fine, the
 *   credentials are not, and the messages wait in the queue until an operator fixes them.
 */
import { Counter, type Registry } from 'prom-client';
import { delay } from '../abort.js';
import { isEventError, type DataverseError } from '../errors.js';
import { METRIC_PREFIX } from '../health/metrics.js';
import { areaLogger, type Logger } from '../log.js';
import { interactionMessageId, parseInteractionMessage, type InteractionMessage } from './messages.js';
import type { Delivery, InteractionWriter } from './ports.js';

export interface RecorderOptions {
  writer: InteractionWriter;
  log: Logger;
  /** Counters are registered here when given. */
  registry?: Registry;
  /** Write attempts per interaction within one delivery of the batch. @defaultValue 6 */
  maxAttempts?: number;
  /** First backoff between attempts when Dataverse gave no Retry-After; doubles each time. @defaultValue 500 */
  backoffMs?: number;
  /** Longest wait between attempts. @defaultValue 30000 */
  maxBackoffMs?: number;
  /** Waits (tests pass a fake). @defaultValue setTimeout, cut short by the signal */
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

export class RecorderStage {
  private readonly writer: InteractionWriter;
  private readonly log: Logger;
  private readonly maxAttempts: number;
  private readonly backoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  private readonly counter: Counter<'outcome'> | undefined;
  private readonly counts: RecorderStats = { written: 0, deadLettered: 0, abandoned: 0, retries: 0 };

  constructor(options: RecorderOptions) {
    this.writer = options.writer;
    this.log = areaLogger(options.log, 'recorder');
    this.maxAttempts = options.maxAttempts ?? 6;
    this.backoffMs = options.backoffMs ?? 500;
    this.maxBackoffMs = options.maxBackoffMs ?? 30_000;
    if (!Number.isInteger(this.maxAttempts) || this.maxAttempts < 1) throw new TypeError(`maxAttempts must be an integer >= 1, found ${this.maxAttempts}`);
    this.sleep = options.sleep ?? delay;
    this.counter = options.registry === undefined ? undefined : interactionsCounter(options.registry);
  }

  stats(): RecorderStats {
    return { ...this.counts };
  }

  /** Writes one received batch; every delivery is settled before this resolves. */
  async handle(batch: readonly Delivery[], signal: AbortSignal): Promise<void> {
    const pending: Array<{ delivery: Delivery; item: InteractionMessage; id: string }> = [];
    for (const delivery of batch) {
      try {
        const item = parseInteractionMessage(delivery.body);
        pending.push({ delivery, item, id: interactionMessageId(item) });
      } catch (err) {
        if (!isEventError(err)) throw err;
        this.log.warn('interaction message unreadable: dead-lettered', { messageId: delivery.messageId, code: err.code, reason: err.message });
        await this.settle(delivery, 'dead_lettered', () => delivery.deadLetter(err.code, err.message));
      }
    }

    let attempt = 0;
    let todo = pending;
    while (todo.length > 0) {
      attempt++;
      if (signal.aborted) break;
      let results;
      try {
        results = await this.writer.write(todo.map((t) => t.item), signal);
      } catch (err) {
        // No result at all (aborted, or the writer itself failed): hand everything back.
        this.log.warn('interaction write failed as a whole: abandoned', { count: todo.length, error: err instanceof Error ? err.message : String(err) });
        break;
      }
      const retry: typeof todo = [];
      let waitMs = 0;
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
            waitMs = Math.max(waitMs, error.retryAfterMs ?? 0);
            retry.push(t);
          } else {
            const detail = [error.message, error.upstream?.code === undefined ? '' : `(Dataverse code ${String(error.upstream.code)})`].filter(Boolean).join(' ');
            this.log.warn('Dataverse refused an interaction: dead-lettered', { messageId: t.id, code: error.code, status: error.upstream?.status, reason: error.message });
            await this.settle(t.delivery, 'dead_lettered', () => t.delivery.deadLetter(error.code, `${describe(t.item)}: ${detail}`));
          }
        }),
      );
      todo = retry;
      if (todo.length === 0) break;
      if (unauthorized) {
        this.log.error('Dataverse refused the relay identity: interactions stay in the queue until the credentials are fixed', { code: unauthorized.code, status: unauthorized.upstream?.status, reason: unauthorized.message });
        await this.sleep(this.maxBackoffMs, signal);
        break;
      }
      if (attempt >= this.maxAttempts) {
        this.log.warn('interactions still failing after every attempt: abandoned for redelivery', { count: todo.length, attempts: attempt });
        break;
      }
      this.counts.retries += todo.length;
      const backoff = Math.min(this.maxBackoffMs, this.backoffMs * 2 ** (attempt - 1));
      await this.sleep(Math.max(waitMs, backoff), signal);
    }
    await Promise.all(todo.map((t) => this.settle(t.delivery, 'abandoned', () => t.delivery.abandon())));
  }

  private async settle(delivery: Delivery, outcome: Outcome, how: () => Promise<void>): Promise<void> {
    try {
      await how();
    } catch (err) {
      // The bus redelivers what could not be settled; the next delivery is recorded again (at least once).
      this.log.warn('settlement failed; the message will be redelivered', { messageId: delivery.messageId, outcome, error: err instanceof Error ? err.message : String(err) });
      return;
    }
    if (outcome === 'written') this.counts.written++;
    else if (outcome === 'dead_lettered') this.counts.deadLettered++;
    else this.counts.abandoned++;
    this.counter?.inc({ outcome });
  }
}

/** The recorder's counter on `registry`: the one already there (a second stage on the same registry), or a new one. */
function interactionsCounter(registry: Registry): Counter<'outcome'> {
  const name = `${METRIC_PREFIX}recorder_interactions_total`;
  const existing = registry.getSingleMetric(name);
  if (existing) return existing as Counter<'outcome'>;
  return new Counter({ name, help: 'Interactions handled by the recorder, by outcome.', labelNames: ['outcome'] as const, registers: [registry] });
}

/** Which interaction, for a dead-letter description (no contact data beyond ids). */
function describe(item: InteractionMessage): string {
  const c = item.context;
  return c.kind === 'marketing'
    ? `interaction '${item.responseType}' of activity ${c.activityId} (contact ${c.contactId}, journey ${c.journeyId})`
    : `notification '${item.responseType}' of request ${c.requestId} (channel definition ${c.channelDefinitionId})`;
}
