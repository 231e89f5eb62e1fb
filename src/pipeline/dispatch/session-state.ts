/**
 * The dispatch stage's session state: what one holder of an `outbound` session (one sender) leaves for the next
 * holder, on any replica, so that the sender's rate limit also holds across the moment a session moves, and so that
 * a holder that died does not make its successor send again what it had in flight.
 *
 * The state is JSON `{"v":2,"clean":true?,"sentAt":[ms…],"pausedUntil":ms?,"inFlight":[[key,ms]…]?}`:
 * - `sentAt`: the end times (ms since the epoch, wall clock) of the provider calls made within the last rate window
 *   (a call still in flight counts as ending when the state was written);
 * - `pausedUntil`: the end of a provider-imposed pause (429 Retry-After) running when the state was written;
 * - `clean`: written only by a holder that released the session (its `onClose`), after every call of it ended: then
 *   `sentAt` and `pausedUntil` are the whole truth. A state without it was written before a batch's calls
 *   (`inFlight`), by a holder that may have died during them: its calls after the write are unknown;
 * - `inFlight`: the messages (their key, and when the state was written before their calls) whose provider call may
 *   have been made without the outcome being settled: the next holder reconciles each before sending it again.
 * It holds no recipient and no message content. Version 1 (`{"v":1,"sentAt","pausedUntil"}`, written only at a
 * release by earlier versions) reads as a clean state without entries.
 */

import { errorMessage } from '../../errors.js';

/** The session state version written by this code. */
const SESSION_STATE_VERSION = 2;

/** One message that may have reached the provider: its key and when its batch's state was written (ms since the epoch). */
export type InFlightEntry = readonly [key: string, startedAt: number];

export interface DispatchSessionState {
  v: typeof SESSION_STATE_VERSION;
  /** Written at a release, after every call ended: `sentAt` and `pausedUntil` are all there is to know. */
  clean?: true;
  /** End times of the provider calls within the last rate window, oldest first (ms since the epoch). */
  sentAt: number[];
  /** A provider pause (429 `Retry-After`) still running when written: no call before this time (ms since the epoch). */
  pausedUntil?: number;
  /** Messages that may have reached the provider without a settled outcome. */
  inFlight?: InFlightEntry[];
}

export type DecodedSessionState = { ok: true; state: DispatchSessionState | undefined } | { ok: false; reason: string };

/** Writes the state as the session state Buffer. */
export function encodeSessionState(state: DispatchSessionState): Buffer {
  const body: DispatchSessionState = { v: SESSION_STATE_VERSION, ...(state.clean ? { clean: true as const } : {}), sentAt: [...state.sentAt].sort((a, b) => a - b) };
  if (state.pausedUntil !== undefined) body.pausedUntil = state.pausedUntil;
  if (state.inFlight !== undefined && state.inFlight.length > 0) body.inFlight = state.inFlight.map(([key, at]) => [key, at] as const);
  return Buffer.from(JSON.stringify(body), 'utf8');
}

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
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { ok: false, reason: 'session state is not a JSON object' };
  const o = value as Record<string, unknown>;
  const version = o['v'];
  if (version !== 1 && version !== SESSION_STATE_VERSION) return { ok: false, reason: `session state version ${JSON.stringify(version)} is not 1 or ${SESSION_STATE_VERSION}` };
  const sentAt = o['sentAt'];
  if (!Array.isArray(sentAt) || !sentAt.every((t) => typeof t === 'number' && Number.isFinite(t))) {
    return { ok: false, reason: 'session state sentAt must be an array of numbers' };
  }
  const state: DispatchSessionState = { v: SESSION_STATE_VERSION, sentAt: [...(sentAt as number[])].sort((a, b) => a - b) };
  // Version 1 was written only at a release.
  if (version === 1 || o['clean'] === true) state.clean = true;
  const pausedUntil = o['pausedUntil'];
  if (pausedUntil !== undefined) {
    if (typeof pausedUntil !== 'number' || !Number.isFinite(pausedUntil)) return { ok: false, reason: 'session state pausedUntil must be a number' };
    state.pausedUntil = pausedUntil;
  }
  const inFlight = o['inFlight'];
  if (inFlight !== undefined) {
    const entry = (e: unknown): e is InFlightEntry =>
      Array.isArray(e) && e.length === 2 && typeof e[0] === 'string' && e[0] !== '' && typeof e[1] === 'number' && Number.isFinite(e[1]);
    if (!Array.isArray(inFlight) || !inFlight.every(entry)) return { ok: false, reason: 'session state inFlight must be an array of [key, ms] pairs' };
    if (inFlight.length > 0) state.inFlight = inFlight.map(([key, at]) => [key, at] as const);
  }
  return { ok: true, state };
}

/** A pause read from a session state is honoured for at most this long from now (a stale value must not stall a sender). */
export const MAX_HANDED_OVER_PAUSE_MS = 5 * 60_000;

/**
 * When a new holder may make its first call. After a clean release: once every call the last holder recorded has
 * left the window (`last sentAt + windowMs`), and not before a pause it left running ends. Conservative: waiting for
 * the whole window (rather than only for the oldest of a full window) costs at most one window per hand-over and needs
 * no agreement on how many calls the window still allows. Every recorded call happened before now, so the wait for
 * them is at most one window from now, whatever the other replica's clock said; a handed-over pause is honoured for
 * at most `MAX_HANDED_OVER_PAUSE_MS`.
 *
 * Without a clean release (the last holder wrote its state before a batch's calls and did not release: it died, or
 * lost its lock), the worst is assumed: that it used the whole window just before the session came here, so the
 * first call waits one full window from now (the takeover), and for a recorded pause. A dropped connection releases
 * a session at once (Microsoft's emulator and this project's; on Azure very likely too, the link detaching with the
 * connection), so the dead holder's last calls may have ended just now: its last call time is unknown, the takeover
 * time is the only safe origin.
 */
export function firstSendAt(state: DispatchSessionState | undefined, windowMs: number, now: number): number {
  if (state === undefined) return 0;
  const paused = Math.min(state.pausedUntil ?? 0, now + MAX_HANDED_OVER_PAUSE_MS);
  if (state.clean !== true) return Math.max(now + windowMs, paused);
  const last = state.sentAt.length === 0 ? 0 : Math.min((state.sentAt[state.sentAt.length - 1] as number) + windowMs, now + windowMs);
  return Math.max(last, paused);
}
