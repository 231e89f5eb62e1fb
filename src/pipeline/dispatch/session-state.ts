/**
 * The session state of an `outbound` session (one sender): what one holder leaves for the next, on any replica, so
 * that the sender's rate limit holds across the move and a holder that died does not make its successor send again
 * what it had in flight. JSON `{"v":3,"clean":true?,"holdMs":n,"pauseMs":n?,"callHoldMs":n?,"inFlight":[[key,ms]…]?}`
 * (the fields are described on `DispatchSessionState`), with no recipient and no message content.
 *
 * Invariants: what limits the next call is handed over as durations measured by the writer on its own clock, so the
 * clocks of two replicas need not agree; a reader honours each for at most the longest it can legitimately be
 * (`HandOverLimits`). Older states are still read: version 2 (`{"v":2,"clean"?,"sentAt":[ms…],"pausedUntil"?,
 * "inFlight"?}`, times on the writer's clock) and version 1 (`{"v":1,"sentAt","pausedUntil"}`, written only at a
 * release: read as a clean version 2 state).
 */

import { errorMessage } from '../../errors.js';

/** The session state version written by this code. */
const SESSION_STATE_VERSION = 3;

/** One message that may have reached the provider: its key and when its batch's state was written (ms since the epoch). */
export type InFlightEntry = readonly [key: string, startedAt: number];

/** The state this code writes. Durations are from the moment of the write, measured by the writer. */
export interface DispatchSessionState {
  v: typeof SESSION_STATE_VERSION;
  /**
   * Written at a release (`onClose`), after every call of the hold ended: `holdMs` and `pauseMs` are then all there is
   * to know. Without it the state was written before a batch's calls, by a holder that may have died during them.
   */
  clean?: true;
  /**
   * How long after the write the calls made so far keep limiting the next one (ms): the latest end of a call's hold
   * of the sender (its windows, or its recipient's spacing when longer); a call still in flight counts as ending at
   * the write.
   */
  holdMs: number;
  /** A provider pause (429 `Retry-After`) running at the write: what was left of it (ms). */
  pauseMs?: number;
  /**
   * In a state written before a batch's calls only: the hold of the costliest call the writer may make or finish
   * after the write (the batch's, or one in flight), counted from that call's end (ms). A successor that finds no
   * clean release waits this long from its takeover, since that call may have ended just before.
   */
  callHoldMs?: number;
  /** Messages that may have reached the provider without a settled outcome. */
  inFlight?: InFlightEntry[];
}

/** A version 2 state (version 1 reads as one): the last window's call end times and a pause, on the writer's clock. */
export interface LegacySessionState {
  v: 2;
  clean?: true;
  /** End times of the provider calls within the last rate window, oldest first (ms since the epoch). */
  sentAt: number[];
  /** A provider pause still running when written: no call before this time (ms since the epoch). */
  pausedUntil?: number;
  inFlight?: InFlightEntry[];
}

export type SessionState = DispatchSessionState | LegacySessionState;

export type DecodedSessionState = { ok: true; state: SessionState | undefined } | { ok: false; reason: string };

/** Writes the state as the session state Buffer. */
export function encodeSessionState(state: DispatchSessionState): Buffer {
  const body: DispatchSessionState = {
    v: SESSION_STATE_VERSION,
    ...(state.clean ? { clean: true as const } : {}),
    holdMs: state.holdMs,
  };
  if (state.pauseMs !== undefined) body.pauseMs = state.pauseMs;
  if (state.callHoldMs !== undefined) body.callHoldMs = state.callHoldMs;
  if (state.inFlight !== undefined && state.inFlight.length > 0)
    body.inFlight = state.inFlight.map(([key, at]) => [key, at] as const);
  return Buffer.from(JSON.stringify(body), 'utf8');
}

const isFiniteNumber = (value: unknown): value is number => typeof value === 'number' && Number.isFinite(value);

/**
 * Reads a session state. No state (undefined or empty) is `{ ok: true, state: undefined }`; anything unreadable is
 * `{ ok: false, reason }` (the caller then waits one full window, conservatively).
 */
