/**
 * The batch receive loop (intake reads `activities`, the recorder reads `interactions`): `receiveMessages` in
 * peek-lock mode on one receiver, each batch handed to a handler, up to `concurrency` batches in flight.
 *
 * Invariants: every delivery is settled (what a handler leaves, returning or throwing, is abandoned and logged: an
 * unsettled message holds its slot in rhea's 2048-slot window, and the receiver would stall 2047 deliveries later);
 * no spinning (a failed receive is reported to `onError` and followed by the `backoff` delay; the first successful
 * receive resets it); a receive is never aborted (`stop()`). The client belongs to the caller: close it after the
 * loop.
 */
import type { ServiceBusClient, ServiceBusReceivedMessage, ServiceBusReceiver } from '@azure/service-bus';
import type { Registry } from 'prom-client';
import type { Delivery } from '../pipeline/index.js';
import { areaLogger, silentLogger, type Logger } from '../log.js';
import { delayUnlessAborted, whenAborted } from '../abort.js';
import { Backoff, type BackoffOptions } from './backoff.js';
import { abandonUnsettled, toDelivery, type SettleableDelivery } from './delivery.js';
import { LoopHealthTracker, type LoopHealth } from './loop-health.js';
import { serviceBusMetrics, type ServiceBusMetrics } from './metrics.js';
import { functionOption, intOption, stringOption } from '../options.js';

/** Handles one batch. It should settle every delivery; whatever it leaves unsettled is abandoned. */
export type BatchHandler = (deliveries: Delivery[], signal: AbortSignal) => Promise<void>;

/** Where an error reported to `onError` happened. */
export type LoopErrorSource = 'receive' | 'accept' | 'handler' | 'session' | 'close';

export interface LoopErrorContext {
  queue: string;
  source: LoopErrorSource;
  sessionId?: string;
}

/** Options shared by the batch and session loops. */
export interface ReceiveLoopCommonOptions {
  client: ServiceBusClient;
  queue: string;
  /** Most messages per batch. @defaultValue 50 */
  maxBatch?: number;
  /**
   * Longest wait for a batch to fill, in milliseconds (a batch is handed over as soon as it is full); but after a pause
   * as long with no batch, the first message is handed over the moment it comes (`receiveBatch`), so that one
   * message into an idle loop, or into a session a slot takes after such a pause, does not wait. @defaultValue 1000
   */
  maxWaitMs?: number;
  /**
   * How long the SDK keeps renewing locks (message locks, from when each was received; session locks for sessions, from
   * the accept), in milliseconds; 0 disables. A handler that runs longer loses the locks of what it has not settled
   * yet: those settlements fail (counted as `lock_lost`) and the messages come back (`deliveryCount` + 1), so they may
   * be handled twice. The batch loop cannot stop that (a batch is not cut short); it logs a warning when a batch is
   * still running at `maxLockRenewalMs`. Keep batches well inside it, or raise it. @defaultValue 300_000
   */
  maxLockRenewalMs?: number;
  /**
   * Bodies as the raw bytes (`skipParsingBodyAsJson`): a Buffer whatever it holds. Use it where the decoder must see
   * what the producer sent (intake: Dataverse's JSON with a BOM, XML or .NET binary); leave it off for the relay's
   * own JSON queues, whose bodies then arrive parsed. @defaultValue false
   */
  rawBody?: boolean;
  /**
   * How long `close()` waits, after aborting the handlers' signal, for the handlers to end before it abandons what they
   * left unsettled and closes the receivers, in milliseconds. Up to then nothing a running handler holds is abandoned.
   * A handler in the middle of a provider call cannot always stop at once: the call runs to its own timeout (10 s by
   * default for the providers) and then its outcome is recorded and the message completed. A grace shorter than that
   * (as the default) can abandon a message whose send is under way or done: it comes back and is sent again (with the
   * same idempotency key, which a provider may or may not honour). So give a loop whose handlers call providers a
   * grace of at least the longest provider call timeout plus the time to record and settle. `drain()` has no grace of
   * its own: it waits until its signal aborts. @defaultValue 5_000
   */
  closeGraceMs?: number;
  /** Delay after a failed receive. @defaultValue { initialDelayMs: 200, maxDelayMs: 30_000 } */
  backoff?: BackoffOptions;
  /** @defaultValue silentLogger() */
  log?: Logger;
  /** Told of every error the loop handles itself (failed receives, handler failures); it must not throw. @defaultValue nothing */
  onError?: (error: unknown, context: LoopErrorContext) => void;
  /** The registry to count on (see `metrics.ts`). @defaultValue none (no counting) */
  metrics?: Registry;
}

