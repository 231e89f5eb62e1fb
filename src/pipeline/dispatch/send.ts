/**
 * One outbound message through its sender's limiter and the retry policy to a final outcome (sent, failed with the
 * policy's decision, handed back without reaching the provider, or handed back because its provider could not tell
 * whether it has it), within the session lock's deadline; and the one provider call with the channel's timeout that
 * each attempt makes.
 */
import { delayUnlessAborted, raceAbort, whenAborted } from '../../abort.js';
import type { Channel } from '../../channels/index.js';
import { isProviderError, isStartDeadlineError, ProviderError } from '../../errors.js';
import type { Logger } from '../../log.js';
import {
  smsSegments,
  TELEGRAM_MAX_ATTACHMENTS,
  telegramMessagesOf,
  telegramPartSpacingMs,
  type Provider,
  type SendRequest,
  type SendResult,
} from '../../providers/index.js';
import type { DispatchContext } from './context.js';
import { stoppedAtLockDeadline } from './lock-deadline.js';
import { TWILIO_MAX_CALL_SEGMENTS, TWILIO_MMS_MIN_COST } from '../assumptions.js';
import type { OutboundMessage } from '../messages.js';
import {
  createSendPolicy,
  decide,
  describeProviderError,
  mayHaveSent,
  rateLimitPause,
  type SendDecision,
} from './send-policy.js';
import type { SenderLimiter } from './sender-limiter.js';

/**
 * The final outcome of sending one message (`calls`: provider calls made, retries included). `undetermined`: a call's
 * answer was lost and the lookup that was to tell whether the provider has the message failed (`error`): handed back,
 * not called again.
 */
export type SendOutcome =
  | { kind: 'sent'; result: SendResult; calls: number }
  | { kind: 'failed'; decision: SendDecision; error: unknown; calls: number }
  | { kind: 'abandoned'; calls: number; atLockDeadline: boolean }
  | { kind: 'undetermined'; error: unknown; calls: number };

/**
 * Asks the provider whether it has this message, created from `since` on (ms since the epoch): what it has, or
 * `undefined`; rejects when it cannot tell. Given for a provider that can be asked (`Provider.findSent`).
 */
export type SentLookup = (since: number, signal: AbortSignal) => Promise<SendResult | undefined>;

/** The lookup after a lost answer failed: carries its error out of the retry policy (which does not retry it). */
class LookupFailed extends Error {
  constructor(readonly lookupError: unknown) {
    super('the lookup after a lost answer failed');
  }
}

/** One batch's signals: `signal` stops the batch (loop stop, onClose); `starts` also at the lock deadline. */
export interface BatchControl {
  readonly signal: AbortSignal;
  readonly starts: AbortSignal;
  /**
   * Stops starting anything in this batch: what is not at the provider is handed back, and the batch, once settled,
   * asks the session loop to release the session (`SessionRelease`).
   */
  lockDeadline(why: string): void;
}

/**
 * One message through the limiter and the retry policy, to a final outcome. `callBy` gives the latest start of a
 * call on this channel (see `lastCallStart`), read again before every wait and call.
 *
 * A call whose answer was lost (`mayHaveSent`: a timeout, a connection lost, a 5xx) is never simply made again when
 * the provider can be asked (`lookup`): `stage.retry.lostAnswerLookupDelayMs` after its end, the provider is asked
 * whether it has the message, created since the first such call started. Found: the outcome is `sent` with the
 * provider's id, no call again. Not found: the failure goes on to the retry policy as before (backoff, call again;
 * or retries exhausted). The lookup failed: `undetermined`, handed back unsent (a duplicate to a customer is worse
 * than a delay; the message stays in flight, so whoever gets it next looks it up first). Without `lookup`, the call
 * is made again: a contract endpoint with the same `RequestId` (safe), Telegram (it may repeat).
 */
