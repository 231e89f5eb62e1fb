import { InvalidArgumentError, type Command } from 'commander';
import { startDataverseEmulator, type PartialTargets } from '../../emulators/dataverse/index.js';
import type { CliIo } from '../io.js';
import { parsePort, serveEmulator } from './serve-emulator.js';

/**
 * `channel-relay emulate dataverse`: runs the Dataverse emulator (on loopback unless `--host` says otherwise) until
 * SIGTERM/SIGINT. Prints `DATAVERSE_URL=http://<host>:<port>` on stdout when ready; logs go to stderr.
 */
/** `--partial-targets col,col[@share]`: the columns left out of posted Targets, and the share of Creates (default 1). */
function parsePartialTargets(value: string): PartialTargets {
  const m = /^([A-Za-z_][\w]*(?:,[A-Za-z_][\w]*)*)(?:@(0(?:\.\d+)?|1(?:\.0+)?))?$/.exec(value.trim());
  if (!m)
    throw new InvalidArgumentError(
      `expected column names separated by commas, optionally @share (0-1), e.g. msdyncrm_contact,msdyncrm_entityid@0.5; found '${value}'`,
    );
  return { omit: m[1]!.split(','), share: m[2] === undefined ? 1 : Number(m[2]) };
}

export function registerEmulateDataverse(emulate: Command, io: CliIo, setExitCode: (code: number) => void): void {
  emulate
    .command('dataverse')
    .description('run the Dataverse Web API emulator (custom channel actions, limits, posting to Service Bus)')
    .option('--port <port>', 'port (0 picks a free one)', parsePort, 0)
    .option('--host <host>', 'address to listen on (0.0.0.0 in a container)', '127.0.0.1')
    .option('--seed <file>', 'seed file (contacts, journeys, custom message table, tile XML)')
    .option('--limits <mode>', 'service protection limits: realistic, off, or a JSON file', 'realistic')
    .option('--servicebus <connectionString>', 'Service Bus connection string used for every service endpoint')
    .option(
      '--partial-targets <columns>',
      'post Creates whose Target lacks these columns (the row keeps them): col,col[@share]',
      parsePartialTargets,
    )
    .option('--log-level <level>', 'error, warn, info or debug', 'info')
    .action(
      (opts: {
        port: number;
        host: string;
        seed?: string;
        limits: string;
        servicebus?: string;
        partialTargets?: PartialTargets;
        logLevel: string;
      }) =>
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
              ...(opts.partialTargets === undefined ? {} : { partialTargets: opts.partialTargets }),
            });
            return { readyLine: `DATAVERSE_URL=${emulator.url}`, close: () => emulator.close() };
          },
        }),
    );
}
