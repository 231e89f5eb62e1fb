/**
 * A queue's dead letters for an operator: peek them (nothing is removed, a count per reason over every one read) and
 * replay the chosen ones to their queue.
 *
 * Invariants of a replay: a message goes back with everything that keeps duplicate detection and sessions working
 * (body bytes, message id, session id, application properties without the broker's dead-letter ones …); its dead
 * letter is completed only after its send succeeded; every other dead letter stays where it was (delivery count + 1);
 * one the queue may still remember (within `duplicateWindowMs`) is skipped, since the broker would drop it silently;
 * the first failure stops the replay.
 */
import type {
  ServiceBusClient,
  ServiceBusReceivedMessage,
  ServiceBusReceiver,
  ServiceBusSender,
} from '@azure/service-bus';
import Long from 'long';
import { isLockLostError } from './delivery.js';
import { intOption } from '../options.js';

/** Application properties the broker adds when it dead-letters a message; replay does not carry them back. */
const DEAD_LETTER_PROPERTIES: readonly string[] = ['DeadLetterReason', 'DeadLetterErrorDescription'];

/** One message of a dead-letter queue, as read (peeked or received). */
export interface DeadLetter {
  /** The sequence number in the dead-letter queue (decimal). */
  sequenceNumber: string;
  enqueuedTimeUtc: Date | undefined;
  messageId: string | undefined;
  deliveryCount: number | undefined;
  /** `DeadLetterReason`: a code such as `EventUnknownChannel`. */
  reason: string | undefined;
  /** `DeadLetterErrorDescription`: what was wrong. */
  description: string | undefined;
  sessionId: string | undefined;
  subject: string | undefined;
  contentType: string | undefined;
  correlationId: string | undefined;
  /** The application properties without {@link DEAD_LETTER_PROPERTIES}. */
  applicationProperties: Record<string, unknown>;
  /** A data section's bytes as a Buffer (never parsed), a value or a sequence as the SDK gives it. */
  body: unknown;
  bodyType: 'data' | 'value' | 'sequence';
}

/** Which dead letters: all given criteria must hold; an absent criterion matches everything. */
export interface DeadLetterFilter {
  /** The exact `DeadLetterReason`. */
  reason?: string;
  /** Any of these message ids. */
  messageIds?: readonly string[];
  /** None of these reasons (e.g. dead letters that must never go back to their queue). */
  excludeReasons?: readonly string[];
}

/** Whether `deadLetter` matches `filter`. */
function matchesDeadLetter(deadLetter: DeadLetter, filter: DeadLetterFilter = {}): boolean {
  if (filter.reason !== undefined && deadLetter.reason !== filter.reason) return false;
  if (
    filter.excludeReasons !== undefined &&
    deadLetter.reason !== undefined &&
    filter.excludeReasons.includes(deadLetter.reason)
  )
    return false;
  if (filter.messageIds !== undefined && filter.messageIds.length > 0) {
    if (deadLetter.messageId === undefined || !filter.messageIds.includes(deadLetter.messageId)) return false;
  }
  return true;
}

/** The reason counted for a dead letter without one. */
export const NO_REASON = '(no reason)';

export interface PeekDeadLettersOptions {
  /** @defaultValue {} (everything) */
  filter?: DeadLetterFilter;
  /** Return at most this many matching dead letters (counting goes on over the whole queue). @defaultValue Infinity */
  limit?: number;
  /** Messages per peek request. @defaultValue 100 */
  pageSize?: number;
  signal?: AbortSignal;
}

export interface PeekDeadLettersResult {
  /** The matching dead letters, in sequence order, at most `limit`. */
  matching: DeadLetter[];
  /** How many matched (beyond `limit` too). */
  matched: number;
  /** How many dead letters were read. */
  scanned: number;
  /** Dead letters per reason over every one read ({@link NO_REASON} for none). */
  byReason: Record<string, number>;
}

const RECEIVER_OPTIONS = { subQueueType: 'deadLetter', skipParsingBodyAsJson: true, skipConvertingDate: true } as const;

/** Reads (peeks) the whole dead-letter queue of `queue`; nothing is locked or removed. */
export async function peekDeadLetters(
  client: ServiceBusClient,
  queue: string,
  options: PeekDeadLettersOptions = {},
): Promise<PeekDeadLettersResult> {
  const { positions: _positions, skipped: _skipped, ...result } = await scanDeadLetters(client, queue, options);
  return result;
}

interface Scan extends PeekDeadLettersResult {
  /** The position of each of `matching` among all the dead letters read (0-based). */
  positions: number[];
  /** Matching dead letters that `skip` set aside (not in `matching`, not counted toward `limit`). */
  skipped: DeadLetter[];
}

