/**
 * The conversations stage: reads `conversations` through sessions (one customer of one bridged channel each, held by
 * one replica at a time) and bridges the customer to Omnichannel's agents through Direct Line: customer messages are
 * posted to the customer's conversation, scheduled polls read the agents' activities from its watermark and send them
 * to the customer through `outbound` (dispatch, within the sender's rate limit).
 *
 * Invariants: every delivery is settled exactly once; a delivery is completed only once the session state that covers
 * it is saved (a started conversation is saved at once); an agent's message is sent to `outbound` before the
 * watermark past it is saved, keyed on its activity (a repeat is dropped by duplicate detection); a customer message
 * that may have been posted before (delivered again, or listed as being posted by a holder that died) is looked for in
 * the conversation first. The parts: `context.ts` (options, counts, metrics), `session.ts` (one held session),
 * `state.ts` (the session state).
 */
import { ConversationsContext, type ConversationsOptions, type ConversationsStats } from './context.js';
import { ConversationSession } from './session.js';
import type { AcceptedSession, SessionHandler } from '../ports.js';

/** A Direct Line account's health as the stage saw it last: not ok once Direct Line refused its secret. */
export interface AccountHealth {
  account: string;
  ok: boolean;
  /** Why not. */
  detail?: string;
}

export class ConversationsStage {
  /** The session loop's handler factory (a `SessionHandlerFactory`): one handler per accepted session. */
  readonly sessionHandler: (session: AcceptedSession) => SessionHandler;
  readonly #ctx: ConversationsContext;

  /** Validates the options (a bad value throws a `TypeError` naming it) and registers the metrics. */
  constructor(options: ConversationsOptions) {
    const ctx = new ConversationsContext(options);
    this.#ctx = ctx;
    this.sessionHandler = (session) => new ConversationSession(ctx, session);
  }

  /** Ends the stage's waits (retries, hand-back pauses): what waits is handed back at once. */
  stop(): void {
    this.#ctx.stopping.abort(new Error('the conversations stage is stopping'));
  }

  /** The accounts whose secret Direct Line refused on the last call that reached it (ok again after one succeeds). */
  accounts(): AccountHealth[] {
    return this.#ctx.messaging.accounts.map((a) => {
      const refused = this.#ctx.unauthorized.get(a.name);
      return refused === undefined
        ? { account: a.name, ok: true }
        : { account: a.name, ok: false, detail: `Direct Line refused the secret: ${refused}` };
    });
  }

  /** What the stage has done since it started, and the sessions it holds now. */
  stats(): ConversationsStats {
    const c = this.#ctx.counts;
    return { sessions: this.#ctx.sessions.size, ...c, directLineErrors: { ...c.directLineErrors } };
  }
}
