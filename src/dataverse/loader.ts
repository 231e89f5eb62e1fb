/**
 * A small batching loader: the reads of concurrent requests (the callbacks service's contact and activity lookups)
 * coalesced into one query per batch.
 *
 * Invariants:
 * - No linger when idle: a key asked while no batch of this loader is in flight goes at once (on the next tick, so
 *   the keys of one synchronous burst share it). Keys asked while a batch is in flight wait at most `windowMs` from
 *   the first of them (or less, when `maxBatch` are waiting), then go together.
 * - Keyed and de-duplicated: a key already waiting or in flight shares that batch's answer.
 * - Bounded: at most `maxBatch` keys a batch.
 * - Errors per key: `load` answers each key with a value, `undefined` (not found) or an `Error` for that key alone;
 *   a rejected `load` (the request failed: a governor refusal, a 429 past its retries, a timeout) fails the keys of
 *   that batch only.
 * - A caller's signal ends its own wait (rejects with the signal's reason); the batch's request is aborted only when
 *   every caller waiting on it has gone.
 */
import { abortReason, raceAbort } from '../abort.js';

export interface BatchLoaderOptions<V> {
  /**
   * Reads `keys` (distinct, at most `maxBatch`) in one request: a map holding, for each key found, its value or an
   * `Error` for that key; a key absent from the map was not found.
   */
  load(keys: readonly string[], signal: AbortSignal): Promise<Map<string, V | Error>>;
  /** The longest a key waits for others while a batch is in flight, ms. @defaultValue 5 */
  windowMs?: number;
  /** Keys per batch at most. @defaultValue 50 */
  maxBatch?: number;
  /** Names the loader in a `TypeError` about its options. @defaultValue 'BatchLoader' */
  name?: string;
}

export const LOADER_DEFAULTS = { windowMs: 5, maxBatch: 50 } as const;

interface Pending<V> {
  promise: Promise<V | undefined>;
  resolve(value: V | undefined): void;
  reject(err: unknown): void;
  /** Callers still waiting on it. */
  waiting: number;
}

interface Batch<V> {
  keys: Map<string, Pending<V>>;
  controller: AbortController;
}

export class BatchLoader<V> {
  readonly windowMs: number;
  readonly maxBatch: number;
  readonly #load: BatchLoaderOptions<V>['load'];
  /** Keys waiting for the next batch, in order. */
  #queue = new Map<string, Pending<V>>();
  /** Batches sent and not answered yet. */
  readonly #inFlight = new Set<Batch<V>>();
  #timer: NodeJS.Timeout | undefined;
  #scheduled = false;

  constructor(options: BatchLoaderOptions<V>) {
    const name = options.name ?? 'BatchLoader';
    const windowMs = options.windowMs ?? LOADER_DEFAULTS.windowMs;
    const maxBatch = options.maxBatch ?? LOADER_DEFAULTS.maxBatch;
    if (!(Number.isFinite(windowMs) && windowMs >= 0))
      throw new TypeError(`${name}.windowMs must be a number >= 0, found ${String(options.windowMs)}`);
    if (!Number.isInteger(maxBatch) || maxBatch < 1)
      throw new TypeError(`${name}.maxBatch must be an integer >= 1, found ${String(options.maxBatch)}`);
    this.windowMs = windowMs;
    this.maxBatch = maxBatch;
    this.#load = options.load;
  }

  /** The value of `key`; undefined when not found. Rejects with the key's error, the batch's, or `signal`'s reason. */
  load(key: string, signal?: AbortSignal): Promise<V | undefined> {
    if (signal?.aborted) return Promise.reject(abortReason(signal));
    const pending = this.#queue.get(key) ?? this.#sharedInFlight(key) ?? this.#enqueue(key);
    pending.waiting++;
    const left = (): void => {
      pending.waiting--;
      if (pending.waiting === 0) this.#abandon();
    };
    return raceAbort(pending.promise, signal).finally(left);
  }

  /** Keys waiting for a batch (tests, metrics). */
  get queued(): number {
    return this.#queue.size;
  }

  #sharedInFlight(key: string): Pending<V> | undefined {
    for (const batch of this.#inFlight) {
      // A batch aborted because every caller left answers nobody new.
      if (batch.controller.signal.aborted) continue;
      const pending = batch.keys.get(key);
      if (pending !== undefined) return pending;
    }
    return undefined;
  }

  #enqueue(key: string): Pending<V> {
    let resolve!: Pending<V>['resolve'];
    let reject!: Pending<V>['reject'];
    const promise = new Promise<V | undefined>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    // A key whose callers all left before its answer rejects unobserved.
    promise.catch(() => undefined);
    const pending: Pending<V> = { promise, resolve, reject, waiting: 0 };
    this.#queue.set(key, pending);
    if (this.#inFlight.size === 0 || this.#queue.size >= this.maxBatch) this.#flushSoon();
    else this.#timer ??= setTimeout(() => this.#flush(false), this.windowMs);
    return pending;
  }

  /** On the next tick: the keys asked in this one go together (only full batches while one is in flight). */
  #flushSoon(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    process.nextTick(() => {
      this.#scheduled = false;
      this.#flush(this.#inFlight.size > 0);
    });
  }

  /** Sends the waiting keys in batches of `maxBatch`; with `fullOnly`, a last partial batch waits for its window. */
  #flush(fullOnly: boolean): void {
    if (!fullOnly && this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    while (this.#queue.size >= (fullOnly ? this.maxBatch : 1)) {
      const keys = new Map<string, Pending<V>>();
      for (const [key, pending] of this.#queue) {
        if (keys.size === this.maxBatch) break;
        keys.set(key, pending);
      }
      for (const key of keys.keys()) this.#queue.delete(key);
      // Keys whose callers all left before the batch went are not asked.
      for (const [key, pending] of keys) if (pending.waiting === 0) keys.delete(key);
      if (keys.size > 0) void this.#send({ keys, controller: new AbortController() });
    }
    if (this.#queue.size === 0 && this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    } else if (this.#queue.size > 0) this.#timer ??= setTimeout(() => this.#flush(false), this.windowMs);
  }

  async #send(batch: Batch<V>): Promise<void> {
    this.#inFlight.add(batch);
    try {
      const found = await this.#load([...batch.keys.keys()], batch.controller.signal);
      for (const [key, pending] of batch.keys) {
        const value = found.get(key);
        if (value instanceof Error) pending.reject(value);
        else pending.resolve(value);
      }
    } catch (err) {
      for (const pending of batch.keys.values()) pending.reject(err);
    } finally {
      this.#inFlight.delete(batch);
      // Keys that waited for this batch to end go now rather than at the end of their window.
      if (this.#queue.size > 0 && this.#inFlight.size === 0) this.#flushSoon();
    }
  }

  /** Aborts the batches no caller waits for any more. */
  #abandon(): void {
    for (const batch of this.#inFlight)
      if ([...batch.keys.values()].every((p) => p.waiting === 0)) batch.controller.abort(new Error('no caller waits'));
  }
}
