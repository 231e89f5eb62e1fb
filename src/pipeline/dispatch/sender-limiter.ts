/**
 * One sender's rate limit, enforced locally: the dispatch stage holds one `outbound` session per sender at a time
 * (one replica), so a limit kept in this process is the limit the provider sees, however many replicas run.
 *
 * Invariants: the provider never counts more than `messages` (in cost) in any window, wherever between a call's start
 * and its end its request arrives, because each call holds its slots from before it starts until a window after it
 * ends (`run`); every call attempt counts, retries included; waiting calls are served strictly in order (priority,
 * then arrival), so a costly call is never overtaken for ever by cheap ones; a call that started is never
 * interrupted: it finishes on its own (its own timeout bounds it); the calls in flight at once follow the rate and the
 * latency (`concurrency.ts`), within `maxConcurrency`, and only ever cap what the slots let start.
 */
import { delayUnlessAborted, linkedController, raceAbort, sleepOrReject, whenAborted } from '../../abort.js';
import { StartDeadlineError } from '../../errors.js';
import { intOption } from '../../options.js';
import { AdaptiveConcurrency, LatencyEstimate, type ConcurrencyChange } from './concurrency.js';

export interface SenderLimiterOptions {
  /** Calls per window (the provider's limit). */
  messages: number;
  /** The provider's window. @defaultValue 1000 */
  intervalMs?: number;
  /**
   * The most calls in flight at once; below it, the calls in flight are sized from the rate and the observed latency
   * (`concurrency.ts`). @defaultValue 100
   */
  maxConcurrency?: number;
  /** The sender's latency so far (a session taken again starts from it). @defaultValue a new estimate */
  latency?: LatencyEstimate;
  /** Told when the calls allowed in flight change. */
  onConcurrencyChange?: (change: ConcurrencyChange) => void;
  /**
   * Minimum time from the end of a call to a recipient to the start of the next one to it (Telegram: 1 s per chat),
   * one recipient's calls taking turns in arrival order; 0 turns the spacing off. @defaultValue 0
   */
  perRecipientMs?: number;
  /**
   * Per group recipient (`isGroup`): the spacing instead of `perRecipientMs` when longer (Telegram: 20 a minute in one
   * group, 3 s); 0 turns it off. @defaultValue 0
   */
  perGroupMs?: number;
  /** Which recipients are groups (Telegram: group and supergroup chats). @defaultValue none */
  isGroup?: (recipient: string) => boolean;
  /** Added to each hold and to the per-recipient spacing, for timer granularity and clock steps. @defaultValue 10 */
  guardMs?: number;
  /** The clock (ms since the epoch). @defaultValue Date.now */
  now?: () => number;
}

export interface RunOptions {
  /**
   * Drops the call while it waits (for its recipient's turn, a slot or a pause): `run` rejects with the signal's
   * reason. Ignored once the call started: it finishes and `run` returns its result.
   */
  signal?: AbortSignal;
  /** Greater runs earlier among waiting calls (retries go first). @defaultValue 0 */
  priority?: number;
  /**
   * What the call counts against `messages` (Twilio counts a message's segments against the sender's rate: `messages`
   * is then segments per window), taken all at once. A call costing more than `messages` takes every slot and holds
   * them `ceil(cost / messages)` windows after it ends (the provider spreads it over that many). An integer >= 1.
   * @defaultValue 1
   */
  cost?: number;
  /**
   * The latest time the call may start (ms since the epoch, for the end of a session lock): a call that cannot start
   * by then is not made and `run` rejects with a `StartDeadlineError`: at once when a wait whose end is known (a
   * pause, the recipient's spacing) would end past it, or when a pause that begins while it waits does; otherwise
   * (waiting for a slot or its recipient's turn) when the time comes and it still waits. @defaultValue no deadline
   */
  startBy?: number;
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
  /** How long a call of cost 1 keeps limiting the next ones (the window, or the recipient spacing when longer). */
  readonly handOverWindowMs: number;
  readonly #isGroup: (recipient: string) => boolean;
  /** Slots: `messages` at once, a call's `cost` of them held from before it starts until `windowMs` after it ends. */
  readonly #slots: Slots;
  /** Calls in flight: `#concurrency.current` at once (one slot each; in arrival order, once their window slots are taken). */
  readonly #calls: Slots;
  readonly #concurrency: AdaptiveConcurrency;
  readonly #onConcurrencyChange: ((change: ConcurrencyChange) => void) | undefined;
  readonly #now: () => number;
  /** When the holds of the calls that ended end (`holdMsOf` after each call's end; ms since the epoch). */
  #heldUntil = 0;
  /** The costs of the calls in flight. */
  readonly #running: number[] = [];
  readonly #lastByRecipient = new Map<string, number>();
  /** Per recipient: resolves when the last call that took a turn ended (or gave its turn up). */
  readonly #turns = new Map<string, Promise<void>>();
  #waitingForTurn = 0;
  /** When a call last started or ended (ms since the epoch); 0 before the first. */
  #lastCallAt = 0;
  #pausedUntil = 0;
  #resumeTimer: ReturnType<typeof setTimeout> | undefined;
  /** Aborted by `clear()`: ends the holds of slots after their call (see `#hold`). */
  readonly #cleared = new AbortController();
  /** Calls with a start deadline that have not ended yet: a pause past their deadline drops them. */
  readonly #deadlines = new Set<{ startBy: number; drop: (error: StartDeadlineError) => void }>();

