/**
 * The dispatch stage: reads `outbound` through sessions and sends each message through its channel's provider,
 * within the sender's rate limit, then puts the outcome on `interactions`.
 *
 * One session is one sender (`channel.senderKey`), held by one replica at a time, so the limit this stage keeps
 * locally (a `SenderLimiter` per accepted session) is the limit the provider sees however many replicas run.
 *
 * Per message (`onBatch`):
 * 1. Parse the body (`parseOutboundMessage`); an unreadable body, an unknown channel or a channel that does not send
 *    as this session is dead-lettered with a reason that says so.
 * 2. Call the provider through the limiter, with the channel's timeout and the message key as idempotency key.
 *    Failures are decided from the `ProviderError` code in one place (`send-policy.ts`): 429 pauses this sender and
 *    calls again; 5xx/timeouts/unreadable non-2xx answers are retried with exponential backoff and jitter (cockatiel);
 *    a permanent refusal is an outcome; refused credentials and exhausted retries are dead-lettered with the
 *    provider's last error; a 2xx answer that cannot be read is never retried (the provider may have sent the
 *    message): it is dead-lettered with the provider's answer for a person to check.
 * 3. The outcome (`sent`/`Sent`, or the channel's failure response type / `NotSent`) goes to `interactions` with
 *    `messageId` = key + response type, grouped with the other outcomes of the session; only then is the delivery
 *    completed. A failed interaction send is retried; the provider is never called again for an accepted message:
 *    when the interaction cannot be sent at all, the delivery is dead-lettered (`InteractionNotSent`) with the
 *    interaction in the description, for replay to `interactions`, not to `outbound`.
 *
 * Abort (the batch signal: shutdown or drain budget): messages not yet handed to the provider are abandoned at once
 * (nothing was sent, the next holder sends them); calls in flight finish (their timeout bounds them) and their
 * outcomes are recorded and completed. Every delivery is settled exactly once.
 *
 * The session lock bounds a batch (`AcceptedSession.lockedUntil`, when the session loop gives it): no provider call
 * starts later than `lockedUntil - (channel.timeoutMs + lockMarginMs)` (so it ends, timeout included, with
 * `lockMarginMs` left to record and settle it), and no wait before a call (a slot, a pause, a backoff, the recipient's
 * turn) is begun when it would end past that; when one would, or when that time comes while messages still wait,
 * everything of the batch not yet at the provider is handed back (abandoned: it never reached the provider), calls
 * in flight finish and are recorded, and the batch returns a `SessionRelease`: the session loop releases the session
 * (`'released'`, state saved while the lock holds) instead of handing the same messages back at once, and the next
 * holder (with a fresh lock) sends them, honouring a pause handed over in the session state. A 429 pauses the sender for its `Retry-After`, at most `retry.maxRateLimitPauseMs`. The sends of
 * outcomes to `interactions` are retried only while a retry still ends a second before the lock does (and an
 * attempt's timeout is cut to that), so what cannot be recorded is dead-lettered (`InteractionNotSent`) while the
 * lock holds, instead of coming back to be sent again.
 *
 * Hand-over (`dispatch-handover.ts`, `session-state.ts`): before each batch's calls the session state is written with
 * the batch's messages listed in flight (a failed write sends nothing of the batch); `onClose` writes it again, clean:
 * the end times of the calls of the last window and a running 429 pause. The next holder, on any replica, makes no
 * call before that window has passed; without a clean state (the holder died or lost its lock: a dropped connection
 * releases its sessions at once, so this can be a fraction of a second after its last calls) it assumes the dead
 * holder used the whole window just then and waits one full window from the takeover. A message listed in flight is
 * reconciled before it is sent again (`DispatchSession`: a provider lookup where there is one). When `onClose` cannot
 * save the state (setState fails or times out), it keeps the session until its last window has passed (at most one
 * window, and never past the session lock: from then on another replica may take it anyway). That hold's timer does
 * not keep the process alive.
 *
 * The parts, one job each: `dispatch-context.ts` (the options, validated once, and what the sessions share),
 * `dispatch-session.ts` (the handler of one held session), `dispatch-send.ts` (one message through the limiter and the
 * retry policy), `dispatch-outcome.ts` (outcome → interaction, settlement or dead letter), `dispatch-settlement.ts`
 * (settling a delivery once), `dispatch-handover.ts` (the session state between holders), `dispatch-inflight.ts` (the
 * messages listed in flight), `lock-deadline.ts` (the lock-deadline arithmetic) and `dispatch-metrics.ts` (metrics and
 * stats).
 */

import { StageContext, type DispatchOptions } from './dispatch-context.js';
import { dispatchStats, type DispatchStats } from './dispatch-metrics.js';
import { DispatchSession, type DispatchSessionHandler } from './dispatch-session.js';
import type { AcceptedSession } from './ports.js';

export type { ChannelLookup, DispatchOptions } from './dispatch-context.js';
export type { DispatchStats } from './dispatch-metrics.js';
export { DISPATCH_DEAD_LETTER_REASONS } from './dispatch-outcome.js';
export type { DispatchSessionHandler } from './dispatch-session.js';

export class DispatchStage {
  /** The session loop's handler factory (a `SessionHandlerFactory`): one handler per accepted session. */
  readonly sessionHandler: (session: AcceptedSession) => DispatchSessionHandler;
  readonly #ctx: StageContext;

  /** Validates the options (a bad value throws a `TypeError` naming it) and registers the metrics. */
  constructor(options: DispatchOptions) {
    const ctx = new StageContext(options);
    this.#ctx = ctx;
    this.sessionHandler = (session) => new DispatchSession(ctx, session);
  }

  /** What the stage has done since it started, and what it holds now. */
  stats(): DispatchStats {
    return dispatchStats(this.#ctx.sessions, this.#ctx.counts);
  }
}
