import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { runDemo } from '../../demo/index.js';
import { createLogger, LOG_LEVELS, type LogLevel } from '../../log.js';
import type { CliIo } from '../io.js';

/** The journey runs of the Dataverse emulator take up to this many contacts. */
const MAX_CONTACTS = 100_000;

function wholeNumber(min: number, max: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!/^\d+$/.test(value.trim()) || n < min || n > max)
      throw new InvalidArgumentError(`expected a whole number from ${min} to ${max}, found '${value}'`);
    return n;
  };
}

function logLevel(value: string): LogLevel {
  if (!(LOG_LEVELS as readonly string[]).includes(value))
    throw new InvalidArgumentError(`expected one of ${LOG_LEVELS.join(', ')}, found '${value}'`);
  return value as LogLevel;
}

export interface DemoCommandOptions {
  /** Where SIGINT/SIGTERM come from. @defaultValue process */
  signals?: NodeJS.EventEmitter;
  /** Where the progress bar and the logs go. @defaultValue process.stderr */
  stderr?: NodeJS.WritableStream & { isTTY?: boolean };
}

/**
 * `channel-relay demo` (what `npm start` runs): the three emulators, the endpoint and step registered, the three
 * stages, the seed's journey over `--contacts` contacts, a progress bar, and the funnel per journey. Exit codes: 0
 * when every activity reached its outcome, 1 when the run stalled or failed, 2 for bad options, 130 when interrupted.
 */
export function registerDemoCommand(
  program: Command,
  io: CliIo,
  setExitCode: (code: number) => void,
  options: DemoCommandOptions = {},
): void {
  program
    .command('demo')
    .description('run the sample journey end to end on embedded emulators and print the funnel')
    .option(
      '--contacts <n>',
      `contacts the journey runs over (1-${MAX_CONTACTS}; missing ones are generated)`,
      wholeNumber(1, MAX_CONTACTS),
      1000,
    )
    .option(
      '--late-opt-outs <n>',
      'contacts per journey that opt out after their activity is created (the relay re-checks and sends them nothing)',
      wholeNumber(0, MAX_CONTACTS),
      0,
    )
    .option(
      '--sms-per-second <n>',
      'rate limit of each SMS sender in segments per second, in the channels and in the Twilio simulator (a short code sends 100)',
      wholeNumber(1, 10_000),
      100,
    )
    .option(
      '--customers <n>',
      'simulated customers who write to the bridged SMS channel and hold a conversation with the simulated agents (0: none)',
      wholeNumber(0, 1000),
      20,
    )
    .option('--summary-json <file>', 'also write the figures as JSON to this file')
    .option(
      '--no-feedback',
      'only the send path: no callbacks service, no delivery reports, clicks or replies from the simulators',
    )
    .option('--serve', 'keep everything running after the funnel and print how to connect; Ctrl-C stops it', false)
    .option(
      '--stall-timeout <seconds>',
      'give up when no activity reaches its outcome for this long',
      wholeNumber(1, 3600),
      60,
    )
    .option(
      '--log-level <level>',
      `workers' and emulators' log level on stderr (${LOG_LEVELS.join(', ')})`,
      logLevel,
      'warn' as LogLevel,
    )
    .action(
      async (opts: {
        contacts: number;
        customers: number;
        feedback: boolean;
        lateOptOuts: number;
        smsPerSecond: number;
        summaryJson?: string;
        serve: boolean;
        stallTimeout: number;
        logLevel: LogLevel;
      }) => {
        const summaryJson = opts.summaryJson === undefined ? undefined : path.resolve(io.cwd, opts.summaryJson);
        // Checked before the run, not after it: a long run must not end in "no such folder".
        if (
          summaryJson !== undefined &&
          !(existsSync(path.dirname(summaryJson)) && statSync(path.dirname(summaryJson)).isDirectory())
        ) {
          io.err(`demo: --summary-json: the folder ${path.dirname(summaryJson)} does not exist`);
          setExitCode(2);
          return;
        }
        const signals = options.signals ?? process;
        const stderr = options.stderr ?? process.stderr;
        const abort = new AbortController();
        const onSignal = (signal: NodeJS.Signals): void => abort.abort(new Error(`received ${signal}`));
        signals.on('SIGINT', onSignal);
        signals.on('SIGTERM', onSignal);
        try {
          const result = await runDemo({
            contacts: opts.contacts,
            customers: opts.customers,
            lateOptOuts: opts.lateOptOuts,
            feedback: opts.feedback,
            smsPerSecond: opts.smsPerSecond,
            serve: opts.serve,
            ...(summaryJson === undefined ? {} : { summaryJson }),
            stallTimeoutMs: opts.stallTimeout * 1000,
            signal: abort.signal,
            out: io.out,
            err: io.err,
            progressStream: stderr,
            log: createLogger({ level: opts.logLevel, stream: stderr, base: { service: 'demo' } }),
          });
          setExitCode(result.code);
        } finally {
          signals.off('SIGINT', onSignal);
          signals.off('SIGTERM', onSignal);
        }
      },
    );
}
