/**
 * The session state of a `conversations` session (one customer of one bridged channel): the Direct Line conversation
 * the customer talks in, so that the next holder, on any replica, after a restart too, resumes it instead of starting
 * another. JSON, versioned (`v`), bounded (at most {@link POSTED_KEPT} ids, each at most 128 characters), with no
 * message text, no phone number and no account secret in it (the conversation's own token only).
 */
import { errorMessage } from '../../errors.js';

/** The state version written by this code. A reader refuses versions it does not know. */
const STATE_VERSION = 1;

/** Customer messages kept as posted: the most recent ones, enough to recognise any redelivery. */
export const POSTED_KEPT = 50;

/** Longest id kept (`conversationMessageId` bounds its ids to 128). */
const MAX_ID_LENGTH = 128;

export interface ConversationState {
  v: typeof STATE_VERSION;
  /** The messaging account the conversation belongs to (its Direct Line secret renews the token). */
  account: string;
  conversationId: string;
  /** The conversation's token (never the account's secret). */
  token: string;
  /** ms since the epoch. */
  tokenExpiresAt: number;
  /** Where the next read of the conversation's activities starts; absent before the first read. */
  watermark?: string;
  /** The `from.id` of the customer's activities in this conversation (no address in it). */
  userId: string;
  /** When the conversation was started (ms since the epoch). */
  startedAt: number;
  /** The last activity either way: a customer message posted, or an agent's activity read (ms since the epoch). */
  lastActivityAt: number;
  /** When the poll scheduled last is due (ms since the epoch); absent when none is scheduled. */
  pollDueAt?: number;
  /** Polls in a row that brought nothing (the interval doubles with each). */
  idlePolls: number;
  /** Relay ids (`relayMessageId`) of the customer messages posted to this conversation, oldest first. */
  posted: string[];
  /**
   * Relay ids of customer messages whose post began when the state was written and had not been recorded as posted:
   * a holder that died may have posted them, so the next one looks for them in the conversation first.
   */
  posting?: string[];
  /**
   * Relay ids of the customer messages posted (or being posted) to the customer's previous conversation, which the
   * agents ended or Direct Line forgot: a redelivery of one of them is not posted again to this one.
   */
  previous?: string[];
}

/**
 * A read state: the conversation (none after it ended), and the customer messages posted to the previous one (see
 * `ConversationState.previous`), also kept while there is no conversation.
 */
export type DecodedState =
  { ok: true; state: ConversationState | undefined; previous: string[] } | { ok: false; reason: string };

/** Adds `id` to the posted ids, keeping the newest {@link POSTED_KEPT}, and takes it off `posting`. */
export function markPosted(state: ConversationState, id: string): void {
  if (!state.posted.includes(id)) state.posted.push(id);
  if (state.posted.length > POSTED_KEPT) state.posted.splice(0, state.posted.length - POSTED_KEPT);
  if (state.posting !== undefined) {
    state.posting = state.posting.filter((p) => p !== id);
    if (state.posting.length === 0) delete state.posting;
  }
}

/** The state as the session state Buffer. */
export function encodeState(state: ConversationState): Buffer {
  const body: ConversationState = {
    v: STATE_VERSION,
    account: state.account,
    conversationId: state.conversationId,
    token: state.token,
    tokenExpiresAt: state.tokenExpiresAt,
    ...(state.watermark === undefined ? {} : { watermark: state.watermark }),
    userId: state.userId,
    startedAt: state.startedAt,
    lastActivityAt: state.lastActivityAt,
    ...(state.pollDueAt === undefined ? {} : { pollDueAt: state.pollDueAt }),
    idlePolls: state.idlePolls,
    posted: state.posted.slice(-POSTED_KEPT),
    ...(state.posting === undefined || state.posting.length === 0
      ? {}
      : { posting: state.posting.slice(-POSTED_KEPT) }),
    ...(state.previous === undefined || state.previous.length === 0
      ? {}
      : { previous: state.previous.slice(-POSTED_KEPT) }),
  };
  return Buffer.from(JSON.stringify(body), 'utf8');
}

/**
 * The state of a session whose conversation ended: no conversation, only the ids posted to it (bounded), so that a
 * redelivery of one is recognised; JSON `null` when there are none.
 */
