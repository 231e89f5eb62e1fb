import type { Command } from 'commander';
import { errorMessage } from '../../errors.js';
import { startServiceBusEmulator } from '../../emulators/servicebus/index.js';
import { createShutdown, onShutdownSignals } from '../../lifecycle.js';
import { createLogger, LOG_LEVELS, type LogLevel } from '../../log.js';
import type { CliIo } from '../io.js';

interface EmulateServiceBusOptions {
  host: string;
  port: string;
  config?: string;
  dataDir?: string;
  fsync: boolean;
  logLevel: string;
}

/**
 * `channel-relay emulate servicebus`: runs the Service Bus emulator until SIGTERM/SIGINT. Prints
 * `SERVICEBUS_CONNECTION_STRING=…` on stdout when ready; logs go to stderr.
 */
export function registerEmulateServiceBus(emulate: Command, io: CliIo, setExitCode: (code: number) => void): void {
  emulate
    .command('servicebus')
    .description('run the Service Bus emulator: an AMQP 1.0 broker for the @azure/service-bus SDK')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--port <port>', 'TCP port (0 picks a free one)', '5672')
    .option('--config <file>', "Microsoft's emulator Config.json (default: config/servicebus-emulator.json)")
    .option('--data-dir <dir>', 'keep messages in a journal in this folder (default: memory only)')
    .option('--no-fsync', 'do not fdatasync the journal before acknowledging sends')
    .option('--log-level <level>', `${LOG_LEVELS.join(', ')}`, 'info')
    .action(async (opts: EmulateServiceBusOptions) => {
      if (!(LOG_LEVELS as readonly string[]).includes(opts.logLevel)) {
        io.err(`emulate servicebus: --log-level must be one of ${LOG_LEVELS.join(', ')}, got ${opts.logLevel}`);
        setExitCode(2);
        return;
      }
      const log = createLogger({ level: opts.logLevel as LogLevel, base: { service: 'servicebus-emulator' } });
      const port = Number(opts.port);
      let emulator;
      try {
        emulator = await startServiceBusEmulator({
          host: opts.host,
          port,
          fsync: opts.fsync,
          logger: log,
          ...(opts.config === undefined ? {} : { configFile: opts.config }),
          ...(opts.dataDir === undefined ? {} : { dataDir: opts.dataDir }),
        });
      } catch (err) {
        io.err(`emulate servicebus: ${errorMessage(err)}`);
        setExitCode(1);
        return;
      }
      const shutdown = createShutdown({ stopIntake: () => emulator.close(), drain: () => Promise.resolve(), closer: emulator, budgetMs: 5000, log });
      const code = await new Promise<number>((resolve) => {
        // Handlers first: whoever reads the line may signal at once.
        onShutdownSignals(shutdown, { exit: resolve, log });
        io.out(`SERVICEBUS_CONNECTION_STRING=${emulator.connectionString}`);
      });
      setExitCode(code);
    });
}