export interface BatchLoopOptions extends ReceiveLoopCommonOptions {
  handler: BatchHandler;
  /** Batches in flight at once (the next receive starts when one ends). @defaultValue 1 */
  concurrency?: number;
  /**
   * Most bytes of bodies received by the batches in flight (a Buffer's length, a string's UTF-8 length; a body the SDK
   * parsed counts nothing), at the mean body size received so far: a receive starts only when a full batch fits beside
   * what the batches in flight hold (no part batches), or with nothing in flight for as many as fit (at least one).
   * `concurrency` × `maxBatch` bounds the count; this bounds the memory, also when bodies are large. @defaultValue Infinity
   */
  maxBytesInFlight?: number;
  /**
   * Whether the handler can start on another batch now (intake and the recorder: no Dataverse call of theirs waits
   * for the limits). While it says no, the loop asks again when a batch in flight ends or after `maxWaitMs`, so that
   * batches do not queue, locked and in memory, behind work that cannot start; with no batch in flight the loop
   * receives anyway. @defaultValue always
   */
  ready?: () => boolean;
}

/** A running receive loop. */
export interface ReceiveLoop {
  readonly queue: string;
  /** Batches (or sessions' batches) being handled now. */
  readonly inFlight: number;
  /**
   * Whether it still receives (a loop stops on its own when the client is closed under it), when the broker last
   * answered, and how many receives in a row failed; cheap.
   */
  health(): LoopHealth;
  /**
   * Stops receiving; resolves when no receive is in progress (a session wait that cannot be cut short excepted). A
   * receive is never aborted (that would lose the messages it already got, locked in unsettled slots): the receive in
   * progress ends (at most `maxWaitMs` plus a drain round trip) and its messages go to the handler like any other batch.
   */
  stop(): Promise<void>;
  /**
   * Stops, then resolves when the work in flight has ended; `signal` aborts the handlers' signal (they should hand
   * their deliveries back and return).
   */
  drain(signal?: AbortSignal): Promise<void>;
  /**
   * Stops, aborts the handlers, waits for them up to `closeGraceMs`, settles what they left (abandon) and closes the
   * receivers. Idempotent.
   */
  close(): Promise<void>;
}

/** The validated common options. */
export interface ResolvedCommon {
  client: ServiceBusClient;
  queue: string;
  maxBatch: number;
  maxWaitMs: number;
  maxLockRenewalMs: number;
  rawBody: boolean;
  closeGraceMs: number;
  backoff: BackoffOptions;
  log: Logger;
  onError: (error: unknown, context: LoopErrorContext) => void;
  metrics: ServiceBusMetrics;
}

export function resolveCommon(component: string, options: ReceiveLoopCommonOptions): ResolvedCommon {
  if (typeof options.client?.createReceiver !== 'function')
    throw new TypeError(`${component}: client must be a ServiceBusClient`);
  const queue = stringOption(component, 'queue', options.queue);
  const log = areaLogger(options.log ?? silentLogger(), 'servicebus', { queue });
  const onError = options.onError ?? (() => undefined);
  return {
    client: options.client,
    queue,
    maxBatch: intOption(component, 'maxBatch', options.maxBatch, 50, 1),
    maxWaitMs: intOption(component, 'maxWaitMs', options.maxWaitMs, 1000, 1),
    maxLockRenewalMs: intOption(component, 'maxLockRenewalMs', options.maxLockRenewalMs, 300_000, 0),
    rawBody: options.rawBody ?? false,
    closeGraceMs: intOption(component, 'closeGraceMs', options.closeGraceMs, 5_000, 0),
    backoff: options.backoff ?? {},
    log,
    onError: (error, context) => {
      try {
        onError(error, context);
      } catch (err) {
        log.error('onError threw', { err });
      }
    },
    metrics: serviceBusMetrics(options.metrics),
  };
}

/** Calls `warn` unless cancelled within `ms` (never when `ms` is not finite); returns the cancel function. */
function warnIfStillRunning(ms: number, warn: () => void): () => void {
  if (!Number.isFinite(ms)) return () => undefined;
  const timer = setTimeout(warn, Math.max(0, ms));
  timer.unref();
  return () => clearTimeout(timer);
}