export function encodeEnded(previous: readonly string[]): Buffer {
  if (previous.length === 0) return CLEARED_STATE;
  return Buffer.from(JSON.stringify({ v: STATE_VERSION, previous: previous.slice(-POSTED_KEPT) }), 'utf8');
}

/**
 * Reads a session state. None (undefined, empty, or JSON `null`: what `clearState` leaves) is `{ ok: true, state:
 * undefined }`; anything unreadable is `{ ok: false, reason }` naming the field.
 */
export function decodeState(raw: Buffer | undefined): DecodedState {
  if (raw === undefined || raw.length === 0) return { ok: true, state: undefined, previous: [] };
  let value: unknown;
  try {
    value = JSON.parse(raw.toString('utf8'));
  } catch (err) {
    return { ok: false, reason: `the session state is not JSON (${errorMessage(err)})` };
  }
  if (value === null) return { ok: true, state: undefined, previous: [] };
  if (typeof value !== 'object' || Array.isArray(value))
    return { ok: false, reason: 'the session state is not a JSON object' };
  const o = value as Record<string, unknown>;
  const bad = (field: string, expected: string): DecodedState => ({
    ok: false,
    reason: `the session state's ${field} must be ${expected}, found ${JSON.stringify(o[field])?.slice(0, 40) ?? 'nothing'}`,
  });
  if (o['v'] !== STATE_VERSION) return bad('v', `${STATE_VERSION} (the version this relay reads)`);
  const ids = (f: 'posted' | 'posting' | 'previous'): string[] | undefined => {
    const list = o[f];
    if (!Array.isArray(list) || list.length > POSTED_KEPT) return undefined;
    return list.every((id) => typeof id === 'string' && id !== '' && id.length <= MAX_ID_LENGTH)
      ? (list as string[])
      : undefined;
  };
  const expectedIds = `an array of at most ${POSTED_KEPT} ids (non-empty strings of at most ${MAX_ID_LENGTH} characters)`;
  const previous = o['previous'] === undefined ? [] : ids('previous');
  if (previous === undefined) return bad('previous', expectedIds);
  // An ended conversation leaves only what was posted to it.
  if (o['conversationId'] === undefined) return { ok: true, state: undefined, previous: [...previous] };
  const strings = ['account', 'conversationId', 'token', 'userId'] as const;
  for (const f of strings) if (typeof o[f] !== 'string' || o[f] === '') return bad(f, 'a non-empty string');
  const numbers = ['tokenExpiresAt', 'startedAt', 'lastActivityAt', 'idlePolls'] as const;
  for (const f of numbers)
    if (typeof o[f] !== 'number' || !Number.isFinite(o[f]) || o[f] < 0) return bad(f, 'a number >= 0');
  if (o['watermark'] !== undefined && typeof o['watermark'] !== 'string') return bad('watermark', 'a string');
  if (o['pollDueAt'] !== undefined && (typeof o['pollDueAt'] !== 'number' || !Number.isFinite(o['pollDueAt'])))
    return bad('pollDueAt', 'a number');
  const posted = ids('posted');
  if (posted === undefined) return bad('posted', expectedIds);
  const posting = o['posting'] === undefined ? undefined : ids('posting');
  if (o['posting'] !== undefined && posting === undefined) return bad('posting', expectedIds);
  const state: ConversationState = {
    v: STATE_VERSION,
    account: o['account'] as string,
    conversationId: o['conversationId'] as string,
    token: o['token'] as string,
    tokenExpiresAt: o['tokenExpiresAt'] as number,
    userId: o['userId'] as string,
    startedAt: o['startedAt'] as number,
    lastActivityAt: o['lastActivityAt'] as number,
    idlePolls: o['idlePolls'] as number,
    posted: [...posted],
  };
  if (typeof o['watermark'] === 'string') state.watermark = o['watermark'];
  if (typeof o['pollDueAt'] === 'number') state.pollDueAt = o['pollDueAt'];
  if (posting !== undefined && posting.length > 0) state.posting = [...posting];
  if (previous.length > 0) state.previous = [...previous];
  return { ok: true, state, previous: [...previous] };
}

/** What a session writes when it has nothing to keep: JSON `null` (a reader takes it for no state). */
export const CLEARED_STATE: Buffer = Buffer.from('null', 'utf8');
