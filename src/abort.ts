/**
 * Waiting with an `AbortSignal`, one way for the whole code base: a pause that a stop cuts short
 * (`delayUnlessAborted`, never rejects), a wait that a stop turns into a rejection (`sleepOrReject`), and a promise
 * raced against a signal (for a port or a library that ignores its signal). Every listener is removed when the wait
 * ends, so long-lived signals (a shutdown signal) collect none.
 */

/** Resolves after `ms`, or at once when `signal` aborts; never rejects. */
export function delayUnlessAborted(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted || ms <= 0) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      stopListening();
      resolve();
    };
    const timer = setTimeout(done, ms);
    const stopListening = whenAborted(signal, done);
  });
}

/** Resolves after `ms`, or rejects with the signal's reason when it aborts first. */
export function sleepOrReject(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.reject(abortReason(signal));
  if (ms <= 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      stopListening();
      resolve();
    }, ms);
    const stopListening = whenAborted(signal, () => {
      clearTimeout(timer);
      reject(abortReason(signal as AbortSignal));
    });
  });
}

/**
 * `promise`'s outcome, or a rejection with the signal's reason as soon as `signal` aborts (the promise then runs on
 * unobserved: its rejection is swallowed).
 */
export function raceAbort<T>(promise: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (signal === undefined) return promise;
  promise.catch(() => undefined);
  if (signal.aborted) return Promise.reject(abortReason(signal));
  return new Promise<T>((resolve, reject) => {
    const stopListening = whenAborted(signal, () => reject(abortReason(signal)));
    promise.then(
      (value) => {
        stopListening();
        resolve(value);
      },
      (err: unknown) => {
        stopListening();
        reject(err);
      },
    );
  });
}

/** The signal's reason when it is an Error, else a DOMException AbortError. */
export function abortReason(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new DOMException('The operation was aborted', 'AbortError');
}

/** A controller tied to one or more parent signals: see `linkedController`. */
export interface LinkedController {
  /** Aborts when any parent aborts (with that parent's reason), or on `abort()`. */
  readonly signal: AbortSignal;
  /** Aborts this signal only (the parents are not touched) and lets go of the parents. */
  abort(reason?: unknown): void;
  /** Lets go of the parents; the signal stays as it is. Call it when the work ends. Idempotent. */
  dispose(): void;
}

/** Per parent signal: the one `abort` listener this module keeps on it, and the linked controllers it serves. */
const links = new WeakMap<AbortSignal, { listener: () => void; children: Set<(reason: unknown) => void> }>();

function link(parent: AbortSignal, onAbort: (reason: unknown) => void): () => void {
  let entry = links.get(parent);
  if (entry === undefined) {
    const children = new Set<(reason: unknown) => void>();
    const listener = (): void => {
      links.delete(parent);
      // Every child is told, even when one throws (its error is rethrown afterwards, outside this loop); a child
      // removed while an earlier one ran is not told.
      let failure: { error: unknown } | undefined;
      for (const child of [...children]) {
        if (!children.has(child)) continue;
        try {
          child(parent.reason);
        } catch (error) {
          failure ??= { error };
        }
      }
      if (failure)
        queueMicrotask(() => {
          throw failure.error;
        });
    };
    entry = { listener, children };
    links.set(parent, entry);
    parent.addEventListener('abort', listener, { once: true });
  }
  const { children, listener } = entry;
  children.add(onAbort);
  return () => {
    if (!children.delete(onAbort) || children.size > 0) return;
    parent.removeEventListener('abort', listener);
    if (links.get(parent)?.listener === listener) links.delete(parent);
  };
}

/**
 * A signal that aborts when any of `parents` aborts, for work shorter than the parents (one batch under a worker's
 * shutdown signal). Not `AbortSignal.any(parents)`: on Node 20 every combined signal stays in each long-lived
 * parent's dependant set (nodejs/node#55351, #54614), so one per batch grows without bound. Here a parent carries one
 * `abort` listener however many controllers are linked to it at once (so no MaxListeners warning either), and none
 * once every one of them is disposed.
 */
export function linkedController(...parents: ReadonlyArray<AbortSignal | undefined>): LinkedController {
  const controller = new AbortController();
  const unlinks: Array<() => void> = [];
  const dispose = (): void => {
    for (const unlink of unlinks.splice(0)) unlink();
  };
  const abort = (reason?: unknown): void => {
    controller.abort(reason);
    dispose();
  };
  for (const parent of new Set(parents)) {
    if (parent === undefined) continue;
    if (parent.aborted) {
      abort(parent.reason);
      break;
    }
    unlinks.push(link(parent, abort));
  }
  return { signal: controller.signal, abort, dispose };
}

/**
 * Calls `listener` with the signal's reason when it aborts (at once if it already has); returns the function that
 * stops listening. Many listeners on one long-lived signal share one `abort` listener on it (no MaxListeners warning).
 */
export function whenAborted(signal: AbortSignal | undefined, listener: (reason: unknown) => void): () => void {
  if (signal === undefined) return () => undefined;
  if (signal.aborted) {
    listener(signal.reason);
    return () => undefined;
  }
  return link(signal, listener);
}
