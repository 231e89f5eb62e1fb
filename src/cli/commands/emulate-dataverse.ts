import type { Command } from 'commander';
import { errorMessage } from '../../errors.js';
import { startDataverseEmulator } from '../../emulators/dataverse/index.js';
import { createShutdown, onShutdownSignals } from '../../lifecycle.js';
import { createLogger, LOG_LEVELS, type LogLevel } from '../../log.js';
import type { CliIo } from '../io.js';

/**
 * `channel-relay emulate dataverse`: runs the Dataverse emulator on loopback until SIGTERM/SIGINT. Prints
 * `DATAVERSE_URL=http://127.0.0.1:<port>` on stdout when ready; logs go to stderr.
 */
export function registerEmulateDataverse(emulate: Command, io: CliIo, setExitCode: (code: number) => void): void {
  emulate
    .command('dataverse')
    .description('run the Dataverse Web API emulator (custom channel actions, limits, posting to Service Bus)')
    .option('--port <port>', 'port on 127.0.0.1 (0 picks a free one)', '0')
    .option('--seed <file>', 'seed file (contacts, journeys, custom message table, tile XML)')
    .option('--limits <mode>', 'service protection limits: realistic, off, or a JSON file', 'realistic')
    .option('--servicebus <connectionString>', 'Service Bus connection string used for every service endpoint')
    .option('--log-level <level>', 'error, warn, info or debug', 'info')
    .action(async (opts: { port: string; seed?: string; limits: string; servicebus?: string; logLevel: string }) => {
      if (!(LOG_LEVELS as readonly string[]).includes(opts.logLevel)) {
        io.err(`emulate dataverse: --log-level must be one of ${LOG_LEVELS.join(', ')}, found '${opts.logLevel}'`);
        setExitCode(2);
        return;
      }
      const log = createLogger({ level: opts.logLevel as LogLevel, base: { service: 'dataverse-emulator' } });
      const port = Number(opts.port);
      let emulator;
      try {
        emulator = await startDataverseEmulator({
          port,
          limits: opts.limits,
          log,
          ...(opts.seed === undefined ? {} : { seed: opts.seed }),
          ...(opts.servicebus === undefined ? {} : { servicebus: opts.servicebus }),
        });
      } catch (err) {
        io.err(`emulate dataverse: ${errorMessage(err)}`);
        setExitCode(1);
        return;
      }
      const shutdown = createShutdown({ stopIntake: () => emulator.close(), drain: () => Promise.resolve(), closer: emulator, budgetMs: 5000, log });
      io.out(`DATAVERSE_URL=${emulator.url}`);
      const outcome = await new Promise<number>((resolve) => {
        onShutdownSignals(shutdown, { exit: resolve, log });
      });
      setExitCode(outcome);
    });
}
