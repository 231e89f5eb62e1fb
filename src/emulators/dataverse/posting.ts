/**
 * Dataverse's own part: posting RemoteExecutionContexts to Service Bus for the registered steps, with the real
 * `@azure/service-bus` SDK. One FIFO backlog, posted in creation order; when the bus is unreachable the head waits
 * and is retried with exponential backoff, so nothing is lost and the order holds. `close()` stops posting; what
 * is still in the backlog then is reported in the log.
 */
import { ServiceBusClient, type ServiceBusMessage, type ServiceBusSender } from '@azure/service-bus';
import { errorMessage } from '../../errors.js';
import type { Logger } from '../../log.js';

export interface PostingEvent {
  connectionString: string;
  /** Queue or topic name (`serviceendpoint.path`). */
  entityPath: string;
  contentType: string;
  messageId: string;
  /**
   * The body and application properties, rendered when the event is sent (not when it is queued), so that a
   * backlog of 100,000 events holds row snapshots rather than 100,000 serialized contexts.
   */
  render(): RenderedEvent;
}

export interface RenderedEvent {
  body: string;
  applicationProperties: Record<string, string | boolean>;
}

export interface PostingStats {
  /** Events waiting to be posted. */
  backlog: number;
  posted: number;
  /** Failed send attempts (each retried). */
  failedAttempts: number;
  lastError?: string;
}

export interface PosterOptions {
  log: Logger;
  /** First retry delay. @defaultValue 100 */
  retryMinMs?: number;
  /** Longest retry delay. @defaultValue 5000 */
  retryMaxMs?: number;
  /** Most messages per send. @defaultValue 100 */
  batchSize?: number;
  /** Timeout of one send attempt. @defaultValue 10_000 */
  sendTimeoutMs?: number;
}

export class Poster {
  readonly #log: Logger;
  readonly #retryMinMs: number;
  readonly #retryMaxMs: number;
  readonly #batchSize: number;
  readonly #sendTimeoutMs: number;
  #queue: PostingEvent[] = [];
  #head = 0;
  #posted = 0;
  #failedAttempts = 0;
  #lastError: string | undefined;
  #running = false;
  #closed = false;
  #wake: (() => void) | undefined;
  #timer: NodeJS.Timeout | undefined;
  readonly #clients = new Map<string, ServiceBusClient>();
  readonly #senders = new Map<string, ServiceBusSender>();
  readonly #idleWaiters: Array<() => void> = [];

  constructor(options: PosterOptions) {
    this.#log = options.log;
    this.#retryMinMs = options.retryMinMs ?? 100;
    this.#retryMaxMs = options.retryMaxMs ?? 5000;
    this.#batchSize = options.batchSize ?? 100;
    this.#sendTimeoutMs = options.sendTimeoutMs ?? 10_000;
  }

  get backlog(): number {
    return this.#queue.length - this.#head;
  }

  enqueue(event: PostingEvent): void {
    if (this.#closed) {
      this.#log.error('event created after the emulator closed: not posted', { entityPath: event.entityPath, messageId: event.messageId });
      return;
    }
    this.#queue.push(event);
    if (!this.#running) {
      this.#running = true;
      void this.#run();
    } else this.#wake?.();
  }

  stats(): PostingStats {
    const s: PostingStats = { backlog: this.backlog, posted: this.#posted, failedAttempts: this.#failedAttempts };
    if (this.#lastError !== undefined) s.lastError = this.#lastError;
    return s;
  }

  /** Resolves when the backlog is empty. */
  idle(): Promise<void> {
    if (this.backlog === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  async #run(): Promise<void> {
    let attempt = 0;
    while (!this.#closed && this.backlog > 0) {
      const first = this.#queue[this.#head]!;
      const group: PostingEvent[] = [];
      for (let i = this.#head; i < this.#queue.length && group.length < this.#batchSize; i += 1) {
        const e = this.#queue[i]!;
        if (e.connectionString !== first.connectionString || e.entityPath !== first.entityPath) break;
        group.push(e);
      }
      try {
        const sent = await this.#send(first.connectionString, first.entityPath, group);
        this.#head += sent;
        this.#posted += sent;
        attempt = 0;
        if (this.#head > 4096 && this.#head * 2 > this.#queue.length) {
          this.#queue = this.#queue.slice(this.#head);
          this.#head = 0;
        }
      } catch (err) {
        this.#failedAttempts += 1;
        this.#lastError = errorMessage(err);
        const delay = Math.min(this.#retryMaxMs, this.#retryMinMs * 2 ** attempt);
        attempt += 1;
        this.#log.warn('posting to Service Bus failed; retrying', { entityPath: first.entityPath, backlog: this.backlog, delayMs: delay, err: this.#lastError });
        await this.#dropSender(first.connectionString, first.entityPath);
        await this.#sleep(delay);
      }
    }
    this.#running = false;
    if (this.backlog === 0) for (const resolve of this.#idleWaiters.splice(0)) resolve();
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.#wake = () => {
        clearTimeout(this.#timer);
        this.#wake = undefined;
        resolve();
      };
      this.#timer = setTimeout(() => this.#wake?.(), ms);
    });
  }

  #sender(connectionString: string, entityPath: string): ServiceBusSender {
    const key = `${connectionString}\n${entityPath}`;
    let sender = this.#senders.get(key);
    if (sender) return sender;
    let client = this.#clients.get(connectionString);
    if (!client) {
      client = new ServiceBusClient(connectionString, { retryOptions: { maxRetries: 0, timeoutInMs: this.#sendTimeoutMs } });
      this.#clients.set(connectionString, client);
    }
    sender = client.createSender(entityPath);
    this.#senders.set(key, sender);
    return sender;
  }

  async #dropSender(connectionString: string, entityPath: string): Promise<void> {
    const key = `${connectionString}\n${entityPath}`;
    const sender = this.#senders.get(key);
    this.#senders.delete(key);
    const client = this.#clients.get(connectionString);
    this.#clients.delete(connectionString);
    // The client is closed below: drop every sender it made, and only those (senders of other connections stay open).
    for (const [k, s] of [...this.#senders]) {
      if (!k.startsWith(`${connectionString}\n`)) continue;
      this.#senders.delete(k);
      await s.close().catch(() => undefined);
    }
    await sender?.close().catch(() => undefined);
    await client?.close().catch(() => undefined);
  }

  /** Sends as many of `events` as fit in one batch, in order; returns how many were sent. */
  async #send(connectionString: string, entityPath: string, events: PostingEvent[]): Promise<number> {
    const sender = this.#sender(connectionString, entityPath);
    const batch = await sender.createMessageBatch();
    let firstSize = 0;
    for (const e of events) {
      const rendered = e.render();
      const body = Buffer.from(rendered.body, 'utf8');
      if (batch.count === 0) firstSize = body.length;
      const message: ServiceBusMessage = { body, contentType: e.contentType, messageId: e.messageId, applicationProperties: rendered.applicationProperties };
      if (!batch.tryAddMessage(message)) break;
    }
    if (batch.count === 0) throw new Error(`a message of ${firstSize} bytes does not fit in a Service Bus batch`);
    await sender.sendMessages(batch);
    return batch.count;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#wake?.();
    if (this.backlog > 0) this.#log.warn('closing with events not yet posted', { backlog: this.backlog });
    for (const s of this.#senders.values()) await s.close().catch(() => undefined);
    for (const c of this.#clients.values()) await c.close().catch(() => undefined);
    this.#senders.clear();
    this.#clients.clear();
  }
}