export function decodeSessionState(raw: Buffer | undefined): DecodedSessionState {
  if (raw === undefined || raw.length === 0) return { ok: true, state: undefined };
  let value: unknown;
  try {
    value = JSON.parse(raw.toString('utf8'));
  } catch (err) {
    return { ok: false, reason: `session state is not JSON (${errorMessage(err)})` };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    return { ok: false, reason: 'session state is not a JSON object' };
  const o = value as Record<string, unknown>;
  const version = o['v'];
  if (version !== 1 && version !== 2 && version !== SESSION_STATE_VERSION) {
    return {
      ok: false,
      reason: `session state version ${JSON.stringify(version)} is not 1, 2 or ${SESSION_STATE_VERSION}`,
    };
  }
  const inFlight = o['inFlight'];
  let entries: InFlightEntry[] | undefined;
  if (inFlight !== undefined) {
    const entry = (e: unknown): e is InFlightEntry =>
      Array.isArray(e) && e.length === 2 && typeof e[0] === 'string' && e[0] !== '' && isFiniteNumber(e[1]);
    if (!Array.isArray(inFlight) || !inFlight.every(entry))
      return { ok: false, reason: 'session state inFlight must be an array of [key, ms] pairs' };
    if (inFlight.length > 0) entries = inFlight.map(([key, at]) => [key, at] as const);
  }
  if (version === SESSION_STATE_VERSION) {
    const durations: Partial<Record<'holdMs' | 'pauseMs' | 'callHoldMs', number>> = {};
    for (const name of ['holdMs', 'pauseMs', 'callHoldMs'] as const) {
      const ms = o[name];
      if (ms === undefined && name !== 'holdMs') continue;
      if (!isFiniteNumber(ms) || ms < 0)
        return { ok: false, reason: `session state ${name} must be a number >= 0, not ${JSON.stringify(ms)}` };
      durations[name] = ms;
    }
    const state: DispatchSessionState = {
      v: SESSION_STATE_VERSION,
      ...(o['clean'] === true ? { clean: true as const } : {}),
      holdMs: durations.holdMs as number,
    };
    if (durations.pauseMs !== undefined) state.pauseMs = durations.pauseMs;
    if (durations.callHoldMs !== undefined) state.callHoldMs = durations.callHoldMs;
    if (entries !== undefined) state.inFlight = entries;
    return { ok: true, state };
  }
  const sentAt = o['sentAt'];
  if (!Array.isArray(sentAt) || !sentAt.every(isFiniteNumber))
    return { ok: false, reason: 'session state sentAt must be an array of numbers' };
  const state: LegacySessionState = { v: 2, sentAt: [...sentAt].sort((a, b) => a - b) };
  // Version 1 was written only at a release.
  if (version === 1 || o['clean'] === true) state.clean = true;
  const pausedUntil = o['pausedUntil'];
  if (pausedUntil !== undefined) {
    if (!isFiniteNumber(pausedUntil)) return { ok: false, reason: 'session state pausedUntil must be a number' };
    state.pausedUntil = pausedUntil;
  }
  if (entries !== undefined) state.inFlight = entries;
  return { ok: true, state };
}

/** A pause read from a session state is honoured for at most this long from now (a stale value must not stall a sender). */
export const MAX_HANDED_OVER_PAUSE_MS = 5 * 60_000;

/** The reader's own measures of its sender (`SenderLimiter.holdMsOf`), which bound what a state may ask of it. */
export interface HandOverLimits {
  /** The hold of a call of cost 1: one window, or the recipient spacing when longer (`handOverWindowMs`). */
  windowMs: number;
  /** The longest hold one call of this sender can cause at its provider (its largest cost): no hold is honoured longer. */
  maxHoldMs: number;
}

/**
 * When a new holder may make its first call (ms since the epoch on its clock; `now` or earlier when at once), from
 * the state the last holder left.
 *
 * After a clean release: once the hold of the calls the last holder made has passed (`holdMs`, counted from now:
 * the time the state spent in transit only adds to it), and not before a pause it left running ends.
 *
 * Without one (the last holder wrote its state before a batch's calls and did not release: it died, or lost its
 * lock), the worst is assumed: that its costliest call ended just as the session came here, so the first call waits
 * that call's hold from now (`callHoldMs`; at least one window), and for what the state itself records. A dropped
 * connection releases a session at once (Microsoft's emulator and this project's; on Azure very likely too, the link
 * detaching with the connection), so the dead holder's last call may have ended just now: the takeover is the only
 * safe origin.
 *
 * Each hold is honoured for at most `maxHoldMs`, a pause for at most `MAX_HANDED_OVER_PAUSE_MS`. A version 2 state
 * carries times on its writer's clock: they are read as they are, within the same bounds (a clock ahead of ours
 * costs at most those), and without a clean release the costliest call is taken to hold one window.
 */
export function firstSendAt(state: SessionState | undefined, limits: HandOverLimits, now: number): number {
  if (state === undefined) return now;
  const hold = (ms: number): number => now + Math.min(ms, limits.maxHoldMs);
  const unclean = state.clean !== true ? now + limits.windowMs : now;
  if (state.v === 2) {
    const last = state.sentAt.at(-1);
    const calls = last === undefined ? now : Math.min(last + limits.windowMs, hold(Infinity));
    return Math.max(calls, Math.min(state.pausedUntil ?? 0, now + MAX_HANDED_OVER_PAUSE_MS), unclean);
  }
  const calls = hold(Math.max(state.holdMs, state.clean === true ? 0 : (state.callHoldMs ?? 0)));
  return Math.max(calls, now + Math.min(state.pauseMs ?? 0, MAX_HANDED_OVER_PAUSE_MS), unclean);
}
