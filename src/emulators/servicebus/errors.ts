/**
 * The emulator's own error for a bad Config.json: every problem with its JSON path and the reason. It is an
 * `EmulatorError` with code `EmulatorConfigInvalid`, so the emulators' guard (src/emulators/errors.ts) recognises it.
 */
import { EmulatorError } from '../errors.js';

const BRAND = Symbol.for('channel-relay.servicebus-emulator-config-error');

/** One problem in an emulator configuration. */
export interface ConfigIssue {
  /** JSON path inside the file, e.g. `$.UserConfig.Namespaces[0].Queues[1].Properties.LockDuration`. */
  path: string;
  /** What is wrong, with what was expected and what was found. */
  reason: string;
}

export class ServiceBusEmulatorConfigError extends EmulatorError {
  override readonly name = 'ServiceBusEmulatorConfigError';
  readonly [BRAND] = true;
  /** Where the configuration came from: a file path or `options.config`. */
  readonly source: string;
  readonly issues: readonly ConfigIssue[];

  constructor(source: string, issues: readonly ConfigIssue[], options?: { cause?: unknown }) {
    const head = `${source}: Service Bus emulator configuration has ${issues.length} problem${issues.length === 1 ? '' : 's'}`;
    super('EmulatorConfigInvalid', [head, ...issues.map((i) => `  - ${i.path}: ${i.reason}`)].join('\n'), {
      ...options,
      context: { source },
    });
    this.source = source;
    this.issues = issues;
  }
}

export function isServiceBusEmulatorConfigError(value: unknown): value is ServiceBusEmulatorConfigError {
  return typeof value === 'object' && value !== null && (value as { [BRAND]?: unknown })[BRAND] === true;
}
