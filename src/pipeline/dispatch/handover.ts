/**
 * How a sender moves between holders of its `outbound` session (the state itself: `session-state.ts`).
 *
 * Invariants: no holder calls the provider within the hold the last one left (its calls' windows and a running 429
 * pause), however it left: cleanly (`handOver`), or by dying mid-batch after `beforeCalls` (the successor then assumes
 * the batch's costliest call ended just as it took over); a holder whose clean state could not be saved keeps the
 * session until that hold has passed (never past the session lock); nothing of a batch is called unless the state
 * naming it as in flight was written first.
 */
import type { Channel } from '../../channels/index.js';
import { errorMessage } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { DispatchContext } from './context.js';
import type { AcceptedSession, SessionCloseReason } from '../ports.js';
import { isTelegramGroupChat } from '../../providers/index.js';
import { InFlightLedger } from './inflight.js';
import { largestRateCost } from './send.js';
import type { ConcurrencyChange } from './concurrency.js';
import { SenderLimiter } from './sender-limiter.js';
import {
  decodeSessionState,
  encodeSessionState,
  firstSendAt,
  type DecodedSessionState,
  type DispatchSessionState,
  type HandOverLimits,
} from './session-state.js';

/** Resolves after `ms`; its timer does not keep the process alive. */
function unrefDelay(ms: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    timer.unref?.();
  });
}

/** The hand-over of one held session's sender: `takeOver` when the session is accepted, `handOver` when it closes. */
export class SenderHandOver {
  readonly #session: AcceptedSession;
  readonly #stage: Pick<DispatchContext, 'guardMs' | 'now' | 'stateTimeoutMs' | 'counts' | 'latencyOf'>;
  readonly #log: Logger;
  readonly #lockedUntil: () => number | undefined;
  /** Whether the session has a state (the last holder's, or one this holder wrote): then the release writes one too. */
  #hasState: boolean;
  readonly #decoded: DecodedSessionState;
  /** The messages that may be at the provider without a settled outcome: the last holder's, then this one's. */
  readonly inFlight: InFlightLedger;
  /** The last state write before a batch's calls: overlapping batches write one after another (see `beforeCalls`). */
  #writing: Promise<unknown> = Promise.resolve();

