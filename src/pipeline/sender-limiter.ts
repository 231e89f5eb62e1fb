/**
 * One sender's rate limit, enforced locally: the dispatch stage holds one `outbound` session per sender at a time
 * (one replica), so a limit kept in this process is the limit the provider sees, however many replicas run.
 *
 * - **Window**: a p-queue in strict (sliding-window) mode: at most `messages` call starts in any
 *   `intervalMs + guardMs`, at most `concurrency` calls in flight. Every provider call attempt goes through it,
 *   retries included: a retry is a call and counts.
 * - **Guard**: `guardMs` widens the window (and the per-recipient spacing) so that network jitter between our call
 *   start and the provider's clock cannot make the provider count more than the limit in its own window.
 * - **Per recipient**: calls to one recipient start at least `perRecipientMs + guardMs` apart (Telegram: 1 s per chat),
 *   measured from the actual call starts, one recipient's calls taking turns in arrival order.
 * - **Pause**: `pauseUntil(t)` holds every call of this sender until `t` (a 429 `Retry-After`, or the window the last
 *   holder of the session left behind); calls in flight are not affected.
 *
 * A call waiting (for its recipient's turn, the window or a pause) is dropped when its signal fires and `run` rejects
 * with the signal's reason; once started, a call is never interrupted by that signal: it finishes on its own
 * (its own timeout bounds it) and `run` returns its result.
 */
import PQueue from 'p-queue';

export interface SenderLimiterOptions {
  /** Call starts per window. */
  messages: number;
  /** The provider's window. @defaultValue 1000 */
  intervalMs?: number;
  /** Calls in flight at once. @defaultValue 10 */
  concurrency?: number;
  /** Minimum time between two calls to the same recipient; 0 turns the spacing off. @defaultValue 0 */
  perRecipientMs?: number;
  /** Added to the window and to the per-recipient spacing, for network jitter. @defaultValue 50 */
  guardMs?: number;
  /** The clock (ms since the epoch). @defaultValue Date.now */
  now?: () => number;
}

export interface RunOptions {
  /** Drops the call while it waits; ignored once it started. */
  signal?: AbortSignal;
  /** Greater runs earlier among waiting calls (retries go first). @defaultValue 0 */
  priority?: number;
}

export interface SenderLimiterStats {
  /** Calls waiting for the window, a pause or their recipient's turn. */
  waiting: number;
  /** Calls in flight. */
  inFlight: number;
  /** Call starts within the current window. */
  inWindow: number;
  /** When a running pause ends (ms since the epoch); absent when not paused. */
  pausedUntil?: number;
}

function positiveInt(name: string, value: number, min: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw new TypeError(`SenderLimiter: ${name} must be an integer >= ${min}, found ${String(value)}`);
  }
  return value;
}

/** Resolves after `ms`, or rejects with the signal's reason when it fires first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.reject(signal.reason);
  if (ms <= 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Resolves when `promise` does, or rejects with the signal's reason when it fires first. */
