/**
 * The messages of one held sender session whose provider call may have been made without a settled outcome: written
 * into the session state before each batch's calls (`inFlight`, see `session-state.ts`), so that the next holder,
 * when this one dies, reconciles each of them before it sends it again.
 */
import type { InFlightEntry } from './session-state.js';

/** Entries kept at most (≈ 60 bytes each in the state); past it the oldest are dropped, and said so. */
export const MAX_IN_FLIGHT_ENTRIES = 1000;
/**
 * An entry older than this is dropped: its message was settled by a holder that died before writing the state again,
 * or dead-lettered by the bus (MaxDeliveryCount) long ago.
 */
export const IN_FLIGHT_KEEP_MS = 24 * 60 * 60_000;

export class InFlightLedger {
  /** Key → when the state listing it was first written (ms since the epoch). */
  readonly #entries = new Map<string, number>();
  /** Keys a message of which must be reconciled before it is sent: listed before its batch came, here or by the last holder. */
  readonly #unreconciled = new Set<string>();

  /** `inherited`: the last holder's entries. */
  constructor(inherited: readonly InFlightEntry[] = []) {
    for (const [key, at] of inherited) {
      this.#entries.set(key, Math.min(at, this.#entries.get(key) ?? at));
      this.#unreconciled.add(key);
    }
  }

  get size(): number {
    return this.#entries.size;
  }

  /**
   * A batch is about to be sent: its keys are listed (from `now`), and a key listed before (by the last holder, or by
   * this one for a message handed back after a call) must be reconciled first. Returns the keys listed now.
   */
  begin(keys: readonly string[], now: number): string[] {
    const added: string[] = [];
    for (const key of keys) {
      if (this.#entries.has(key)) {
        this.#unreconciled.add(key);
      } else {
        this.#entries.set(key, now);
        added.push(key);
      }
    }
    return added;
  }

  /** When the message's first listed call may have started, if it must be reconciled before it is sent; else undefined. */
  reconcileSince(key: string): number | undefined {
    return this.#unreconciled.has(key) ? this.#entries.get(key) : undefined;
  }

  /** The message's call history is known (reconciled: found, or not found and about to be sent with a fresh entry). */
  reconciled(key: string): void {
    this.#unreconciled.delete(key);
  }

  /** The message's outcome is settled for good (completed or dead-lettered), or it never reached the provider. */
  settled(key: string): void {
    this.#entries.delete(key);
    this.#unreconciled.delete(key);
  }

  /**
   * The entries to write, oldest first: without those older than {@link IN_FLIGHT_KEEP_MS}, and the newest
   * {@link MAX_IN_FLIGHT_ENTRIES} only; `dropped` counts what the cap left out (their messages, should they come back,
   * are sent again without a lookup).
   */
  entries(now: number): { entries: InFlightEntry[]; dropped: number } {
    for (const [key, at] of this.#entries) if (now - at > IN_FLIGHT_KEEP_MS) this.settled(key);
    const all = [...this.#entries].sort((a, b) => a[1] - b[1]);
    const dropped = Math.max(0, all.length - MAX_IN_FLIGHT_ENTRIES);
    for (const [key] of all.slice(0, dropped)) this.settled(key);
    return { entries: all.slice(dropped).map(([key, at]) => [key, at] as const), dropped };
  }
}
