/** `channel-relay channel …`: the Dataverse solution of a custom channel. Each subcommand lives in its own file. */
import type { Command } from 'commander';
import type { CliIo } from '../io.js';
import { addChannelImportCommand } from './channel-import.js';
import { registerChannelNew } from './channel-new.js';
import { registerChannelCheck, registerChannelPack } from './channel-pack.js';

export function registerChannelCommands(program: Command, io: CliIo, setExitCode: (code: number) => void): void {
  const channel = program
    .command('channel')
    .description('a custom channel as a Dataverse solution: generate (new), pack and check, import');
  registerChannelNew(channel, io, setExitCode);
  registerChannelPack(channel, io, setExitCode);
  registerChannelCheck(channel, io, setExitCode);
  addChannelImportCommand(channel, io, setExitCode);
}
