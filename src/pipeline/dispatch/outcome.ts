/**
 * What the dispatch stage does with the outcome of a send: a message the provider accepted or refused for good becomes
 * an interaction on `interactions` (then the delivery is completed), a message handed back (or whose lost answer the
 * provider could not clear up) is abandoned, and every other failure is dead-lettered with a reason
 * (`DISPATCH_DEAD_LETTER_REASONS`) and a description of what went wrong.
 */
import type { Channel } from '../../channels/index.js';
import { errorMessage } from '../../errors.js';
import type { Logger } from '../../log.js';
import { activeSpan } from '../../telemetry/index.js';
import type { DispatchContext } from './context.js';
import type { SendOutcome } from './send.js';
import type { Settlement } from './settlement.js';
import type { InteractionOutbox, OutboxItem } from './interaction-outbox.js';
import { settleDeadline } from './lock-deadline.js';
import { interactionMessageId, type InteractionMessage, type OutboundMessage } from '../messages.js';
import { describeProviderAnswer, describeProviderError, failureDetail } from './send-policy.js';

/** Dead-letter reasons of this stage (besides the `EventError` codes of unreadable bodies). */
export const DISPATCH_DEAD_LETTER_REASONS = {
  unknownChannel: 'EventUnknownChannel',
  sessionMismatch: 'SessionMismatch',
  attachments: 'AttachmentsUnsupported',
  retriesExhausted: 'ProviderRetriesExhausted',
  unauthorized: 'ProviderUnauthorized',
  unconfirmed: 'ProviderAnswerUnreadable',
  failed: 'DispatchFailed',
  interactionNotSent: 'InteractionNotSent',
} as const;

/** Records the outcomes of one session's sends: interactions through its outbox, then the settlement. */
export class OutcomeRecorder {
  readonly #stage: DispatchContext;
  readonly #outbox: InteractionOutbox;
  readonly #lockedUntil: () => number | undefined;

  /** `lockedUntil`: the session lock's deadline now, when the session loop gives one. */
  constructor(stage: DispatchContext, outbox: InteractionOutbox, lockedUntil: () => number | undefined) {
    this.#stage = stage;
    this.#outbox = outbox;
    this.#lockedUntil = lockedUntil;
  }

