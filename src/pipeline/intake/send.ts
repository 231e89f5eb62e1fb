/**
 * Intake's send to `outbound`: the batch's open messages in one call (a repeat of one event within the batch is sent
 * once), tried again up to `sendRetry.attempts` after a doubling backoff while the batch's budget has room (`retryWithinBatch`); a message the
 * sender rejects as too large for the queue (a `MessageTooLargeError` naming its `messageId`) is dead-lettered and
 * the call made again without it; an error that says `retryable: false` is not tried again. What is sent is reported
 * to the stage (`sent`); what is not is set to be abandoned when the batch ends.
 */
import type { Span } from '@opentelemetry/api';
import { raceAbort } from '../../abort.js';
import { errorMessage, isMessageTooLargeError, type MessageTooLargeError } from '../../errors.js';
import type { ResolvedRetry } from '../../retry.js';
import { count, fits, markWaiting, outOfBudget, type AttemptRules, type BatchState, type Item } from './batch.js';
import type { OutboundMessage } from '../messages.js';
import type { OutboundSender } from '../ports.js';
import { failedWith, noRoomLeft, retryWithinBatch } from '../batch-retry.js';
import { annotate, runInSpan } from '../../telemetry/index.js';
import { traceAttributes } from '../trace-attributes.js';

/** One message for `outbound` and the delivery it comes from. */
export interface Outgoing {
  item: Item;
  message: OutboundMessage;
  sessionId: string;
}

/** The rules of the send (intake's options, validated) and what it reports to the stage. */
export interface SendRules extends AttemptRules {
  outbound: OutboundSender;
  sendRetry: ResolvedRetry;
  /** Dead-letters an item whose message is too large for `outbound`. */
  deadLetter: (b: BatchState, item: Item, reason: 'OutboundMessageTooLarge', description: string) => void;
  /** Completes an item whose message went to `outbound`. */
  sent: (b: BatchState, item: Item) => void;
}

/** The batch's sends to `outbound`. */
export class IntakeSend {
  readonly #rules: SendRules;

  constructor(rules: SendRules) {
    this.#rules = rules;
  }

  /**
   * Sends the open messages in one call, tried again up to `sendRetry.attempts`; a message too large for `outbound` is
   * dead-lettered and the call made again without it. Completes the deliveries sent.
   */
  async send(b: BatchState, outgoing: readonly Outgoing[]): Promise<void> {
    const { outbound, log } = this.#rules;
    const open = outgoing.filter((o) => o.item.state === 'open');
    if (open.length === 0 || b.signal.aborted) return;
    // The same event delivered twice in one batch (Dataverse retried its post) is sent once; both are completed.
    const byKey = new Map<string, Outgoing[]>();
    for (const o of open) {
      byKey.set(o.message.key, [...(byKey.get(o.message.key) ?? []), o]);
      const span = o.item.delivery.span;
      if (span !== undefined) annotate(span, traceAttributes(o.message.channel, o.message.context));
    }
    const waiting = (): Item[] => [...byKey.values()].flat().map((o) => o.item);
    // Each message continues the trace of its event (the first delivery of it in the batch).
    type Message = { body: OutboundMessage; messageId: string; sessionId: string; parentSpan?: Span };
    const messages = (): Message[] =>
      [...byKey.values()].map(([o]) => {
        const m: Message = { body: o!.message, messageId: o!.message.key, sessionId: o!.sessionId };
        if (o!.item.delivery.span !== undefined) m.parentSpan = o!.item.delivery.span;
        return m;
      });
    const result = await retryWithinBatch<void>({
      retry: this.#rules.sendRetry,
      deadline: b.deadline,
      callTimeoutMs: this.#rules.callTimeoutMs,
      signal: b.signal,
      waits: b.waits,
      sleep: this.#rules.sleep,
      attempt: async () => {
        for (;;) {
          const batch = messages();
          if (batch.length === 0) return;
          try {
            await raceAbort(outbound.send(batch, b.signal), b.signal);
            return;
          } catch (err) {
            if (b.signal.aborted) throw err; // abandoned by handle(): a repeat of what may have gone is dropped by the bus.
            const tooLarge = isMessageTooLargeError(err) ? err : undefined;
            const culprits = tooLarge === undefined ? undefined : byKey.get(tooLarge.messageId);
            if (!tooLarge || !culprits) throw err;
            // Refused before anything was sent; the others go in the next call (not an attempt: nothing failed them).
            byKey.delete(tooLarge.messageId);
            for (const o of culprits)
              this.#rules.deadLetter(b, o.item, 'OutboundMessageTooLarge', tooLargeDescription(o.message, tooLarge));
            if (byKey.size > 0 && !fits(b, this.#rules)) noRoomLeft();
          }
        }
      },
      // A `MessageTooLarge` naming none of these messages is not the sender's contract: no point in trying again.
      judge: (failure, { delayMs }) => {
        const err = failedWith(failure);
        return isPermanentSendError(err) || isMessageTooLargeError(err) ? false : { waitMs: delayMs };
      },
      onRetry: (failure, { failures, waitMs }) => {
        this.#rules.onRetry();
        log.warn('sending to outbound failed; trying again', {
          error: failedWith(failure),
          messages: byKey.size,
          attempt: failures,
          waitMs,
        });
      },
    });
    if (!result.ok) {
      const err = failedWith(result.failure);
      const attempts = count(result.failures, 'attempt', 'attempts');
      switch (result.end) {
        case 'aborted':
        case 'held':
          return;
        case 'noRoom':
          outOfBudget(
            b,
            this.#rules,
            waiting(),
            result.failures === 0 ? 'outbound send not started' : `outbound send failed (${attempts}), not tried again`,
          );
          return;
        case 'noRoomToRetry':
          outOfBudget(
            b,
            this.#rules,
            waiting(),
            `outbound send failed (${attempts}): ${errorMessage(err)}; not tried again`,
          );
          return;
        case 'cut':
          for (const item of waiting())
            markWaiting(item, `outbound send failed and the stage is stopping: ${errorMessage(err)}`, 'redelivery');
          return;
        default:
          log.error('sending to outbound failed; abandoning the deliveries (the bus redelivers them)', {
            error: err,
            messages: byKey.size,
            attempts: result.failures,
          });
          for (const item of waiting())
            markWaiting(item, `outbound send failed (${attempts}): ${errorMessage(err)}`, 'redelivery');
          return;
      }
    }
    for (const os of byKey.values()) {
      for (const o of os) {
        runInSpan(o.item.delivery.span, () =>
          log.debug('sent to outbound', {
            ...o.item.fields,
            channel: o.message.channel,
            key: o.message.key,
            sessionId: o.sessionId,
          }),
        );
        this.#rules.sent(b, o.item);
      }
    }
  }
}

function tooLargeDescription(message: OutboundMessage, tooLarge: MessageTooLargeError): string {
  const what = message.context?.kind === 'realtime' ? `request ${message.key}` : `activity row ${message.key}`;
  const sizes = `its JSON body is ${tooLarge.bodyBytes} bytes and the queue takes at most ${tooLarge.maxSizeInBytes} bytes per batch`;
  return `the outbound message of ${what} (channel ${message.channel}, a text of ${message.text.length} characters) is too large for the outbound queue: ${sizes}`;
}

/** A send error that says it is not worth retrying (`retryable: false`, as the SDK's `ServiceBusError` does). */
function isPermanentSendError(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { retryable?: unknown }).retryable === false;
}
