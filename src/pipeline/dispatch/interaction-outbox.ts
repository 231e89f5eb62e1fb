/**
 * The dispatch stage's way to `interactions`: outcomes of one session are grouped into few `send` calls (one per
 * `maxBatch`, or whatever arrived within `lingerMs`, or at once when the session has nothing else in flight), and a
 * failed send is retried (cockatiel, exponential backoff) until it succeeds, the retries run out, or the signal of
 * the batch fires. The first attempt is always made, even after the signal fired: an outcome of a provider call that
 * finished during shutdown is still recorded. Every attempt has its own timeout.
 *
 * A `deadline` (the dispatch stage passes the end of its session lock, less the time to settle) bounds a group: no
 * retry is begun that could end past it (backoff and timeout counted), and an attempt's timeout is cut to end by it
 * (never below one second, or `timeoutMs` when shorter), so the caller learns the outcome while it can still settle.
 *
 * Re-sending a group is safe: every interaction has a stable `messageId` and the bus drops duplicates.
 */
import type { Span } from '@opentelemetry/api';
import { ExponentialBackoff, handleWhen, retry } from 'cockatiel';
import { linkedController, raceAbort } from '../../abort.js';
import { intOption } from '../../options.js';
import type { InteractionMessage } from '../messages.js';
import type { InteractionSender } from '../ports.js';

export interface InteractionOutboxOptions {
  sender: InteractionSender;
  /** At most this many interactions per `send`. @defaultValue 50 */
  maxBatch?: number;
  /** How long the first waiting interaction waits for others to join its group. @defaultValue 20 */
  lingerMs?: number;
  /** Sends of a group in all, the first included (1: no retry). @defaultValue 9 */
  attempts?: number;
  /** The first retry delay (exponential, with jitter). @defaultValue 200 */
  initialDelayMs?: number;
  /** The longest retry delay. @defaultValue 2000 */
  maxDelayMs?: number;
  /** One `send` call's timeout. @defaultValue 10000 */
  timeoutMs?: number;
  /** Told about every failed attempt (for logs and metrics). */
  onError?: (error: unknown, attempt: number, size: number) => void;
}

export interface OutboxItem {
  body: InteractionMessage;
  messageId: string;
  /** The span of the delivery it records (its `create interactions` span's parent); absent with tracing off. */
  parentSpan?: Span | undefined;
}

/** The outbox's settings, validated and with their defaults. */
export type OutboxSettings = Required<Omit<InteractionOutboxOptions, 'sender' | 'onError'>>;

/** Validates the settings of an outbox (a bad value throws a `TypeError` naming it) and fills in the defaults. */
export function resolveOutboxSettings(
  options: Omit<InteractionOutboxOptions, 'sender' | 'onError'> = {},
): OutboxSettings {
  const c = 'InteractionOutbox';
  const initialDelayMs = intOption(c, 'initialDelayMs', options.initialDelayMs, 200, 1);
  return {
    maxBatch: intOption(c, 'maxBatch', options.maxBatch, 50, 1),
    lingerMs: intOption(c, 'lingerMs', options.lingerMs, 20, 0),
    attempts: intOption(c, 'attempts', options.attempts, 9, 1),
    initialDelayMs,
    maxDelayMs: intOption(c, 'maxDelayMs', options.maxDelayMs, 2000, initialDelayMs),
    timeoutMs: intOption(c, 'timeoutMs', options.timeoutMs, 10_000, 1),
  };
}

type Waiting = OutboxItem & {
  signal: AbortSignal;
  deadline: number;
  resolve: () => void;
  reject: (err: unknown) => void;
};

/** The shortest timeout an attempt gets when a deadline cuts it (or `timeoutMs` when that is shorter). */
const MIN_CUT_TIMEOUT_MS = 1000;

