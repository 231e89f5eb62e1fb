/**
 * A receiver link seen from the broker: a rhea sender that delivers an entity's messages within the client's
 * credit and turns the client's dispositions into settlements.
 *
 * Credit is counted here, not by rhea: rhea lowers its credit only when it writes a transfer, so counting on it
 * would over-send (pitfall 1). A drain is always answered (pitfall 2). With receiver-settle-mode "second" the
 * client settles silently after the broker does, so the broker marks its deliveries remotely settled itself, or
 * rhea's outgoing buffer fills up (pitfall 3).
 */
import type { Delivery, EventContext, Sender } from 'rhea';
import type { Logger } from '../../log.js';
import type { Consumer, Lock, MessageStore, Session, Settlement, SettleResult } from './message-store.js';
import { lockTokenString, reorderGuidBytes } from './lock-token.js';
import { encodeForDelivery, type StoredMessage } from './message.js';
import { amqpMessage, settleDelivery } from './rhea-internals.js';

export const CONDITION = {
  lockLost: 'com.microsoft:message-lock-lost',
  sessionLockLost: 'com.microsoft:session-lock-lost',
  deadLetter: 'com.microsoft:dead-letter',
} as const;

/** rhea's sender internals this module relies on. */
interface SenderInternals {
  credit: number;
  delivery_count: number;
  _draining: boolean;
  _drained: boolean;
  _get_drain: () => boolean;
  set_drained: (drained: boolean) => void;
}

interface DeliveryInternals {
  remote_state?: {
    error?: { condition?: string };
    undeliverable_here?: boolean;
    message_annotations?: Record<string, unknown>;
  } & Record<string, unknown>;
}

/** The outcome the broker settles with when a settlement worked: without `error`, so the client's call resolves. */
const SETTLED_OUTCOME: Record<Settlement['kind'], () => unknown> = {
  complete: () => amqpMessage.accepted().described(),
  abandon: () => amqpMessage.modified({ undeliverable_here: false }).described(),
  defer: () => amqpMessage.modified({ undeliverable_here: true }).described(),
  'dead-letter': () => amqpMessage.rejected({}).described(),
};

function lostOutcome(result: Exclude<SettleResult, 'ok'>): unknown {
  const session = result === 'session-lock-lost';
  return amqpMessage
    .rejected({
      error: {
        condition: session ? CONDITION.sessionLockLost : CONDITION.lockLost,
        description: session
          ? 'The session lock has expired.'
          : 'The lock supplied is invalid: it expired, or the message was already settled.',
      },
    })
    .described();
}

export class LinkConsumer implements Consumer {
  readonly id: string;
  readonly receiveAndDelete: boolean;
  session: Session | undefined;
  readonly #link: Sender;
  readonly #store: MessageStore;
  readonly #log: Logger;
  readonly #locks = new WeakMap<Delivery, Lock>();
  #sent = 0;
  #drainedCredit = 0;
  #closed = false;

  constructor(link: Sender, store: MessageStore, log: Logger, id: string) {
    this.id = id;
    this.#link = link;
    this.#store = store;
    this.#log = log;
    this.receiveAndDelete = link.snd_settle_mode === 1;
    const internals = link as unknown as SenderInternals;
    internals._get_drain = () => {
      if (!(internals._draining && internals._drained)) return false;
      this.#drainedCredit += internals.credit;
      internals.delivery_count += internals.credit;
      internals.credit = 0;
      internals._draining = false;
      return true;
    };
    link.on('sender_flow', () => this.#onFlow());
    link.on('accepted', (ctx: EventContext) => this.#onOutcome(ctx, { kind: 'complete' }));
    link.on('rejected', (ctx: EventContext) => {
      const info =
        (
          (ctx.delivery as unknown as DeliveryInternals).remote_state?.error as
            { info?: Record<string, unknown> } | undefined
        )?.info ?? {};
      const { DeadLetterReason, DeadLetterErrorDescription, ...properties } = info;
      this.#onOutcome(ctx, {
        kind: 'dead-letter',
        reason: typeof DeadLetterReason === 'string' ? DeadLetterReason : undefined,
        description: typeof DeadLetterErrorDescription === 'string' ? DeadLetterErrorDescription : undefined,
        properties: Object.keys(properties).length > 0 ? properties : undefined,
      });
    });
    link.on('modified', (ctx: EventContext) => {
      const state = (ctx.delivery as unknown as DeliveryInternals).remote_state ?? {};
      const properties =
        state.message_annotations && Object.keys(state.message_annotations).length > 0
          ? state.message_annotations
          : undefined;
      this.#onOutcome(ctx, state.undeliverable_here ? { kind: 'defer', properties } : { kind: 'abandon', properties });
    });
    link.on('released', (ctx: EventContext) => this.#onOutcome(ctx, { kind: 'abandon' }));
  }

  capacity(): number {
    if (this.#closed || !this.#link.is_open()) return 0;
    const l = this.#link as unknown as SenderInternals;
    return l.delivery_count + l.credit - this.#sent - this.#drainedCredit;
  }

  deliver(msg: StoredMessage, lock: Lock | undefined): void {
    const bytes = encodeForDelivery(msg, lock ? { lockedUntil: lock.until } : {});
    const tag = lock ? reorderGuidBytes(lock.token) : Buffer.alloc(0);
    const delivery = this.#link.send(bytes, tag, 0);
    this.#sent++;
    if (lock) this.#locks.set(delivery, lock);
  }

  sessionLockLost(): void {
    this.#log.info('session lock expired; detaching the receiver with session-lock-lost', {
      receiver: this.id,
      sessionId: this.session?.id,
    });
    this.close({ condition: CONDITION.sessionLockLost, description: 'The session lock has expired.' });
  }

  /** Detaches the link (with an error, when given). */
  close(error?: { condition: string; description: string }): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#link.is_open()) this.#link.close(error);
  }

  #onFlow(): void {
    this.#store.pump();
    const l = this.#link as unknown as SenderInternals;
    if (l._draining) l.set_drained(true);
  }

  #onOutcome(ctx: EventContext, settlement: Settlement): void {
    const delivery = ctx.delivery;
    if (!delivery) return;
    const lock = this.#locks.get(delivery);
    if (!lock) return;
    this.#locks.delete(delivery);
    let result: SettleResult;
    try {
      result = this.#store.settle(lock.key, settlement, Date.now());
    } catch (err) {
      this.#log.error('settlement failed', { err, sequenceNumber: lock.msg.seq });
      result = 'lock-lost';
    }
    const state = result === 'ok' ? SETTLED_OUTCOME[settlement.kind]() : lostOutcome(result);
    settleDelivery(delivery, state);
    if (result !== 'ok')
      this.#log.debug('settlement refused', {
        receiver: this.id,
        result,
        sequenceNumber: lock.msg.seq,
        lock: lockTokenString(lock.token),
      });
    this.#store.pump();
  }
}
