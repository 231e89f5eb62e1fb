/**
 * The dispatch stage: reads `outbound` through sessions and sends each message through its channel's provider,
 * within the sender's rate limit, then puts the outcome on `interactions`.
 *
 * Invariants: one session is one sender (`channel.senderKey`), held by one replica at a time, so the limit kept
 * locally (a `SenderLimiter` per session) is the limit the provider sees however many replicas run; the sender's
 * window and the calls in flight are handed to the next holder in the session state (`handover.ts`); a message that
 * may have reached the provider is never sent again without a lookup; a delivery is completed only once its outcome
 * is on `interactions`, and settled exactly once; no call starts unless it ends, timeout included, before the
 * session lock does. The parts: `context.ts` (options, shared state), `session.ts` (one held session), `send.ts`
 * (one message through the limiter and `send-policy.ts`), `outcome.ts` and `settlement.ts`, `inflight.ts`,
 * `lock-deadline.ts`, `metrics.ts`.
 */

import { DispatchContext, type DispatchOptions } from './context.js';
import { dispatchStats, registerDispatchGauges, type DispatchStats } from './metrics.js';
import { DispatchSession, type DispatchSessionHandler } from './session.js';
import type { AcceptedSession } from '../ports.js';

export class DispatchStage {
  /** The session loop's handler factory (a `SessionHandlerFactory`): one handler per accepted session. */
  readonly sessionHandler: (session: AcceptedSession) => DispatchSessionHandler;
  readonly #ctx: DispatchContext;

  /** Validates the options (a bad value throws a `TypeError` naming it) and registers the metrics. */
  constructor(options: DispatchOptions) {
    const ctx = new DispatchContext(options);
    this.#ctx = ctx;
    this.sessionHandler = (session) => new DispatchSession(ctx, session);
    if (options.registry) registerDispatchGauges(options.registry, options.channels.all(), () => this.stats());
  }

  /** What the stage has done since it started, and what it holds now. */
  stats(): DispatchStats {
    return dispatchStats(this.#ctx.sessions, this.#ctx.counts);
  }
}
