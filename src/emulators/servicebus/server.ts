/**
 * The AMQP 1.0 listener: rhea on TCP, SASL ANONYMOUS, one handler per kind of link.
 *
 * - `$cbs`: every put-token is accepted (status 202); the emulator does not check keys.
 * - `<entity>/$management`: request-response, see management.ts.
 * - A client's sender on a queue or topic: messages (single or batch format) are parsed from their wire bytes,
 *   stored, journaled, and accepted once durable; or rejected with the condition the SDK maps to its error code.
 * - A client's receiver on a queue, subscription or dead-letter queue: a {@link LinkConsumer}; on a session entity
 *   the attach is held back until a session is locked for it (or the wait times out).
 *
 * Faults stay with their connection: a handler that throws, a malformed frame or a dropped socket is logged and
 * only that connection (or link) ends.
 */
import type { Server, Socket } from 'node:net';
import rhea, { type Connection, type Container, type EventContext, type Sender } from 'rhea';
import type { Logger } from '../../log.js';
import { AmqpDecodeError } from './amqp-codec.js';
import { LinkConsumer } from './consumer.js';
import { handleManagement } from './management.js';
import { BATCH_FORMAT, parseMessage, unpackBatch, type IncomingMessage } from './message.js';
import type { MessageStore } from './message-store.js';
import type { Namespace, SendTarget } from './namespace.js';
import { amqpMessage, amqpTypes, type AmqpMessage } from './rhea-internals.js';

/** Marks transfers whose bytes must reach the broker undecoded (rhea decodes format 0 itself). */
const RAW_FORMAT = 0xfffffff0;
const SESSION_FILTER = 'com.microsoft:session-filter';
const LOCKED_UNTIL_UTC = 'com.microsoft:locked-until-utc';
const CLIENT_TIMEOUT = 'com.microsoft:timeout';
const TICKS_AT_EPOCH = 621355968000000000n;
/** How long `acceptNextSession` waits when the client gives no timeout (Azure's cap is 65 s). */
const DEFAULT_SESSION_WAIT_MS = 60_000;

export interface AmqpServerOptions {
  host: string;
  port: number;
  namespace: Namespace;
  maxMessageSizeBytes: number;
  log: Logger;
  /** Resolves when stored messages are durable; undefined when there is nothing to wait for (memory only). */
  commit: () => Promise<void> | undefined;
}

interface AmqpError {
  condition: string;
  description: string;
}

class SendRefused extends Error {
  constructor(readonly amqp: AmqpError) {
    super(amqp.description);
  }
}

/** How long connections get to close on their own when the emulator stops. */
const CLOSE_GRACE_MS = 250;

interface ConnectionInternals {
  _disconnected(): void;
  _write_close(): void;
  local: { close: { error?: AmqpError } };
}

/** rhea internals used to hold back an attach reply (pitfall 6). */
interface LinkStateInternals {
  state: { local_open: boolean; open_requests: number };
  local: { attach: Record<string, unknown> };
}

/** The fields of a disposition frame rhea hands to a session. */
interface DispositionFields {
  role: boolean;
  first: number;
  last?: number | null;
  state?: { descriptor?: { value?: unknown } };
}

const OUTCOME_NAMES: Record<number, string> = {
  0x24: 'accepted',
  0x25: 'rejected',
  0x26: 'released',
  0x27: 'modified',
};

function outcomeName(state: DispositionFields['state']): string {
  const code = Number(state?.descriptor?.value);
  return OUTCOME_NAMES[code] ?? String(code);
}

function isAccepted(state: DispositionFields['state']): boolean {
  return Number(state?.descriptor?.value) === 0x24;
}

function ticks(ms: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigInt64BE(BigInt(Math.trunc(ms)) * 10000n + TICKS_AT_EPOCH);
  return b;
}

function address(terminus: unknown): string {
  const a = (terminus as { address?: unknown } | undefined)?.address;
  return typeof a === 'string' ? a : '';
}

