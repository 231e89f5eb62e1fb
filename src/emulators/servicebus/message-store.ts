/**
 * One entity that holds messages: a queue, a subscription, or the dead-letter queue of either. It keeps every live
 * message by sequence number, hands available ones to its consumers (competing, round robin, within their credit),
 * locks them in peek-lock mode, and applies settlements, lock expiry, TTL expiry, deferral, scheduling and
 * sessions. It knows nothing of AMQP: consumers are ports, persistence is a {@link StoreJournal}.
 */
import { AvailableQueue } from './available-queue.js';
import type { StoreSettings } from './config.js';
import { lockKey, newLockToken } from './lock-token.js';
import {
  PackedWire,
  sizeInBytesOf,
  storedBytesOf,
  withApplicationProperties,
  type IncomingMessage,
  type MessageWire,
  type StoredMessage,
} from './message.js';

/** What receives messages from an entity: one receiver link. */
export interface Consumer {
  readonly id: string;
  readonly receiveAndDelete: boolean;
  /** The session this consumer holds, for session entities. */
  session: Session | undefined;
  /** How many more messages it can take now. */
  capacity(): number;
  /** Sends a message; `lock` is undefined in receive-and-delete mode. */
  deliver(msg: StoredMessage, lock: Lock | undefined): void;
  /** The session lock expired: the consumer must detach with `session-lock-lost`. */
  sessionLockLost(): void;
}

export interface Lock {
  /** L: the 16 bytes the lock is keyed on (the delivery tag is its GUID-reordered form). */
  token: Buffer;
  key: string;
  msg: StoredMessage;
  until: number;
  consumer: Consumer | undefined;
  session: Session | undefined;
}

export interface Session {
  id: string;
  queue: AvailableQueue;
  /** Session state set by a receiver. */
  state: Buffer | undefined;
  holder: Consumer | undefined;
  lockedUntil: number;
  locks: Set<Lock>;
  /** Live messages of the session in any state (available, locked, deferred, scheduled). */
  messages: number;
}

/** Where an entity records what must survive a restart. */
export interface StoreJournal {
  enqueued(store: MessageStore, msg: StoredMessage): void;
  /** The message changed (delivery count, application properties): the whole message is recorded again. */
  updated(store: MessageStore, msg: StoredMessage): void;
  removed(store: MessageStore, msg: StoredMessage): void;
  deferred(store: MessageStore, msg: StoredMessage): void;
  sessionState(store: MessageStore, sessionId: string, state: Buffer | undefined): void;
}

export type SettleResult = 'ok' | 'lock-lost' | 'session-lock-lost';

export type Settlement =
  | { kind: 'complete' }
  | { kind: 'abandon'; properties?: Record<string, unknown> }
  | { kind: 'defer'; properties?: Record<string, unknown> }
  | { kind: 'dead-letter'; reason?: string; description?: string; properties?: Record<string, unknown> };

/** Waits of `acceptNextSession` for a session to become available. */
interface SessionWaiter {
  consumer: Consumer;
  deadline: number;
  resolve: (session: Session | undefined) => void;
}

/** Values a moved message keeps from its first life (dead-lettering). */
export type EnqueueOverrides = Partial<
  Pick<StoredMessage, 'deliveryCount' | 'deadLetterSource' | 'ttlMs' | 'expiresAt'>
>;

export const DEAD_LETTER_SUFFIX = '/$deadletterqueue';

export class MessageStore {
  /** Lower-case path, e.g. `orders`, `t/subscriptions/s`, `orders/$deadletterqueue`. */
  readonly path: string;
  /** The name as configured, for dead-letter sources and logs. */
  readonly name: string;
  readonly settings: StoreSettings;
  readonly deadLetter: MessageStore | undefined;
  readonly #journal: StoreJournal;
  /** Messages taken while the entity holds more than this many bytes are kept deflated (see {@link PackedWire}). */
  readonly #deflateAboveBytes: number;
  /** Bytes its live messages hold in memory, as kept. */
  #storedBytes = 0;
  readonly #messages = new Map<number, StoredMessage>();
  readonly #queue = new AvailableQueue();
  readonly #sessions = new Map<string, Session>();
  readonly #locks = new Map<string, Lock>();
  /** The live lock of each locked message. */
  readonly #lockOf = new WeakMap<StoredMessage, Lock>();
  /** Locks that expire on their own (not session-held), in expiry order. */
  readonly #timedLocks = new Map<string, Lock>();
  readonly #scheduled = new Set<StoredMessage>();
  readonly #consumers: Consumer[] = [];
  readonly #waiters: SessionWaiter[] = [];
  #nextConsumer = 0;
  #nextSeq = 1;
  #pumping = false;
  /** When a message last arrived or was delivered (ms since the epoch): the management API's AccessedAt. */
  #accessedAt = Date.now();
  /** A session is being released: its returning messages must not offer it to a waiter one by one. */
  #releasing = false;

