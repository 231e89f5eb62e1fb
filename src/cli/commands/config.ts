import { Option, type Command } from 'commander';
import {
  loadChannels,
  MULTI_TENANT,
  type Channel,
  type ChannelRegistry,
  type MessagingAccount,
} from '../../channels/index.js';
import { describeConfig, loadConfig, type LoadedConfig } from '../../config/index.js';
import { formatConfigProblem, isConfigError } from '../../errors.js';
import { ALL_IN_ONE_STAGES, loadStageConfig, STAGES } from '../../relay/index.js';
import type { CliIo } from '../io.js';

/** What `--stage` accepts: a stage, or `all` for the stages of `workers/all.ts` (intake, dispatch, recorder). */
const STAGE_CHOICES = [...STAGES, 'all'] as const;

/** One line per channel: provider, sender, limit, tile or channel definition. Secrets are never part of it. */
function describeChannel(c: Channel): string {
  const limit = `${c.rateLimit.messages} per ${c.rateLimit.intervalMs} ms, at most ${c.rateLimit.concurrency} in flight${c.rateLimit.perRecipientMs > 0 ? `, ${c.rateLimit.perRecipientMs} ms per recipient` : ''}${c.rateLimit.perGroupMs > 0 ? `, ${c.rateLimit.perGroupMs} ms per group chat` : ''}`;
  const source = c.tile
    ? `tile ${c.tile.entityType} (compliance ${c.tile.complianceField}, address ${c.addressField}, text ${c.textField}${c.failureResponseType ? `, failures as '${c.failureResponseType}'` : ''})`
    : `real-time channel definition ${c.channelDefinitionId}`;
  const p = c.provider;
  const where =
    'unread' in p
      ? ' (settings not read for this stage)'
      : ` at ${p.type === 'contract' ? p.url : (p.baseUrl ?? 'the provider')}`;
  return `channel ${c.name}: ${p.type}${where}, sender ${c.sender} (session ${c.senderKey}), ${limit}; ${source}`;
}

/**
 * One line per messaging account and one per channel it bridges: where its conversations go, never a secret
 * (whether the secrets were read depends on the stage: `messaging validate` checks them against the identity platform).
 */
function describeMessagingAccount(a: MessagingAccount): string[] {
  const tenant = a.tenant === MULTI_TENANT ? 'multi-tenant' : `tenant ${a.tenant}`;
  return [
    `messaging account ${a.name}: app ${a.appId} (${tenant}), Direct Line ${a.directLineUrl}, ${a.channels.length} channel${a.channels.length === 1 ? '' : 's'}`,
    ...a.channels.map(
      (c) =>
        `    ${c.name}: relay channel ${c.relayChannel} <-> Omnichannel channel ${c.channelId}, workstream ${c.workstream}, ${c.language}, files from customers ${c.attachments.customer ? 'on' : 'off'}, from agents ${c.attachments.agent ? 'on' : 'off'}`,
    ),
  ];
}

/**
 * `channel-relay config check [FILE] [--stage NAME]`: every problem and exit 1, or a summary and exit 0. Without
 * `--stage`, everything any stage reads; with it, exactly what that stage's worker requires at start (src/relay/requirements.ts).
 */
export function registerConfigCommands(program: Command, io: CliIo, setExitCode: (code: number) => void): void {
  const config = program.command('config').description('work with the configuration');
  config
    .command('check')
    .description(
      'validate a configuration (defaults + FILE + environment) and its channels file, and show what it would run with',
    )
    .argument('[file]', 'a configuration file merged over the embedded defaults')
    .addOption(
      new Option(
        '--stage <name>',
        "check only what this stage's worker requires (all: workers/all.js, intake + dispatch + recorder)",
      ).choices(STAGE_CHOICES),
    )
    .action((file: string | undefined, options: { stage?: (typeof STAGE_CHOICES)[number] }) => {
      try {
        let loaded: LoadedConfig;
        let channels: ChannelRegistry | undefined;
        if (options.stage === undefined) {
          loaded = loadConfig({ file, env: io.env, cwd: io.cwd });
          channels = loadChannels(loaded.config.channelsFile, { env: io.env, cwd: io.cwd });
          io.out('configuration is valid; it would run with:');
        } else {
          const stages = options.stage === 'all' ? ALL_IN_ONE_STAGES : [options.stage];
          ({ loaded, channels } = loadStageConfig(stages, { file, env: io.env, cwd: io.cwd }));
          io.out(`configuration is valid for ${stages.join(' + ')}; it would run with:`);
        }
        for (const line of describeConfig(loaded)) io.out(`  ${line}`);
        for (const warning of loaded.warnings) io.err(`warning: ${warning}`);
        if (channels === undefined) io.out('  channels: none read (the recorder uses no channel)');
        for (const channel of channels?.all() ?? []) io.out(`  ${describeChannel(channel)}`);
        for (const account of channels?.messaging.accounts ?? [])
          for (const line of describeMessagingAccount(account)) io.out(`  ${line}`);
        setExitCode(0);
      } catch (err) {
        if (!isConfigError(err)) throw err;
        io.err(`configuration has ${err.problems.length} problem${err.problems.length === 1 ? '' : 's'}:`);
        for (const p of err.problems) io.err(`  - ${formatConfigProblem(p)}`);
        setExitCode(1);
      }
    });
}
