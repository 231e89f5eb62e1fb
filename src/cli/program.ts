/**
 * The `channel-relay` command line, built on commander. `buildProgram` takes its I/O so that tests run it in
 * process; `main.ts` is the executable.
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { packageRoot } from '../paths.js';
import { registerChannelCommands } from './commands/channel.js';
import { registerConfigCommands } from './commands/config.js';
import { registerDeadLettersCommand } from './commands/dead-letters.js';
import { registerDemoCommand } from './commands/demo.js';
import { registerEmulateDataverse } from './commands/emulate-dataverse.js';
import { registerEmulateDirectLine } from './commands/emulate-directline.js';
import { registerEmulateProviders } from './commands/emulate-providers.js';
import { registerEmulateServiceBus } from './commands/emulate-servicebus.js';
import { registerMessagingCommands } from './commands/messaging.js';
import { registerRegisterCommand } from './commands/register.js';
import { registerStatusCommand } from './commands/status.js';
import type { CliIo } from './io.js';

export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(`${packageRoot()}/package.json`, 'utf8')) as { version: string };
  return pkg.version;
}

export interface Program {
  command: Command;
  /** The exit code the last action asked for. */
  exitCode(): number;
}

export function buildProgram(io: CliIo): Program {
  let exitCode = 0;
  const setExitCode = (code: number): void => {
    exitCode = code;
  };
  const command = new Command('channel-relay')
    .description(
      'Dynamics 365 custom channels at scale: Service Bus intake, rate-limited dispatch, interactions in Dataverse',
    )
    .version(packageVersion(), '-V, --version')
    .showHelpAfterError()
    .exitOverride()
    .configureOutput({ writeOut: io.out, writeErr: io.err });
  registerConfigCommands(command, io, setExitCode);
  registerChannelCommands(command, io, setExitCode);
  registerDemoCommand(command, io, setExitCode);
  registerDeadLettersCommand(command, io, setExitCode);
  registerStatusCommand(command, io, setExitCode);
  registerRegisterCommand(command, io, setExitCode);
  registerMessagingCommands(command, io, setExitCode);
  const emulate = command.command('emulate').description('run an emulator on loopback');
  registerEmulateDataverse(emulate, io, setExitCode);
  registerEmulateServiceBus(emulate, io, setExitCode);
  registerEmulateProviders(emulate, io, setExitCode);
  registerEmulateDirectLine(emulate, io, setExitCode);
  return { command, exitCode: () => exitCode };
}

/** Runs the command line with `argv` (without node and script), returning the exit code. */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  const program = buildProgram(io);
  try {
    await program.command.parseAsync(argv, { from: 'user' });
    return program.exitCode();
  } catch (err) {
    // Usage errors (unknown option, bad argument …) exit with 2 like every other refusal of bad input; commander's
    // own code for them is 1. Help and version keep theirs (0).
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    throw err;
  }
}
