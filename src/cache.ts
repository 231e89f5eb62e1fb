/**
 * A small in-process cache with a size bound and a time to live, one way for the whole code base (Dataverse message
 * records in src/dataverse/reads.ts, activity rows in the callbacks directory).
 *
 * - At most `max` entries: setting one more evicts the least recently used (a `Map` keeps insertion order; a hit or
 *   a set moves the key to the end).
 * - Each entry lives `ttlMs` from when it was set; an expired entry is never returned and is dropped when met.
 * - `max: 0` or `ttlMs: 0`: nothing is kept (every `get` misses).
 */

export interface TtlCacheOptions {
  /** Entries kept at most (an integer >= 0). */
  max: number;
  /** How long an entry is returned after it was set, ms (>= 0). */
  ttlMs: number;
  /** The clock (ms). @defaultValue Date.now */
  now?: () => number;
  /** Names the options in a `TypeError` (`<name>.max must be …`). @defaultValue 'TtlCache' */
  name?: string;
}

export class TtlCache<K, V> {
  readonly max: number;
  readonly ttlMs: number;
  readonly #now: () => number;
  /** Least recently used first. */
  readonly #entries = new Map<K, { value: V; expiresAt: number }>();

  /** Validates the options: a bad `max` or `ttlMs` throws a `TypeError` naming it. */
  constructor(options: TtlCacheOptions) {
    const name = options.name ?? 'TtlCache';
    if (!Number.isInteger(options.max) || options.max < 0)
      throw new TypeError(`${name}.max must be an integer >= 0, found ${String(options.max)}`);
    if (!(options.ttlMs >= 0)) throw new TypeError(`${name}.ttlMs must be >= 0, found ${String(options.ttlMs)}`);
    this.max = options.max;
    this.ttlMs = options.ttlMs;
    this.#now = options.now ?? Date.now;
  }

  /** The live value of `key` (now the most recently used), or undefined when absent or expired (then dropped). */
  get(key: K): V | undefined {
    const hit = this.#entries.get(key);
    if (hit === undefined) return undefined;
    this.#entries.delete(key);
    if (hit.expiresAt <= this.#now()) return undefined;
    this.#entries.set(key, hit);
    return hit.value;
  }

  /** Keeps `value` for `ttlMs` as the most recently used entry, evicting the least recently used beyond `max`. */
  set(key: K, value: V): void {
    if (this.max === 0 || this.ttlMs === 0) return;
    this.#entries.delete(key);
    this.#entries.set(key, { value, expiresAt: this.#now() + this.ttlMs });
    while (this.#entries.size > this.max) this.#entries.delete(this.#entries.keys().next().value as K);
  }

  /** Drops `key` (nothing when absent). */
  delete(key: K): void {
    this.#entries.delete(key);
  }

  /** Entries held, expired ones not yet met included. */
  get size(): number {
    return this.#entries.size;
  }
}
