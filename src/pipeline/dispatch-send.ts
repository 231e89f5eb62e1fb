/**
 * One outbound message through its sender's limiter and the retry policy to a final outcome (sent, failed with the
 * policy's decision, or handed back without reaching the provider), within the session lock's deadline; and the one
 * provider call with the channel's timeout that each attempt makes.
 */
import { raceAbort } from '../abort.js';
import type { Channel } from '../channels/index.js';
import { isProviderError, ProviderError } from '../errors.js';
import type { Logger } from '../log.js';
import { smsSegments, type Provider, type SendRequest, type SendResult } from '../providers/index.js';
import type { StageContext } from './dispatch-context.js';
import { stoppedAtLockDeadline } from './lock-deadline.js';
import type { OutboundMessage } from './messages.js';
import { createSendPolicy, decide, describeProviderError, rateLimitPause, type SendDecision } from './send-policy.js';
import { isStartDeadlineError, type SenderLimiter } from './sender-limiter.js';

/** The final outcome of sending one message (`calls`: provider calls made, retries included). */
export type SendOutcome =
  | { kind: 'sent'; result: SendResult; calls: number }
  | { kind: 'failed'; decision: SendDecision; error: unknown; calls: number }
  | { kind: 'abandoned'; calls: number; atLockDeadline: boolean };

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
 */
export function sendMessage(
  stage: StageContext,
  msg: OutboundMessage,
  channel: Channel,
  limiter: SenderLimiter,
  batch: BatchControl,
  log: Logger,
  callBy: () => number | undefined,
): Promise<SendOutcome> {
  const provider = stage.providerFor(channel);
  const signal = batch.starts;
  const cost = rateCost(channel, msg);
  // One policy per message, so that a backoff that would end past the lock deadline is seen before it is waited.
  const policy = createSendPolicy(stage.retry, (delayMs) => {
    const by = callBy();
    if (by !== undefined && stage.now() + delayMs > by) batch.lockDeadline(`a backoff of ${delayMs} ms would end after the last call start`);
  });
  // waiting: not at the provider (queued, backing off, paused); calling: a call is in flight; done: decided.
  let phase: 'waiting' | 'calling' | 'done' = 'waiting';
  let calls = 0;
  let lastCode: string | undefined;

  const attempt = (): Promise<SendResult> => {
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
        try {
          const result = await callProvider(provider, channel, msg, stage);
          phase = 'done';
          stage.metrics?.callDuration.observe({ channel: channel.name, result: 'ok' }, (stage.now() - started) / 1000);
          log.debug('provider accepted', { attempt: n, providerMessageId: result.providerMessageId, status: result.status });
          return result;
        } catch (err) {
          const decision = decide(err);
          lastCode = isProviderError(err) ? err.code : 'unexpected';
          stage.metrics?.callDuration.observe({ channel: channel.name, result: lastCode }, (stage.now() - started) / 1000);
          phase = decision === 'rateLimited' || decision === 'transient' ? 'waiting' : 'done';
          const fields = { attempt: n, code: lastCode, status: isProviderError(err) ? err.upstream?.status : undefined, upstreamCode: isProviderError(err) ? err.upstream?.code : undefined };
          if (decision === 'rateLimited') {
            const { pauseMs, askedMs } = rateLimitPause(err as ProviderError, stage.retry);
            stage.counts.rateLimitPauses++;
            stage.metrics?.pauses.inc({ channel: channel.name });
            log.warn('provider rate limit: sender paused', { ...fields, pauseMs, ...(askedMs > pauseMs ? { retryAfterMs: askedMs } : {}) });
            // What waits and could not start before the lock deadline because of this pause is dropped here.
            limiter.pauseFor(pauseMs);
          } else if (decision === 'transient') {
            log.warn('provider call failed (transient)', { ...fields, err: describeProviderError(err, msg.to) });
          }
          throw err;
        }
      },
      { signal, priority: calls > 0 ? 1 : 0, cost, ...(by === undefined ? {} : { startBy: by }) },
    );
  };

  return new Promise<SendOutcome>((resolve) => {
    const abandoned = (): SendOutcome => ({ kind: 'abandoned', calls, atLockDeadline: stoppedAtLockDeadline(signal) });
    const onAbort = (): void => {
      // Not at the provider: nothing was sent by this attempt; hand the message back now.
      if (phase === 'waiting') resolve(abandoned());
    };
    signal.addEventListener('abort', onAbort, { once: true });
    policy
      .execute(attempt, signal)
      .then(
        (result) => resolve({ kind: 'sent', result, calls }),
        (error: unknown) => {
          if (isStartDeadlineError(error)) {
            // The limiter would not start the call before the lock deadline: this batch stops starting calls.
            batch.lockDeadline(error.why);
            resolve({ kind: 'abandoned', calls, atLockDeadline: true });
            return;
          }
          const decision = decide(error);
          if (decision === 'rejected' || decision === 'unauthorized' || decision === 'unconfirmed') resolve({ kind: 'failed', decision, error, calls });
          else if (signal.aborted && phase !== 'done') resolve(abandoned());
          else resolve({ kind: 'failed', decision, error, calls });
        },
      )
      .finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/**
 * What one call of this message counts against its sender's `rateLimit.messages`: Twilio counts throughput in message
 * segments (a channel's Twilio rate limit is in segments per interval), every other provider in calls.
 */
export function rateCost(channel: Channel, msg: Pick<OutboundMessage, 'text'>): number {
  return channel.provider.type === 'twilio' ? smsSegments(msg.text) : 1;
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
  stage: StageContext,
): Promise<SendResult> {
  const timeout = new AbortController();
  const timer = setTimeout(
    () => timeout.abort(new ProviderError('ProviderTimeout', `${provider.type} did not answer within ${channel.timeoutMs} ms`, { context: { channel: channel.name } })),
    channel.timeoutMs,
  );
  try {
    const request: SendRequest = { idempotencyKey: msg.key, from: channel.sender, to: msg.to, text: msg.text, signal: timeout.signal };
    if (msg.parts !== undefined) request.parts = msg.parts;
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