export interface HandlerRun {
  log: Logger;
  /** Calls `onOverrun` if the handler still runs after this many milliseconds (never when not finite). */
  overrunMs: number;
  onOverrun: () => void;
  /** Told when the handler throws. */
  onFailure: (error: unknown) => void;
  /** Why what the handler left unsettled is abandoned, for the log. */
  unsettledWhy: string;
}

/**
 * Runs a handler on a batch, for both loops: warns of an overrun, reports a failure, then abandons whatever the
 * handler left unsettled. Resolves to the handler's result (`undefined` when it threw); never rejects.
 */
export async function runHandler<T>(
  deliveries: readonly SettleableDelivery[],
  handle: () => Promise<T>,
  run: HandlerRun,
): Promise<T | undefined> {
  const cancelOverrun = warnIfStillRunning(run.overrunMs, run.onOverrun);
  let result: T | undefined;
  try {
    result = await handle();
  } catch (err) {
    run.onFailure(err);
  } finally {
    cancelOverrun();
  }
  await abandonUnsettled(deliveries, run.log, run.unsettledWhy);
  return result;
}

/** The receive call of either receiver kind (`ServiceBusReceiver`, `ServiceBusSessionReceiver`). */
export type BatchReceiver = Pick<ServiceBusReceiver, 'receiveMessages'>;

/**
 * Until when a receiving loop counts as busy (ms since the epoch): `maxWaitMs` after its start (a loop starts on a
 * backlog as often as not) and after each batch. One per batch loop; one per slot of a session loop, carried from one
 * session to the next, so that a session accepted after a pause (an idle release, an accept that waited) hands its
 * first message over as it comes, and one accepted on the heels of another session's batches starts with a full batch.
 */
export interface ReceivePace {
  busyUntil: number;
}

/**
 * Receives a batch without lingering after a pause: when its loop (a session loop: its slot) handed over no batch in
 * the last `maxWaitMs` and was not started in it (`pace`), it asks for one message, which the SDK returns the moment it arrives; otherwise for up to `max`, as
 * before. The SDK's `receiveMessages(max)` keeps a batch open after its first message until `max` came or
 * `maxWaitMs` from the call passed (its after-first-message wait is 1 s and not settable:
 * `defaultMaxTimeAfterFirstMessageForBatchingMs` in @azure/service-bus 7.9.5), so one activity into an idle relay
 * waited up to `maxWaitMs` at each stage. A receive of one message ends without a drain when the message comes (its
 * credit is used up): draining at once for what else the link held made the SDK close links in the end-to-end tests
 * (a drain it sees answered after 200 ms closes the link: docs/emulators/servicebus.md). After a pause, a burst's first message
 * is therefore a batch of its own, and the rest follows in the next, full-size receive.
 */
export async function receiveBatch(
  receiver: BatchReceiver,
  max: number,
  maxWaitMs: number,
  pace: ReceivePace,
): Promise<ServiceBusReceivedMessage[]> {
  const paused = Date.now() >= pace.busyUntil;
  const messages = await receiver.receiveMessages(paused ? 1 : max, { maxWaitTimeInMs: maxWaitMs });
  if (messages.length > 0) pace.busyUntil = Date.now() + maxWaitMs;
  return messages;
}

