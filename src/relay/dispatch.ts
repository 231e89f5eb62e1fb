/**
 * Wiring of dispatch on the real clients: its `interactions` sender, every channel's provider adapter (made up front,
 * so that a bad provider setting stops start-up instead of the first send), the status callback URLs when the callback
 * keys are given, and its session loop on `outbound`, whose batches each hold about two seconds of their sender's rate.
 * It never calls Dataverse.
 */
import type { Channel, ChannelRegistry } from '../channels/index.js';
import { statusCallbackUrls, type CallbackKeys } from '../correlation/index.js';
import { DispatchStage, type DispatchStats, type InteractionMessage } from '../pipeline/index.js';
import type { Provider } from '../providers/index.js';
import { createQueueSender, startSessionLoop } from '../servicebus/index.js';
import { counting, type RelayParts, type WiredStage } from './wiring.js';

export interface DispatchWiring extends RelayParts {
  channels: ChannelRegistry;
  /** The keys the Twilio status callback URLs are signed with, as loaded (`callbackKeysFor`). */
  callbackKeys: CallbackKeys | undefined;
  /**
   * The provider adapter of a channel, made once and kept (the relay's, shared with the callbacks stage); a bad
   * setting throws a `TypeError` naming the channel.
   */
  provider: (channel: Channel) => Provider;
}

export function wireDispatch(w: DispatchWiring): WiredStage<DispatchStats> {
  const { config, channels, callbackKeys, registry } = w;
  const queues = config.serviceBus.queues;
  const interactions = createQueueSender<InteractionMessage>(w.bus, queues.interactions, {
    log: w.log,
    ...counting(w),
  });
  w.closer.add('interactions sender', interactions);
  // Adapters are made up front, so that a bad provider setting stops start-up instead of the first send.
  for (const channel of channels.all()) w.provider(channel);
  const stage = new DispatchStage({
    channels,
    provider: w.provider,
    interactions,
    log: w.log,
    guardMs: config.dispatch.guardMs,
    retry: {
      attempts: config.dispatch.retry.attempts,
      lostAnswerLookupDelayMs: config.dispatch.lostAnswerLookupDelayMs,
    },
    ...(callbackKeys ? { statusCallbackUrl: statusCallbackUrls(callbackKeys) } : {}),
    ...(registry ? { registry } : {}),
  });
  // A provider call in flight when the drain budget runs out is let finish (its own timeout bounds it), so that its
  // message is recorded rather than handed back and sent again.
  const callGraceMs = Math.max(...channels.all().map((c) => c.timeoutMs), 0) + 2_000;
  return {
    stats: () => stage.stats(),
    loop: () =>
      startSessionLoop({
        client: w.bus,
        queue: queues.outbound,
        maxSessions: config.dispatch.maxSessions,
        sessionIdleMs: config.dispatch.sessionIdleMs,
        maxBatch: DISPATCH_MAX_BATCH,
        maxBatchOf: (sessionId) => dispatchBatchSize(channels.all().filter((c) => c.senderKey === sessionId)),
        maxWaitMs: 200,
        batchesPerSession: DISPATCH_BATCHES_PER_SESSION,
        closeGraceMs: callGraceMs,
        createSessionHandler: stage.sessionHandler,
        log: w.log,
        ...counting(w),
      }),
  };
}

/**
 * Batches of one sender handled at once: the next batch is received while the last one finishes, so that a message
 * that holds its batch for seconds (a lost answer waits `lostAnswerLookupDelayMs`, 5 s, before its lookup; a retry its
 * backoff) does not stop the sender: with one batch at a time its other messages waited for it, and the sends stopped
 * for seconds with no 429 and no failed request at the provider (#15). Two, not more: a second straggler while one
 * is pending is rare, and each batch holds up to two seconds of the sender's messages locked.
 */
export const DISPATCH_BATCHES_PER_SESSION = 2;

/** Most messages one dispatch batch takes from a session. */
const DISPATCH_MAX_BATCH = 100;
/** A dispatch batch holds what its sender may send in this long, so that a stop hands little back. */
const DISPATCH_BATCH_SPAN_MS = 2_000;

/**
 * The batch size of one sender's session: its rate for {@link DISPATCH_BATCH_SPAN_MS} (a 1-per-second sender takes 2
 * at a time, a 50-per-second one 100), so that a batch ends within seconds whatever the sender's limit and a
 * shutdown hands back few messages (each hand-back counts toward MaxDeliveryCount).
 */
export function dispatchBatchSize(sharing: readonly Channel[]): number {
  if (sharing.length === 0) return DISPATCH_MAX_BATCH;
  const perSpan = Math.min(
    ...sharing.map((c) => Math.ceil((c.rateLimit.messages * DISPATCH_BATCH_SPAN_MS) / c.rateLimit.intervalMs)),
  );
  return Math.max(1, Math.min(DISPATCH_MAX_BATCH, perSpan));
}