/** {@link peekDeadLetters}, with positions, and setting aside the matching dead letters for which `skip` holds. */
async function scanDeadLetters(
  client: ServiceBusClient,
  queue: string,
  options: PeekDeadLettersOptions & { skip?: (d: DeadLetter) => boolean },
): Promise<Scan> {
  const limit = options.limit ?? Number.POSITIVE_INFINITY;
  if (!(limit >= 0)) throw new TypeError(`peekDeadLetters: limit must be >= 0, found ${String(limit)}`);
  const pageSize = intOption('peekDeadLetters', 'pageSize', options.pageSize, 100, 1);
  const receiver = client.createReceiver(queue, { ...RECEIVER_OPTIONS, receiveMode: 'peekLock' });
  const result: Scan = { matching: [], matched: 0, scanned: 0, byReason: {}, positions: [], skipped: [] };
  try {
    // Always from an explicit sequence number: without one, the SDK goes on after the last message peeked on that
    // entity by any receiver of the same client, so a second peek of the queue would start at its end.
    let from = Long.ZERO;
    for (;;) {
      const page = await receiver.peekMessages(pageSize, {
        fromSequenceNumber: from,
        ...(options.signal ? { abortSignal: options.signal } : {}),
      });
      if (page.length === 0) break;
      const last = page[page.length - 1]?.sequenceNumber;
      if (last === undefined) throw new Error(`peekDeadLetters: a peeked message of ${queue} has no sequence number`);
      from = last.add(1);
      for (const message of page) {
        const deadLetter = toDeadLetter(message);
        result.scanned += 1;
        const reason = deadLetter.reason ?? NO_REASON;
        result.byReason[reason] = (result.byReason[reason] ?? 0) + 1;
        if (!matchesDeadLetter(deadLetter, options.filter)) continue;
        result.matched += 1;
        if (options.skip?.(deadLetter)) result.skipped.push(deadLetter);
        else if (result.matching.length < limit) {
          result.matching.push(deadLetter);
          result.positions.push(result.scanned - 1);
        }
      }
    }
  } finally {
    await receiver.close();
  }
  return result;
}

/** A received or peeked message as a {@link DeadLetter}. */
function toDeadLetter(message: ServiceBusReceivedMessage): DeadLetter {
  const applicationProperties: Record<string, unknown> = { ...(message.applicationProperties ?? {}) };
  for (const key of DEAD_LETTER_PROPERTIES) delete applicationProperties[key];
  const raw = message._rawAmqpMessage;
  return {
    sequenceNumber: message.sequenceNumber === undefined ? '' : message.sequenceNumber.toString(),
    enqueuedTimeUtc: message.enqueuedTimeUtc,
    messageId: idText(message.messageId),
    deliveryCount: message.deliveryCount,
    reason: message.deadLetterReason,
    description: message.deadLetterErrorDescription,
    sessionId: message.sessionId,
    subject: message.subject,
    contentType: message.contentType,
    correlationId: idText(message.correlationId),
    applicationProperties,
    body: message.body as unknown,
    bodyType: raw.bodyType ?? 'data',
  };
}

function idText(id: string | number | Buffer | undefined): string | undefined {
  if (id === undefined || id === null) return undefined;
  return Buffer.isBuffer(id) ? id.toString('utf8') : String(id);
}

type Sendable = Parameters<ServiceBusSender['sendMessages']>[0];
type AmqpMessage = ServiceBusReceivedMessage['_rawAmqpMessage'];

/** The message replay sends for a received dead letter: the same body and identity, none of the broker's state. */
function replayMessageOf(message: ServiceBusReceivedMessage): AmqpMessage {
  const deadLetter = toDeadLetter(message);
  const from = message._rawAmqpMessage.properties ?? {};
  const properties: NonNullable<AmqpMessage['properties']> = {};
  for (const key of [
    'messageId',
    'contentType',
    'subject',
    'groupId',
    'correlationId',
    'to',
    'replyTo',
    'replyToGroupId',
  ] as const) {
    if (from[key] !== undefined && from[key] !== null) (properties as Record<string, unknown>)[key] = from[key];
  }
  return {
    body: deadLetter.body,
    bodyType: deadLetter.bodyType,
    properties,
    applicationProperties: deadLetter.applicationProperties as AmqpMessage['applicationProperties'],
  };
}

/** One step of a replay, for progress lines. */
export interface ReplayProgress {
  /** 1-based position among the planned dead letters handled so far. */
  done: number;
  /** How many are planned. */
  total: number;
  deadLetter: DeadLetter;
}