  constructor(options: {
    path: string;
    name: string;
    settings: StoreSettings;
    journal: StoreJournal;
    withDeadLetter: boolean;
    /**
     * Messages that arrive while the entity holds more than this many bytes are kept deflated and inflated for each
     * delivery: a deep backlog in a fraction of the memory, for some CPU per message. 0: every message.
     * @defaultValue Infinity (never)
     */
    deflateAboveBytes?: number;
  }) {
    this.path = options.path;
    this.name = options.name;
    this.settings = options.settings;
    this.#journal = options.journal;
    this.#deflateAboveBytes = options.deflateAboveBytes ?? Number.POSITIVE_INFINITY;
    this.deadLetter = options.withDeadLetter
      ? new MessageStore({
          path: `${options.path}${DEAD_LETTER_SUFFIX}`,
          name: `${options.name}/$DeadLetterQueue`,
          settings: {
            ...options.settings,
            requiresSession: false,
            deadLetterOnExpiration: false,
            defaultTtlMs: Number.POSITIVE_INFINITY,
          },
          journal: options.journal,
          withDeadLetter: false,
          deflateAboveBytes: this.#deflateAboveBytes,
        })
      : undefined;
  }

  get requiresSession(): boolean {
    return this.settings.requiresSession;
  }

  /** How many messages it holds, in any state. */
  get messageCount(): number {
    return this.#messages.size;
  }

  /**
   * The counts the management API reports (docs/emulators/servicebus.md, "Management API"), exact from the store:
   * `active` = available and locked (a peek-locked message stays active until settled: an assumption about Azure),
   * `scheduled`, `deferred` (Azure's CountDetails has no field for them: they are only in `total`), `total` (every
   * live message, expired ones not yet swept included, as Azure's lazy expiry counts them), `sizeInBytes` (the stored
   * sections).
   */
  runtimeCounts(): { active: number; scheduled: number; deferred: number; total: number; sizeInBytes: number } {
    const counts = { active: 0, scheduled: 0, deferred: 0, total: 0, sizeInBytes: 0 };
    for (const msg of this.#messages.values()) {
      counts.total += 1;
      counts[msg.state] += 1;
      counts.sizeInBytes += sizeInBytesOf(msg.wire);
    }
    return counts;
  }

  /** Bytes its live messages hold in memory (deflated ones as kept), the dead-letter queue's not included. */
  get storedBytes(): number {
    return this.#storedBytes;
  }

  /** When a message last arrived or was delivered, in ms since the epoch (the store's creation until then). */
  get accessedAt(): number {
    return this.#accessedAt;
  }

  /** The sequence number the next message gets (for journal snapshots). */
  get nextSequenceNumber(): number {
    return this.#nextSeq;
  }

  /** Never gives out a sequence number below `next` (journal replay: numbers of removed messages stay used). */
  advanceSequence(next: number): void {
    this.#nextSeq = Math.max(this.#nextSeq, next);
  }

  /** Every live message, in sequence order (for journal snapshots). */
  liveMessages(): IterableIterator<StoredMessage> {
    return this.#messages.values();
  }

