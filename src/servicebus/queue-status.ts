/**
 * One queue's state for an operator (`channel-relay status`): the broker's counts from the administration client
 * (`getQueueRuntimeProperties`: active, scheduled, dead-lettered, transfer; `getQueue` for whether it requires
 * sessions), the dead-letter reasons of a bounded sample (peeked, nothing locked or removed) and the age of the
 * oldest active message.
 *
 * The oldest message: a peek from sequence number 0 returns messages in every state (scheduled and deferred ones
 * too), so pages are peeked until the first `active` one, at most `oldestPeekLimit` messages. On a queue that
 * requires sessions it is not shown: Service Bus refuses a receiver without a session there, and peeking through a
 * session receiver needs that session's lock, which would take it from dispatch while status holds it.
 *
 * Assumptions, each with what would change if it were wrong:
 * - `ActiveMessageCount` includes peek-locked messages: Microsoft's documentation says only "the number of active
 *   messages in the entity" (`QueueRuntimeProperties.ActiveMessageCount`, .NET reference), and a locked message is
 *   still in the active state (its `state` stays `active`); the emulator counts it so. If Azure left locked messages
 *   out, a queue being worked would look emptier than it is; the oldest age would still show the wait.
 * - A peek returns scheduled and deferred messages too, each with its `state` (the SDK's `ServiceBusReceivedMessage.
 *   state`); if not, the first message peeked would be the oldest active one and the bound would never be reached.
 * - Azure refuses a receiver without a session on a queue that requires sessions, for a peek too (`amqp:not-allowed`,
 *   "It is not possible for an entity that requires sessions to create a non-sessionful message receiver.", as
 *   azure-sdk-for-go's live tests assert; the emulator refuses it too), hence no oldest age there; if a peek were
 *   allowed, it could be shown.
 */
import type { ServiceBusAdministrationClient, ServiceBusClient, ServiceBusReceiver } from '@azure/service-bus';
import Long from 'long';
import { intOption } from '../options.js';
import { NO_REASON } from './dead-letters.js';

export interface QueueStatus {
  queue: string;
  requiresSession: boolean;
  active: number;
  scheduled: number;
  deadLettered: number;
  transfer: number;
  transferDeadLettered: number;
  /** Every message of the queue and its dead-letter queue, as the broker counts them (deferred ones too). */
  total: number | undefined;
  sizeInBytes: number | undefined;
  deadLetterReasons: {
    /** Dead letters peeked: at most the sample size. */
    peeked: number;
    /** Whether every dead letter was peeked (false: the counts are of the first `peeked`). */
    complete: boolean;
    /** Count per `DeadLetterReason` ({@link NO_REASON} for none) among those peeked. */
    byReason: Record<string, number>;
  };
  oldest: OldestMessage;
}

/** The oldest active message, or why it is not known. */
export type OldestMessage =
  | { known: true; enqueuedAt: Date; ageMs: number }
  | { known: false; reason: 'empty' | 'sessions' | 'beyond-peek-limit'; peeked?: number };

export interface QueueStatusOptions {
  /** Dead letters peeked for their reasons. @defaultValue 100 */
  deadLetterSample?: number;
  /** Messages peeked at most to find the first active one. @defaultValue 250 */
  oldestPeekLimit?: number;
  /** The clock, for the age. @defaultValue Date.now */
  now?: () => number;
  signal?: AbortSignal;
}

const PAGE = 100;
const RECEIVER_OPTIONS = { skipParsingBodyAsJson: true, skipConvertingDate: true } as const;

/** Peeks up to `limit` messages of `receiver` from sequence number 0, page by page, until `stop` holds. */
async function peekFromStart(
  receiver: ServiceBusReceiver,
  limit: number,
  signal: AbortSignal | undefined,
  visit: (m: Awaited<ReturnType<ServiceBusReceiver['peekMessages']>>[number]) => boolean,
): Promise<{ peeked: number; exhausted: boolean }> {
  let from = Long.ZERO;
  let peeked = 0;
  while (peeked < limit) {
    const page = await receiver.peekMessages(Math.min(PAGE, limit - peeked), {
      fromSequenceNumber: from,
      ...(signal ? { abortSignal: signal } : {}),
    });
    if (page.length === 0) return { peeked, exhausted: true };
    for (const m of page) {
      peeked += 1;
      if (visit(m)) return { peeked, exhausted: false };
    }
    const last = page[page.length - 1]!.sequenceNumber;
    if (last === undefined) throw new Error('peek: a peeked message has no sequence number');
    from = last.add(1);
  }
  return { peeked, exhausted: false };
}

/** The state of `queue`; see the module comment. Throws the SDK's errors (`MessageEntityNotFoundError` …). */
export async function readQueueStatus(
  admin: ServiceBusAdministrationClient,
  client: ServiceBusClient,
  queue: string,
  options: QueueStatusOptions = {},
): Promise<QueueStatus> {
  const sample = intOption('readQueueStatus', 'deadLetterSample', options.deadLetterSample, 100, 0);
  const oldestLimit = intOption('readQueueStatus', 'oldestPeekLimit', options.oldestPeekLimit, 250, 1);
  const now = options.now ?? Date.now;
  const op = options.signal ? { abortSignal: options.signal } : {};
  const [props, description] = await Promise.all([
    admin.getQueueRuntimeProperties(queue, op),
    admin.getQueue(queue, op),
  ]);
  const byReason: Record<string, number> = {};
  let peekedDead = 0;
  if (sample > 0 && props.deadLetterMessageCount > 0) {
    const dlq = client.createReceiver(queue, { ...RECEIVER_OPTIONS, subQueueType: 'deadLetter' });
    try {
      ({ peeked: peekedDead } = await peekFromStart(dlq, sample, options.signal, (m) => {
        const reason = m.deadLetterReason ?? NO_REASON;
        byReason[reason] = (byReason[reason] ?? 0) + 1;
        return false;
      }));
    } finally {
      await dlq.close();
    }
  }
  let oldest: OldestMessage;
  if (description.requiresSession) oldest = { known: false, reason: 'sessions' };
  else if (props.activeMessageCount === 0) oldest = { known: false, reason: 'empty' };
  else {
    const receiver = client.createReceiver(queue, RECEIVER_OPTIONS);
    try {
      let found: Date | undefined;
      const { peeked } = await peekFromStart(receiver, oldestLimit, options.signal, (m) => {
        if (m.state !== 'active' || m.enqueuedTimeUtc === undefined) return false;
        found = m.enqueuedTimeUtc;
        return true;
      });
      oldest =
        found === undefined
          ? { known: false, reason: peeked === 0 ? 'empty' : 'beyond-peek-limit', peeked }
          : { known: true, enqueuedAt: found, ageMs: Math.max(0, now() - found.getTime()) };
    } finally {
      await receiver.close();
    }
  }
  return {
    queue,
    requiresSession: description.requiresSession,
    active: props.activeMessageCount,
    scheduled: props.scheduledMessageCount,
    deadLettered: props.deadLetterMessageCount,
    transfer: props.transferMessageCount,
    transferDeadLettered: props.transferDeadLetterMessageCount,
    total: props.totalMessageCount,
    sizeInBytes: props.sizeInBytes,
    deadLetterReasons: { peeked: peekedDead, complete: peekedDead >= props.deadLetterMessageCount, byReason },
    oldest,
  };
}
