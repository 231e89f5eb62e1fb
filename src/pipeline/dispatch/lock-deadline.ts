/**
 * The dispatch stage's arithmetic of the session lock's deadline: when the last provider call of a session may start,
 * and until when an outcome may still be recorded and settled (a batch that handed messages back at the deadline
 * returns as soon as they are settled, asking the session loop to release the session: see `DispatchSession.onBatch`). All
 * times are ms since the epoch; `undefined` means the session loop gives no lock deadline (nothing is bounded).
 */
import type { AcceptedSession } from '../ports.js';

/** Kept at the very end of a session lock to settle a delivery after its interaction was sent (or given up). */
const SETTLE_MS = 1000;

/** The reason of a batch's start signal when the session lock's deadline stopped it. */
export class LockDeadlineReached extends Error {
  override readonly name = 'LockDeadlineReached';
}

/** True when the signal was stopped by the session lock's deadline (its reason is a `LockDeadlineReached`). */
export function stoppedAtLockDeadline(signal: AbortSignal): boolean {
  return signal.reason instanceof LockDeadlineReached;
}

/** The session lock's deadline, when the session loop gives one. */
export function sessionLockedUntil(session: Pick<AcceptedSession, 'lockedUntil'>): number | undefined {
  const at = session.lockedUntil?.();
  return typeof at === 'number' && Number.isFinite(at) ? at : undefined;
}

/** The latest start of a call with this timeout: its end, timeout included, leaves `lockMarginMs` of the lock. */
export function lastCallStart(
  lockedUntil: number | undefined,
  timeoutMs: number,
  lockMarginMs: number,
): number | undefined {
  return lockedUntil === undefined ? undefined : lockedUntil - timeoutMs - lockMarginMs;
}

/** The deadline of an interaction send: known (sent or not) while the lock still allows to settle the delivery. */
export function settleDeadline(lockedUntil: number | undefined): number | undefined {
  return lockedUntil === undefined ? undefined : lockedUntil - SETTLE_MS;
}
