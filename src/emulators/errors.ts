/**
 * The emulators' own errors: one class with a closed union of codes, apart from the relay's table (src/errors.ts), so
 * that the product never handles an emulator's failure as one of its own. The guard checks a brand (a registered
 * symbol), not `instanceof`, like the relay's.
 */

/** Every code of the emulators: a closed union. */
export type EmulatorErrorCode =
  /** An emulator's own configuration (Config.json, seed, limits file) is not valid. */
  | 'EmulatorConfigInvalid'
  /** The data folder is held by another running emulator. */
  | 'EmulatorDataDirInUse'
  /** The emulator is closing or closed. */
  | 'EmulatorClosed';

const CODES: ReadonlySet<string> = new Set<EmulatorErrorCode>([
  'EmulatorConfigInvalid',
  'EmulatorDataDirInUse',
  'EmulatorClosed',
]);

export interface EmulatorErrorOptions {
  cause?: unknown;
  /** Structured context for the logs (data folder, file, key …); never secrets. */
  context?: Record<string, unknown>;
}

const BRAND = Symbol.for('channel-relay.emulator-error');

/** An error an emulator raises on purpose: its configuration, its data folder, its life cycle. */
export class EmulatorError extends Error {
  override readonly name: string = 'EmulatorError';
  readonly [BRAND] = true;
  readonly code: EmulatorErrorCode;
  readonly context?: Record<string, unknown>;

  constructor(code: EmulatorErrorCode, message: string, options: EmulatorErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    if (options.context !== undefined) this.context = options.context;
  }

  /** A plain object for structured logs. */
  toJSON(): Record<string, unknown> {
    return {
      name: this.name,
      code: this.code,
      message: this.message,
      ...(this.context === undefined ? {} : { context: this.context }),
    };
  }
}

export function isEmulatorError(value: unknown): value is EmulatorError {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as { [BRAND]?: unknown; code?: unknown };
  return v[BRAND] === true && typeof v.code === 'string' && CODES.has(v.code);
}
