import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { startProviderSimulators, type ProviderSimulatorsOptions } from '../../emulators/providers/index.js';
import type { CliIo } from '../io.js';
import { parsePort, readOptionsFile, serveEmulator } from './serve-emulator.js';

function parseLatency(value: string): number {
  const ms = Number(value);
  if (!/^\d+$/.test(value.trim()))
    throw new InvalidArgumentError(`expected a whole number of milliseconds >= 0, found '${value}'`);
  return ms;
}

const CONFIG_KEYS = [
  'twilio',
  'telegram',
  'contract',
  'callbacks',
  'recipients',
  'faults',
  'seed',
  'windowToleranceMs',
  'latencyMs',
];

function readConfig(file: string): ProviderSimulatorsOptions {
  return readOptionsFile<ProviderSimulatorsOptions>(file, CONFIG_KEYS, 'simulator options');
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
