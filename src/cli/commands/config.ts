import type { Command } from 'commander';
import { loadChannels, type Channel } from '../../channels/index.js';
import { describeConfig, loadConfig } from '../../config/index.js';
import { formatConfigProblem, isConfigError } from '../../errors.js';
import type { CliIo } from '../io.js';

/** One line per channel: provider, sender, limit, tile or channel definition. Secrets are never part of it. */
function describeChannel(c: Channel): string {
  const limit = `${c.rateLimit.messages} per ${c.rateLimit.intervalMs} ms, ${c.rateLimit.concurrency} in flight${c.rateLimit.perRecipientMs > 0 ? `, ${c.rateLimit.perRecipientMs} ms per recipient` : ''}`;
  const source = c.tile
    ? `tile ${c.tile.entityType} (compliance ${c.tile.complianceField}, address ${c.addressField}, text ${c.textField}${c.failureResponseType ? `, failures as '${c.failureResponseType}'` : ''})`
    : `real-time channel definition ${c.channelDefinitionId}`;
  const p = c.provider;
  const where = 'unread' in p ? ' (settings not read for this stage)' : ` at ${p.type === 'contract' ? p.url : (p.baseUrl ?? 'the provider')}`;
  return `channel ${c.name}: ${p.type}${where}, sender ${c.sender} (session ${c.senderKey}), ${limit}; ${source}`;
}

/** `channel-relay config check [FILE]`: every problem and exit 1, or a summary and exit 0. */
export function registerConfigCommands(program: Command, io: CliIo, setExitCode: (code: number) => void): void {
  const config = program.command('config').description('work with the configuration');
  config
    .command('check')
    .description('validate a configuration (defaults + FILE + environment) and its channels file, and show what it would run with')
    .argument('[file]', 'a configuration file merged over the embedded defaults')
    .action((file: string | undefined) => {
      try {
        const loaded = loadConfig({ file, env: io.env, cwd: io.cwd });
        const channels = loadChannels(loaded.config.channelsFile, { env: io.env, cwd: io.cwd });
        io.out('configuration is valid; it would run with:');
        for (const line of describeConfig(loaded)) io.out(`  ${line}`);
        for (const channel of channels.all()) io.out(`  ${describeChannel(channel)}`);
        setExitCode(0);
      } catch (err) {
        if (!isConfigError(err)) throw err;
        io.err(`configuration has ${err.problems.length} problem${err.problems.length === 1 ? '' : 's'}:`);
        for (const p of err.problems) io.err(`  - ${formatConfigProblem(p)}`);
        setExitCode(1);
      }
    });
}