export interface ReplayDeadLettersOptions {
  /** @defaultValue {} (everything) */
  filter?: DeadLetterFilter;
  /** Replay at most this many (the first in sequence order; skipped ones do not count). @defaultValue Infinity */
  limit?: number;
  /**
   * The queue's duplicate-detection window in milliseconds: a matching dead letter whose `enqueuedTimeUtc` + this is
   * after `now` (or that has no enqueued time) is skipped, since the queue may still remember its message id and
   * would drop the replayed message without an error. The SDK cannot read a queue's window (only the administration
   * client can), so the caller states it; 0 skips nothing. @defaultValue undefined (nothing skipped: for a queue
   * without duplicate detection)
   */
  duplicateWindowMs?: number;
  /** The time `duplicateWindowMs` is measured against. @defaultValue the time the replay starts */
  now?: Date;
  /** Only plan: peek and return what would be replayed. @defaultValue false */
  dryRun?: boolean;
  /** How long one receive waits for dead letters before the rest count as gone. @defaultValue 5000 */
  receiveWaitMs?: number;
  /**
   * Non-matching messages held locked per receiver before another receiver is opened (the AMQP library stops
   * delivering to a link after about 2,047 unsettled deliveries). @defaultValue 1000
   */
  holdPerReceiver?: number;
  /** Called after each planned dead letter was replayed. */
  onReplayed?: (progress: ReplayProgress) => void;
  signal?: AbortSignal;
}

export interface ReplayFailure {
  /** The dead letter being replayed when it failed, when there was one. */
  deadLetter?: DeadLetter;
  /** Whether that message was already sent to the queue (then it is both on the queue and still a dead letter). */
  sent: boolean;
  error: unknown;
}

/** A dead letter replay left in place because the queue may still remember its message id. */
export interface SkippedDeadLetter {
  deadLetter: DeadLetter;
  /** When its `enqueuedTimeUtc` + `duplicateWindowMs` has passed; undefined when it has no enqueued time. */
  replayableAt: Date | undefined;
}

export interface ReplayDeadLettersResult {
  /** The dead letters to replay, from the peek (in sequence order), without the skipped ones. */
  planned: DeadLetter[];
  /** Matching dead letters within `duplicateWindowMs` of `now`, left in the dead-letter queue (in sequence order). */
  skipped: SkippedDeadLetter[];
  /** How many dead letters the peek read. */
  scanned: number;
  /** Dead letters per reason over every one the peek read. */
  byReason: Record<string, number>;
  /** Sent to the queue and completed in the dead-letter queue. */
  replayed: DeadLetter[];
  /** Planned but not received (removed or locked by someone else meanwhile, or not reached after a failure). */
  notReplayed: DeadLetter[];
  /** Messages received that were not planned, abandoned back to the dead-letter queue. */
  leftInPlace: number;
  /** The failure that stopped the replay. */
  failure?: ReplayFailure;
}

interface Held {
  receiver: ServiceBusReceiver;
  message: ServiceBusReceivedMessage;
}

/**
 * Replays the dead letters of `queue` that match. Throws only for a failed peek.
 *
 * It plans from a peek (so it knows how many it will replay), then receives the dead letters in peek-lock and sends
 * each planned one back to the queue with the same body bytes, body type, content type, application properties
 * (without the broker's `DeadLetterReason` / `DeadLetterErrorDescription`), message id, session id, subject,
 * correlation id, to, reply-to and reply-to session id; the dead letter is completed only after its send succeeded.
 * Every other message received on the way is held locked (so the receive moves on past it; another receiver is opened
 * every `holdPerReceiver` held) and abandoned at the end. The first failure stops the replay (what was replayed stays
 * replayed).
 *
 * A replayed message whose id the queue saw within its duplicate-detection window is dropped by the broker without an
 * error, and completing its dead letter would then lose it. The SDK cannot tell, nor read the queue's window, so the
 * caller states it (`duplicateWindowMs`) and every matching dead letter enqueued less than that long ago stays in the
 * dead-letter queue, returned with the time it becomes replayable. The enqueued time is the original send's, or the
 * dead-lettering's on a broker that stamps the dead-letter queue's own (later, so never too early).
 */
