import { Option, type Command } from 'commander';
import { startServiceBusEmulator, type ConfigRanges } from '../../emulators/servicebus/index.js';
import { LOG_LEVELS } from '../../log.js';
import { EMULATOR_MANAGEMENT_PORT } from '../../servicebus/index.js';
import type { CliIo } from '../io.js';
import { parsePort, serveEmulator } from './serve-emulator.js';

interface EmulateServiceBusOptions {
  host: string;
  port: number;
  managementPort?: number;
  config?: string;
  ranges: ConfigRanges;
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
    .option('--port <port>', 'TCP port (0 picks a free one)', parsePort, 5672)
    .option(
      '--management-port <port>',
      "TCP port of the management REST API (queues' runtime properties, for channel-relay status); 0 picks a free one (default: 5300, Microsoft's emulator's, or 0 with --port 0)",
      parsePort,
    )
    .option('--config <file>', "Microsoft's emulator Config.json (default: config/servicebus-emulator.json)")
    .addOption(
      new Option(
        '--ranges <set>',
        "check --config against Azure Service Bus's ranges, or Microsoft's emulator's (narrower: for a file Microsoft's emulator loads too)",
      )
        .choices(['azure', 'microsoft-emulator'])
        .default('azure'),
    )
    .option('--data-dir <dir>', 'keep messages in a journal in this folder (default: memory only)')
    .option('--no-fsync', 'do not fdatasync the journal before acknowledging sends')
    .option('--log-level <level>', `${LOG_LEVELS.join(', ')}`, 'info')
    .action((opts: EmulateServiceBusOptions) =>
      serveEmulator(io, setExitCode, {
        command: 'emulate servicebus',
        service: 'servicebus-emulator',
        logLevel: opts.logLevel,
        start: async (log) => {
          const emulator = await startServiceBusEmulator({
            host: opts.host,
            port: opts.port,
            managementPort: opts.managementPort ?? (opts.port === 0 ? 0 : EMULATOR_MANAGEMENT_PORT),
            fsync: opts.fsync,
            configRanges: opts.ranges,
            logger: log,
            ...(opts.config === undefined ? {} : { configFile: opts.config }),
            ...(opts.dataDir === undefined ? {} : { dataDir: opts.dataDir }),
          });
          return {
            readyLine: `SERVICEBUS_CONNECTION_STRING=${emulator.connectionString}`,
            close: () => emulator.close(),
          };
        },
      }),
    );
}
