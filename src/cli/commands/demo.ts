import type { Command } from 'commander';
import type { CliIo } from '../io.js';

/**
 * `channel-relay demo`: the embedded run. The emulators and the workers exist; the command that starts them all and
 * runs the sample journey does not yet, so it says what it will do and how to run the parts today, and fails,
 * rather than pretend.
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
          'What exists today: the three emulators (`channel-relay emulate servicebus|dataverse|providers`) and the workers',
          '(`node --import tsx workers/all.ts`); README.md "Running the workers" shows how to run a journey through them by hand.',
        ].join('\n'),
      );
      setExitCode(2);
    });
}