export async function replayDeadLetters(
  client: ServiceBusClient,
  queue: string,
  options: ReplayDeadLettersOptions = {},
): Promise<ReplayDeadLettersResult> {
  const receiveWaitMs = options.receiveWaitMs ?? 5000;
  if (!Number.isFinite(receiveWaitMs) || receiveWaitMs <= 0)
    throw new TypeError(`replayDeadLetters: receiveWaitMs must be > 0, found ${String(receiveWaitMs)}`);
  const holdPerReceiver = intOption('replayDeadLetters', 'holdPerReceiver', options.holdPerReceiver, 1000, 1);
  const windowMs = options.duplicateWindowMs;
  if (windowMs !== undefined && !(Number.isFinite(windowMs) && windowMs >= 0))
    throw new TypeError(`replayDeadLetters: duplicateWindowMs must be >= 0, found ${String(windowMs)}`);
  const now = (options.now ?? new Date()).getTime();
  if (Number.isNaN(now)) throw new TypeError('replayDeadLetters: now must be a valid date, found an invalid one');
  const replayableAt = (d: DeadLetter): Date | undefined =>
    d.enqueuedTimeUtc === undefined || windowMs === undefined
      ? undefined
      : new Date(d.enqueuedTimeUtc.getTime() + windowMs);
  const plan = await scanDeadLetters(client, queue, {
    ...(options.filter ? { filter: options.filter } : {}),
    ...(options.limit === undefined ? {} : { limit: options.limit }),
    ...(options.signal ? { signal: options.signal } : {}),
    ...(windowMs === undefined || windowMs === 0
      ? {}
      : { skip: (d: DeadLetter) => !((replayableAt(d)?.getTime() ?? Number.POSITIVE_INFINITY) <= now) }),
  });
  const result: ReplayDeadLettersResult = {
    planned: plan.matching,
    skipped: plan.skipped.map((deadLetter) => ({ deadLetter, replayableAt: replayableAt(deadLetter) })),
    scanned: plan.scanned,
    byReason: plan.byReason,
    replayed: [],
    notReplayed: [],
    leftInPlace: 0,
  };
  if (options.dryRun || plan.matching.length === 0) {
    if (options.dryRun) result.notReplayed = [...plan.matching];
    return result;
  }

  const pending = new Map(plan.matching.map((d) => [d.sequenceNumber, d]));
  const total = plan.matching.length;
  const seen = new Set<string>();
  const held: Held[] = [];
  const receivers: ServiceBusReceiver[] = [];
  const sender = client.createSender(queue);
  const abort = options.signal ? { abortSignal: options.signal } : {};
  let receiver: ServiceBusReceiver | undefined;
  let heldOnReceiver = 0;
  try {
    receiving: while (pending.size > 0) {
      if (receiver === undefined || heldOnReceiver >= holdPerReceiver) {
        receiver = client.createReceiver(queue, { ...RECEIVER_OPTIONS, receiveMode: 'peekLock' });
        receivers.push(receiver);
        heldOnReceiver = 0;
      }
      let batch: ServiceBusReceivedMessage[];
      try {
        // Ask for no more than the messages up to the last planned one (in the peek's order), so that the receive
        // does not wait for more after the last one came.
        const upToLast = (plan.positions[plan.positions.length - 1] ?? 0) + 1 - seen.size;
        const count = Math.max(1, Math.min(100, holdPerReceiver - heldOnReceiver, upToLast));
        batch = await receiver.receiveMessages(count, { maxWaitTimeInMs: receiveWaitMs, ...abort });
      } catch (err) {
        result.failure = { sent: false, error: err };
        break;
      }
      if (batch.length === 0) break;
      for (let i = 0; i < batch.length; i++) {
        const message = batch[i] as ServiceBusReceivedMessage;
        const sequenceNumber = message.sequenceNumber?.toString() ?? '';
        const planned = pending.get(sequenceNumber);
        if (planned === undefined || result.failure !== undefined) {
          // Not planned (or the replay has stopped): keep it locked so the receive moves on, abandon it at the end.
          // A second copy of one already held (its lock expired) only needs releasing with the rest.
          if (!seen.has(sequenceNumber)) result.leftInPlace += 1;
          seen.add(sequenceNumber);
          held.push({ receiver, message });
          heldOnReceiver += 1;
          continue;
        }
        pending.delete(sequenceNumber);
        seen.add(sequenceNumber);
        let sent = false;
        try {
          await sender.sendMessages(replayMessageOf(message) as Sendable, abort);
          sent = true;
          await receiver.completeMessage(message);
        } catch (err) {
          result.failure = { deadLetter: planned, sent, error: err };
          if (!sent) {
            held.push({ receiver, message });
            heldOnReceiver += 1;
          }
          continue;
        }
        result.replayed.push(planned);
        options.onReplayed?.({ done: result.replayed.length, total, deadLetter: planned });
      }
      if (result.failure !== undefined) break receiving;
    }
  } finally {
    // Abandoned one at a time: the broker must see each disposition on its own (see delivery.ts).
    for (const { receiver: r, message } of held) {
      try {
        await r.abandonMessage(message);
      } catch (err) {
        // A lost lock already gave the message back; anything else leaves it locked until its lock ends.
        if (!isLockLostError(err)) result.failure ??= { sent: false, error: err };
      }
    }
    for (const r of receivers) await r.close().catch(() => undefined);
    await sender.close().catch(() => undefined);
  }
  const replayed = new Set(result.replayed);
  result.notReplayed = plan.matching.filter((d) => !replayed.has(d));
  return result;
}