export function sendMessage(
  stage: DispatchContext,
  msg: OutboundMessage,
  channel: Channel,
  limiter: SenderLimiter,
  batch: BatchControl,
  log: Logger,
  callBy: () => number | undefined,
  lookup?: SentLookup,
): Promise<SendOutcome> {
  const provider = stage.providerFor(channel);
  const signal = batch.starts;
  const cost = rateCost(channel, msg);
  // One policy per message, so that a backoff that would end past the lock deadline is seen before it is waited.
  const policy = createSendPolicy(stage.retry, (delayMs) => {
    const by = callBy();
    if (by !== undefined && stage.now() + delayMs > by)
      batch.lockDeadline(`a backoff of ${delayMs} ms would end after the last call start`);
  });
  // waiting: not at the provider (queued, backing off, paused); calling: a call is in flight; done: decided.
  let phase: 'waiting' | 'calling' | 'done' = 'waiting';
  let calls = 0;
  let lastCode: string | undefined;
  // When the last call started, and the first call whose answer was lost (what a lookup covers from).
  let lastStart = 0;
  let unknownSince: number | undefined;

  const call = (): Promise<SendResult> => {
    signal.throwIfAborted();
    const by = callBy();
    return limiter.run(
      msg.to,
      async () => {
        phase = 'calling';
        if (calls > 0) {
          stage.counts.retries++;
          stage.metrics?.retries.inc({ channel: channel.name, code: lastCode ?? 'unknown' });
        }
        calls++;
        const n = calls;
        stage.counts.providerCalls++;
        const started = stage.now();
        lastStart = started;
        try {
          const result = await callProvider(provider, channel, msg, stage);
          phase = 'done';
          stage.metrics?.callDuration.observe({ channel: channel.name, result: 'ok' }, (stage.now() - started) / 1000);
          if (log.isDebugEnabled())
            log.debug('provider accepted', {
              attempt: n,
              providerMessageId: result.providerMessageId,
              status: result.status,
            });
          return result;
        } catch (err) {
          const decision = decide(err);
          lastCode = isProviderError(err) ? err.code : 'unexpected';
          stage.metrics?.callDuration.observe(
            { channel: channel.name, result: lastCode },
            (stage.now() - started) / 1000,
          );
          phase = decision === 'rateLimited' || decision === 'transient' ? 'waiting' : 'done';
          const fields = {
            attempt: n,
            code: lastCode,
            status: isProviderError(err) ? err.upstream?.status : undefined,
            upstreamCode: isProviderError(err) ? err.upstream?.code : undefined,
          };
          if (decision === 'rateLimited') {
            const { pauseMs, askedMs } = rateLimitPause(err as ProviderError, stage.retry);
            stage.counts.rateLimitPauses++;
            stage.metrics?.pauses.inc({ channel: channel.name });
            log.warn('provider rate limit: sender paused', {
              ...fields,
              pauseMs,
              ...(askedMs > pauseMs ? { retryAfterMs: askedMs } : {}),
            });
            // What waits and could not start before the lock deadline because of this pause is dropped here.
            limiter.pauseFor(pauseMs);
          } else if (decision === 'transient') {
            log.warn('provider call failed (transient)', { ...fields, err: describeProviderError(err, msg.to) });
          }
          throw err;
        }
      },
      {
        signal,
        priority: calls > 0 ? 1 : 0,
        cost,
        ...(by === undefined ? {} : { startBy: by }),
      },
    );
  };

  /** After a lost answer: the provider's message when it has it; rethrows `err` when not; `LookupFailed` when it cannot tell. */
  const afterLostAnswer = async (err: unknown, find: SentLookup): Promise<SendResult> => {
    unknownSince ??= lastStart;
    const waitMs = stage.retry.lostAnswerLookupDelayMs;
    log.info('provider answer lost: asking the provider whether it has the message before calling again', {
      attempt: calls,
      code: lastCode,
      waitMs,
    });
    await delayUnlessAborted(waitMs, signal);
    signal.throwIfAborted();
    let found: SendResult | undefined;
    try {
      found = await find(unknownSince, signal);
    } catch (lookupError) {
      signal.throwIfAborted();
      stage.lookedUp(channel.name, 'lost_answer', 'failed');
      throw new LookupFailed(lookupError);
    }
    if (found === undefined) {
      stage.lookedUp(channel.name, 'lost_answer', 'not_found');
      log.info('provider answer lost, and the provider does not have the message: calling again', { attempt: calls });
      throw err;
    }
    phase = 'done';
    stage.lookedUp(channel.name, 'lost_answer', 'found');
    log.info('provider answer lost, and the provider has the message: recorded, not sent again', {
      attempt: calls,
      providerMessageId: found.providerMessageId,
      status: found.status,
    });
    return found;
  };

  const attempt = async (): Promise<SendResult> => {
    try {
      return await call();
    } catch (err) {
      if (lookup === undefined || decide(err) !== 'transient' || !mayHaveSent(err)) throw err;
      return afterLostAnswer(err, lookup);
    }
  };

  return new Promise<SendOutcome>((resolve) => {
    const abandoned = (): SendOutcome => ({ kind: 'abandoned', calls, atLockDeadline: stoppedAtLockDeadline(signal) });
    const onAbort = (): void => {
      // Not at the provider: nothing was sent by this attempt; hand the message back now.
      if (phase === 'waiting') resolve(abandoned());
    };
    // whenAborted, not addEventListener: every message of a batch listens to its signal, and an EventTarget finds a
    // listener to remove by walking all of them.
    const stopListening = whenAborted(signal, onAbort);
    policy
      .execute(attempt, signal)
      .then(
        (result) => resolve({ kind: 'sent', result, calls }),
        (error: unknown) => {
          if (error instanceof LookupFailed) {
            resolve({ kind: 'undetermined', error: error.lookupError, calls });
            return;
          }
          if (isStartDeadlineError(error)) {
            // The limiter would not start the call before the lock deadline: this batch stops starting calls.
            batch.lockDeadline(error.why);
            resolve({ kind: 'abandoned', calls, atLockDeadline: true });
            return;
          }
          const decision = decide(error);
          if (decision === 'rejected' || decision === 'unauthorized' || decision === 'unconfirmed')
            resolve({ kind: 'failed', decision, error, calls });
          else if (signal.aborted && phase !== 'done') resolve(abandoned());
          else resolve({ kind: 'failed', decision, error, calls });
        },
      )
      .finally(stopListening);
  });
}

