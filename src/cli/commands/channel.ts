/** `channel-relay channel …`: a custom channel's Dataverse solution. Each subcommand's code is in its own file. */
import type { Command } from 'commander';
import type { CliIo } from '../io.js';
import { addChannelImportCommand } from './channel-import.js';
import { registerChannelCheck, registerChannelPack } from './channel-pack.js';

export function registerChannelCommands(program: Command, io: CliIo, setExitCode: (code: number) => void): void {
  const channel = program.command('channel').description("a custom channel's Dataverse solution");
  registerChannelPack(channel, io, setExitCode);
  registerChannelCheck(channel, io, setExitCode);
  addChannelImportCommand(channel, io, setExitCode);
}
