/**
 * One sender's rate limit, enforced locally: the dispatch stage holds one `outbound` session per sender at a time
 * (one replica), so a limit kept in this process is the limit the provider sees, however many replicas run.
 *
 * - **Window, counted the way the provider counts.** A provider counts a message when its request *arrives*, which
 *   is somewhere between our call's start and its end; network and event-loop jitter of tens of milliseconds are
 *   common on a loaded machine, so a limit on call *starts* (p-queue's strict interval) can still show the provider
 *   `messages + 1` arrivals in one window. Instead each call holds one of `messages` slots from before it starts
 *   until `intervalMs + guardMs` after it *ends*. Any `messages + 1` arrivals within one window would need
 *   `messages + 1` slots held at the same instant (the window's last moment lies inside every one of their holds),
 *   so the provider never sees more than `messages` in any window, whatever the jitter. The price is the call's own
 *   latency per slot and window (utilization ≈ interval / (interval + latency + guard)). Every provider call attempt
 *   takes its slots, retries included: a retry is a call and counts.
 * - **Cost**: a call takes `cost` slots (`RunOptions.cost`: Twilio counts a message's segments against the sender's
 *   rate, so `messages` is then segments per window), all at once, waiting callers served strictly in order
 *   (priority, then arrival: a costly call is never overtaken for ever by cheap ones). A call that costs more than
 *   `messages` takes every slot and holds them `ceil(cost / messages)` windows after it ends (the provider spreads
 *   its segments over that many windows).
 * - **In flight**: at most `concurrency` calls at once (a second p-queue inside the slots).
 * - **Guard**: `guardMs` is added to each hold, for timer granularity and clock steps.
 * - **Per recipient**: a call to one recipient starts at least `perRecipientMs + guardMs` after the previous call
 *   to that recipient *ended* (Telegram: 1 s per chat), one recipient's calls taking turns in arrival order; for a
 *   group recipient (`isGroup`), at least `perGroupMs + guardMs` (Telegram: 20 a minute in one group, 3 s).
 * - **Pause**: `pauseUntil(t)` holds every call of this sender until `t` (a 429 `Retry-After`, or the window the last
 *   holder of the session left behind); calls in flight are not affected.
 *
 * A call waiting (for its recipient's turn, a slot or a pause) is dropped when its signal fires and `run` rejects
 * with the signal's reason; once started, a call is never interrupted by that signal: it finishes on its own
 * (its own timeout bounds it) and `run` returns its result.
 *
 * **Start deadline** (`startBy`, for the end of a session lock): a call that cannot start by then is not made and
 * `run` rejects with a `StartDeadlineError`: at once when a wait whose end is known (a pause, the recipient's
 * spacing) would end past it, or when a pause that begins while it waits does; otherwise (waiting for a slot or its
 * recipient's turn) when the time comes and it still waits.
 */
import PQueue from 'p-queue';
import { delayUnlessAborted, linkedController, raceAbort, sleepOrReject } from '../../abort.js';
import { intOption } from '../../options.js';

export interface SenderLimiterOptions {
  /** Calls per window (the provider's limit). */
  messages: number;
  /** The provider's window. @defaultValue 1000 */
  intervalMs?: number;
  /** Calls in flight at once. @defaultValue 10 */
  concurrency?: number;
  /** Minimum time between two calls to the same recipient; 0 turns the spacing off. @defaultValue 0 */
  perRecipientMs?: number;
  /** Per group recipient (`isGroup`): the spacing instead of `perRecipientMs` when longer; 0 turns it off. @defaultValue 0 */
  perGroupMs?: number;
  /** Which recipients are groups (Telegram: group and supergroup chats). @defaultValue none */
  isGroup?: (recipient: string) => boolean;
  /** Added to each hold and to the per-recipient spacing, for timer granularity and clock steps. @defaultValue 10 */
  guardMs?: number;
  /** The clock (ms since the epoch). @defaultValue Date.now */
  now?: () => number;
}

export interface RunOptions {
  /** Drops the call while it waits; ignored once it started. */
  signal?: AbortSignal;
  /** Greater runs earlier among waiting calls (retries go first). @defaultValue 0 */
  priority?: number;
  /** What the call counts against `messages` (Twilio: the message's segments). An integer >= 1. @defaultValue 1 */
  cost?: number;
  /**
   * The latest time the call may start (ms since the epoch): a call that cannot start by then is not made, and `run`
   * rejects with a `StartDeadlineError` as soon as that is known (see the file's comment). @defaultValue no deadline
   */
  startBy?: number;
}

