import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { errorMessage } from '../../errors.js';
import { startProviderSimulators, type ProviderSimulatorsOptions } from '../../emulators/providers/index.js';
import type { CliIo } from '../io.js';
import { parsePort, serveEmulator } from './serve-emulator.js';

function parseLatency(value: string): number {
  const ms = Number(value);
  if (!/^\d+$/.test(value.trim()))
    throw new InvalidArgumentError(`expected a whole number of milliseconds >= 0, found '${value}'`);
  return ms;
}

function readConfig(file: string): ProviderSimulatorsOptions {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`${file}: expected a readable JSON file (${errorMessage(err)})`, { cause: err });
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw new Error(`${file}: expected a JSON object of simulator options`);
  const allowed = new Set([
    'twilio',
    'telegram',
    'contract',
    'callbacks',
    'recipients',
    'faults',
    'seed',
    'windowToleranceMs',
    'latencyMs',
  ]);
  const unknown = Object.keys(parsed).filter((k) => !allowed.has(k));
  if (unknown.length > 0)
    throw new Error(`${file}: unknown option(s) ${unknown.join(', ')} (known: ${[...allowed].join(', ')})`);
  return parsed as ProviderSimulatorsOptions;
}

/**
 * `channel-relay emulate providers`: runs the Twilio, Telegram and custom channel contract simulators on one HTTP
 * server until SIGTERM/SIGINT. Prints `PROVIDERS_URL=http://127.0.0.1:<port>` on stdout when ready; logs go to stderr.
 */
export function registerEmulateProviders(emulate: Command, io: CliIo, setExitCode: (code: number) => void): void {
  emulate
    .command('providers')
    .description(
      'run the provider simulators (Twilio Messages API, Telegram sendMessage, custom channel contract) on one HTTP server',
    )
    .option('--port <port>', 'port (0 picks a free one)', parsePort, 0)
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option(
      '--latency-ms <ms>',
      "latency added to every provider call (default 0, or the config file's latencyMs)",
      parseLatency,
    )
    .option(
      '--config <file>',
      'JSON file of simulator options (twilio, telegram, contract, callbacks, recipients, faults, seed, windowToleranceMs, latencyMs)',
    )
    .option('--log-level <level>', 'error, warn, info or debug', 'info')
    .action((opts: { port: number; host: string; latencyMs?: number; config?: string; logLevel: string }) =>
      serveEmulator(io, setExitCode, {
        command: 'emulate providers',
        service: 'provider-simulators',
        logLevel: opts.logLevel,
        start: async (log) => {
          const fromFile = opts.config === undefined ? {} : readConfig(opts.config);
          const sim = await startProviderSimulators({
            ...fromFile,
            port: opts.port,
            host: opts.host,
            latencyMs: opts.latencyMs ?? fromFile.latencyMs ?? 0,
            log,
          });
          return { readyLine: `PROVIDERS_URL=${sim.url}`, close: () => sim.close() };
        },
      }),
    );
}
