/**
 * A received Service Bus message as a stage sees it (`Delivery` in `src/pipeline/ports.ts`), with the settlement rules
 * of the relay (on `toDelivery`): settled once; a lost lock is not an error; the dead-letter reason and description
 * kept within the broker's caps; `deliveryCount` counts this delivery (1 on the first: the SDK's count of earlier
 * deliveries plus one).
 *
 * Concurrent settlements of one receiver's deliveries (`Promise.all` over a batch, different outcomes mixed) are safe
 * with the project's rhea patch (`patches/rhea+3.0.5.patch`, see docs/emulators/servicebus.md); without it rhea merges
 * different outcomes settled in one tick.
 */
import { isServiceBusError, type ServiceBusReceivedMessage, type ServiceBusReceiver } from '@azure/service-bus';
import type { Span } from '@opentelemetry/api';
import type { Delivery, SettlementOutcome } from '../pipeline/index.js';
import { annotate, ATTR, endSpan, startProcessSpan, tracingOn } from '../telemetry/index.js';
import { silentLogger, type Logger } from '../log.js';
import { serviceBusMetrics, type ConsumedOutcome, type ServiceBusMetrics } from './metrics.js';

/**
 * Longest dead-letter reason kept, in characters: the broker's cap on the property, as the .NET SDK validates it
 * (longer text would make the dead-letter itself fail and leave the message locked). Truncated text ends with `…`.
 */
export const DEAD_LETTER_REASON_MAX_CHARS = 128;
/** Longest dead-letter description kept, in characters (as the reason's). */
export const DEAD_LETTER_DESCRIPTION_MAX_CHARS = 4096;

/** How a delivery was settled (the port's type, `src/pipeline/ports.ts`). */
export type { SettlementOutcome };

/** The receiver calls a delivery settles through (a `ServiceBusReceiver` or `ServiceBusSessionReceiver`). */
export type Settler = Pick<ServiceBusReceiver, 'completeMessage' | 'abandonMessage' | 'deadLetterMessage'>;

/** A `Delivery` that also tells whether and how it was settled (for the receive loops). */
export interface SettleableDelivery extends Delivery {
  /** Whether a settlement was started (whatever its result). */
  readonly settled: boolean;
  /** The settlement's result; `undefined` while none was started or it is under way. */
  readonly outcome: SettlementOutcome | undefined;
  /** The SDK's message, for what the port does not carry (sequence number, enqueued time, lock). */
  readonly message: ServiceBusReceivedMessage;
}

export interface DeliveryOptions {
  /** The queue, for logs and metrics. */
  queue: string;
  log?: Logger;
  metrics?: ServiceBusMetrics;
}

const SETTLEMENT_BRAND = Symbol.for('channel-relay.delivery-settlement-error');

/** A delivery was settled twice: a bug in the stage that holds it. */
export class DeliverySettlementError extends Error {
  override readonly name = 'DeliverySettlementError';
  readonly code = 'AlreadySettled' as const;
  readonly [SETTLEMENT_BRAND] = true;
  constructor(
    message: string,
    readonly messageId: string | undefined,
  ) {
    super(message);
  }
}

export function isDeliverySettlementError(value: unknown): value is DeliverySettlementError {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[SETTLEMENT_BRAND] === true;
}

/** Whether a settlement error means the broker already took the message back (it will be redelivered). */
export function isLockLostError(err: unknown): boolean {
  return isServiceBusError(err) && (err.code === 'MessageLockLost' || err.code === 'SessionLockLost');
}

/** `text` cut to at most `max` characters, ending with `…` when cut. */
export function truncateText(text: string, max: number): string {
  if (text.length <= max) return text;
  return `${text.slice(0, Math.max(0, max - 1))}…`;
}

const COUNTED: Record<Exclude<SettlementOutcome, 'failed'>, ConsumedOutcome> = {
  completed: 'completed',
  abandoned: 'abandoned',
  deadLettered: 'dead_lettered',
  lockLost: 'lock_lost',
};

class ReceivedDelivery implements SettleableDelivery {
  #body: unknown;
  readonly messageId: string | undefined;
  readonly contentType: string | undefined;
  readonly applicationProperties: Readonly<Record<string, unknown>>;
  readonly deliveryCount: number;
  readonly sessionId: string | undefined;
  readonly span: Span | undefined;
  #started: string | undefined;
  #outcome: SettlementOutcome | undefined;

  constructor(
    readonly message: ServiceBusReceivedMessage,
    private readonly settler: Settler,
    private readonly options: Required<DeliveryOptions>,
  ) {
    this.#body = message.body;
    this.messageId = message.messageId === undefined ? undefined : String(message.messageId);
    this.contentType = message.contentType;
    this.applicationProperties = (message.applicationProperties ?? {}) as Record<string, unknown>;
    // The SDK counts earlier deliveries (0 on the first); the port counts this one too.
    this.deliveryCount = (message.deliveryCount ?? 0) + 1;
    this.sessionId = message.sessionId;
    // `process <queue>`, child of the trace context the message carries; ended when it is settled.
    this.span = tracingOn() ? startProcessSpan(options.queue, this) : undefined;
  }