/**
 * What one call of this message counts against its sender's `rateLimit.messages`: Twilio counts throughput in message
 * segments (a channel's Twilio rate limit is in segments per interval; an MMS its body's segments, at least `TWILIO_MMS_MIN_COST`),
 * Telegram in messages (a message with attachments is one Telegram message per file, and one for its text), every
 * other provider in calls.
 */
export function rateCost(channel: Channel, msg: Pick<OutboundMessage, 'text' | 'attachments'>): number {
  switch (channel.provider.type) {
    case 'twilio':
      return Math.max(TWILIO_MMS_MIN_COST, smsSegments(msg.text));
    case 'telegram':
      return telegramMessagesOf(msg);
    default:
      return 1;
  }
}

/** The most one call on this channel can count at its provider (`rateCost` of the longest message it accepts). */
export function largestRateCost(channel: Channel): number {
  switch (channel.provider.type) {
    case 'twilio':
      return TWILIO_MAX_CALL_SEGMENTS;
    case 'telegram':
      return TELEGRAM_MAX_ATTACHMENTS + 1;
    default:
      return 1;
  }
}

/**
 * How long one send of this message may take: the channel's `timeoutMs`, per provider call when it makes several (a
 * Telegram message with attachments), with Telegram's spacing between them.
 */
export function sendTimeoutMs(channel: Channel, msg: Pick<OutboundMessage, 'text' | 'attachments' | 'to'>): number {
  if (channel.provider.type !== 'telegram' || (msg.attachments?.length ?? 0) === 0) return channel.timeoutMs;
  const calls = telegramMessagesOf(msg);
  return calls * channel.timeoutMs + (calls - 1) * telegramPartSpacingMs(msg.to);
}

/**
 * One provider call with the channel's timeout. Deliberately not tied to the batch signal (and not a cockatiel
 * `timeout` policy, whose call signal derives from the execute signal): a call that started finishes on shutdown,
 * bounded by this timeout, so its outcome is recorded instead of sent again by the next holder.
 */
async function callProvider(
  provider: Provider,
  channel: Channel,
  msg: OutboundMessage,
  stage: DispatchContext,
): Promise<SendResult> {
  const timeout = new AbortController();
  const timeoutMs = sendTimeoutMs(channel, msg);
  const timer = setTimeout(
    () =>
      timeout.abort(
        new ProviderError('ProviderTimeout', `${provider.type} did not answer within ${timeoutMs} ms`, {
          context: { channel: channel.name },
        }),
      ),
    timeoutMs,
  );
  try {
    const request: SendRequest = {
      idempotencyKey: msg.key,
      from: channel.sender,
      to: msg.to,
      text: msg.text,
      signal: timeout.signal,
    };
    if (msg.parts !== undefined) request.parts = msg.parts;
    if (msg.attachments !== undefined && msg.attachments.length > 0) request.attachments = msg.attachments;
    // Real-time journeys only: an outbound-marketing send has no channel definition (the contract omits it).
    if (msg.context?.kind === 'realtime') request.channelDefinitionId = msg.context.channelDefinitionId;
    const statusCallbackUrl = stage.statusCallbackUrl?.(channel, msg);
    if (statusCallbackUrl !== undefined) request.statusCallbackUrl = statusCallbackUrl;
    // The race ends the call at the timeout even when the adapter does not honour its signal.
    return await raceAbort(provider.send(request), timeout.signal);
  } finally {
    clearTimeout(timer);
  }
}
