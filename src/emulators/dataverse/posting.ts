/**
 * Dataverse's own part: posting RemoteExecutionContexts to Service Bus for the registered steps, with the real
 * `@azure/service-bus` SDK. One FIFO per target (queue or topic), posted in creation order; when a send fails the
 * head of that target waits and is retried with exponential backoff, so nothing is lost and the order holds, and a
 * target that keeps refusing (missing queue, session-enabled queue) does not hold up the others, as Dataverse's
 * independent async jobs would not. `close()` stops posting; what is still in the backlog then is reported in the log.
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
  /**
   * A string is sent as its UTF-8 bytes. Either way the SDK gets a Buffer, which it sends as one AMQP data section
   * byte for byte (a string body would be JSON-encoded, quotes and all).
   */
  body: string | Buffer;
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

/** The events for one queue or topic, posted in order by their own loop. */
interface Lane {
  connectionString: string;
  entityPath: string;
  queue: PostingEvent[];
  head: number;
  running: boolean;
  /** Ends the lane's retry sleep early (on close). */
  wake?: () => void;
}

export class Poster {
  readonly #log: Logger;
  readonly #retryMinMs: number;
  readonly #retryMaxMs: number;
  readonly #batchSize: number;
  readonly #sendTimeoutMs: number;
  /** One FIFO per target (connection string + entity path): a target that refuses does not hold up the others. */
  readonly #lanes = new Map<string, Lane>();
  #backlog = 0;
  #posted = 0;
  #failedAttempts = 0;
  #lastError: string | undefined;
  #closed = false;
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
    return this.#backlog;
  }

  enqueue(event: PostingEvent): void {
    if (this.#closed) {
      this.#log.error('event created after the emulator closed: not posted', {
        entityPath: event.entityPath,
        messageId: event.messageId,
      });
      return;
    }
    const key = `${event.connectionString}\n${event.entityPath}`;
    let lane = this.#lanes.get(key);
    if (!lane)
      this.#lanes.set(
        key,
        (lane = {
          connectionString: event.connectionString,
          entityPath: event.entityPath,
          queue: [],
          head: 0,
          running: false,
        }),
      );
    lane.queue.push(event);
    this.#backlog += 1;
    // A running lane picks the event up after its current send; a lane waiting to retry keeps its backoff.
    if (!lane.running) {
      lane.running = true;
      void this.#run(lane);
    }
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

  async #run(lane: Lane): Promise<void> {
    let attempt = 0;
    while (!this.#closed && lane.head < lane.queue.length) {
      const group = lane.queue.slice(lane.head, lane.head + this.#batchSize);
      try {
        const sent = await this.#send(lane.connectionString, lane.entityPath, group);
        lane.head += sent;
        this.#backlog -= sent;
        this.#posted += sent;
        attempt = 0;
        if (lane.head > 4096 && lane.head * 2 > lane.queue.length) {
          lane.queue = lane.queue.slice(lane.head);
          lane.head = 0;
        }
      } catch (err) {
        this.#failedAttempts += 1;
        this.#lastError = errorMessage(err);
        const delay = Math.min(this.#retryMaxMs, this.#retryMinMs * 2 ** attempt);
        attempt += 1;
        this.#log.warn('posting to Service Bus failed; retrying', {
          entityPath: lane.entityPath,
          backlog: lane.queue.length - lane.head,
          delayMs: delay,
          err: this.#lastError,
        });
        await this.#dropSender(lane.connectionString, lane.entityPath);
        await this.#sleep(lane, delay);
      }
    }
    lane.running = false;
    if (lane.head >= lane.queue.length) {
      lane.queue = [];
      lane.head = 0;
    }
    if (this.#backlog === 0) for (const resolve of this.#idleWaiters.splice(0)) resolve();
  }

  #sleep(lane: Lane, ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => lane.wake?.(), ms);
      lane.wake = () => {
        clearTimeout(timer);
        lane.wake = undefined;
        resolve();
      };
    });
  }

  #sender(connectionString: string, entityPath: string): ServiceBusSender {
    const key = `${connectionString}\n${entityPath}`;
    let sender = this.#senders.get(key);
    if (sender) return sender;
    let client = this.#clients.get(connectionString);
    if (!client) {
      client = new ServiceBusClient(connectionString, {
        retryOptions: { maxRetries: 0, timeoutInMs: this.#sendTimeoutMs },
      });
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
      const body = typeof rendered.body === 'string' ? Buffer.from(rendered.body, 'utf8') : rendered.body;
      if (batch.count === 0) firstSize = body.length;
      const message: ServiceBusMessage = {
        body,
        contentType: e.contentType,
        messageId: e.messageId,
        applicationProperties: rendered.applicationProperties,
      };
      if (!batch.tryAddMessage(message)) break;
    }
    if (batch.count === 0) throw new Error(`a message of ${firstSize} bytes does not fit in a Service Bus batch`);
    await sender.sendMessages(batch);
    return batch.count;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const lane of this.#lanes.values()) lane.wake?.();
    if (this.backlog > 0) this.#log.warn('closing with events not yet posted', { backlog: this.backlog });
    for (const s of this.#senders.values()) await s.close().catch(() => undefined);
    for (const c of this.#clients.values()) await c.close().catch(() => undefined);
    this.#senders.clear();
    this.#clients.clear();
  }
}
