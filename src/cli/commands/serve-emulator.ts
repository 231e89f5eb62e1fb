import { readFileSync } from 'node:fs';
import { InvalidArgumentError } from 'commander';
import { errorMessage } from '../../errors.js';
import { createShutdown, exitCodeOf, onShutdownSignals, type Closeable } from '../../lifecycle.js';
import { createLogger, LOG_LEVELS, type Logger, type LogLevel } from '../../log.js';
import type { CliIo } from '../io.js';

export interface ServeEmulatorOptions {
  /** The command's name in messages, e.g. `emulate servicebus`. */
  command: string;
  /** The `service` field of every log line. */
  service: string;
  /** The `--log-level` option as given. */
  logLevel: string;
  /** Starts the emulator; `readyLine` is printed on stdout once signals are handled. */
  start: (log: Logger) => Promise<Closeable & { readyLine: string }>;
  /** Where SIGTERM/SIGINT come from. @defaultValue process */
  signals?: NodeJS.EventEmitter;
}

/**
 * The life of an `emulate …` command: check the log level, start the emulator, install the signal handlers, then
 * print the one ready line on stdout (in that order: whoever reads the line may signal at once), and wait for
 * SIGTERM/SIGINT. Logs go to stderr. Exit codes: 0 after a clean stop, 1 when it cannot start, 2 for bad options.
 */
export async function serveEmulator(
  io: CliIo,
  setExitCode: (code: number) => void,
  options: ServeEmulatorOptions,
): Promise<void> {
  if (!(LOG_LEVELS as readonly string[]).includes(options.logLevel)) {
    io.err(`${options.command}: --log-level must be one of ${LOG_LEVELS.join(', ')}, found '${options.logLevel}'`);
    setExitCode(2);
    return;
  }
  const log = createLogger({ level: options.logLevel as LogLevel, base: { service: options.service } });
  let emulator: Closeable & { readyLine: string };
  try {
    emulator = await options.start(log);
  } catch (err) {
    io.err(`${options.command}: ${errorMessage(err)}`);
    setExitCode(exitCodeOf(err));
    return;
  }
  const shutdown = createShutdown({
    stopIntake: () => undefined,
    drain: () => Promise.resolve(),
    closer: emulator,
    budgetMs: 5000,
    log,
  });
  const code = await new Promise<number>((resolve) => {
    onShutdownSignals(shutdown, {
      exit: resolve,
      log,
      ...(options.signals === undefined ? {} : { source: options.signals }),
    });
    io.out(emulator.readyLine);
  });
  setExitCode(code);
}

/** commander argument parser for `--port`: an integer from 0 (any free port) to 65535. */
export function parsePort(value: string): number {
  const port = Number(value);
  if (!/^\d+$/.test(value.trim()) || port > 65535)
    throw new InvalidArgumentError(`expected an integer from 0 (any free port) to 65535, found '${value}'`);
  return port;
}

/**
 * Reads an emulator's `--config` file: a JSON object whose keys are all in `known` (`what` names the options in the
 * message). Throws naming the file and what is wrong.
 */
export function readOptionsFile<T>(file: string, known: readonly string[], what: string): T {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`${file}: expected a readable JSON file (${errorMessage(err)})`, { cause: err });
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw new Error(`${file}: expected a JSON object of ${what}`);
  const unknown = Object.keys(parsed).filter((k) => !known.includes(k));
  if (unknown.length > 0)
    throw new Error(`${file}: unknown option(s) ${unknown.join(', ')} (known: ${known.join(', ')})`);
  return parsed as T;
}