/** `run` did not start the call: it could not start by its `startBy`. Nothing was called. */
export class StartDeadlineError extends Error {
  override readonly name = 'StartDeadlineError';
  constructor(
    /** The deadline (ms since the epoch). */
    readonly startBy: number,
    /** What kept the call from starting in time. */
    readonly why: string,
  ) {
    super(`the call could not start by ${new Date(startBy).toISOString()}: ${why}`);
  }
}

export function isStartDeadlineError(error: unknown): error is StartDeadlineError {
  return error instanceof StartDeadlineError;
}

export interface SenderLimiterStats {
  /** Calls waiting for the window, a pause or their recipient's turn. */
  waiting: number;
  /** Calls in flight. */
  inFlight: number;
  /** Slots taken (each call takes its cost): calls waiting for a call slot, in flight, or ended less than a window ago. */
  inWindow: number;
  /** When a running pause ends (ms since the epoch); absent when not paused. */
  pausedUntil?: number;
}

export class SenderLimiter {
  /** How long a call holds its slot after it ends: the provider's window, guard included (ms). */
  readonly windowMs: number;
  /** The spacing between the end of one call to a recipient and the start of the next, guard included (ms); 0 when off. */
  readonly recipientSpacingMs: number;
  /** The spacing between calls to one group recipient, guard included (ms); 0 when off (then `recipientSpacingMs`). */
  readonly groupSpacingMs: number;
  /** How long the last calls keep constraining the next ones (the window or the recipient spacing): a hand-over waits this long. */
  readonly handOverWindowMs: number;
  readonly #isGroup: (recipient: string) => boolean;
  /** Slots: `messages` at once, a call's `cost` of them held from before it starts until `windowMs` after it ends. */
  readonly #slots: Slots;
  /** Calls in flight: `concurrency` at once. */
  readonly #calls: PQueue;
  readonly #now: () => number;
  /** When the calls of the last window ended, oldest first (a call costing several windows: its last window's start). */
  #ends: number[] = [];
  #inFlight = 0;
  readonly #lastByRecipient = new Map<string, number>();
  /** Per recipient: resolves when the last call that took a turn ended (or gave its turn up). */
  readonly #turns = new Map<string, Promise<void>>();
  #waitingForTurn = 0;
  #pausedUntil = 0;
  #resumeTimer: ReturnType<typeof setTimeout> | undefined;
  /** Aborted by `clear()`: ends the holds of slots after their call (see `#hold`). */
  readonly #cleared = new AbortController();
  /** Calls with a start deadline that have not ended yet: a pause past their deadline drops them. */
  readonly #deadlines = new Set<{ startBy: number; drop: (error: StartDeadlineError) => void }>();

  constructor(options: SenderLimiterOptions) {
    const messages = intOption('SenderLimiter', 'messages', options.messages, undefined, 1);
    const intervalMs = intOption('SenderLimiter', 'intervalMs', options.intervalMs, 1000, 1);
    const concurrency = intOption('SenderLimiter', 'concurrency', options.concurrency, 10, 1);
    const perRecipientMs = intOption('SenderLimiter', 'perRecipientMs', options.perRecipientMs, 0, 0);
    const perGroupMs = intOption('SenderLimiter', 'perGroupMs', options.perGroupMs, 0, 0);
    const guardMs = intOption('SenderLimiter', 'guardMs', options.guardMs, 10, 0);
    this.#now = options.now ?? Date.now;
    this.windowMs = intervalMs + guardMs;
    this.recipientSpacingMs = perRecipientMs === 0 ? 0 : perRecipientMs + guardMs;
    this.groupSpacingMs = perGroupMs === 0 || options.isGroup === undefined ? 0 : Math.max(perGroupMs + guardMs, this.recipientSpacingMs);
    this.#isGroup = options.isGroup ?? (() => false);
    this.handOverWindowMs = Math.max(this.windowMs, this.recipientSpacingMs, this.groupSpacingMs);
    this.#slots = new Slots(messages);
    this.#calls = new PQueue({ concurrency });
  }