export class InteractionOutbox {
  readonly #sender: InteractionSender;
  readonly #maxBatch: number;
  readonly #lingerMs: number;
  readonly #timeoutMs: number;
  readonly #attempts: number;
  readonly #maxDelayMs: number;
  readonly #backoff: ExponentialBackoff<unknown>;
  readonly #onError: (error: unknown, attempt: number, size: number) => void;
  #waiting: Waiting[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;
  #sending = 0;

  constructor(options: InteractionOutboxOptions) {
    if (typeof options.sender?.send !== 'function')
      throw new TypeError('InteractionOutbox: sender must have a send function');
    this.#sender = options.sender;
    const settings = resolveOutboxSettings(options);
    this.#maxBatch = settings.maxBatch;
    this.#lingerMs = settings.lingerMs;
    this.#attempts = settings.attempts;
    this.#timeoutMs = settings.timeoutMs;
    this.#maxDelayMs = settings.maxDelayMs;
    this.#backoff = new ExponentialBackoff({ initialDelay: settings.initialDelayMs, maxDelay: settings.maxDelayMs });
    this.#onError = options.onError ?? (() => undefined);
  }

  /**
   * Queues one interaction; resolves once it is on the bus, rejects with the last error when it could not be sent.
   * `deadline` (ms since the epoch): see the file's comment; none by default.
   */
  add(item: OutboxItem, signal: AbortSignal, deadline?: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#waiting.push({ ...item, signal, deadline: deadline ?? Infinity, resolve, reject });
      if (this.#waiting.length >= this.#maxBatch) this.flush();
      else if (this.#timer === undefined) this.#timer = setTimeout(() => this.flush(), this.#lingerMs);
    });
  }

  /** Sends what waits now, in groups of at most `maxBatch`. */
  flush(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    while (this.#waiting.length > 0) {
      const group = this.#waiting.splice(0, this.#maxBatch);
      void this.#send(group);
    }
  }

  /** Interactions waiting or being sent. */
  get pending(): number {
    return this.#waiting.length + this.#sending;
  }

  async #send(group: Waiting[]): Promise<void> {
    this.#sending += group.length;
    // Retries stop when any item's signal fires. Not AbortSignal.any: see linkedController (no trace is left on the
    // items' signals once the group is done).
    const linked = linkedController(...group.map((w) => w.signal));
    const signal = linked.signal;
    const deadline = Math.min(...group.map((w) => w.deadline));
    // Retry only when the longest backoff and a whole attempt still end by the deadline.
    const policy = retry(
      handleWhen(() => Date.now() + this.#maxDelayMs + this.#timeoutMs <= deadline),
      { maxAttempts: this.#attempts - 1, backoff: this.#backoff },
    );
    let attempt = 0;
    try {
      await policy.execute(async () => {
        attempt++;
        try {
          await this.#sendOnce(group, deadline);
        } catch (err) {
          this.#onError(err, attempt, group.length);
          throw err;
        }
      }, signal);
      for (const w of group) w.resolve();
    } catch (err) {
      for (const w of group) w.reject(err);
    } finally {
      this.#sending -= group.length;
      linked.dispose();
    }
  }

  async #sendOnce(group: Waiting[], deadline: number): Promise<void> {
    const timeout = new AbortController();
    const timeoutMs = Math.max(
      Math.min(this.#timeoutMs, deadline - Date.now()),
      Math.min(this.#timeoutMs, MIN_CUT_TIMEOUT_MS),
    );
    const timer = setTimeout(
      () => timeout.abort(new Error(`interactions send did not finish within ${timeoutMs} ms`)),
      timeoutMs,
    );
    try {
      await raceAbort(
        this.#sender.send(
          group.map((w) => {
            const m: OutboxItem = { body: w.body, messageId: w.messageId };
            if (w.parentSpan !== undefined) m.parentSpan = w.parentSpan;
            return m;
          }),
          timeout.signal,
        ),
        timeout.signal,
      );
    } finally {
      clearTimeout(timer);
    }
  }

  /** Sends what waits now and stops the linger timer. */
  close(): void {
    this.flush();
  }
}
