/**
 * A receive loop's health as readiness needs it: whether it still receives, when the broker last answered, and how
 * many receives in a row failed. Kept by the loops with a few field writes per receive, read with `health()`.
 */
import { errorMessage } from '../errors.js';

/** What `ReceiveLoop.health()` returns: a snapshot, cheap to take. */
export interface LoopHealth {
  /**
   * Whether the loop still receives: false once it stopped, by `stop()`, `drain()` or `close()`, or on its own when it
   * cannot go on (the client was closed under it).
   */
  running: boolean;
  /**
   * When the broker last answered a receive (ms since the epoch), with messages or empty; for the session loop also an
   * accept, a "no session free now" (`ServiceTimeout`) included. `undefined` before the first answer. A loop whose
   * batch slots (or sessions) are all busy with long batches does not receive meanwhile: judge staleness against
   * the receive wait, the accept timeout and `inFlight`.
   */
  lastReceiveAt?: number;
  /** Receives (and accepts) that failed since the last answer; 0 when the last one succeeded. */
  consecutiveErrors: number;
  /** The message of the last failed receive or accept, kept after later successes; `undefined` when none failed. */
  lastError?: string;
}

/** Keeps a loop's health; the loop calls `answered()` and `failed()`, `health()` reads it. */
export class LoopHealthTracker {
  #lastReceiveAt: number | undefined;
  #consecutiveErrors = 0;
  #lastError: string | undefined;
  readonly #running: () => boolean;

  /** `running` tells whether the loop still receives. */
  constructor(running: () => boolean) {
    this.#running = running;
  }

  /** The broker answered a receive or an accept. */
  answered(): void {
    this.#lastReceiveAt = Date.now();
    this.#consecutiveErrors = 0;
  }

  /** A receive or an accept failed. */
  failed(err: unknown): void {
    this.#consecutiveErrors += 1;
    this.#lastError = errorMessage(err);
  }

  health(): LoopHealth {
    const h: LoopHealth = { running: this.#running(), consecutiveErrors: this.#consecutiveErrors };
    if (this.#lastReceiveAt !== undefined) h.lastReceiveAt = this.#lastReceiveAt;
    if (this.#lastError !== undefined) h.lastError = this.#lastError;
    return h;
  }
}