  /**
   * Runs `call` when this sender's window, any pause and the recipient's spacing allow it. Rejects with the
   * signal's reason when the signal fires before the call starts, with a `StartDeadlineError` when it cannot start by
   * `startBy`; `call`'s own result or error otherwise.
   */
  async run<T>(recipient: string, call: () => Promise<T>, options: RunOptions = {}): Promise<T> {
    intOption('SenderLimiter run', 'cost', options.cost, 1, 1);
    const { startBy } = options;
    if (startBy === undefined) return this.#run(recipient, call, options);
    const now = this.#now();
    if (now > startBy) throw new StartDeadlineError(startBy, 'the deadline has passed');
    if (this.#pausedUntil > startBy && this.paused) throw new StartDeadlineError(startBy, `the sender is paused until ${new Date(this.#pausedUntil).toISOString()}`);
    // The call waits under a signal that also fires at the deadline, or when a pause past it begins.
    const deadline = linkedController(options.signal);
    const entry = { startBy, drop: (error: StartDeadlineError) => deadline.abort(error) };
    const timer = setTimeout(() => entry.drop(new StartDeadlineError(startBy, 'still waiting for a slot or its recipient\'s turn')), startBy - now);
    this.#deadlines.add(entry);
    try {
      return await this.#run(recipient, call, { ...options, signal: deadline.signal });
    } finally {
      clearTimeout(timer);
      this.#deadlines.delete(entry);
      deadline.dispose();
    }
  }

  /** The spacing of calls to `recipient`, guard included; 0 when none. */
  #spacingOf(recipient: string): number {
    return this.groupSpacingMs > 0 && this.#isGroup(recipient) ? this.groupSpacingMs : this.recipientSpacingMs;
  }

