/**
 * Life cycle: closing many things once, and the graceful shutdown sequence of an entry point.
 *
 * The sequence on SIGTERM/SIGINT is always the same: stop intake (receivers, listeners), wait for the work in
 * flight up to a budget (aborting it through a signal when the budget runs out, so it can hand its messages back),
 * then close everything, every close step running even when another fails. All of it is idempotent: a second
 * signal or a second `close()` joins the first. Only entry points install signal handlers and decide how the
 * process exits; library code never calls `process.exit`.
 */
import { isRelayError, LifecycleError, type ErrorKind } from './errors.js';
import { silentLogger, type Logger } from './log.js';

export interface Closeable {
  close(): Promise<void> | void;
}

type CloseStep = { name: string; close: () => Promise<void> | void };

/**
 * Closes what was added to it, once, in reverse order of adding (last opened, first closed). Every step runs even
 * when one fails; the failures are reported together as one `CloseFailed` error. Something added after closing
 * began is closed at once.
 */
export class Closer implements Closeable {
  readonly #steps: CloseStep[] = [];
  readonly #log: Logger;
  #closing: Promise<void> | undefined;

  constructor(log: Logger = silentLogger()) {
    this.#log = log;
  }

  /** Whether `close()` has been called. */
  get closing(): boolean {
    return this.#closing !== undefined;
  }

  /** Registers something to close, by name (for the logs). Returns the thing itself, for chaining at creation. */
  add<T extends Closeable | (() => Promise<void> | void)>(name: string, item: T): T {
    const close = typeof item === 'function' ? (item as () => Promise<void> | void) : () => (item as Closeable).close();
    if (this.#closing) {
      void runStep({ name, close }, this.#log).then((failure) => {
        if (failure) this.#log.error('late close step failed', { step: name, err: failure });
      });
    } else {
      this.#steps.push({ name, close });
    }
    return item;
  }

  close(): Promise<void> {
    this.#closing ??= this.#closeAll();
    return this.#closing;
  }

  async #closeAll(): Promise<void> {
    const failures: unknown[] = [];
    for (const step of [...this.#steps].reverse()) {
      const failure = await runStep(step, this.#log);
      if (failure !== undefined) failures.push(failure);
    }
    if (failures.length > 0) {
      throw new LifecycleError(
        'CloseFailed',
        `${failures.length} of ${this.#steps.length} close steps failed`,
        failures,
      );
    }
  }
}

async function runStep(step: CloseStep, log: Logger): Promise<unknown> {
  try {
    await step.close();
    log.debug('closed', { step: step.name });
    return undefined;
  } catch (err) {
    log.error('close step failed', { step: step.name, err });
    return err;
  }
}

/** Closes all the given closeables once each, in reverse order, running every step; see {@link Closer}. */
export function closeAll(items: ReadonlyArray<readonly [string, Closeable]>, log?: Logger): Promise<void> {
  const closer = new Closer(log);
  for (const [name, item] of items) closer.add(name, item);
  return closer.close();
}

export interface ShutdownPlan {
  /** Stops taking new work: closes receivers, stops listening. Called first. */
  stopIntake(): Promise<void> | void;
  /**
   * Resolves when the work in flight has finished. The signal aborts when the budget runs out: the work should
   * then hand its messages back (abandon) and return quickly.
   */
  drain(signal: AbortSignal): Promise<void>;
  /** Closed last, after draining or after the budget ran out. */
  closer: Closeable;
  /** How long in-flight work may take, in milliseconds. @defaultValue 30_000 */
  budgetMs?: number;
  log?: Logger;
}

export interface ShutdownOutcome {
  /** Why the shutdown ran (`SIGTERM`, `SIGINT`, `done` …). */
  reason: string;
  /** Whether the work in flight finished within the budget. */
  drained: boolean;
  /** Whether every close step succeeded. */
  closedCleanly: boolean;
  durationMs: number;
}

/**
 * Builds the shutdown function of an entry point: stop intake → drain within the budget → close. The returned
 * function is idempotent: every call returns the outcome of the first.
 */
