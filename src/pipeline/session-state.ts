/**
 * The dispatch stage's session state: what one holder of an `outbound` session (one sender) leaves for the next
 * holder, on any replica, so that the sender's rate limit also holds across the moment a session moves.
 *
 * The state is JSON `{"v":1,"sentAt":[ms…],"pausedUntil":ms?}`: the end times (ms since the epoch, wall clock) of
 * the provider calls made within the last rate window (a call still in flight counts as ending at hand-over), and the end of a provider-imposed pause (429 Retry-After)
 * still running. It holds no recipient and no message content.
 */

import { errorMessage } from '../errors.js';

/** The session state version written by this code. */
const SESSION_STATE_VERSION = 1;

export interface DispatchSessionState {
  v: typeof SESSION_STATE_VERSION;
  /** End times of the provider calls within the last rate window, oldest first (ms since the epoch). */
  sentAt: number[];
  /** A provider pause (429 `Retry-After`) still running at hand-over: no call before this time (ms since the epoch). */
  pausedUntil?: number;
}

export type DecodedSessionState = { ok: true; state: DispatchSessionState | undefined } | { ok: false; reason: string };

/** Writes the state as the session state Buffer. */
export function encodeSessionState(state: DispatchSessionState): Buffer {
  const body: DispatchSessionState = { v: SESSION_STATE_VERSION, sentAt: [...state.sentAt].sort((a, b) => a - b) };
  if (state.pausedUntil !== undefined) body.pausedUntil = state.pausedUntil;
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
  if (o['v'] !== SESSION_STATE_VERSION) return { ok: false, reason: `session state version ${JSON.stringify(o['v'])} is not ${SESSION_STATE_VERSION}` };
  const sentAt = o['sentAt'];
  if (!Array.isArray(sentAt) || !sentAt.every((t) => typeof t === 'number' && Number.isFinite(t))) {
    return { ok: false, reason: 'session state sentAt must be an array of numbers' };
  }
  const state: DispatchSessionState = { v: SESSION_STATE_VERSION, sentAt: [...(sentAt as number[])].sort((a, b) => a - b) };
  const pausedUntil = o['pausedUntil'];
  if (pausedUntil !== undefined) {
    if (typeof pausedUntil !== 'number' || !Number.isFinite(pausedUntil)) return { ok: false, reason: 'session state pausedUntil must be a number' };
    state.pausedUntil = pausedUntil;
  }
  return { ok: true, state };
}

/** A pause read from a session state is honoured for at most this long from now (a stale value must not stall a sender). */
export const MAX_HANDED_OVER_PAUSE_MS = 5 * 60_000;

/**
 * When a new holder may make its first call: once every call the last holder recorded has left the window
 * (`last sentAt + windowMs`), and not before a pause it left running ends. Conservative: waiting for the whole window
 * (rather than only for the oldest of a full window) costs at most one window per hand-over and needs no agreement
 * on how many calls the window still allows. Every recorded call happened before now, so the wait for them is at
 * most one window from now, whatever the other replica's clock said; a handed-over pause is honoured for at most
 * `MAX_HANDED_OVER_PAUSE_MS`.
 */
export function firstSendAt(state: DispatchSessionState | undefined, windowMs: number, now: number): number {
  if (state === undefined) return 0;
  const last = state.sentAt.length === 0 ? 0 : Math.min((state.sentAt[state.sentAt.length - 1] as number) + windowMs, now + windowMs);
  const paused = Math.min(state.pausedUntil ?? 0, now + MAX_HANDED_OVER_PAUSE_MS);
  return Math.max(last, paused);
}