  /** Sessions with a state (for journal snapshots). */
  *sessionStates(): Generator<[string, Buffer]> {
    for (const s of this.#sessions.values()) if (s.state !== undefined) yield [s.id, s.state];
  }

  // ---- arrival ------------------------------------------------------------------------------------------------

  /** Takes a new message from a sender; returns it as stored. */
  enqueue(incoming: IncomingMessage, now: number, overrides: EnqueueOverrides = {}): StoredMessage {
    const scheduledAt = incoming.scheduledAt;
    const ttlMs = Math.min(incoming.wire.ttlMs ?? Number.POSITIVE_INFINITY, this.settings.defaultTtlMs);
    const scheduled = scheduledAt !== undefined && scheduledAt > now;
    const enqueuedAt = scheduled ? scheduledAt : now;
    const msg: StoredMessage = {
      seq: this.#nextSeq++,
      enqueuedAt,
      expiresAt: enqueuedAt + ttlMs,
      ttlMs,
      deliveryCount: 0,
      state: scheduled ? 'scheduled' : 'active',
      scheduledAt: scheduled ? scheduledAt : undefined,
      props: incoming.props,
      wire: this.#pack(incoming.wire),
      deadLetterSource: undefined,
      removed: false,
      waitingIn: undefined,
      waitingEntry: 0,
      ...overrides,
    };
    this.#accessedAt = now;
    this.#journal.enqueued(this, msg);
    this.#admit(msg);
    return msg;
  }

  /** Puts back a message read from the journal (keeps its sequence number). */
  restore(msg: StoredMessage): void {
    this.#nextSeq = Math.max(this.#nextSeq, msg.seq + 1);
    msg.wire = this.#pack(msg.wire);
    this.#admit(msg);
  }

  /** The wire parts as this entity keeps them: copied into one buffer, deflated past `deflateAboveBytes`. */
  #pack(wire: MessageWire): PackedWire {
    return new PackedWire(wire, this.#storedBytes >= this.#deflateAboveBytes);
  }

  /** Replaces a live message's wire parts (application properties changed). */
  #rewire(msg: StoredMessage, wire: MessageWire): void {
    this.#storedBytes -= storedBytesOf(msg.wire);
    msg.wire = this.#pack(wire);
    this.#storedBytes += storedBytesOf(msg.wire);
  }

  /** Restores a session state read from the journal. */
  restoreSessionState(sessionId: string, state: Buffer | undefined): void {
    this.#session(sessionId).state = state;
    this.#forgetSessionIfIdle(sessionId);
  }

