/**
 * The one namespace: its queues and topics (with subscriptions), addresses resolved case-insensitively, duplicate
 * detection, routing through subscription rules, the clock that expires locks and messages, and the journal.
 */
import type { Logger } from '../../log.js';
import type { NamespaceDefinition, RuleDefinition, StoreSettings } from './config.js';
import { MessageStore, type StoreJournal } from './entity.js';
import { subscriptionAccepts } from './filters.js';
import type { IncomingMessage } from './message.js';

/** Remembers message ids for the duplicate-detection window. */
class DuplicateDetector {
  readonly #seen = new Map<string, number>();
  constructor(readonly windowMs: number) {}

  /** Whether the id was seen within the window; records it when not. */
  isDuplicate(messageId: string, now: number): boolean {
    for (const [id, until] of this.#seen) {
      if (until > now) break;
      this.#seen.delete(id);
    }
    const until = this.#seen.get(messageId);
    if (until !== undefined && until > now) return true;
    this.#seen.set(messageId, now + this.windowMs);
    return false;
  }

  /** Re-learns an id from a restored message. */
  remember(messageId: string, enqueuedAt: number): void {
    this.#seen.set(messageId, enqueuedAt + this.windowMs);
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
  store: MessageStore;
  duplicates: DuplicateDetector | undefined;
}

/** Where a sender's messages go. */
export type SendTarget = { kind: 'queue'; name: string; queue: Queue } | { kind: 'topic'; name: string; topic: Topic };

export interface NamespaceOptions {
  journal: StoreJournal;
  log: Logger;
  tickMs: number;
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
  #timer: NodeJS.Timeout | undefined;
  #lastSweep = 0;

  constructor(definition: NamespaceDefinition, options: NamespaceOptions) {
    this.name = definition.name;
    this.#log = options.log;
    const journal = options.journal;
    for (const q of definition.queues) {
      const store = this.#addStore(q.name, q.name, q, journal);
      this.#queues.set(q.name.toLowerCase(), { store, duplicates: q.requiresDuplicateDetection ? new DuplicateDetector(q.duplicateWindowMs) : undefined });
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
    const store = new MessageStore({ path: path.toLowerCase(), name, settings, journal, withDeadLetter: true });
    this.#stores.set(store.path, store);
    if (store.deadLetter) this.#stores.set(store.deadLetter.path, store.deadLetter);
    return store;
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
    return target.topic.subscriptions.find((sub) => sub.store.requiresSession && subscriptionAccepts(sub.rules, msg))?.store.name;
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

  /** Re-learns duplicate-detection ids from restored messages. */
  rememberMessageId(storePath: string, messageId: string, enqueuedAt: number): void {
    const queue = this.#queues.get(storePath);
    queue?.duplicates?.remember(messageId, enqueuedAt);
  }

  #tick(): void {
    const now = Date.now();
    const sweep = now - this.#lastSweep >= TTL_SWEEP_EVERY_MS;
    if (sweep) this.#lastSweep = now;
    for (const q of this.#queues.values()) this.#tickStore(q.store, now, sweep);
    for (const t of this.#topics.values()) for (const s of t.subscriptions) this.#tickStore(s.store, now, sweep);
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
