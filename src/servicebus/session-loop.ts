/**
 * The session loop (dispatch reads `outbound`: one session per sender): holds up to `maxSessions` sessions at once
 * and hands each session's batches, in order, to that session's own handler. The broker locks a session to one
 * receiver at a time, so a session's handler (and the rate limiter it keeps) is the only one for its sender across
 * every replica.
 *
 * Invariants: every delivery is settled (what a handler leaves is abandoned, as in the batch loop); a session is
 * released before its lock renewal ends (`#hold`), so a busy sender is never handled by two replicas at once; the
 * session state a handler saves goes to the next holder; a receive or an accept is never aborted (`startSessionLoop`).
 */
import { isServiceBusError, type ServiceBusSessionReceiver } from '@azure/service-bus';
import type { SessionCloseReason, SessionHandler, SessionHandlerFactory, SessionRelease } from '../pipeline/index.js';
import type { Logger } from '../log.js';
import { delayUnlessAborted, whenAborted } from '../abort.js';
import { Backoff } from './backoff.js';
import {
  receiveBatch,
  resolveCommon,
  runHandler,
  within,
  type ReceiveLoop,
  type ReceiveLoopCommonOptions,
  type ResolvedCommon,
  type ReceivePace,
} from './batch-loop.js';
import { abandonUnsettled, toDelivery, type SettleableDelivery } from './delivery.js';
import { LoopHealthTracker, type LoopHealth } from './loop-health.js';
import { functionOption, intOption } from '../options.js';

export type { SessionCloseReason, SessionHandler, SessionHandlerFactory, SessionRelease } from '../pipeline/index.js';

export interface SessionLoopOptions extends ReceiveLoopCommonOptions {
  /**
   * Makes the handler of a session when it is accepted. It gets the session's state (`getSessionState`, as a Buffer;
   * `undefined` when none was set) and a `setState(buffer)` that saves it (`setSessionState`) while the session is
   * held, `onClose` included; the next holder, on this replica or another, gets it back. The SDK parses state bytes
   * that are valid JSON; the loop turns such a value back into its JSON bytes, so a JSON state may come back
   * re-serialized (same value, whitespace may differ). A handler's `onBatch` may resolve to a `SessionRelease`
   * (`{ release: true, reason }`): the loop then receives nothing more from that session, calls `onClose('released')`
   * (the lock is still held: `setState` works), closes the receiver and accepts again at once, where the same session
   * may come back with a fresh lock (`'lockLost'` instead when the lock has already run out). Dispatch asks for it when
   * it handed messages back at the lock deadline.
   */
  createSessionHandler: SessionHandlerFactory;
  /** Sessions held at once (each is one `acceptNextSession` slot). @defaultValue 8 */
  maxSessions?: number;
  /**
   * A held session with no message for this long is released (`onClose('idle')`, receiver closed), in milliseconds,
   * so that other sessions and replicas get their turn; so is every session on stop (`'stopped'`), when its lock is
   * lost (`'lockLost'`, its messages come back to the next holder) or after an error (`'error'`). @defaultValue 5_000
   */
  sessionIdleMs?: number;
  /**
   * Most messages per batch of one session, by session id, when sessions differ (dispatch: a slow sender's batch
   * holds what it can send in a few seconds, so that a stop does not hand back most of it). @defaultValue `maxBatch`
   */
  maxBatchOf?: (sessionId: string) => number;
  /**
   * Batches of one session handled at once: with more than 1 the loop receives the session's next batch while earlier
   * ones still finish, so that a batch held up by a few of its messages (dispatch: a lost answer's lookup, a retry's
   * backoff) does not stop the session's other messages. Its handler then gets overlapping `onBatch` calls, in the
   * order received. @defaultValue 1
   */
  batchesPerSession?: number;
}

/** An accept answered `ServiceTimeout` sooner than this came early: the slot waits before asking again. */
const MIN_ACCEPT_WAIT_MS = 250;
/** The margin kept before a session's lock deadline: this share of the span from the accept to the deadline... */
const LOCK_MARGIN_SHARE = 0.1;
/** ...but never more than this, in milliseconds. */
const LOCK_MARGIN_MAX_MS = 10_000;

interface Held {
  sessionId: string;
  receiver: ServiceBusSessionReceiver;
  /** The batches being handled now. */
  batches: Set<SettleableDelivery[]>;
  done: Promise<void>;
}

/** The state as a Buffer, whatever the SDK made of its bytes. */
export function stateToBuffer(state: unknown): Buffer | undefined {
  if (state === undefined || state === null) return undefined;
  if (Buffer.isBuffer(state)) return state;
  return Buffer.from(JSON.stringify(state), 'utf8');
}

