/**
 * Sliding-window counting for the simulators' rate limits and their statistics. A window of `windowMs` ending at
 * `now` holds the events with `time > now - windowMs`: two events exactly `windowMs` apart are in different
 * windows, so a sender paced at one message every 1000 ms never counts twice in a 1000 ms window.
 */

/** The event times of one key (a sender, a chat) within the last `windowMs`, and the most ever seen at once. */
export class SlidingWindow {
  readonly #windowMs: number;
  #times: number[] = [];
  #max = 0;

  constructor(windowMs: number) {
    if (!(windowMs > 0)) throw new TypeError(`SlidingWindow: windowMs must be > 0, found ${windowMs}`);
    this.#windowMs = windowMs;
  }

  #prune(now: number): void {
    const floor = now - this.#windowMs;
    let drop = 0;
    while (drop < this.#times.length && this.#times[drop]! <= floor) drop += 1;
    if (drop > 0) this.#times.splice(0, drop);
  }

  /** Events in the window ending at `now`. */
  count(now: number): number {
    this.#prune(now);
    return this.#times.length;
  }

  /** Records an event at `now` (a clock that goes backwards is treated as standing still). Returns the count after it. */
  add(now: number): number {
    const last = this.#times[this.#times.length - 1];
    const at = last !== undefined && last > now ? last : now;
    this.#prune(at);
    this.#times.push(at);
    if (this.#times.length > this.#max) this.#max = this.#times.length;
    return this.#times.length;
  }

  /**
   * Milliseconds from `now` until the window holds fewer than `limit` events (0 when it already does): when the
   * event that has to leave the window leaves it.
   */
  waitMs(now: number, limit: number): number {
    this.#prune(now);
    if (this.#times.length < limit) return 0;
    const leaving = this.#times[this.#times.length - limit]!;
    return Math.max(1, leaving + this.#windowMs - now);
  }

  /** The most events any window of `windowMs` has held (windows ending at an event, which is where the maximum is). */
  get maxInAnyWindow(): number {
    return this.#max;
  }
}

/** One `SlidingWindow` per key, created on first use. */
export class SlidingWindows {
  readonly #windowMs: number;
  readonly #windows = new Map<string, SlidingWindow>();

  constructor(windowMs: number) {
    this.#windowMs = windowMs;
  }

  get(key: string): SlidingWindow {
    let w = this.#windows.get(key);
    if (!w) {
      w = new SlidingWindow(this.#windowMs);
      this.#windows.set(key, w);
    }
    return w;
  }

  clear(): void {
    this.#windows.clear();
  }
}