  #admit(msg: StoredMessage): void {
    this.#messages.set(msg.seq, msg);
    this.#storedBytes += storedBytesOf(msg.wire);
    if (this.requiresSession && msg.props.sessionId !== undefined) this.#session(msg.props.sessionId).messages++;
    if (msg.state === 'scheduled') this.#scheduled.add(msg);
    else if (msg.state === 'active') this.#makeAvailable(msg, false);
  }

  #makeAvailable(msg: StoredMessage, returned: boolean): void {
    const sessionId = msg.props.sessionId;
    if (this.requiresSession && sessionId !== undefined) {
      const session = this.#session(sessionId);
      if (returned) session.queue.putBack(msg);
      else session.queue.push(msg);
      if (session.holder) this.#pumpSession(session);
      else if (!this.#releasing) this.#offerSession(session);
    } else {
      if (returned) this.#queue.putBack(msg);
      else this.#queue.push(msg);
      this.pump();
    }
  }

  // ---- consumers ----------------------------------------------------------------------------------------------

  addConsumer(consumer: Consumer): void {
    this.#consumers.push(consumer);
  }

  /** A consumer detached: its session (if any) is released; peek-locked messages keep their locks until expiry. */
  removeConsumer(consumer: Consumer, now: number): void {
    const i = this.#consumers.indexOf(consumer);
    if (i >= 0) this.#consumers.splice(i, 1);
    const w = this.#waiters.findIndex((x) => x.consumer === consumer);
    if (w >= 0) this.#waiters.splice(w, 1)[0]!.resolve(undefined);
    if (consumer.session?.holder === consumer) this.#releaseSession(consumer.session, now);
    consumer.session = undefined;
    for (const lock of this.#timedLocks.values()) if (lock.consumer === consumer) lock.consumer = undefined;
  }

  /** Delivers what it can to consumers with credit. */
  pump(): void {
    if (this.#pumping) return;
    this.#pumping = true;
    try {
      if (this.requiresSession) {
        for (const c of this.#consumers) if (c.session) this.#pumpSession(c.session);
        return;
      }
      const consumers = this.#consumers;
      let idle = 0;
      while (this.#queue.size > 0 && consumers.length > 0 && idle < consumers.length) {
        const c = consumers[this.#nextConsumer++ % consumers.length]!;
        if (c.capacity() <= 0) {
          idle++;
          continue;
        }
        idle = 0;
        const msg = this.#takeLive(this.#queue);
        if (!msg) break;
        this.#deliver(c, msg, undefined);
      }
    } finally {
      this.#pumping = false;
    }
  }

  #pumpSession(session: Session): void {
    const c = session.holder;
    if (!c) return;
    while (session.queue.size > 0 && c.capacity() > 0) {
      const msg = this.#takeLive(session.queue);
      if (!msg) break;
      this.#deliver(c, msg, session);
    }
  }

  /** Takes the next message that has not expired; expired ones are expired on the way. */
  #takeLive(queue: AvailableQueue): StoredMessage | undefined {
    const now = Date.now();
    for (;;) {
      const msg = queue.take();
      if (!msg || msg.expiresAt > now) return msg;
      this.#expire(msg, now);
    }
  }

  #deliver(c: Consumer, msg: StoredMessage, session: Session | undefined): void {
    this.#accessedAt = Date.now();
    if (c.receiveAndDelete) {
      this.#remove(msg);
      c.deliver(msg, undefined);
      return;
    }
    const lock = this.#lock(msg, c, session, Date.now());
    c.deliver(msg, lock);
  }

  #lock(msg: StoredMessage, consumer: Consumer | undefined, session: Session | undefined, now: number): Lock {
    const token = newLockToken();
    const until = session ? session.lockedUntil : now + this.settings.lockDurationMs;
    const lock: Lock = { token, key: lockKey(token), msg, until, consumer, session };
    this.#locks.set(lock.key, lock);
    this.#lockOf.set(msg, lock);
    if (session) session.locks.add(lock);
    else this.#timedLocks.set(lock.key, lock);
    return lock;
  }

  #unlock(lock: Lock): void {
    this.#locks.delete(lock.key);
    if (this.#lockOf.get(lock.msg) === lock) this.#lockOf.delete(lock.msg);
    this.#timedLocks.delete(lock.key);
    lock.session?.locks.delete(lock);
  }

  // ---- settlement ---------------------------------------------------------------------------------------------

  /** The live lock with this key, or why there is none. */
  findLock(key: string, now: number): Lock | SettleResult {
    const lock = this.#locks.get(key);
    if (!lock) return 'lock-lost';
    if (lock.session) return lock.session.holder && lock.session.lockedUntil > now ? lock : 'session-lock-lost';
    if (lock.until <= now) {
      this.#expireLock(lock, now);
      return 'lock-lost';
    }
    return lock;
  }

  settle(key: string, settlement: Settlement, now: number): SettleResult {
    const lock = this.findLock(key, now);
    if (typeof lock === 'string') return lock;
    this.#unlock(lock);
    const msg = lock.msg;
    switch (settlement.kind) {
      case 'complete':
        this.#remove(msg);
        break;
      case 'abandon':
        if (settlement.properties) this.#rewire(msg, withApplicationProperties(msg.wire, settlement.properties));
        this.#release(msg, now);
        break;
      case 'defer':
        msg.state = 'deferred';
        if (settlement.properties) {
          this.#rewire(msg, withApplicationProperties(msg.wire, settlement.properties));
          this.#journal.updated(this, msg);
        } else {
          this.#journal.deferred(this, msg);
        }
        break;
      case 'dead-letter':
        this.#moveToDeadLetter(msg, now, settlement.reason, settlement.description, settlement.properties);
        break;
    }
    return 'ok';
  }

  /** Extends locks; returns the new expiry of each, or undefined for a lost one. */
  renewLock(key: string, now: number): number | SettleResult {
    const lock = this.findLock(key, now);
    if (typeof lock === 'string') return lock;
    if (lock.session) return lock.session.lockedUntil;
    lock.until = now + this.settings.lockDurationMs;
    this.#timedLocks.delete(key);
    this.#timedLocks.set(key, lock);
    return lock.until;
  }

  /** A message goes back after an abandon or a lost lock: delivery count + 1, dead-lettered past the maximum. */
  #release(msg: StoredMessage, now: number): void {
    msg.deliveryCount++;
    if (msg.deliveryCount >= this.settings.maxDeliveryCount && this.deadLetter) {
      this.#moveToDeadLetter(
        msg,
        now,
        'MaxDeliveryCountExceeded',
        `Message could not be consumed after ${this.settings.maxDeliveryCount} delivery attempts.`,
      );
      return;
    }
    if (msg.expiresAt <= now && msg.state !== 'deferred') {
      this.#expire(msg, now);
      return;
    }
    this.#journal.updated(this, msg);
    if (msg.state !== 'deferred') this.#makeAvailable(msg, true);
  }

  #expireLock(lock: Lock, now: number): void {
    this.#unlock(lock);
    this.#release(lock.msg, now);
  }

  #expire(msg: StoredMessage, now: number): void {
    if (this.settings.deadLetterOnExpiration && this.deadLetter) {
      this.#moveToDeadLetter(msg, now, 'TTLExpiredException', 'The message expired and was dead lettered.');
    } else {
      this.#remove(msg);
    }
  }

  #moveToDeadLetter(
    msg: StoredMessage,
    now: number,
    reason?: string,
    description?: string,
    properties?: Record<string, unknown>,
  ): void {
    this.#remove(msg);
    const dlq = this.deadLetter;
    if (!dlq) return;
    const wire = withApplicationProperties(msg.wire, {
      ...properties,
      DeadLetterReason: reason,
      DeadLetterErrorDescription: description,
    });
    dlq.enqueue({ props: msg.props, wire, scheduledAt: undefined, size: 0 }, now, {
      deliveryCount: msg.deliveryCount,
      deadLetterSource: this.name,
      ttlMs: msg.ttlMs,
      expiresAt: Number.POSITIVE_INFINITY,
    });
  }

  #remove(msg: StoredMessage): void {
    if (msg.removed) return;
    msg.removed = true;
    this.#messages.delete(msg.seq);
    this.#storedBytes -= storedBytesOf(msg.wire);
    this.#scheduled.delete(msg);
    this.#queue.remove(msg);
    const sessionId = msg.props.sessionId;
    const session = this.requiresSession && sessionId !== undefined ? this.#sessions.get(sessionId) : undefined;
    if (session) {
      session.queue.remove(msg);
      session.messages--;
      this.#forgetSessionIfIdle(session.id);
    }
    this.#journal.removed(this, msg);
  }

  // ---- management operations ----------------------------------------------------------------------------------

  /** Messages in sequence order from `fromSeq`, in any state; for peek. */
  peek(fromSeq: number, count: number, sessionId: string | undefined, now: number): StoredMessage[] {
    const out: StoredMessage[] = [];
    for (const msg of this.#messages.values()) {
      if (out.length >= count) break;
      if (msg.seq < fromSeq || msg.expiresAt <= now) continue;
      if (sessionId !== undefined && msg.props.sessionId !== sessionId) continue;
      out.push(msg);
    }
    return out;
  }

  /** Receives deferred messages by sequence number; undefined when one of them is not a deferred message here. */
  receiveDeferred(
    seqs: readonly number[],
    receiveAndDelete: boolean,
    sessionId: string | undefined,
    now: number,
  ): Array<{ msg: StoredMessage; lock: Lock | undefined }> | undefined {
    const found: StoredMessage[] = [];
    for (const seq of seqs) {
      const msg = this.#messages.get(seq);
      if (!msg || msg.state !== 'deferred' || (sessionId !== undefined && msg.props.sessionId !== sessionId))
        return undefined;
      if (this.#lockOf.has(msg)) return undefined;
      found.push(msg);
    }
    return found.map((msg) => {
      if (receiveAndDelete) {
        this.#remove(msg);
        return { msg, lock: undefined };
      }
      return { msg, lock: this.#lock(msg, undefined, undefined, now) };
    });
  }

  /** Whether the message with this sequence number is waiting for its scheduled time. */
  isScheduled(seq: number): boolean {
    return this.#messages.get(seq)?.state === 'scheduled';
  }

  /** Cancels scheduled messages; unknown sequence numbers are ignored, as Azure does. */
  cancelScheduled(seqs: readonly number[]): void {
    for (const seq of seqs) {
      const msg = this.#messages.get(seq);
      if (msg && msg.state === 'scheduled') this.#remove(msg);
    }
  }

  // ---- sessions -----------------------------------------------------------------------------------------------

  #session(id: string): Session {
    let s = this.#sessions.get(id);
    if (!s) {
      s = {
        id,
        queue: new AvailableQueue(),
        state: undefined,
        holder: undefined,
        lockedUntil: 0,
        locks: new Set(),
        messages: 0,
      };
      this.#sessions.set(id, s);
    }
    return s;
  }

  #forgetSessionIfIdle(id: string): void {
    const s = this.#sessions.get(id);
    if (s && !s.holder && s.state === undefined && s.messages === 0) this.#sessions.delete(id);
  }

  /**
   * Locks a session for a consumer: the named one (undefined when another holds it), or the next one with
   * messages, waiting up to `timeoutMs` for one to arrive (resolves undefined on timeout).
   */
  acceptSession(
    consumer: Consumer,
    sessionId: string | undefined,
    timeoutMs: number,
    now: number,
  ): Session | 'locked' | Promise<Session | undefined> {
    if (sessionId !== undefined) {
      const s = this.#session(sessionId);
      if (s.holder && s.lockedUntil > now) return 'locked';
      if (s.holder) this.#sessionLockExpired(s, now, false);
      this.#hold(s, consumer, now);
      return s;
    }
    for (const s of this.#sessions.values()) {
      if (!s.holder && s.queue.size > 0) {
        this.#hold(s, consumer, now);
        return s;
      }
    }
    return new Promise((resolve) => this.#waiters.push({ consumer, deadline: now + timeoutMs, resolve }));
  }

  #hold(s: Session, consumer: Consumer, now: number): void {
    s.holder = consumer;
    s.lockedUntil = now + this.settings.lockDurationMs;
    consumer.session = s;
  }

  /** A session got messages and has no holder: give it to the oldest waiter (never to a second holder). */
  #offerSession(s: Session): void {
    if (s.holder || s.queue.size === 0) return;
    const waiter = this.#waiters.shift();
    if (!waiter) return;
    const now = Date.now();
    this.#hold(s, waiter.consumer, now);
    waiter.resolve(s);
  }

  renewSessionLock(sessionId: string, now: number): number | undefined {
    const s = this.#sessions.get(sessionId);
    if (!s?.holder || s.lockedUntil <= now) return undefined;
    s.lockedUntil = now + this.settings.lockDurationMs;
    for (const lock of s.locks) lock.until = s.lockedUntil;
    return s.lockedUntil;
  }

  /** The session's state, or 'session-lock-lost' when nobody holds the session. */
  getSessionState(sessionId: string, now: number): Buffer | undefined | 'session-lock-lost' {
    const s = this.#sessions.get(sessionId);
    if (!s?.holder || s.lockedUntil <= now) return 'session-lock-lost';
    return s.state;
  }

  setSessionState(sessionId: string, state: Buffer | undefined, now: number): SettleResult {
    const s = this.#sessions.get(sessionId);
    if (!s?.holder || s.lockedUntil <= now) return 'session-lock-lost';
    s.state = state;
    this.#journal.sessionState(this, sessionId, state);
    return 'ok';
  }

  /** The session's holder let go (link closed) or lost it: unsettled messages go back with delivery count + 1. */
  #releaseSession(s: Session, now: number, offer = true): void {
    if (s.holder) s.holder.session = undefined;
    s.holder = undefined;
    s.lockedUntil = 0;
    // Returning a message offers the session to a waiter as soon as it has one available (#makeAvailable): the
    // session must stay unheld until every lock is back, so the offer is made once, after the loop.
    this.#releasing = true;
    try {
      for (const lock of [...s.locks]) this.#expireLock(lock, now);
    } finally {
      this.#releasing = false;
    }
    if (offer) this.#offerSession(s);
    this.#forgetSessionIfIdle(s.id);
  }

  #sessionLockExpired(s: Session, now: number, offer = true): void {
    const holder = s.holder;
    this.#releaseSession(s, now, offer);
    holder?.sessionLockLost();
  }

  // ---- time ---------------------------------------------------------------------------------------------------

  /** Runs what is due: lock and session-lock expiry, scheduled messages, session waits; TTL when `sweepTtl`. */
  tick(now: number, sweepTtl: boolean): void {
    for (const lock of this.#timedLocks.values()) {
      if (lock.until > now) break;
      this.#expireLock(lock, now);
    }
    if (this.requiresSession) {
      for (const s of this.#sessions.values()) if (s.holder && s.lockedUntil <= now) this.#sessionLockExpired(s, now);
      while (this.#waiters.length > 0 && this.#waiters.some((w) => w.deadline <= now)) {
        const i = this.#waiters.findIndex((w) => w.deadline <= now);
        this.#waiters.splice(i, 1)[0]!.resolve(undefined);
      }
    }
    for (const msg of this.#scheduled) {
      if (msg.scheduledAt !== undefined && msg.scheduledAt <= now) {
        this.#scheduled.delete(msg);
        msg.state = 'active';
        msg.scheduledAt = undefined;
        this.#makeAvailable(msg, false);
      }
    }
    if (sweepTtl && Number.isFinite(this.settings.defaultTtlMs)) {
      for (const msg of this.#messages.values()) {
        if (msg.expiresAt <= now && msg.state !== 'scheduled' && !this.#isLocked(msg)) this.#expire(msg, now);
      }
    }
    this.deadLetter?.tick(now, false);
  }

  #isLocked(msg: StoredMessage): boolean {
    return this.#lockOf.has(msg);
  }

  /** Ends every wait for a session (the emulator is closing). */
  cancelWaits(): void {
    for (const w of this.#waiters.splice(0)) w.resolve(undefined);
  }
}