class SessionLoop implements ReceiveLoop {
  readonly queue: string;
  readonly #o: ResolvedCommon;
  readonly #factory: SessionHandlerFactory;
  readonly #maxSessions: number;
  readonly #sessionIdleMs: number;
  readonly #stopping = new AbortController();
  readonly #abortHandlers = new AbortController();
  readonly #held = new Set<Held>();
  /** Receives in progress (stop() waits for them). */
  readonly #receiving = new Set<Promise<unknown>>();
  readonly #slots: Array<Promise<void>>;
  readonly #health = new LoopHealthTracker(() => !this.#stopping.signal.aborted);
  #closing: Promise<void> | undefined;

  readonly #maxBatchOf: (sessionId: string) => number;
  readonly #batchesPerSession: number;

  constructor(options: SessionLoopOptions) {
    this.#o = resolveCommon('startSessionLoop', options);
    const maxBatchOf = options.maxBatchOf;
    if (maxBatchOf !== undefined && typeof maxBatchOf !== 'function')
      throw new TypeError('startSessionLoop: maxBatchOf must be a function');
    // A bad answer for one session falls back to `maxBatch` rather than stop the loop.
    this.#maxBatchOf = (id) => {
      const n = maxBatchOf?.(id);
      return n !== undefined && Number.isInteger(n) && n >= 1 ? n : this.#o.maxBatch;
    };
    this.queue = this.#o.queue;
    this.#factory = functionOption('startSessionLoop', 'createSessionHandler', options.createSessionHandler);
    this.#maxSessions = intOption('startSessionLoop', 'maxSessions', options.maxSessions, 8, 1);
    this.#sessionIdleMs = intOption('startSessionLoop', 'sessionIdleMs', options.sessionIdleMs, 5_000, 1);
    this.#batchesPerSession = intOption('startSessionLoop', 'batchesPerSession', options.batchesPerSession, 1, 1);
    this.#o.log.info('session loop started', { maxSessions: this.#maxSessions, sessionIdleMs: this.#sessionIdleMs });
    this.#slots = Array.from({ length: this.#maxSessions }, (_, i) => this.#slot(i));
  }

  get inFlight(): number {
    let n = 0;
    for (const h of this.#held) n += h.batches.size;
    return n;
  }

  /** Sessions held now. */
  get sessions(): string[] {
    return [...this.#held].map((h) => h.sessionId);
  }

  /**
   * See `LoopHealth`: a `ServiceTimeout` from an accept counts as an answer of the broker; failed accepts and receives
   * count as errors (a lost session lock does not); the loop stops on its own (running false) when its client is
   * closed under it.
   */
  health(): LoopHealth {
    return this.#health.health();
  }

  async #slot(slot: number): Promise<void> {
    const { client, queue, log } = this.#o;
    const backoff = new Backoff(this.#o.backoff);
    // The slot's pace, not the session's: a session it accepts after handing over no batch for maxWaitMs (an idle
    // release, an accept that waited) has its first message handed over as it comes; one it accepts on the heels of
    // another session's batches (a busy session released at its lock deadline, a backlog) gets a full batch at once.
    const pace: ReceivePace = { busyUntil: Date.now() + this.#o.maxWaitMs };
    while (!this.#stopping.signal.aborted) {
      let receiver: ServiceBusSessionReceiver;
      const asked = Date.now();
      try {
        receiver = await client.acceptNextSession(queue, {
          receiveMode: 'peekLock',
          maxAutoLockRenewalDurationInMs: this.#o.maxLockRenewalMs,
          skipParsingBodyAsJson: this.#o.rawBody,
        });
      } catch (err) {
        if (this.#stopping.signal.aborted) break;
        if (isServiceBusError(err) && (err.code === 'ServiceTimeout' || err.code === 'SessionCannotBeLocked')) {
          // No session free now (the broker answered): ask again, at once after a full wait, after a delay when the
          // answer came early (a broker that answers at once must not make the slot spin).
          this.#health.answered();
          if (Date.now() - asked >= MIN_ACCEPT_WAIT_MS) backoff.reset();
          else await delayUnlessAborted(backoff.next(), this.#stopping.signal);
          continue;
        }
        this.#health.failed(err);
        if (isClientClosed(err)) {
          log.error('the client is closed; the session loop stops', { err });
          this.#o.onError(err, { queue, source: 'accept' });
          this.#stopping.abort();
          break;
        }
        const delayMs = backoff.next();
        log.warn('accepting a session failed; retrying after a delay', { err, slot, delayMs });
        this.#o.onError(err, { queue, source: 'accept' });
        await delayUnlessAborted(delayMs, this.#stopping.signal);
        continue;
      }
      if (this.#stopping.signal.aborted) {
        await closeQuietly(receiver, log);
        break;
      }
      this.#health.answered();
      backoff.reset();
      const ok = await this.#hold(receiver, pace);
      if (!ok) await delayUnlessAborted(backoff.next(), this.#stopping.signal);
    }
  }

  /**
   * Holds one session until it is idle, near its lock deadline, released at its handler's request, lost, failed or the
   * loop stops; false after an error.
   *
   * Release before the lock renewal ends: the SDK renews the session lock (a session's message locks are its session
   * lock) for up to `maxLockRenewalMs` after the accept. A busy session would outlive that: its settlements and
   * `setState` would fail, its messages come back (handled twice) and another replica could take it while this one
   * still works on it. So before each receive the hold checks whether the receive wait plus the longest batch so far
   * would end within the margin before the lock deadline (`lockedUntil()`: the end of renewal, or the lock's expiry
   * when later; the margin is a tenth of the accept-to-deadline span, at most 10 s); if so it hands no new batch, calls
   * `onClose('renewalBudget')` (the lock is still held), closes the receiver and accepts again at once. The first
   * receive of a hold is always made, so each hold makes progress; if the lock has already run out by then, the reason
   * is `'lockLost'`. A batch still running when the deadline passes is logged as a warning: keep a batch (`maxBatch`
   * times the time per message, 429 pauses included) well inside `maxLockRenewalMs`. With `maxLockRenewalMs: 0` the
   * deadline is the lock's expiry (the queue's `LockDuration` after the accept).
   */
  async #hold(receiver: ServiceBusSessionReceiver, pace: ReceivePace): Promise<boolean> {
    const { queue, metrics, maxLockRenewalMs } = this.#o;
    const sessionId = receiver.sessionId;
    const log = this.#o.log.child({ sessionId });
    let release!: () => void;
    const held: Held = { sessionId, receiver, batches: new Set(), done: new Promise<void>((r) => (release = r)) };
    this.#held.add(held);
    // The SDK starts its renewal budget when the accept's link opens, just before the accept resolves.
    const acceptedAt = Date.now();
    const batchSize = this.#maxBatchOf(sessionId);
    const lockedUntil = (): number =>
      lockDeadline(receiver, maxLockRenewalMs > 0 ? acceptedAt + maxLockRenewalMs : undefined);
    const marginMs = Math.min(LOCK_MARGIN_MAX_MS, Math.max(0, (lockedUntil() - acceptedAt) * LOCK_MARGIN_SHARE));
    /** Why the hold ends when the loop releases the session: `asked` (logged) while the lock is held, `'lockLost'` (warned) once it ran out. */
    const releasing = (
      asked: SessionCloseReason,
      message: string,
      lostMessage: string,
      fields: Record<string, unknown>,
    ): SessionCloseReason => {
      if (lockExpired(receiver)) {
        log.warn(lostMessage, fields);
        return 'lockLost';
      }
      log.info(message, fields);
      return asked;
    };
    let reason: SessionCloseReason = 'stopped';
    let handler: SessionHandler | undefined;
    /** The batches being handled (more than one with `batchesPerSession`), each resolving once settled. */
    const running = new Set<Promise<void>>();
    try {
      const state = stateToBuffer(await receiver.getSessionState());
      handler = await this.#factory({
        sessionId,
        state,
        setState: (next) => receiver.setSessionState(next),
        lockedUntil,
      });
      log.debug('session accepted', { stateBytes: state?.length ?? 0, lockedUntil: finiteIso(lockedUntil()) });
      let lastMessageAt = Date.now();
      let receives = 0;
      let batches = 0;
      let longestBatchMs = 0;
      /** A batch's request to release the session (then nothing more is received). */
      let released: SessionRelease | undefined;
      const handle = async (deliveries: SettleableDelivery[]): Promise<void> => {
        held.batches.add(deliveries);
        const started = Date.now();
        const result = await runHandler(deliveries, () => handler!.onBatch(deliveries, this.#abortHandlers.signal), {
          log,
          overrunMs: lockedUntil() - started,
          onOverrun: () =>
            log.warn(
              'a session batch is still running at its lock deadline: its settlements may fail and its messages come back to the next holder',
              {
                count: deliveries.length,
                runningMs: Date.now() - started,
                maxLockRenewalMs,
              },
            ),
          onFailure: (err) => {
            log.error('session batch handler failed', { err, count: deliveries.length });
            this.#o.onError(err, { queue, source: 'handler', sessionId });
          },
          unsettledWhy: 'the session handler ended with deliveries it did not settle',
        });
        held.batches.delete(deliveries);
        batches++;
        longestBatchMs = Math.max(longestBatchMs, Date.now() - started);
        lastMessageAt = Date.now();
        if (isSessionRelease(result)) released ??= result;
      };
      /** Starts a batch; with `batchesPerSession` > 1 the loop goes on receiving while it runs. */
      const start = (deliveries: SettleableDelivery[]): Promise<void> => {
        const batch = handle(deliveries).finally(() => running.delete(batch));
        running.add(batch);
        return batch;
      };
      while (!this.#stopping.signal.aborted && released === undefined) {
        // As many batches as allowed already run: wait for one to end (it may ask to release the session).
        if (running.size >= this.#batchesPerSession) {
          await Promise.race(running);
          continue;
        }
        const idleLeft = this.#sessionIdleMs - (Date.now() - lastMessageAt);
        if (idleLeft <= 0) {
          // Idle only once no batch runs: a batch that is still finishing is not idleness.
          if (running.size > 0) {
            await Promise.race(running);
            continue;
          }
          reason = 'idle';
          break;
        }
        const waitMs = Math.min(this.#o.maxWaitMs, idleLeft);
        // Would a receive now, and a batch as long as the longest so far, end too near the lock deadline? Then hand no
        // new batch: release the session while its lock is held (the first receive of a hold is always made).
        const deadline = lockedUntil();
        if (receives > 0 && Date.now() + waitMs + longestBatchMs >= deadline - marginMs) {
          reason = releasing(
            'renewalBudget',
            'releasing a busy session before its lock deadline',
            'the session lock ran out during the last batch; releasing the session (its unsettled messages go to the next holder)',
            { heldMs: Date.now() - acceptedAt, batches, longestBatchMs, marginMs },
          );
          break;
        }
        const asked = Date.now();
        receives++;
        const receiving = receiveBatch(receiver, batchSize, waitMs, pace);
        this.#receiving.add(receiving);
        let messages;
        try {
          messages = await receiving;
          this.#health.answered();
        } catch (err) {
          if (!isServiceBusError(err) || err.code !== 'SessionLockLost') this.#health.failed(err);
          throw err;
        } finally {
          this.#receiving.delete(receiving);
        }
        if (messages.length === 0) {
          // Empty long before the wait was over: the link is going away. Wait rather than spin.
          if (Date.now() - asked < waitMs / 2) await delayUnlessAborted(Math.min(waitMs, 100), this.#stopping.signal);
          continue;
        }
        lastMessageAt = Date.now();
        metrics.received(queue, messages.length);
        const deliveries = messages.map((m) => toDelivery(m, receiver, { queue, log, metrics }));
        if (released !== undefined) {
          // A running batch asked to release the session while this one was received: the next holder gets it.
          await abandonUnsettled(deliveries, log, "the session is being released at its handler's request");
          break;
        }
        const batch = start(deliveries);
        if (this.#batchesPerSession === 1) await batch;
      }
      // What still runs finishes before the session is closed (its settlements need the session's lock).
      while (running.size > 0) await Promise.race(running);
      if (released !== undefined) {
        // The handler asked to release the session after a batch: receive nothing more from it.
        reason = releasing(
          'released',
          "releasing the session at its handler's request",
          'the session lock ran out before the handler asked to release the session (its unsettled messages go to the next holder)',
          { why: released.reason, heldMs: Date.now() - acceptedAt, batches },
        );
      }
      return true;
    } catch (err) {
      reason = isServiceBusError(err) && err.code === 'SessionLockLost' ? 'lockLost' : 'error';
      if (reason === 'lockLost') log.warn('session lock lost; its messages go to the next holder', { err });
      else {
        log.error('session failed; releasing it', { err });
        this.#o.onError(err, { queue, source: 'session', sessionId });
      }
      return reason === 'lockLost';
    } finally {
      // A batch still running when a receive failed finishes first, as it would have before that receive.
      while (running.size > 0) await Promise.race(running);
      if (handler?.onClose) {
        try {
          await handler.onClose(reason);
        } catch (err) {
          log.error('session onClose failed', { err, reason });
          this.#o.onError(err, { queue, source: 'handler', sessionId });
        }
      }
      for (const batch of held.batches) await abandonUnsettled(batch, log, 'releasing the session');
      await closeQuietly(receiver, log);
      this.#held.delete(held);
      log.debug('session released', { reason });
      release();
    }
  }

  stop(): Promise<void> {
    this.#stopping.abort();
    return Promise.allSettled([...this.#receiving]).then(() => undefined);
  }

  async drain(signal?: AbortSignal): Promise<void> {
    let stopListening = (): void => undefined;
    const aborted = new Promise<void>((resolve) => {
      stopListening = whenAborted(signal, (reason) => {
        this.#abortHandlers.abort(reason);
        resolve();
      });
    });
    try {
      await this.stop();
      // Every slot ends: its session released, or its pending accept answered. Once the signal aborts, only the
      // held sessions are waited for.
      await Promise.race([
        Promise.all(this.#slots),
        aborted.then(() => Promise.all([...this.#held].map((h) => h.done))),
      ]);
    } finally {
      stopListening();
    }
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    const { log } = this.#o;
    this.#abortHandlers.abort(new Error('the session loop is closing'));
    await this.stop();
    const ended = await within(Promise.all(this.#slots), this.#o.closeGraceMs);
    if (!ended) {
      const held = [...this.#held];
      log.warn('the session loop did not end within the close grace period; releasing its sessions', {
        closeGraceMs: this.#o.closeGraceMs,
        held: held.length,
        accepting: this.#maxSessions - held.length,
      });
      for (const h of held) {
        for (const batch of h.batches)
          await abandonUnsettled(batch, log, 'closing with a session handler still running');
        await closeQuietly(h.receiver, log);
      }
    }
    log.info('session loop closed');
  }
}

/**
 * Until when a session's lock is held for sure (ms since the epoch): the end of renewal (`renewalEnd`; the SDK's
 * last renewal reaches past it) or the lock's current expiry, whichever is later; with renewal off, the expiry alone.
 * `Infinity` when the receiver tells no expiry and renewal is off (a fake receiver).
 */
export function lockDeadline(
  receiver: Pick<ServiceBusSessionReceiver, 'sessionLockedUntilUtc'>,
  renewalEnd: number | undefined,
): number {
  const expiry = lockExpiry(receiver);
  if (renewalEnd === undefined) return expiry ?? Infinity;
  return Math.max(renewalEnd, expiry ?? renewalEnd);
}

function lockExpiry(receiver: Pick<ServiceBusSessionReceiver, 'sessionLockedUntilUtc'>): number | undefined {
  const until = receiver.sessionLockedUntilUtc as Date | undefined;
  const ms = until?.getTime();
  return ms !== undefined && Number.isFinite(ms) ? ms : undefined;
}

function lockExpired(receiver: Pick<ServiceBusSessionReceiver, 'sessionLockedUntilUtc'>): boolean {
  const expiry = lockExpiry(receiver);
  return expiry !== undefined && Date.now() >= expiry;
}

/** True for a handler's request to release the session (`SessionRelease`); anything else means go on. */
function isSessionRelease(value: unknown): value is SessionRelease {
  return typeof value === 'object' && value !== null && (value as { release?: unknown }).release === true;
}

function finiteIso(ms: number): string | undefined {
  return Number.isFinite(ms) ? new Date(ms).toISOString() : undefined;
}

function isClientClosed(err: unknown): boolean {
  return err instanceof Error && !isServiceBusError(err) && /underlying AMQP connection is closed/i.test(err.message);
}

async function closeQuietly(receiver: ServiceBusSessionReceiver, log: Logger): Promise<void> {
  try {
    await receiver.close();
  } catch (err) {
    log.debug('closing a session receiver failed', { err });
  }
}

/** A running session loop. */
export interface SessionReceiveLoop extends ReceiveLoop {
  /** The ids of the sessions held now. */
  readonly sessions: string[];
}

/**
 * Starts holding sessions at once. `acceptNextSession` waits up to the client's `retryOptions.timeoutInMs` (10 s with
 * `createServiceBusClient`'s defaults) and then fails with `ServiceTimeout`, which is normal: the slot asks again.
 * That wait cannot be cut short: its abort signal does not end it, and although `client.close()` does, rhea-promise
 * then keeps the attach's 60 s operation timer, which holds the process open for up to a minute. So the loop lets
 * pending accepts end on their own: `stop()` returns without them, `drain()` waits for them too (so that closing the
 * client afterwards leaves nothing behind) until its signal aborts, and `close()` waits for them up to
 * `closeGraceMs`. A session accepted after the loop stopped is closed at once, before any message is received from it
 * (its messages keep their delivery count). The accept timeout is therefore how long a stop takes at most when
 * nothing is in flight: give the session loop a client with a short `timeoutInMs`.
 */
export function startSessionLoop(options: SessionLoopOptions): SessionReceiveLoop {
  return new SessionLoop(options);
}