function notFound(path: string): AmqpError {
  return { condition: 'amqp:not-found', description: `The messaging entity '${path}' could not be found.` };
}

export class AmqpServer {
  readonly #options: AmqpServerOptions;
  readonly #log: Logger;
  readonly #container: Container;
  readonly #sockets = new Set<Socket>();
  readonly #connectionIds = new WeakMap<Connection, string>();
  readonly #connections = new Set<Connection>();
  /** Receivers by connection, so that a dropped socket releases their sessions. */
  readonly #consumers = new Map<Connection, Map<Sender, { consumer: LinkConsumer; store: MessageStore }>>();
  #server: Server | undefined;
  #nextConnection = 1;
  #nextLink = 1;

  private constructor(options: AmqpServerOptions) {
    this.#options = options;
    this.#log = options.log;
    this.#container = rhea.create_container({ id: `servicebus-emulator-${options.namespace.name}` });
    this.#wire();
  }

  static async start(options: AmqpServerOptions): Promise<AmqpServer> {
    const server = new AmqpServer(options);
    await server.#listen();
    return server;
  }

  get port(): number {
    const a = this.#server?.address();
    return typeof a === 'object' && a ? a.port : 0;
  }

  async #listen(): Promise<void> {
    const server = this.#container.listen({
      host: this.#options.host,
      port: this.#options.port,
      autoaccept: false,
      treat_modified_as_released: false,
      session_buffer_size: 32768,
    } as unknown as Parameters<Container['listen']>[0]) as Server;
    this.#server = server;
    server.on('connection', (socket: Socket) => {
      this.#sockets.add(socket);
      socket.setNoDelay(true);
      socket.on('close', () => this.#sockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('listening', resolve);
      server.once('error', reject);
    });
    server.on('error', (err) => this.#log.error('listener error', { err }));
  }

  #connId(connection: Connection | undefined): string {
    if (!connection) return '?';
    let id = this.#connectionIds.get(connection);
    if (!id) {
      id = `c${this.#nextConnection++}`;
      this.#connectionIds.set(connection, id);
    }
    return id;
  }

  /** Runs an event handler; a throw is logged and ends the link, never the process or other connections. */
  #guard(event: string, handler: (ctx: EventContext) => void): (ctx: EventContext) => void {
    return (ctx) => {
      try {
        handler(ctx);
      } catch (err) {
        const link = ctx.sender ?? ctx.receiver;
        this.#log.error('handler failed; closing the link', {
          event,
          connection: this.#connId(ctx.connection),
          link: link?.name,
          err,
        });
        if (link && !link.is_closed())
          link.close({ condition: 'amqp:internal-error', description: String((err as Error).message ?? err) });
      }
    };
  }

  #wire(): void {
    const c = this.#container;
    c.on(
      'connection_open',
      this.#guard('connection_open', (ctx) => {
        const connection = ctx.connection;
        this.#connections.add(connection);
        connection.on('protocol_error', (err: unknown) => this.#onBadInput(connection, err));
        connection.on('error', (err: unknown) => this.#onBadInput(connection, err));
        this.#log.debug('connection open', {
          connection: this.#connId(ctx.connection),
          container: ctx.connection.container_id,
        });
      }),
    );
    c.on(
      'session_open',
      this.#guard('session_open', (ctx) => this.#rawTransfers(ctx)),
    );
    c.on(
      'receiver_open',
      this.#guard('receiver_open', (ctx) => this.#onClientSender(ctx)),
    );
    c.on(
      'sender_open',
      this.#guard('sender_open', (ctx) => this.#onClientReceiver(ctx)),
    );
    c.on(
      'message',
      this.#guard('message', (ctx) => this.#onMessage(ctx)),
    );
    c.on('disconnected', (ctx: EventContext) => {
      const error = (ctx as { error?: unknown }).error;
      this.#log.debug('client disconnected', { connection: this.#connId(ctx.connection), err: error });
      this.#dropConsumers(ctx.connection);
      this.#connections.delete(ctx.connection);
    });
    c.on('connection_close', (ctx: EventContext) => {
      this.#log.debug('connection closed by the client', { connection: this.#connId(ctx.connection) });
      this.#dropConsumers(ctx.connection);
      this.#connections.delete(ctx.connection);
    });
    c.on('protocol_error', (ctx: unknown) => {
      this.#log.warn('malformed AMQP input; closing that connection', { err: ctx });
    });
    c.on('error', (ctx: unknown) => {
      const err = (ctx as { error?: unknown })?.error ?? ctx;
      this.#log.warn('connection error', { err });
    });
    for (const event of ['sender_error', 'receiver_error', 'session_error', 'connection_error']) {
      c.on(event, (ctx: EventContext) => {
        const link = ctx.sender ?? ctx.receiver;
        this.#log.debug(event, {
          connection: this.#connId(ctx.connection),
          link: link?.name,
          err: link?.error ?? ctx.session?.error ?? ctx.connection?.error,
        });
      });
    }
    c.on('sender_close', (ctx: EventContext) => this.#onClientReceiverClosed(ctx));
    // A client may end an AMQP session without detaching its links first: rhea then reports no link closes.
    c.on('session_close', (ctx: EventContext) => this.#dropConsumers(ctx.connection, ctx.session));
  }

  /**
   * Input that cannot be decoded on an open connection: rhea ends the socket right after this event, so the close
   * frame with `amqp:decode-error` is written now, to tell the client why. (A remote close with an error also
   * arrives as 'error'; rhea answers that one itself.)
   */
  #onBadInput(connection: Connection, err: unknown): void {
    const remoteClose = (err as { name?: string } | undefined)?.name === 'ConnectionError';
    this.#log.warn(
      remoteClose ? 'client closed the connection with an error' : 'malformed AMQP input; closing that connection',
      {
        connection: this.#connId(connection),
        err,
      },
    );
    if (remoteClose || !connection.is_open()) return;
    const internals = connection as unknown as ConnectionInternals;
    try {
      internals.local.close.error = {
        condition: 'amqp:decode-error',
        description: `Malformed input: ${(err as Error)?.message ?? String(err)}`,
      };
      internals._write_close();
    } catch (writeErr) {
      this.#log.debug('could not write the close frame', { connection: this.#connId(connection), err: writeErr });
    }
  }

  /**
   * Makes rhea hand over the bytes of format-0 transfers undecoded (see message.ts, pitfall 5), and warns about
   * dispositions that give one outcome other than accepted to several deliveries: rhea 3.0.5 on the client merges
   * concurrent settlements of consecutive deliveries into such a range even when their outcomes differ, so the
   * broker (Azure too) applies the first one's outcome to all (docs: "For the workers").
   */
  #rawTransfers(ctx: EventContext): void {
    const session = ctx.session as unknown as {
      on_transfer: (frame: { performative: { message_format?: number } }) => void;
      on_disposition: (frame: { performative: DispositionFields }) => void;
      __raw?: boolean;
    };
    if (session.__raw) return;
    session.__raw = true;
    const original = session.on_transfer.bind(session);
    session.on_transfer = (frame) => {
      if (!frame.performative.message_format) frame.performative.message_format = RAW_FORMAT;
      original(frame);
    };
    const onDisposition = session.on_disposition.bind(session);
    const connection = this.#connId(ctx.connection);
    session.on_disposition = (frame) => {
      const f = frame.performative;
      if (f.role && f.last !== undefined && f.last !== null && f.last > f.first && f.state && !isAccepted(f.state)) {
        this.#log.warn(
          'a client settled several deliveries with one outcome other than complete; with rhea 3.0.5 this is often concurrent settlements merged by mistake',
          {
            connection,
            deliveries: f.last - f.first + 1,
            outcome: outcomeName(f.state),
          },
        );
      }
      onDisposition(frame);
    };
  }

  // ---- client senders (broker receivers) -------------------------------------------------------------------------

  #onClientSender(ctx: EventContext): void {
    const receiver = ctx.receiver!;
    const addr = address(receiver.target);
    const meta = receiver as unknown as { __kind?: string; __target?: SendTarget; __entity?: string };
    receiver.set_target({ address: addr });
    const log = { connection: this.#connId(ctx.connection), link: receiver.name, path: addr };
    if (addr === '$cbs') {
      meta.__kind = 'cbs';
      return;
    }
    if (/(^|\/)\$management$/i.test(addr)) {
      meta.__kind = 'management';
      meta.__entity = addr.replace(/\/?\$management$/i, '');
      return;
    }
    const target = this.#options.namespace.sendTarget(addr);
    if (!target) {
      this.#log.info('send link refused: unknown entity', log);
      receiver.close(notFound(addr));
      return;
    }
    meta.__kind = 'entity';
    meta.__target = target;
    (receiver as unknown as LinkStateInternals).local.attach['max_message_size'] = this.#options.maxMessageSizeBytes;
    this.#log.debug('send link attached', log);
  }

  #onMessage(ctx: EventContext): void {
    const receiver = ctx.receiver!;
    const meta = receiver as unknown as { __kind?: string; __target?: SendTarget; __entity?: string };
    const raw = ctx.message as unknown as Buffer;
    const format = (ctx as unknown as { format?: number }).format ?? 0;
    if (meta.__kind === 'entity' && meta.__target) return this.#onSend(ctx, meta.__target, raw, format);
    const request = format === RAW_FORMAT ? amqpMessage.decode(raw) : (ctx.message as AmqpMessage);
    ctx.delivery?.accept();
    if (meta.__kind === 'cbs') return this.#reply(ctx, request, { status: 202, description: 'Accepted' });
    if (meta.__kind === 'management') {
      const operation = String(request.application_properties?.['operation'] ?? '');
      const body = (typeof request.body === 'object' && request.body !== null ? request.body : {}) as Record<
        string,
        unknown
      >;
      let reply;
      try {
        reply = handleManagement(operation, body, {
          namespace: this.#options.namespace,
          entity: meta.__entity ?? '',
          now: Date.now(),
        });
      } catch (err) {
        this.#log.warn('management request failed', { operation, entity: meta.__entity, err });
        reply = { status: 400, condition: 'amqp:invalid-field', description: (err as Error).message };
      }
      return this.#reply(ctx, request, reply);
    }
  }

  #onSend(ctx: EventContext, target: SendTarget, raw: Buffer, format: number): void {
    const delivery = ctx.delivery!;
    const log = { connection: this.#connId(ctx.connection), link: ctx.receiver?.name, entity: target.name };
    let stored: number;
    try {
      if (raw.length > this.#options.maxMessageSizeBytes) {
        throw new SendRefused({
          condition: 'amqp:link:message-size-exceeded',
          description: `The received message (${raw.length} bytes) exceeds the limit (${this.#options.maxMessageSizeBytes} bytes) on '${target.name}'.`,
        });
      }
      const messages = this.#parse(raw, format);
      for (const msg of messages) {
        const entity = this.#options.namespace.missingSession(target, msg);
        if (entity !== undefined) {
          throw new SendRefused({
            condition: 'amqp:not-allowed',
            description: `The entity '${entity}' requires sessions: a message has no session id.`,
          });
        }
      }
      stored = this.#options.namespace.send(target, messages, Date.now());
    } catch (err) {
      const amqp =
        err instanceof SendRefused
          ? err.amqp
          : {
              condition: 'amqp:decode-error',
              description: `The message could not be decoded: ${(err as Error).message}`,
            };
      if (err instanceof SendRefused) this.#log.info('send refused', { ...log, condition: amqp.condition });
      else this.#log.warn('undecodable message refused', { ...log, err, decodeError: err instanceof AmqpDecodeError });
      delivery.reject(amqp);
      return;
    }
    const durable = stored > 0 ? this.#options.commit() : undefined;
    if (!durable) {
      delivery.accept();
      return;
    }
    durable.then(
      () => delivery.accept(),
      (err: unknown) => {
        this.#log.error('journal failed; send rejected', { ...log, err });
        delivery.reject({ condition: 'amqp:internal-error', description: 'The message could not be stored durably.' });
      },
    );
  }

  #parse(raw: Buffer, format: number): IncomingMessage[] {
    if (format === BATCH_FORMAT) return unpackBatch(raw).map(parseMessage);
    if (format === RAW_FORMAT || format === 0) return [parseMessage(raw)];
    throw new SendRefused({
      condition: 'amqp:not-implemented',
      description: `Unsupported message format 0x${format.toString(16)}.`,
    });
  }

  /** Sends a request-response answer on the client's reply link (matched by name or target address). */
  #reply(
    ctx: EventContext,
    request: AmqpMessage,
    reply: { status: number; description: string; condition?: string; body?: unknown },
  ): void {
    const replyTo = request.reply_to;
    const connection = ctx.connection;
    const link = (
      connection as unknown as { find_sender: (f: (s: Sender) => boolean) => Sender | undefined }
    ).find_sender(
      (s) =>
        s.name === replyTo ||
        address(s.target) === replyTo ||
        address((s as unknown as { remote: { attach?: { target?: unknown } } }).remote.attach?.target) === replyTo,
    );
    if (!link) {
      this.#log.warn('no reply link for a request', { connection: this.#connId(connection), replyTo });
      return;
    }
    const properties: Record<string, unknown> = {
      'status-code': reply.status,
      'status-description': reply.description,
    };
    if (reply.condition) properties['error-condition'] = reply.condition;
    (link as unknown as { send(m: object): unknown }).send({
      correlation_id: request.message_id,
      to: replyTo,
      application_properties: properties,
      body: reply.body ?? {},
    });
  }

  // ---- client receivers (broker senders) -------------------------------------------------------------------------

  #onClientReceiver(ctx: EventContext): void {
    const sender = ctx.sender!;
    const addr = address(sender.source);
    const target = address(sender.target);
    const connection = this.#connId(ctx.connection);
    const log = { connection, link: sender.name, path: addr };
    const remote = (sender as unknown as { remote: { attach: Record<string, unknown> } }).remote.attach;
    const local = (sender as unknown as LinkStateInternals).local.attach;
    local['snd_settle_mode'] = remote['snd_settle_mode'];
    local['rcv_settle_mode'] = remote['rcv_settle_mode'];
    sender.set_target({ address: target });
    if (addr === '$cbs' || /(^|\/)\$management$/i.test(addr)) {
      sender.set_source({ address: addr });
      return;
    }
    const store = this.#options.namespace.store(addr);
    if (!store) {
      this.#log.info('receive link refused: unknown entity', log);
      sender.set_source({ address: addr });
      sender.close(notFound(addr));
      return;
    }
    const consumer = new LinkConsumer(
      sender,
      store,
      this.#log.child({ connection, link: sender.name, entity: store.name }),
      `${connection}/l${this.#nextLink++}`,
    );
    let links = this.#consumers.get(ctx.connection);
    if (!links) this.#consumers.set(ctx.connection, (links = new Map()));
    links.set(sender, { consumer, store });
    const filter = (sender.source as { filter?: Record<string, unknown> } | undefined)?.filter;
    if (!store.requiresSession) {
      sender.set_source({ address: addr });
      store.addConsumer(consumer);
      this.#log.debug('receive link attached', { ...log, receiveAndDelete: consumer.receiveAndDelete });
      return;
    }
    if (!filter || !(SESSION_FILTER in filter)) {
      sender.set_source({ address: addr });
      sender.close({
        condition: 'amqp:not-allowed',
        description: `The entity '${store.name}' requires sessions: use a session receiver.`,
      });
      return;
    }
    const wanted = filter[SESSION_FILTER];
    const sessionId = typeof wanted === 'string' ? wanted : undefined;
    const properties = (remote['properties'] ?? {}) as Record<string, unknown>;
    const timeoutMs =
      typeof properties[CLIENT_TIMEOUT] === 'number' ? (properties[CLIENT_TIMEOUT] as number) : DEFAULT_SESSION_WAIT_MS;
    const held = sender as unknown as LinkStateInternals;
    held.state.local_open = false;
    held.state.open_requests = 0;
    const attach = (id: string | undefined, until: number): void => {
      if (sender.is_closed() || !sender.is_remote_open()) return;
      if (id === undefined) {
        local['source'] = null;
        sender.open();
        sender.close({
          condition: CLIENT_TIMEOUT,
          description: `No session became available on '${store.name}' within ${timeoutMs} ms.`,
        });
        return;
      }
      sender.set_source({ address: addr, filter: { [SESSION_FILTER]: id } });
      local['properties'] = { [LOCKED_UNTIL_UTC]: amqpTypes.wrap_long(ticks(until)) };
      sender.open();
      this.#log.debug('session receiver attached', { ...log, sessionId: id });
      store.pump();
    };
    const now = Date.now();
    store.addConsumer(consumer);
    const accepted = store.acceptSession(consumer, sessionId, timeoutMs, now);
    if (accepted === 'locked') {
      store.removeConsumer(consumer, now);
      sender.set_source({ address: addr });
      sender.open();
      sender.close({
        condition: 'com.microsoft:session-cannot-be-locked',
        description: `The session '${String(sessionId)}' is locked by another receiver.`,
      });
      return;
    }
    if (!(accepted instanceof Promise)) {
      attach(accepted.id, accepted.lockedUntil);
      return;
    }
    void accepted.then((session) => {
      try {
        attach(session?.id, session?.lockedUntil ?? 0);
        if (!session) store.removeConsumer(consumer, Date.now());
      } catch (err) {
        this.#log.error('session attach failed', { ...log, err });
      }
    });
  }

  #onClientReceiverClosed(ctx: EventContext): void {
    const links = this.#consumers.get(ctx.connection);
    const entry = ctx.sender ? links?.get(ctx.sender) : undefined;
    if (!entry || !ctx.sender) return;
    links!.delete(ctx.sender);
    entry.consumer.close();
    entry.store.removeConsumer(entry.consumer, Date.now());
  }

  /** Releases the receivers of a connection (or of one of its AMQP sessions) and the sessions they hold. */
  #dropConsumers(connection: Connection, session?: unknown): void {
    const links = this.#consumers.get(connection);
    if (!links) return;
    const now = Date.now();
    for (const [sender, { consumer, store }] of links) {
      if (session !== undefined && sender.session !== session) continue;
      links.delete(sender);
      consumer.close();
      store.removeConsumer(consumer, now);
    }
    if (links.size === 0) this.#consumers.delete(connection);
  }

  /**
   * Stops listening, closes every connection (an AMQP close, so clients see why), and drops the sockets that are
   * still open after a short grace period. rhea does not watch a socket's 'close', so its timers are cleared here.
   */
  async close(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    if (!server) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const connection of this.#connections) {
      if (connection.is_open())
        connection.close({
          condition: 'amqp:connection:forced',
          description: 'The Service Bus emulator is shutting down.',
        });
    }
    const deadline = Date.now() + CLOSE_GRACE_MS;
    while (this.#sockets.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    for (const socket of this.#sockets) socket.destroy();
    this.#sockets.clear();
    for (const connection of this.#connections) (connection as unknown as ConnectionInternals)._disconnected();
    this.#connections.clear();
    await closed;
  }
}
