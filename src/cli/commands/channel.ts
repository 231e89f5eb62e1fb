/** `channel-relay channel …`: a custom channel's Dataverse solution, one subcommand per file. */
import type { Command } from 'commander';
import type { CliIo } from '../io.js';
import { addChannelImportCommand } from './channel-import.js';

export function registerChannelCommands(program: Command, io: CliIo, setExitCode: (code: number) => void): void {
  const channel = program
    .command('channel')
    .description("a custom channel's Dataverse solution: new, pack, check, import");
  addChannelImportCommand(channel, io, setExitCode);
}