function until<T>(promise: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (signal === undefined) return promise;
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

export class SenderLimiter {
  /** The window the provider's limit is kept in, guard included (ms). */
  readonly windowMs: number;
  /** The spacing between two calls to one recipient, guard included (ms); 0 when off. */
  readonly recipientSpacingMs: number;
  readonly #queue: PQueue;
  readonly #now: () => number;
  /** Call starts within the last window, oldest first. */
  readonly #starts: number[] = [];
  readonly #lastByRecipient = new Map<string, number>();
  /** Per recipient: resolves when the last call that took a turn started (or gave its turn up). */
  readonly #turns = new Map<string, Promise<void>>();
  #waitingForTurn = 0;
  #pausedUntil = 0;
  #resumeTimer: ReturnType<typeof setTimeout> | undefined;
  #cleared = false;

  constructor(options: SenderLimiterOptions) {
    const messages = positiveInt('messages', options.messages, 1);
    const intervalMs = positiveInt('intervalMs', options.intervalMs ?? 1000, 1);
    const concurrency = positiveInt('concurrency', options.concurrency ?? 10, 1);
    const perRecipientMs = positiveInt('perRecipientMs', options.perRecipientMs ?? 0, 0);
    const guardMs = positiveInt('guardMs', options.guardMs ?? 50, 0);
    this.#now = options.now ?? Date.now;
    this.windowMs = intervalMs + guardMs;
    this.recipientSpacingMs = perRecipientMs === 0 ? 0 : perRecipientMs + guardMs;
    this.#queue = new PQueue({ strict: true, intervalCap: messages, interval: this.windowMs, concurrency });
  }

  /**
   * Runs `call` when this sender's window, any pause and the recipient's spacing allow it. Rejects with the
   * signal's reason when the signal fires before the call starts; `call`'s own result or error otherwise.
   */
  async run<T>(recipient: string, call: () => Promise<T>, options: RunOptions = {}): Promise<T> {
    if (this.recipientSpacingMs === 0) return this.#enqueue(recipient, call, options, () => undefined);
    const previous = this.#turns.get(recipient) ?? Promise.resolve();
    let handOver!: () => void;
    const mine = new Promise<void>((resolve) => (handOver = resolve));
    this.#turns.set(recipient, mine);
    let handed = false;
    const release = (): void => {
      if (handed) return;
      handed = true;
      if (this.#turns.get(recipient) === mine) this.#turns.delete(recipient);
      handOver();
    };
    this.#waitingForTurn++;
    let counted = true;
    const uncount = (): void => {
      if (counted) this.#waitingForTurn--;
      counted = false;
    };
    try {
      await until(previous, options.signal);
      const last = this.#lastByRecipient.get(recipient);
      if (last !== undefined) await sleep(last + this.recipientSpacingMs - this.#now(), options.signal);
      uncount();
      return await this.#enqueue(recipient, call, options, release);
    } finally {
      uncount();
      // Gave up before starting: the next call to this recipient still waits for the one before this.
      if (!handed) void previous.then(release);
    }
  }

  #enqueue<T>(recipient: string, call: () => Promise<T>, options: RunOptions, onStart: () => void): Promise<T> {
    const { signal } = options;
    // p-queue rejects a running task's promise when the add() signal fires; a started call must finish instead, so
    // the queue gets a signal that fires only while the call waits.
    const waiting = new AbortController();
    let started = false;
    const onAbort = (): void => {
      if (!started) waiting.abort(signal?.reason);
    };
    if (signal?.aborted) return Promise.reject(signal.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    const task = (): Promise<T> => {
      started = true;
      signal?.removeEventListener('abort', onAbort);
      const now = this.#now();
      this.#record(now);
      if (this.recipientSpacingMs > 0) this.#lastByRecipient.set(recipient, now);
      onStart();
      return call();
    };
    return this.#queue.add(task, { signal: waiting.signal, priority: options.priority ?? 0 }).finally(() => {
      signal?.removeEventListener('abort', onAbort);
    });
  }

  #record(now: number): void {
    this.#starts.push(now);
    this.#prune(now);
    if (this.#lastByRecipient.size > 1024) {
      for (const [recipient, at] of this.#lastByRecipient) {
        if (now - at >= this.recipientSpacingMs) this.#lastByRecipient.delete(recipient);
      }
    }
  }

  #prune(now: number): void {
    while (this.#starts.length > 0 && now - (this.#starts[0] as number) >= this.windowMs) this.#starts.shift();
  }

  /** Holds every call not yet started until `at` (ms since the epoch); a later `at` extends a running pause. */
  pauseUntil(at: number): void {
    if (this.#cleared) return;
    const delay = at - this.#now();
    if (delay <= 0 || at <= this.#pausedUntil) return;
    this.#pausedUntil = at;
    this.#queue.pause();
    if (this.#resumeTimer !== undefined) clearTimeout(this.#resumeTimer);
    this.#resumeTimer = setTimeout(() => {
      this.#resumeTimer = undefined;
      this.#pausedUntil = 0;
      this.#queue.start();
    }, delay);
  }

  /** Holds every call not yet started for `ms`. */
  pauseFor(ms: number): void {
    this.pauseUntil(this.#now() + ms);
  }

  /** Whether a pause is running. */
  get paused(): boolean {
    return this.#pausedUntil > this.#now();
  }

  /** The call starts within the last window (for the session state), oldest first. */
  recentStarts(): number[] {
    this.#prune(this.#now());
    return [...this.#starts];
  }

  /** When a running pause ends, or undefined. */
  get pausedUntil(): number | undefined {
    return this.paused ? this.#pausedUntil : undefined;
  }

  stats(): SenderLimiterStats {
    const stats: SenderLimiterStats = {
      waiting: this.#queue.size + this.#waitingForTurn,
      inFlight: this.#queue.pending,
      inWindow: this.recentStarts().length,
    };
    const pausedUntil = this.pausedUntil;
    if (pausedUntil !== undefined) stats.pausedUntil = pausedUntil;
    return stats;
  }

  /**
   * Stops the pause timer and drops what still waits in the queue (abort the calls' signals first: a dropped
   * call's `run` never settles otherwise). Calls in flight finish. Idempotent.
   */
  clear(): void {
    this.#cleared = true;
    if (this.#resumeTimer !== undefined) clearTimeout(this.#resumeTimer);
    this.#resumeTimer = undefined;
    this.#queue.clear();
  }

  /** Resolves when no call is in flight. */
  async idle(): Promise<void> {
    await this.#queue.onPendingZero();
  }
}