  async #run<T>(recipient: string, call: () => Promise<T>, options: RunOptions): Promise<T> {
    const spacing = this.#spacingOf(recipient);
    if (spacing === 0) return this.#enqueue(recipient, call, options, () => undefined);
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
      await raceAbort(previous, options.signal);
      const last = this.#lastByRecipient.get(recipient);
      if (last !== undefined) {
        const at = last + spacing;
        if (options.startBy !== undefined && at > options.startBy) {
          throw new StartDeadlineError(options.startBy, `the recipient's next turn is at ${new Date(at).toISOString()}`);
        }
        await sleepOrReject(at - this.#now(), options.signal);
      }
      uncount();
      return await this.#enqueue(recipient, call, options, release);
    } finally {
      uncount();
      // Gave up before starting: the next call to this recipient still waits for the one before this.
      if (!handed) void previous.then(release);
    }
  }

  #enqueue<T>(recipient: string, call: () => Promise<T>, options: RunOptions, onEnd: () => void): Promise<T> {
    const { signal } = options;
    const cost = options.cost ?? 1;
    // More than the limit: every slot, for as many windows as the provider needs to send it.
    const slots = Math.min(cost, this.#slots.capacity);
    const windows = Math.ceil(cost / this.#slots.capacity);
    if (signal?.aborted) return Promise.reject(signal.reason);
    // p-queue rejects a running task's promise when the add() signal fires; a started call must finish instead, so
    // the queues get a signal that fires only while the call waits.
    const waiting = new AbortController();
    let started = false;
    const onAbort = (): void => {
      if (!started) waiting.abort(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    const done = (): void => signal?.removeEventListener('abort', onAbort);
    return new Promise<T>((resolve, reject) => {
      const holdSlot = async (): Promise<void> => {
        try {
          resolve(
            await this.#calls.add(
              async () => {
                // A start a busy event loop made late: still not past the deadline (nothing is recorded: no call).
                if (options.startBy !== undefined && this.#now() > options.startBy) throw new StartDeadlineError(options.startBy, 'the deadline has passed');
                started = true;
                done();
                this.#inFlight++;
                try {
                  return await call();
                } finally {
                  this.#inFlight--;
                  const end = this.#now();
                  this.#record(end + (windows - 1) * this.windowMs);
                  if (this.#spacingOf(recipient) > 0) this.#lastByRecipient.set(recipient, end);
                  onEnd();
                }
              },
              { signal: waiting.signal },
            ),
          );
        } catch (err) {
          reject(err);
        }
        done();
        // The slots stay taken for a whole window after the call ended (see the file's comment).
        if (started) await this.#hold(this.windowMs * windows);
      };
      this.#slots.take(slots, options.priority ?? 0, waiting.signal).then(
        () => holdSlot().finally(() => this.#slots.give(slots)),
        (err: unknown) => {
          done();
          reject(err);
        },
      );
    });
  }

  /** Waits `ms` holding a slot; `clear()` ends every hold at once (and a hold after `clear()` does not wait). */
  #hold(ms: number): Promise<void> {
    return delayUnlessAborted(ms, this.#cleared.signal);
  }

  #record(now: number): void {
    this.#ends.push(now);
    this.#prune(now);
    if (this.#lastByRecipient.size > 1024) {
      for (const [recipient, at] of this.#lastByRecipient) {
        if (now - at >= this.#spacingOf(recipient)) this.#lastByRecipient.delete(recipient);
      }
    }
  }

  #prune(now: number): void {
    if (this.#ends.some((t) => now - t >= this.windowMs)) this.#ends = this.#ends.filter((t) => now - t < this.windowMs);
  }

  /**
   * Holds every call not yet started until `at` (ms since the epoch); a later `at` extends a running pause. A waiting
   * call whose start deadline is before `at` is dropped at once (`StartDeadlineError`).
   */
  pauseUntil(at: number): void {
    if (this.#cleared.signal.aborted) return;
    const waitMs = at - this.#now();
    if (waitMs <= 0 || at <= this.#pausedUntil) return;
    this.#pausedUntil = at;
    for (const entry of [...this.#deadlines]) {
      if (entry.startBy < at) entry.drop(new StartDeadlineError(entry.startBy, `the sender is paused until ${new Date(at).toISOString()}`));
    }
    this.#slots.pause();
    this.#calls.pause();
    if (this.#resumeTimer !== undefined) clearTimeout(this.#resumeTimer);
    this.#resumeTimer = setTimeout(() => {
      this.#resumeTimer = undefined;
      this.#pausedUntil = 0;
      this.#slots.start();
      this.#calls.start();
    }, waitMs);
  }

  /** Holds every call not yet started for `ms`. */
  pauseFor(ms: number): void {
    this.pauseUntil(this.#now() + ms);
  }

  /** Whether a pause is running. */
  get paused(): boolean {
    return this.#pausedUntil > this.#now();
  }

  /**
   * For the session state: when the calls of the last window ended, oldest first, with `now` for each call still in
   * flight (the next holder of the session waits a window after the last of them).
   */
  recentCalls(): number[] {
    const now = this.#now();
    this.#prune(now);
    return [...this.#ends, ...Array.from({ length: this.#inFlight }, () => now)].sort((a, b) => a - b);
  }

  /** When a running pause ends, or undefined. */
  get pausedUntil(): number | undefined {
    return this.paused ? this.#pausedUntil : undefined;
  }

  stats(): SenderLimiterStats {
    const stats: SenderLimiterStats = {
      waiting: this.#slots.waiting + this.#calls.size + this.#waitingForTurn,
      inFlight: this.#inFlight,
      inWindow: this.#slots.taken,
    };
    const pausedUntil = this.pausedUntil;
    if (pausedUntil !== undefined) stats.pausedUntil = pausedUntil;
    return stats;
  }

  /**
   * For the end of the session: stops the pause timer, drops what still waits in the queue (abort the calls'
   * signals first: a dropped call's `run` never settles otherwise) and releases every slot still held for its window
   * (their timers are cancelled, so none keeps the process alive; read `recentCalls()` first: the session state hands
   * the window over). Calls in flight finish, and hold no slot after. Idempotent.
   */
  clear(): void {
    this.#cleared.abort();
    if (this.#resumeTimer !== undefined) clearTimeout(this.#resumeTimer);
    this.#resumeTimer = undefined;
    this.#slots.clear();
    this.#calls.clear();
  }
}

/**
 * The window's slots, weighted: `capacity` in all, a caller takes several at once. Waiting callers are served strictly
 * in order (greater priority first, then arrival), so one that needs many slots is not overtaken for ever by callers
 * that need few. `pause()` stops serving (slots taken stay taken) until `start()`.
 */
class Slots {
  #taken = 0;
  #paused = false;
  readonly #waiting: Array<{ slots: number; priority: number; grant: () => void }> = [];

  constructor(readonly capacity: number) {}

  /** Slots taken now. */
  get taken(): number {
    return this.#taken;
  }

  /** Callers waiting. */
  get waiting(): number {
    return this.#waiting.length;
  }

  /** Resolves once `slots` (at most `capacity`) are taken for the caller; rejects with the signal's reason if it fires first. */
  take(slots: number, priority: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        const at = this.#waiting.indexOf(entry);
        if (at >= 0) {
          this.#waiting.splice(at, 1);
          this.#serve();
        }
        reject(signal?.reason);
      };
      const entry = {
        slots,
        priority,
        grant: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      let at = this.#waiting.length;
      while (at > 0 && (this.#waiting[at - 1] as { priority: number }).priority < priority) at--;
      this.#waiting.splice(at, 0, entry);
      this.#serve();
    });
  }

  /** Gives `slots` back. */
  give(slots: number): void {
    this.#taken -= slots;
    this.#serve();
  }

  pause(): void {
    this.#paused = true;
  }

  start(): void {
    this.#paused = false;
    this.#serve();
  }

  /** Drops every waiting caller: its promise settles only when its signal fires (abort the signals first). */
  clear(): void {
    this.#waiting.length = 0;
  }

  #serve(): void {
    for (let next = this.#waiting[0]; next !== undefined && !this.#paused && this.#taken + next.slots <= this.capacity; next = this.#waiting[0]) {
      this.#waiting.shift();
      this.#taken += next.slots;
      next.grant();
    }
  }
}