  constructor(options: SenderLimiterOptions) {
    const messages = intOption('SenderLimiter', 'messages', options.messages, undefined, 1);
    const intervalMs = intOption('SenderLimiter', 'intervalMs', options.intervalMs, 1000, 1);
    const maxConcurrency = intOption('SenderLimiter', 'maxConcurrency', options.maxConcurrency, 100, 1);
    const perRecipientMs = intOption('SenderLimiter', 'perRecipientMs', options.perRecipientMs, 0, 0);
    const perGroupMs = intOption('SenderLimiter', 'perGroupMs', options.perGroupMs, 0, 0);
    const guardMs = intOption('SenderLimiter', 'guardMs', options.guardMs, 10, 0);
    this.#now = options.now ?? Date.now;
    this.windowMs = intervalMs + guardMs;
    this.recipientSpacingMs = perRecipientMs === 0 ? 0 : perRecipientMs + guardMs;
    this.groupSpacingMs =
      perGroupMs === 0 || options.isGroup === undefined ? 0 : Math.max(perGroupMs + guardMs, this.recipientSpacingMs);
    this.#isGroup = options.isGroup ?? (() => false);
    this.#slots = new Slots(messages);
    this.handOverWindowMs = this.holdMsOf(1);
    this.#concurrency = new AdaptiveConcurrency({
      messages,
      intervalMs,
      maxConcurrency,
      latency: options.latency ?? new LatencyEstimate(),
    });
    this.#onConcurrencyChange = options.onConcurrencyChange;
    this.#calls = new Slots(this.#concurrency.current);
  }

  /** Calls allowed in flight now (sized from the rate and the latency, see `concurrency.ts`). */
  get concurrency(): number {
    return this.#concurrency.current;
  }

  /** The most calls ever allowed in flight: `maxConcurrency`, and at most `messages`. */
  get concurrencyLimit(): number {
    return this.#concurrency.limit;
  }

  /** A call took `ms`: sizes the calls in flight again. */
  #observe(ms: number): void {
    const change = this.#concurrency.observe(ms);
    if (change === undefined) return;
    this.#calls.resize(change.to);
    this.#onConcurrencyChange?.(change);
  }

  /**
   * Runs `call` when this sender's window, any pause and the recipient's spacing allow it. Rejects with the
   * signal's reason when the signal fires before the call starts, with a `StartDeadlineError` when it cannot start by
   * `startBy`; `call`'s own result or error otherwise.
   *
   * The window is counted the way the provider counts: a provider counts a message when its request *arrives*,
   * somewhere between the call's start and its end, and network and event-loop jitter of tens of milliseconds are
   * common on a loaded machine, so a limit on call *starts* (p-queue's strict interval) could still show the provider
   * `messages + 1` arrivals in one window. Instead the call holds `cost` of the `messages` slots from before it starts
   * until `intervalMs + guardMs` after it ends: `messages + 1` arrivals within one window would need `messages + 1`
   * slots held at one instant (the window's last moment lies inside each of their holds). The price is the call's own
   * latency per slot and window (utilization ≈ interval / (interval + latency + guard)).
   */
  async run<T>(recipient: string, call: () => Promise<T>, options: RunOptions = {}): Promise<T> {
    intOption('SenderLimiter run', 'cost', options.cost, 1, 1);
    const { startBy } = options;
    const now = this.#now();
    if (startBy !== undefined) {
      if (now > startBy) throw new StartDeadlineError(startBy, 'the deadline has passed');
      if (this.#pausedUntil > startBy && this.paused)
        throw new StartDeadlineError(
          startBy,
          `the sender is paused until ${new Date(this.#pausedUntil).toISOString()}`,
        );
    }
    const atOnce = this.#startAtOnce(recipient, call, options);
    if (atOnce !== undefined) return atOnce;
    if (startBy === undefined) return this.#run(recipient, call, options);
    // The call waits under a signal that also fires at the deadline, or when a pause past it begins.
    const deadline = linkedController(options.signal);
    const entry = { startBy, drop: (error: StartDeadlineError) => deadline.abort(error) };
    const timer = setTimeout(
      () => entry.drop(new StartDeadlineError(startBy, "still waiting for a slot or its recipient's turn")),
      startBy - now,
    );
    this.#deadlines.add(entry);
    try {
      return await this.#run(recipient, call, { ...options, signal: deadline.signal });
    } finally {
      clearTimeout(timer);
      this.#deadlines.delete(entry);
      deadline.dispose();
    }
  }

  /**
   * The call started now, when it need not wait: no recipient spacing, not paused, nobody waiting ahead of it and its
   * slots and a call slot free (a sender below its rate and its calls in flight). Undefined when it must wait: then
   * `run` waits for it under its signal and deadline. Nothing waits here, so neither is watched.
   */
  #startAtOnce<T>(recipient: string, call: () => Promise<T>, options: RunOptions): Promise<T> | undefined {
    const cost = options.cost ?? 1;
    const slots = Math.min(cost, this.#slots.capacity);
    if (options.signal?.aborted || this.#spacingOf(recipient) > 0) return undefined;
    if (!this.#slots.free(slots) || !this.#calls.free(1)) return undefined;
    this.#slots.takeNow(slots);
    this.#calls.takeNow(1);
    return this.#started(recipient, call, cost, slots, () => undefined);
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
          throw new StartDeadlineError(
            options.startBy,
            `the recipient's next turn is at ${new Date(at).toISOString()}`,
          );
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
    if (signal?.aborted) return Promise.reject(signal.reason);
    // The signal counts only while the call waits: each gate stops listening to it once it lets the call through, so
    // a call that started finishes (no controller of its own per call is needed for that).
    return this.#slots.take(slots, options.priority ?? 0, signal).then(async () => {
      try {
        await this.#calls.take(1, 0, signal);
      } catch (err) {
        this.#slots.give(slots);
        throw err;
      }
      try {
        signal?.throwIfAborted();
        // A start a busy event loop made late: still not past the deadline (nothing is recorded: no call).
        if (options.startBy !== undefined && this.#now() > options.startBy)
          throw new StartDeadlineError(options.startBy, 'the deadline has passed');
      } catch (err) {
        this.#calls.give(1);
        this.#slots.give(slots);
        throw err;
      }
      return this.#started(recipient, call, cost, slots, onEnd);
    });
  }

  /**
   * Runs `call`, its `slots` and a call slot taken: the call slot is given back when it ends, the slots a whole window
   * (`ceil(cost / messages)` windows) after (see `run`).
   */
  #started<T>(recipient: string, call: () => Promise<T>, cost: number, slots: number, onEnd: () => void): Promise<T> {
    this.#running.push(cost);
    const startedAt = this.#now();
    this.#lastCallAt = startedAt;
    const ended = (): void => {
      this.#running.splice(this.#running.indexOf(cost), 1);
      const endedAt = this.#now();
      this.#lastCallAt = endedAt;
      this.#record(recipient, cost, endedAt);
      this.#observe(endedAt - startedAt);
      onEnd();
      this.#calls.give(1);
    };
    const result = (async () => {
      try {
        return await call();
      } finally {
        ended();
      }
    })();
    const windows = Math.ceil(cost / this.#slots.capacity);
    const hold = (): Promise<void> => this.#hold(this.windowMs * windows);
    void result.then(hold, hold).finally(() => this.#slots.give(slots));
    return result;
  }

  /** Waits `ms` holding a slot; `clear()` ends every hold at once (and a hold after `clear()` does not wait). */
  #hold(ms: number): Promise<void> {
    return delayUnlessAborted(ms, this.#cleared.signal);
  }

  /** A call to `recipient` costing `cost` ended at `now`. */
  #record(recipient: string, cost: number, now: number): void {
    this.#heldUntil = Math.max(this.#heldUntil, now + this.holdMsOf(cost));
    if (this.#spacingOf(recipient) > 0) this.#lastByRecipient.set(recipient, now);
    if (this.#lastByRecipient.size > 1024) {
      for (const [recipient, at] of this.#lastByRecipient) {
        if (now - at >= this.#spacingOf(recipient)) this.#lastByRecipient.delete(recipient);
      }
    }
  }

  /**
   * Holds every call not yet started until `at` (ms since the epoch: a 429 `Retry-After`, or the hold the last holder
   * of the session left); a later `at` extends a running pause; calls in flight are not affected. A waiting call whose
   * start deadline is before `at` is dropped at once (`StartDeadlineError`).
   */
  pauseUntil(at: number): void {
    if (this.#cleared.signal.aborted) return;
    const waitMs = at - this.#now();
    if (waitMs <= 0 || at <= this.#pausedUntil) return;
    this.#pausedUntil = at;
    for (const entry of [...this.#deadlines]) {
      if (entry.startBy < at)
        entry.drop(new StartDeadlineError(entry.startBy, `the sender is paused until ${new Date(at).toISOString()}`));
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
   * How long after its end a call costing `cost` keeps limiting this sender's next calls (ms): the windows its slots
   * stay taken (`ceil(cost / messages)`: the provider spreads a costlier call over that many), or the longest recipient
   * spacing when that is longer. What a successor waits for one such call.
   */
  holdMsOf(cost: number): number {
    return Math.max(
      Math.ceil(cost / this.#slots.capacity) * this.windowMs,
      this.recipientSpacingMs,
      this.groupSpacingMs,
    );
  }

  /**
   * For the session state: how long from now the calls made so far keep limiting the next ones (ms; 0 when none
   * does): the latest end of their holds (`holdMsOf`), a call still in flight counting as ending now.
   */
  holdLeftMs(): number {
    const running = this.largestCostInFlight;
    return Math.max(0, this.#heldUntil - this.#now(), running === 0 ? 0 : this.holdMsOf(running));
  }

  /** The largest cost among the calls in flight; 0 when none is. */
  get largestCostInFlight(): number {
    return this.#running.reduce((a, b) => Math.max(a, b), 0);
  }

  /** When a call last started or ended (ms since the epoch); 0 before the first. */
  get lastCallAt(): number {
    return this.#lastCallAt;
  }

  /** When a running pause ends, or undefined. */
  get pausedUntil(): number | undefined {
    return this.paused ? this.#pausedUntil : undefined;
  }

  stats(): SenderLimiterStats {
    const stats: SenderLimiterStats = {
      waiting: this.#slots.waiting + this.#calls.waiting + this.#waitingForTurn,
      inFlight: this.#running.length,
      inWindow: this.#slots.taken,
    };
    const pausedUntil = this.pausedUntil;
    if (pausedUntil !== undefined) stats.pausedUntil = pausedUntil;
    return stats;
  }

  /**
   * For the end of the session: stops the pause timer, drops what still waits in the queue (abort the calls'
   * signals first: a dropped call's `run` never settles otherwise) and releases every slot still held for its window
   * (their timers are cancelled, so none keeps the process alive; read `holdLeftMs()` first: the session state hands
   * the hold over). Calls in flight finish, and hold no slot after. Idempotent.
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
 * Slots, weighted: `capacity` in all, a caller takes several at once (the window's slots; the calls in flight, one
 * each). Waiting callers are served strictly in order (greater priority first, then arrival), so one that needs many
 * slots is not overtaken for ever by callers that need few. `pause()` stops serving (slots taken stay taken) until
 * `start()`.
 */
class Slots {
  #capacity: number;
  #taken = 0;
  #paused = false;
  readonly #waiting: Array<{ slots: number; priority: number; grant: () => void }> = [];

  constructor(capacity: number) {
    this.#capacity = capacity;
  }

  get capacity(): number {
    return this.#capacity;
  }

  /** A new capacity: more serves waiting callers at once; fewer lets what is taken end before serving again. */
  resize(capacity: number): void {
    this.#capacity = capacity;
    this.#serve();
  }

  /** Slots taken now. */
  get taken(): number {
    return this.#taken;
  }

  /** Callers waiting. */
  get waiting(): number {
    return this.#waiting.length;
  }

  /** Whether `slots` can be taken now without waiting: not paused, nobody waiting, and that many free. */
  free(slots: number): boolean {
    return !this.#paused && this.#waiting.length === 0 && this.#taken + slots <= this.#capacity;
  }

  /** Takes `slots` now (after `free(slots)`). */
  takeNow(slots: number): void {
    this.#taken += slots;
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
          stopListening();
          resolve();
        },
      };
      // Not addEventListener: the callers of one batch share its signal, and an EventTarget walks every listener to
      // remove one.
      const stopListening = whenAborted(signal, onAbort);
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
    for (
      let next = this.#waiting[0];
      next !== undefined && !this.#paused && this.#taken + next.slots <= this.#capacity;
      next = this.#waiting[0]
    ) {
      this.#waiting.shift();
      this.#taken += next.slots;
      next.grant();
    }
  }
}
