import type { Command } from 'commander';
import type { CliIo } from '../io.js';

/**
 * `channel-relay demo`: the embedded run. Until the emulators and workers exist it says what it will do and
 * fails, rather than pretend.
 */
export function registerDemoCommand(program: Command, io: CliIo, setExitCode: (code: number) => void): void {
  program
    .command('demo')
    .description('run a sample journey end to end on embedded emulators (not available yet)')
    .option('--contacts <n>', 'contacts in the sample journey', '1000')
    .action(() => {
      io.err(
        [
          'channel-relay demo is not available yet.',
          'When it is, it will start the Service Bus, Dataverse and provider emulators on free loopback ports,',
          'register the service endpoint and step, start the intake, dispatch and recorder workers, run the sample',
          'journey from config/dataverse-seed.json, and print a funnel per journey.',
          'What exists today: `channel-relay config check` and `channel-relay emulate servicebus|dataverse` (see README.md).',
        ].join('\n'),
      );
      setExitCode(2);
    });
}