  get body(): unknown {
    return this.#body;
  }

  /**
   * Lets the body go, here and in the SDK's message (its `body` and `_rawAmqpMessage.body`), which a settlement does
   * not read. A raw body is a slice of the connection's read buffer (rhea decodes in place): held until the batch's
   * last settlement, each kept a 64 KiB socket chunk alive and, once old, waited for a full collection.
   */
  dropBody(): void {
    this.#body = undefined;
    const message = this.message as { body: unknown; _rawAmqpMessage?: { body: unknown } };
    message.body = undefined;
    if (message._rawAmqpMessage !== undefined) message._rawAmqpMessage.body = undefined;
  }

  get settled(): boolean {
    return this.#started !== undefined;
  }

  get outcome(): SettlementOutcome | undefined {
    return this.#outcome;
  }

  complete(): Promise<void> {
    return this.#settle('complete', 'completed', () => this.settler.completeMessage(this.message));
  }

  abandon(): Promise<void> {
    return this.#settle('abandon', 'abandoned', () => this.settler.abandonMessage(this.message));
  }

  deadLetter(reason: string, description: string): Promise<void> {
    const deadLetterReason = truncateText(reason, DEAD_LETTER_REASON_MAX_CHARS);
    const deadLetterErrorDescription = truncateText(description, DEAD_LETTER_DESCRIPTION_MAX_CHARS);
    return this.#settle('deadLetter', 'deadLettered', () =>
      this.settler.deadLetterMessage(this.message, { deadLetterReason, deadLetterErrorDescription }),
    );
  }

  async #settle(action: string, outcome: SettlementOutcome, call: () => Promise<void>): Promise<void> {
    const { queue, log, metrics } = this.options;
    if (this.#started !== undefined) {
      throw new DeliverySettlementError(
        `cannot ${action} message ${String(this.messageId)} on ${queue}: it was already settled (${this.#started}); a delivery is settled exactly once`,
        this.messageId,
      );
    }
    this.#started = action;
    try {
      await call();
      this.#outcome = outcome;
    } catch (err) {
      if (this.span !== undefined) {
        annotate(this.span, { [ATTR.outcome]: isLockLostError(err) ? 'lockLost' : 'failed' });
        endSpan(this.span, err);
      }
      if (isLockLostError(err)) {
        this.#outcome = 'lockLost';
        metrics.consumed(queue, COUNTED.lockLost);
        log.warn('lock lost before settling; the bus will deliver the message again', {
          queue,
          messageId: this.messageId,
          sessionId: this.sessionId,
          action,
          code: (err as { code?: string }).code,
        });
        return;
      }
      this.#outcome = 'failed';
      metrics.consumed(queue, 'settle_failed');
      throw err;
    }
    metrics.consumed(queue, COUNTED[outcome as keyof typeof COUNTED]);
    if (this.span !== undefined) {
      annotate(this.span, { [ATTR.outcome]: outcome });
      endSpan(this.span);
    }
  }
}

/**
 * Wraps a received message and the receiver it came from into a settle-once `Delivery`. The first call of `complete`,
 * `abandon` or `deadLetter` settles; any further call (also while the first is under way) is a programming error and
 * rejects with a `DeliverySettlementError` (`code: 'AlreadySettled'`). A settlement attempt that failed counts as
 * settled too: the message is then the broker's again (its lock runs out and it is redelivered). `MessageLockLost` and
 * `SessionLockLost` mean the broker has already taken the message back and will deliver it again: the settlement is
 * logged, counted as `lock_lost` and resolves; every other settlement error is counted as `settle_failed` and rethrown.
 */
export function toDelivery(
  message: ServiceBusReceivedMessage,
  settler: Settler,
  options: DeliveryOptions,
): SettleableDelivery {
  return new ReceivedDelivery(message, settler, {
    queue: options.queue,
    log: options.log ?? silentLogger(),
    metrics: options.metrics ?? serviceBusMetrics(),
  });
}

/**
 * Abandons every delivery that was not settled (the safety net after a handler: an unsettled message holds its
 * receiver's delivery slots). Returns how many were abandoned; failures are logged, never thrown.
 */
export async function abandonUnsettled(
  deliveries: readonly SettleableDelivery[],
  log: Logger,
  why: string,
): Promise<number> {
  const left = deliveries.filter((d) => !d.settled);
  if (left.length === 0) return 0;
  log.warn(`${why}: abandoning ${left.length} unsettled deliveries`, {
    messageIds: left.slice(0, 20).map((d) => d.messageId),
    count: left.length,
  });
  await Promise.all(
    left.map((d) =>
      d.abandon().catch((err: unknown) => {
        log.warn('abandoning an unsettled delivery failed; its lock will run out and the bus will deliver it again', {
          messageId: d.messageId,
          err,
        });
      }),
    ),
  );
  return left.length;
}