  /** `lockedUntil`: the session lock's deadline now, when the session loop gives one. */
  constructor(
    session: AcceptedSession,
    stage: Pick<DispatchContext, 'guardMs' | 'now' | 'stateTimeoutMs' | 'counts' | 'latencyOf'>,
    log: Logger,
    lockedUntil: () => number | undefined,
  ) {
    this.#session = session;
    this.#stage = stage;
    this.#log = log;
    this.#lockedUntil = lockedUntil;
    this.#hasState = session.state !== undefined && session.state.length > 0;
    this.#decoded = decodeSessionState(session.state);
    this.inFlight = new InFlightLedger(this.#decoded.ok ? this.#decoded.state?.inFlight : []);
  }

  /**
   * The limiter of the channels that send as this session, paused until the last holder's hold has passed: after a
   * clean release, the hold its state describes; otherwise (it died or lost its lock after writing the state before a
   * batch's calls) the hold of the batch's costliest call from now, at least one full window, and a pause it recorded
   * (see `firstSendAt`); one full window when the state is unreadable. Its calls in flight are sized from the latency
   * this stage saw for the sender so far; `onConcurrencyChange` hears of each change.
   */
  takeOver(channels: Channel[], onConcurrencyChange?: (change: ConcurrencyChange) => void): SenderLimiter {
    // Channels sharing a sender share its limit: the strictest of their settings.
    const rates = channels.map((c) => c.rateLimit);
    const limiter = new SenderLimiter({
      messages: Math.min(...rates.map((l) => l.messages)),
      intervalMs: Math.max(...rates.map((l) => l.intervalMs)),
      maxConcurrency: Math.min(...rates.map((l) => l.concurrency)),
      latency: this.#stage.latencyOf(this.#session.sessionId),
      ...(onConcurrencyChange === undefined ? {} : { onConcurrencyChange }),
      perRecipientMs: Math.max(...rates.map((l) => l.perRecipientMs)),
      perGroupMs: Math.max(...rates.map((l) => l.perGroupMs)),
      isGroup: isTelegramGroupChat,
      guardMs: this.#stage.guardMs,
      now: this.#stage.now,
    });
    // A state is honoured for at most the longest hold one call can cause here: the costliest call the provider takes.
    const limits: HandOverLimits = {
      windowMs: limiter.handOverWindowMs,
      maxHoldMs: limiter.holdMsOf(Math.max(...channels.map(largestRateCost))),
    };
    const decoded = this.#decoded;
    const now = this.#stage.now();
    let holdUntil: number;
    if (decoded.ok) {
      holdUntil = firstSendAt(decoded.state, limits, now);
      if (decoded.state !== undefined && decoded.state.clean !== true) {
        this.#stage.counts.takenOverWithoutRelease++;
        this.#log.warn(
          'session taken over without a clean hand-over (the last holder died or lost its lock): assuming its costliest call ended just now',
          {
            waitMs: holdUntil - now,
            inFlight: this.inFlight.size,
          },
        );
      }
    } else {
      holdUntil = now + limiter.handOverWindowMs;
      this.#log.warn('session state unreadable: waiting one full window before the first send', {
        reason: decoded.reason,
      });
    }
    if (holdUntil > now) {
      limiter.pauseUntil(holdUntil);
      this.#log.info("session taken over within the last holder's window: waiting before the first send", {
        waitMs: holdUntil - now,
      });
    }
    return limiter;
  }

  /**
   * Before a batch's calls: lists its messages as in flight and writes the state (not clean: from now on, until the
   * next clean release, a successor must assume that this holder's costliest call, `largestCost` or one in flight,
   * ended just as it took over). False when the write failed or timed out: then nothing of the batch may be sent (a
   * successor could not know of its calls).
   */
  beforeCalls(limiter: SenderLimiter, keys: readonly string[], largestCost: number): Promise<boolean> {
    // One write at a time, each made from the ledger as it stands when it starts: two overlapping batches' writes could
    // otherwise land in the other order, leaving a state without the later batch's messages.
    const write = this.#writing.then(() => this.#beforeCalls(limiter, keys, largestCost));
    this.#writing = write.catch(() => undefined);
    return write;
  }

  async #beforeCalls(limiter: SenderLimiter, keys: readonly string[], largestCost: number): Promise<boolean> {
    const now = this.#stage.now();
    const added = this.inFlight.begin(keys, now);
    // From the first attempt on: a write that timed out may still land.
    this.#hasState = true;
    const state = this.#state(limiter, false, now);
    state.callHoldMs = limiter.holdMsOf(Math.max(largestCost, limiter.largestCostInFlight));
    if (await this.#saveState(state)) return true;
    // Not sent: listed for nothing (what was listed before stays).
    for (const key of added) this.inFlight.settled(key);
    return false;
  }

  /**
   * Saves the limiter's hold (and a running pause) as the session state and clears the limiter; when the save fails
   * or times out, returns only once the hold has passed (see `#holdAfterLostState`). Writes nothing when the session
   * has no state: a call, a pause or an entry in flight needs a state written before the batch or inherited,
   * and a state written before a batch is always replaced by a clean one (left as it is, the next holder would wait a
   * window for nothing).
   */
  async handOver(limiter: SenderLimiter, reason: SessionCloseReason | undefined): Promise<void> {
    const at = this.#stage.now();
    const state = this.#state(limiter, true, at);
    limiter.clear();
    if (this.#hasState) {
      const saved = await this.#saveState(state);
      if (!saved) await this.#holdAfterLostState(state, at, limiter, reason);
    }
  }

  /** The state to write now: the limiter's hold and pause, and the in-flight entries. */
  #state(limiter: SenderLimiter, clean: boolean, now: number): DispatchSessionState {
    const state: DispatchSessionState = {
      v: 3,
      ...(clean ? { clean: true as const } : {}),
      holdMs: limiter.holdLeftMs(),
    };
    const pausedUntil = limiter.pausedUntil;
    if (pausedUntil !== undefined) state.pauseMs = pausedUntil - now;
    const { entries, dropped } = this.inFlight.entries(now);
    if (dropped > 0) {
      this.#log.warn(
        'too many messages in flight to list in the session state: the oldest are dropped (sent again without a lookup should they come back)',
        { dropped, kept: entries.length },
      );
    }
    if (entries.length > 0) state.inFlight = entries;
    return state;
  }

  /** True when the state was written. */
  async #saveState(state: DispatchSessionState): Promise<boolean> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await Promise.race([
        this.#session.setState(encodeSessionState(state)),
        new Promise<never>((_resolve, reject) => {
          timer = setTimeout(
            () => reject(new Error(`setState did not finish within ${this.#stage.stateTimeoutMs} ms`)),
            this.#stage.stateTimeoutMs,
          );
        }),
      ]);
      this.#log.debug('session state saved', {
        clean: state.clean === true,
        holdMs: state.holdMs,
        pauseMs: state.pauseMs,
        callHoldMs: state.callHoldMs,
        inFlight: state.inFlight?.length ?? 0,
      });
      return true;
    } catch (err) {
      this.#log.warn('session state not saved', { err: errorMessage(err) });
      return false;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * The state (measured `at`) could not be handed over: keep the session until the hold it describes has passed (its
   * calls' windows; a running pause for at most one window: a successor that calls within it meets the provider's 429,
   * not a broken limit), but not past the session lock (from then on another replica may take the session anyway:
   * holding protects nothing). Not when the lock is already lost: the session is someone else's by then. The hold's
   * timer does not keep the process alive: a process that is ending has nothing left to protect.
   */
  async #holdAfterLostState(
    state: DispatchSessionState,
    at: number,
    limiter: SenderLimiter,
    reason: SessionCloseReason | undefined,
  ): Promise<void> {
    if (reason === 'lockLost') {
      this.#log.warn("session lock lost and state not saved: the next holder may start within this sender's window");
      return;
    }
    const windowMs = limiter.handOverWindowMs;
    const now = this.#stage.now();
    const windowEnd = at + Math.max(state.holdMs, Math.min(state.pauseMs ?? 0, windowMs));
    const lockedUntil = this.#lockedUntil() ?? Infinity;
    const until = Math.min(windowEnd, lockedUntil);
    if (until <= now) {
      if (windowEnd > now)
        this.#log.warn(
          "session state not saved and the session lock is ending: the next holder may start within this sender's window",
          { windowLeftMs: windowEnd - now },
        );
      return;
    }
    this.#log.warn(
      "session state not saved: holding the session until this sender's window has passed, so the next holder cannot start within it",
      {
        holdMs: until - now,
        ...(until < windowEnd ? { windowLeftMs: windowEnd - now, boundByLock: true } : {}),
        pauseMs: state.pauseMs,
      },
    );
    await unrefDelay(until - now);
  }
}
