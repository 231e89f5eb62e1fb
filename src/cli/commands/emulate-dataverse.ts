import type { Command } from 'commander';
import { startDataverseEmulator } from '../../emulators/dataverse/index.js';
import type { CliIo } from '../io.js';
import { parsePort, serveEmulator } from './serve-emulator.js';

/**
 * `channel-relay emulate dataverse`: runs the Dataverse emulator (on loopback unless `--host` says otherwise) until
 * SIGTERM/SIGINT. Prints `DATAVERSE_URL=http://<host>:<port>` on stdout when ready; logs go to stderr.
 */
export function registerEmulateDataverse(emulate: Command, io: CliIo, setExitCode: (code: number) => void): void {
  emulate
    .command('dataverse')
    .description('run the Dataverse Web API emulator (custom channel actions, limits, posting to Service Bus)')
    .option('--port <port>', 'port (0 picks a free one)', parsePort, 0)
    .option('--host <host>', 'address to listen on (0.0.0.0 in a container)', '127.0.0.1')
    .option('--seed <file>', 'seed file (contacts, journeys, custom message table, tile XML)')
    .option('--limits <mode>', 'service protection limits: realistic, off, or a JSON file', 'realistic')
    .option('--servicebus <connectionString>', 'Service Bus connection string used for every service endpoint')
    .option('--log-level <level>', 'error, warn, info or debug', 'info')
    .action((opts: { port: number; host: string; seed?: string; limits: string; servicebus?: string; logLevel: string }) =>
      serveEmulator(io, setExitCode, {
        command: 'emulate dataverse',
        service: 'dataverse-emulator',
        logLevel: opts.logLevel,
        start: async (log) => {
          const emulator = await startDataverseEmulator({
            host: opts.host,
            port: opts.port,
            limits: opts.limits,
            log,
            ...(opts.seed === undefined ? {} : { seed: opts.seed }),
            ...(opts.servicebus === undefined ? {} : { servicebus: opts.servicebus }),
          });
          return { readyLine: `DATAVERSE_URL=${emulator.url}`, close: () => emulator.close() };
        },
      }),
    );
}