/** Resolves after `ms` or when `promise` settles, whichever is first. */
export async function within(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([promise.then(() => true as const), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

interface Batch {
  deliveries: SettleableDelivery[];
  /** Bytes of the bodies as received (`bodyBytes`). */
  bytes: number;
  done: Promise<void>;
}

/** Bytes of a body as received: a Buffer's length, a string's UTF-8 length, 0 for a body the SDK parsed. */
export function bodyBytes(body: unknown): number {
  if (Buffer.isBuffer(body)) return body.length;
  if (typeof body === 'string') return Buffer.byteLength(body);
  return 0;
}

/**
 * How many messages the next receive asks for: `maxBatch`, or fewer when `maxBytesInFlight` leaves room for fewer at
 * the mean body size received so far (`received` bodies of `receivedBytes` in all); at least one, and one while no
 * size is known under a bound.
 */
export function receiveSize(
  maxBatch: number,
  maxBytesInFlight: number,
  bytesInFlight: number,
  received: number,
  receivedBytes: number,
): number {
  if (!Number.isFinite(maxBytesInFlight)) return maxBatch;
  if (received === 0) return 1;
  if (receivedBytes === 0) return maxBatch;
  const mean = receivedBytes / received;
  return Math.max(1, Math.min(maxBatch, Math.floor((maxBytesInFlight - bytesInFlight) / mean)));
}

class BatchLoop implements ReceiveLoop {
  readonly queue: string;
  readonly #o: ResolvedCommon;
  readonly #handler: BatchHandler;
  readonly #concurrency: number;
  readonly #maxBytesInFlight: number;
  readonly #ready: () => boolean;
  /** Bodies received so far and their bytes, for the mean size (`receiveSize`). */
  #received = 0;
  #receivedBytes = 0;
  #bytesInFlight = 0;
  readonly #backoff: Backoff;
  readonly #stopping = new AbortController();
  readonly #abortHandlers = new AbortController();
  readonly #batches = new Set<Batch>();
  #slotWaiters: Array<() => void> = [];
  #receiver: ServiceBusReceiver | undefined;
  readonly #pace: ReceivePace;
  #receiving: Promise<void>;
  readonly #health = new LoopHealthTracker(() => !this.#stopping.signal.aborted);
  #closing: Promise<void> | undefined;

  constructor(options: BatchLoopOptions) {
    this.#o = resolveCommon('startBatchLoop', options);
    this.queue = this.#o.queue;
    this.#handler = functionOption('startBatchLoop', 'handler', options.handler);
    this.#concurrency = intOption('startBatchLoop', 'concurrency', options.concurrency, 1, 1);
    this.#maxBytesInFlight =
      options.maxBytesInFlight === undefined
        ? Infinity
        : intOption('startBatchLoop', 'maxBytesInFlight', options.maxBytesInFlight, 1, 1);
    this.#ready = options.ready === undefined ? () => true : functionOption('startBatchLoop', 'ready', options.ready);
    this.#backoff = new Backoff(this.#o.backoff);
    this.#pace = { busyUntil: Date.now() + this.#o.maxWaitMs };
    this.#receiving = this.#run();
  }

  get inFlight(): number {
    return this.#batches.size;
  }

  health(): LoopHealth {
    return this.#health.health();
  }

  async #run(): Promise<void> {
    const { client, queue, log } = this.#o;
    log.info('batch loop started', { maxBatch: this.#o.maxBatch, concurrency: this.#concurrency });
    while (!this.#stopping.signal.aborted) {
      // Waiting for room is not a pause of the queue: the receive after it takes a full batch (`receiveBatch`).
      if (await this.#slotFree()) this.#pace.busyUntil = Date.now() + this.#o.maxWaitMs;
      if (this.#stopping.signal.aborted) break;
      let receiver: ServiceBusReceiver;
      try {
        receiver = this.#receiver ??= client.createReceiver(queue, {
          receiveMode: 'peekLock',
          maxAutoLockRenewalDurationInMs: this.#o.maxLockRenewalMs,
          skipParsingBodyAsJson: this.#o.rawBody,
        });
      } catch (err) {
        // The client is closed: nothing more can be received.
        this.#health.failed(err);
        log.error('cannot create a receiver; the batch loop stops', { err });
        this.#o.onError(err, { queue, source: 'receive' });
        this.#stopping.abort();
        break;
      }
      let messages;
      const asked = Date.now();
      try {
        const max = receiveSize(
          this.#o.maxBatch,
          this.#maxBytesInFlight,
          this.#bytesInFlight,
          this.#received,
          this.#receivedBytes,
        );
        messages = await receiveBatch(receiver, max, this.#o.maxWaitMs, this.#pace);
        this.#health.answered();
        if (messages.length > 0 || Date.now() - asked >= this.#o.maxWaitMs / 2) this.#backoff.reset();
        else {
          // Empty long before maxWaitMs: the link is going away. Wait rather than spin.
          await delayUnlessAborted(this.#backoff.next(), this.#stopping.signal);
          continue;
        }
      } catch (err) {
        if (receiver.isClosed) this.#receiver = undefined;
        if (this.#stopping.signal.aborted) break;
        this.#health.failed(err);
        const delayMs = this.#backoff.next();
        log.warn('receive failed; retrying after a delay', { err, delayMs, attempt: this.#backoff.attempt });
        this.#o.onError(err, { queue, source: 'receive' });
        await delayUnlessAborted(delayMs, this.#stopping.signal);
        continue;
      }
      if (messages.length === 0) continue;
      this.#o.metrics.received(queue, messages.length);
      const deliveries = messages.map((m) => toDelivery(m, receiver, { queue, log, metrics: this.#o.metrics }));
      this.#start(deliveries);
    }
    log.info('batch loop stopped receiving');
  }

  #start(deliveries: SettleableDelivery[]): void {
    const { queue, log, maxLockRenewalMs } = this.#o;
    const started = Date.now();
    let bytes = 0;
    for (const d of deliveries) bytes += bodyBytes(d.body);
    this.#received += deliveries.length;
    this.#receivedBytes += bytes;
    this.#bytesInFlight += bytes;
    const done = runHandler(deliveries, () => this.#handler(deliveries, this.#abortHandlers.signal), {
      log,
      overrunMs: maxLockRenewalMs > 0 ? maxLockRenewalMs : Infinity,
      onOverrun: () =>
        log.warn(
          'a batch handler is still running after maxLockRenewalMs: the locks of what it has not settled may run out (those messages come back and may be handled twice)',
          {
            count: deliveries.length,
            unsettled: deliveries.filter((d) => !d.settled).length,
            runningMs: Date.now() - started,
            maxLockRenewalMs,
          },
        ),
      onFailure: (err) => {
        log.error('batch handler failed', { err, count: deliveries.length });
        this.#o.onError(err, { queue, source: 'handler' });
      },
      unsettledWhy: 'the batch handler ended with deliveries it did not settle',
    }).finally(() => {
      this.#batches.delete(batch);
      this.#bytesInFlight -= batch.bytes;
      this.#wakeSlotWaiters();
    });
    const batch: Batch = { deliveries, bytes, done };
    this.#batches.add(batch);
  }

  /**
   * Resolves when another batch may be received: a slot is free, the bytes held leave room and the handler is ready;
   * to whether it had to wait for that.
   */
  async #slotFree(): Promise<boolean> {
    let waited = false;
    for (let why = this.#blocked(); why !== undefined && !this.#stopping.signal.aborted; why = this.#blocked()) {
      waited = true;
      const slot = new Promise<void>((resolve) => this.#slotWaiters.push(resolve));
      if (why === 'room') await slot;
      else {
        // Nothing tells the loop when the handler becomes ready: it asks again when a batch ends or after maxWaitMs.
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([slot, new Promise<void>((resolve) => (timer = setTimeout(resolve, this.#o.maxWaitMs)))]);
        clearTimeout(timer);
      }
    }
    return waited;
  }

  /**
   * Why no batch may be received now: no slot, or no room for the bytes of a full batch at the mean size (`room`: a
   * part batch would cost a batch's reads), or the handler not ready. With nothing in flight, never.
   */
  #blocked(): 'room' | 'ready' | undefined {
    const held = this.#batches.size;
    if (held >= this.#concurrency) return 'room';
    if (held === 0) return undefined;
    const mean = this.#received === 0 ? 0 : this.#receivedBytes / this.#received;
    if (this.#bytesInFlight + this.#o.maxBatch * mean > this.#maxBytesInFlight) return 'room';
    return this.#ready() ? undefined : 'ready';
  }

  #wakeSlotWaiters(): void {
    const waiters = this.#slotWaiters;
    this.#slotWaiters = [];
    for (const wake of waiters) wake();
  }

  stop(): Promise<void> {
    if (!this.#stopping.signal.aborted) {
      this.#stopping.abort();
      this.#wakeSlotWaiters();
    }
    return this.#receiving;
  }

  async drain(signal?: AbortSignal): Promise<void> {
    const stopListening = whenAborted(signal, (reason) => this.#abortHandlers.abort(reason));
    try {
      await this.stop();
      await Promise.all([...this.#batches].map((b) => b.done));
    } finally {
      stopListening();
    }
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    const { log, queue } = this.#o;
    this.#abortHandlers.abort(new Error('the receive loop is closing'));
    await this.stop();
    const pending = [...this.#batches];
    const ended = await within(Promise.all(pending.map((b) => b.done)), this.#o.closeGraceMs);
    if (!ended) {
      log.warn('handlers did not end within the close grace period; abandoning their deliveries', {
        closeGraceMs: this.#o.closeGraceMs,
      });
      for (const b of pending) await abandonUnsettled(b.deliveries, log, 'closing with a handler still running');
    }
    try {
      await this.#receiver?.close();
    } catch (err) {
      this.#o.onError(err, { queue, source: 'close' });
    }
    log.info('batch loop closed');
  }
}

/** Starts receiving at once; see the module comment for the guarantees and `ReceiveLoop` for the life cycle. */
export function startBatchLoop(options: BatchLoopOptions): ReceiveLoop {
  return new BatchLoop(options);
}