export function createShutdown(plan: ShutdownPlan): (reason: string) => Promise<ShutdownOutcome> {
  const log = plan.log ?? silentLogger();
  const budgetMs = plan.budgetMs ?? 30_000;
  if (!Number.isFinite(budgetMs) || budgetMs < 0) {
    throw new TypeError(`shutdown budgetMs must be a finite number >= 0, got ${String(budgetMs)}`);
  }
  let running: Promise<ShutdownOutcome> | undefined;

  async function run(reason: string): Promise<ShutdownOutcome> {
    const started = Date.now();
    log.info('shutting down: stopping intake', { reason, budgetMs });
    try {
      await plan.stopIntake();
    } catch (err) {
      log.error('stopping intake failed; going on with the shutdown', { err });
    }

    const abort = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const budget = new Promise<false>((resolve) => {
      timer = setTimeout(() => {
        abort.abort(new LifecycleError('ShutdownTimeout', `work in flight did not finish within ${budgetMs} ms`));
        resolve(false);
      }, budgetMs);
    });
    const drainedInTime = plan.drain(abort.signal).then(
      () => true as const,
      (err: unknown) => {
        log.error('draining failed', { err });
        return false as const;
      },
    );
    const drained = await Promise.race([drainedInTime, budget]);
    clearTimeout(timer);
    if (!drained) log.warn('shutdown budget ran out with work in flight; closing anyway', { budgetMs });

    let closedCleanly = true;
    try {
      await plan.closer.close();
    } catch (err) {
      closedCleanly = false;
      log.error('closing failed', { err });
    }
    const outcome = { reason, drained, closedCleanly, durationMs: Date.now() - started };
    log.info('shut down', outcome);
    return outcome;
  }

  return (reason: string) => {
    running ??= run(reason);
    return running;
  };
}

export interface SignalOptions {
  /** @defaultValue ['SIGTERM', 'SIGINT'] */
  signals?: NodeJS.Signals[];
  /** Called with the exit code once shutdown has finished (0 when clean), or 130 on a second signal. */
  exit: (code: number) => void;
  /** Where signals come from. @defaultValue process */
  source?: NodeJS.EventEmitter;
  log?: Logger;
}

/**
 * For entry points only: the first signal runs the shutdown and then `exit(0 | 1)`; a second signal while it runs
 * exits at once with 130. Returns a function that removes the handlers.
 */
export function onShutdownSignals(
  shutdown: (reason: string) => Promise<ShutdownOutcome>,
  options: SignalOptions,
): () => void {
  const source = options.source ?? process;
  const log = options.log ?? silentLogger();
  const signals = options.signals ?? ['SIGTERM', 'SIGINT'];
  let received = 0;
  const handler = (signal: NodeJS.Signals): void => {
    received += 1;
    if (received > 1) {
      log.warn('second signal: exiting without waiting', { signal });
      options.exit(130);
      return;
    }
    void shutdown(signal).then(
      (outcome) => options.exit(outcome.drained && outcome.closedCleanly ? 0 : 1),
      (err: unknown) => {
        log.error('shutdown failed', { err });
        options.exit(1);
      },
    );
  };
  for (const s of signals) source.on(s, handler);
  return () => {
    for (const s of signals) source.off(s, handler);
  };
}

/**
 * Exit code 2 for what no restart mends (a bad configuration or usage), 1 for a failure (a service refused or could
 * not be reached, a close failed); one entry per kind, so that a new kind must be given its code.
 */
const EXIT_CODE_OF_KIND: Readonly<Record<ErrorKind, 1 | 2>> = {
  config: 2,
  solutionPackage: 2,
  dataverse: 1,
  provider: 1,
  directline: 1,
  identity: 1,
  event: 1,
  servicebus: 1,
  limiter: 1,
  solution: 2,
  lifecycle: 1,
};

/**
 * The exit code of an entry point (a worker, a command) stopped by `error`, from the error's kind: 2 for a
 * `ConfigError`, 1 for any other (ours or not). A clean stop exits 0 and a second signal 130 (`onShutdownSignals`).
 */
export function exitCodeOf(error: unknown): 1 | 2 {
  return isRelayError(error) ? EXIT_CODE_OF_KIND[error.kind] : 1;
}
