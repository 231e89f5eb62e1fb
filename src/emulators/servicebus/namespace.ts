/**
 * The one namespace: its queues and topics (with subscriptions), addresses resolved case-insensitively, duplicate
 * detection, routing through subscription rules, the clock that expires locks and messages, and the journal.
 */
import type { Logger } from '../../log.js';
import type { NamespaceDefinition, QueueDefinition, RuleDefinition, StoreSettings } from './config.js';
import { DEAD_LETTER_SUFFIX, MessageStore, type StoreJournal } from './message-store.js';
import { subscriptionAccepts } from './filters.js';
import type { IncomingMessage } from './message.js';

/** Remembers message ids for the duplicate-detection window. */
class DuplicateDetector {
  readonly #seen = new Map<string, number>();
  constructor(readonly windowMs: number) {}

  /**
   * Whether the id was seen within the window; records it when not. Ids leave the map once their window is over
   * (the map is kept in expiry order, so that is a walk from its oldest entry).
   */
  isDuplicate(messageId: string, now: number): boolean {
    this.#forgetExpired(now);
    const until = this.#seen.get(messageId);
    if (until !== undefined && until > now) return true;
    this.#seen.delete(messageId);
    this.#seen.set(messageId, now + this.windowMs);
    return false;
  }

  /** Re-learns an id seen at `seenAt` (journal replay); ids arrive in the order they were seen. */
  remember(messageId: string, seenAt: number): void {
    const until = seenAt + this.windowMs;
    if ((this.#seen.get(messageId) ?? Number.NEGATIVE_INFINITY) >= until) return;
    this.#seen.delete(messageId);
    this.#seen.set(messageId, until);
  }

  /** The ids still within their window, with the time each was seen (journal snapshots). */
  *history(now: number): Generator<[string, number]> {
    this.#forgetExpired(now);
    for (const [id, until] of this.#seen) yield [id, until - this.windowMs];
  }

  /** Forgets the ids whose window is over. */
  prune(now: number): void {
    this.#forgetExpired(now);
  }

  #forgetExpired(now: number): void {
    for (const [id, until] of this.#seen) {
      if (until > now) break;
      this.#seen.delete(id);
    }
  }
}

interface Subscription {
  store: MessageStore;
  rules: readonly RuleDefinition[];
}

interface Topic {
  name: string;
  subscriptions: Subscription[];
  duplicates: DuplicateDetector | undefined;
  /** Topic-level sequence numbers of scheduled messages, mapped to their copies in the subscriptions. */
  scheduled: Map<number, Array<{ store: MessageStore; seq: number }>>;
  nextScheduledSeq: number;
}

interface Queue {
  definition: QueueDefinition;
  store: MessageStore;
  duplicates: DuplicateDetector | undefined;
}

/** Where a sender's messages go. */
export type SendTarget = { kind: 'queue'; name: string; queue: Queue } | { kind: 'topic'; name: string; topic: Topic };

export interface NamespaceOptions {
  journal: StoreJournal;
  log: Logger;
  tickMs: number;
  /** See ServiceBusEmulatorOptions.deflateAboveBytes. @defaultValue Infinity (never) */
  deflateAboveBytes?: number;
}

/** How often (in ticks) the TTL sweep runs over all messages. */
const TTL_SWEEP_EVERY_MS = 1000;

export class Namespace {
  readonly name: string;
  readonly #queues = new Map<string, Queue>();
  readonly #topics = new Map<string, Topic>();
  /** Every store (queues, subscriptions and their dead-letter queues) by lower-case path. */
  readonly #stores = new Map<string, MessageStore>();
  readonly #log: Logger;
  readonly #deflateAboveBytes: number | undefined;
  #timer: NodeJS.Timeout | undefined;
  #lastSweep = 0;

  constructor(definition: NamespaceDefinition, options: NamespaceOptions) {
    this.name = definition.name;
    this.#log = options.log;
    this.#deflateAboveBytes = options.deflateAboveBytes;
    const journal = options.journal;
    for (const q of definition.queues) {
      const store = this.#addStore(q.name, q.name, q, journal);
      this.#queues.set(q.name.toLowerCase(), {
        definition: q,
        store,
        duplicates: q.requiresDuplicateDetection ? new DuplicateDetector(q.duplicateWindowMs) : undefined,
      });
    }
    for (const t of definition.topics) {
      const subscriptions = t.subscriptions.map((s) => {
        const name = `${t.name}/Subscriptions/${s.name}`;
        return { store: this.#addStore(name, name, s, journal), rules: s.rules };
      });
      this.#topics.set(t.name.toLowerCase(), {
        name: t.name,
        subscriptions,
        duplicates: t.requiresDuplicateDetection ? new DuplicateDetector(t.duplicateWindowMs) : undefined,
        scheduled: new Map(),
        nextScheduledSeq: 1,
      });
    }
    this.#timer = setInterval(() => this.#tick(), options.tickMs);
    this.#timer.unref();
  }

  #addStore(path: string, name: string, settings: StoreSettings, journal: StoreJournal): MessageStore {
    const store = new MessageStore({
      path: path.toLowerCase(),
      name,
      settings,
      journal,
      withDeadLetter: true,
      ...(this.#deflateAboveBytes === undefined ? {} : { deflateAboveBytes: this.#deflateAboveBytes }),
    });
    this.#stores.set(store.path, store);
    if (store.deadLetter) this.#stores.set(store.deadLetter.path, store.deadLetter);
    return store;
  }

  /** When the namespace was created (ms since the epoch): the management API's CreatedAt and UpdatedAt. */
  readonly createdAt = Date.now();

  /** Every queue with its definition, in configuration order (the management API). */
  queues(): Array<{ definition: QueueDefinition; store: MessageStore }> {
    return [...this.#queues.values()].map(({ definition, store }) => ({ definition, store }));
  }

  /** The queue named `name` (any case), undefined when there is none (the management API). */
  queue(name: string): { definition: QueueDefinition; store: MessageStore } | undefined {
    const q = this.#queues.get(normalize(name));
    return q && { definition: q.definition, store: q.store };
  }

  /** Every store, for snapshots. */
  stores(): Iterable<MessageStore> {
    return this.#stores.values();
  }

  /** The store a receiver reads from: `q`, `q/$DeadLetterQueue`, `t/Subscriptions/s` (any case). */
  store(address: string): MessageStore | undefined {
    return this.#stores.get(normalize(address));
  }

  /** The queue or topic a sender writes to. */
  sendTarget(address: string): SendTarget | undefined {
    const key = normalize(address);
    const queue = this.#queues.get(key);
    if (queue) return { kind: 'queue', name: queue.store.name, queue };
    const topic = this.#topics.get(key);
    if (topic) return { kind: 'topic', name: topic.name, topic };
    return undefined;
  }

  /**
   * The entity that needs a session id the message lacks: a queue with sessions, or a subscription with sessions
   * whose rules take the message. Undefined when the message can be stored.
   */
  missingSession(target: SendTarget, msg: IncomingMessage): string | undefined {
    if (msg.props.sessionId !== undefined) return undefined;
    if (target.kind === 'queue') return target.queue.store.requiresSession ? target.queue.store.name : undefined;
    return target.topic.subscriptions.find((sub) => sub.store.requiresSession && subscriptionAccepts(sub.rules, msg))
      ?.store.name;
  }

  /** Accepts sent messages: duplicates dropped, topics fanned out by rules. Returns how many were stored. */
  send(target: SendTarget, messages: readonly IncomingMessage[], now: number): number {
    let stored = 0;
    for (const msg of messages) {
      if (target.kind === 'queue') {
        if (target.queue.duplicates?.isDuplicate(msg.props.messageId, now)) continue;
        target.queue.store.enqueue(msg, now);
        stored++;
      } else {
        if (target.topic.duplicates?.isDuplicate(msg.props.messageId, now)) continue;
        for (const sub of target.topic.subscriptions) {
          if (subscriptionAccepts(sub.rules, msg)) sub.store.enqueue(msg, now);
        }
        stored++;
      }
    }
    return stored;
  }

  /** Schedules messages (their scheduled time is in their annotations); returns their sequence numbers. */
  schedule(target: SendTarget, messages: readonly IncomingMessage[], now: number): number[] {
    return messages.map((msg) => {
      if (target.kind === 'queue') return target.queue.store.enqueue(msg, now).seq;
      const topic = target.topic;
      const copies = topic.subscriptions
        .filter((sub) => subscriptionAccepts(sub.rules, msg))
        .map((sub) => ({ store: sub.store, seq: sub.store.enqueue(msg, now).seq }));
      const seq = topic.nextScheduledSeq++;
      topic.scheduled.set(seq, copies);
      return seq;
    });
  }

  cancelScheduled(target: SendTarget, seqs: readonly number[]): void {
    if (target.kind === 'queue') {
      target.queue.store.cancelScheduled(seqs);
      return;
    }
    for (const seq of seqs) {
      for (const copy of target.topic.scheduled.get(seq) ?? []) copy.store.cancelScheduled([copy.seq]);
      target.topic.scheduled.delete(seq);
    }
  }

  /**
   * Re-learns a duplicate-detection id from the journal: `path` is the queue, the topic, or one of the topic's
   * subscriptions the message was stored in.
   */
  rememberMessageId(path: string, messageId: string, seenAt: number): void {
    this.#detector(path)?.remember(messageId, seenAt);
  }

  /** Duplicate-detection ids still within their window, by queue or topic path (journal snapshots). */
  *duplicateHistory(now: number): Generator<[string, string, number]> {
    for (const [path, q] of this.#queues)
      if (q.duplicates) for (const [id, seenAt] of q.duplicates.history(now)) yield [path, id, seenAt];
    for (const [path, t] of this.#topics)
      if (t.duplicates) for (const [id, seenAt] of t.duplicates.history(now)) yield [path, id, seenAt];
  }

  #detector(path: string): DuplicateDetector | undefined {
    const key = normalize(path);
    const queue = this.#queues.get(key);
    if (queue) return queue.duplicates;
    if (key.endsWith(DEAD_LETTER_SUFFIX)) return undefined;
    const at = key.lastIndexOf('/subscriptions/');
    return this.#topics.get(at >= 0 ? key.slice(0, at) : key)?.duplicates;
  }

  #tick(): void {
    const now = Date.now();
    const sweep = now - this.#lastSweep >= TTL_SWEEP_EVERY_MS;
    if (sweep) this.#lastSweep = now;
    for (const q of this.#queues.values()) {
      this.#tickStore(q.store, now, sweep);
      if (sweep) q.duplicates?.prune(now);
    }
    for (const t of this.#topics.values()) {
      for (const s of t.subscriptions) this.#tickStore(s.store, now, sweep);
      if (sweep) {
        t.duplicates?.prune(now);
        this.#pruneScheduled(t);
      }
    }
  }

  /** Forgets topic-level sequence numbers whose copies are no longer scheduled (delivered or cancelled). */
  #pruneScheduled(topic: Topic): void {
    for (const [seq, copies] of topic.scheduled) {
      if (!copies.some((c) => c.store.isScheduled(c.seq))) topic.scheduled.delete(seq);
    }
  }

  #tickStore(store: MessageStore, now: number, sweep: boolean): void {
    try {
      store.tick(now, sweep);
    } catch (err) {
      this.#log.error('entity timer failed', { entity: store.name, err });
    }
  }

  /** Stops the clock and ends session waits. */
  close(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    for (const store of this.#stores.values()) store.cancelWaits();
  }
}

/** Lower case, no leading slash, no `sb://host/` prefix. */
export function normalize(address: string): string {
  let a = address.trim();
  const scheme = /^(sb|amqps?):\/\/[^/]+\//i.exec(a);
  if (scheme) a = a.slice(scheme[0].length);
  return a.replace(/^\/+/, '').toLowerCase();
}