  /** Turns the outcome into an interaction and a settlement. */
  async record(
    msg: OutboundMessage,
    channel: Channel,
    outcome: SendOutcome,
    settlement: Settlement,
    signal: AbortSignal,
    log: Logger,
  ): Promise<void> {
    const stage = this.#stage;
    const provider = stage.providerFor(channel);
    if (outcome.kind === 'abandoned') {
      if (outcome.atLockDeadline) {
        stage.counts.handedBackAtLockDeadline++;
        log.info('the session lock ends before this message could be sent: handed back to the next holder', {
          calls: outcome.calls,
        });
      } else {
        log.info('dispatch stopped before the provider had the message: handed back', { calls: outcome.calls });
      }
      stage.count(channel.name, 'abandoned');
      await settlement.abandon();
      return;
    }
    if (outcome.kind === 'undetermined') {
      // Neither sent again nor recorded: it stays in flight, so whoever gets it next looks it up before sending it.
      log.warn(
        'provider answer lost, and the provider could not tell whether it has the message: handed back, not sent again',
        {
          calls: outcome.calls,
          err: describeProviderError(outcome.error, msg.to),
        },
      );
      stage.count(channel.name, 'abandoned');
      await settlement.abandon();
      return;
    }
    if (outcome.kind === 'sent') {
      stage.counts.sent++;
      stage.count(channel.name, 'sent');
      if (log.isDebugEnabled())
        log.debug('sent', { calls: outcome.calls, providerMessageId: outcome.result.providerMessageId });
      if (msg.purpose === 'confirmation' || msg.context === undefined) {
        await settlement.complete();
        return;
      }
      const interaction: InteractionMessage = {
        v: 1,
        context: msg.context,
        responseType: msg.context.kind === 'marketing' ? 'sent' : 'Sent',
        channel: channel.name,
        providerMessageId: outcome.result.providerMessageId,
        occurredAt: stage.now(),
      };
      await this.#interact(interaction, settlement, signal, log);
      return;
    }
    const { decision, error } = outcome;
    const description = describeProviderError(error, msg.to);
    switch (decision) {
      case 'rejected': {
        stage.counts.rejected++;
        stage.count(channel.name, 'rejected');
        const responseType = msg.context?.kind === 'realtime' ? 'NotSent' : channel.failureResponseType;
        if (msg.purpose === 'confirmation' || msg.context === undefined || responseType === undefined) {
          log.info('provider refused the message for good; no failure response type to record', { err: description });
          await settlement.complete();
          return;
        }
        log.info('provider refused the message for good: recording the failure', { responseType, err: description });
        const interaction: InteractionMessage = {
          v: 1,
          context: msg.context,
          responseType,
          channel: channel.name,
          detail: failureDetail(error, msg.to),
          occurredAt: stage.now(),
        };
        await this.#interact(interaction, settlement, signal, log);
        return;
      }
      case 'unauthorized':
        log.error('provider refused the credentials: check the channel configuration', { err: description });
        stage.count(channel.name, 'unauthorized');
        await settlement.deadLetter(
          DISPATCH_DEAD_LETTER_REASONS.unauthorized,
          `${provider.type} refused the credentials of channel '${channel.name}': ${description}`,
        );
        return;
      case 'unconfirmed':
        // Not retried, not recorded as a failure: the provider took the request and may have sent the message.
        log.error('provider answered 2xx with an answer that cannot be read: dead-lettered for a person to check', {
          calls: outcome.calls,
          err: description,
        });
        stage.count(channel.name, 'unconfirmed');
        await settlement.deadLetter(
          DISPATCH_DEAD_LETTER_REASONS.unconfirmed,
          `${provider.type} took the request but its answer could not be read (${description}), so the message may have been sent: ` +
            `check with the provider (idempotency key ${msg.key}) before resubmitting to outbound, or record the outcome. Answer: ${describeProviderAnswer(error, msg.to)}`,
        );
        return;
      case 'rateLimited':
      case 'transient':
        log.warn('provider retries exhausted: dead-lettered', { calls: outcome.calls, err: description });
        stage.count(channel.name, 'retries_exhausted');
        await settlement.deadLetter(
          DISPATCH_DEAD_LETTER_REASONS.retriesExhausted,
          `${provider.type} gave up after ${outcome.calls} calls; last error: ${description}`,
        );
        return;
      case 'unexpected':
        log.error('provider call failed unexpectedly: dead-lettered', { calls: outcome.calls, err: description });
        stage.count(channel.name, 'failed');
        await settlement.deadLetter(
          DISPATCH_DEAD_LETTER_REASONS.failed,
          `${provider.type} call failed unexpectedly: ${description}`,
        );
        return;
    }
  }

  async #interact(
    interaction: InteractionMessage,
    settlement: Settlement,
    signal: AbortSignal,
    log: Logger,
  ): Promise<void> {
    try {
      // Known (sent or not) while the lock still allows to settle the delivery: see `InteractionOutbox`.
      await this.#outbox.add(
        withParentSpan({ body: interaction, messageId: interactionMessageId(interaction) }),
        signal,
        settleDeadline(this.#lockedUntil()),
      );
    } catch (err) {
      // Never abandon: the provider has the message, and a redelivery would send it again.
      log.error('interaction could not be sent: dead-lettered with the interaction for replay to interactions', {
        responseType: interaction.responseType,
        err: errorMessage(err),
      });
      this.#stage.count(interaction.channel, 'interaction_not_sent');
      const { providerMessageId } = interaction;
      const accepted =
        providerMessageId === undefined
          ? 'the provider refused this message'
          : `the provider accepted this message (id ${providerMessageId})`;
      await settlement.deadLetter(
        DISPATCH_DEAD_LETTER_REASONS.interactionNotSent,
        `${accepted}; its interaction could not be sent (${errorMessage(err)}). Do not resubmit to outbound; send this interaction to interactions: ${JSON.stringify(interaction)}`,
      );
      return;
    }
    await settlement.complete();
  }
}

/** The item with the active span (the delivery's) as its parent, when tracing is on. */
function withParentSpan(item: OutboxItem): OutboxItem {
  const span = activeSpan();
  return span === undefined ? item : { ...item, parentSpan: span };
}
