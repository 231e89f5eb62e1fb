/**
 * `channel-relay channel new NAME --contract outbound-marketing|realtime …`: writes the unpacked solution folder of a
 * custom channel (SolutionPackager's layout, for `channel pack`) and its channels entry (`DIR.channels.json` next to
 * the folder, also printed). Exit codes: 0 written, 2 a refused option or an occupied folder.
 */
import path from 'node:path';
import { Option, type Command } from 'commander';
import { isSolutionError } from '../../errors.js';
import {
  DEFAULT_PUBLISHER_PREFIX,
  newChannelSolution,
  type ChannelContract,
  type NewChannelOptions,
  type NewChannelResult,
  type ProviderType,
  type RealtimeChannelType,
} from '../../solution/index.js';
import type { CliIo } from '../io.js';

interface NewOptions {
  contract: ChannelContract;
  channelType?: string;
  parts?: string;
  inbound?: boolean;
  deliveryReports?: boolean;
  publisherPrefix: string;
  provider?: ProviderType;
  sender?: string;
  addressField?: string;
  out?: string;
  entryFile?: string;
  channelsFile?: string;
  force?: boolean;
  json?: boolean;
}

/** `sms` / `custom` in any case → the channel definition's `SMS` / `Custom`; anything else passes to the check. */
function channelType(value: string | undefined): RealtimeChannelType | undefined {
  if (value === undefined) return undefined;
  const lower = value.toLowerCase();
  return (lower === 'sms' ? 'SMS' : lower === 'custom' ? 'Custom' : value) as RealtimeChannelType;
}

function summary(r: NewChannelResult): string[] {
  return [
    `solution ${r.uniqueName}: ${r.files.length} files in ${r.dir}`,
    ...(r.channelDefinitionId === undefined ? [] : [`channel definition ${r.channelDefinitionId}`]),
    `channels entry (also in ${r.entryFile}), for the "channels" array of your channels file:`,
    JSON.stringify(r.channelsEntry, null, 2),
  ];
}

export function registerChannelNew(channel: Command, io: CliIo, setExitCode: (code: number) => void): void {
  channel
    .command('new')
    .description(
      'write the unpacked Dataverse solution of a custom channel (tables, forms, views, web resources; real-time: channel definition, message parts, custom APIs) and its channels.json entry',
    )
    .argument('<name>', 'the channel: a lowercase letter, then letters, digits, - or _ (at most 24)')
    .addOption(
      new Option('--contract <contract>', 'outbound-marketing (a tile) or realtime (real-time journeys)')
        .choices(['outbound-marketing', 'realtime'])
        .makeOptionMandatory(),
    )
    .option('--channel-type <type>', 'realtime: SMS (one part, text) or Custom (default Custom)')
    .option(
      '--parts <list>',
      'realtime: message parts, comma-separated, each name[:plaintext|media|image|record][?] (? = optional; default text)',
    )
    .option('--inbound', 'the channel receives customers’ messages (realtime: the inbound custom API)')
    .option('--delivery-reports', 'the channel reports deliveries (realtime: the delivery report custom API)')
    .option(
      '--publisher-prefix <prefix>',
      'the solution publisher’s customization prefix: 2-8 lowercase letters and digits',
      DEFAULT_PUBLISHER_PREFIX,
    )
    .addOption(
      new Option('--provider <type>', 'the relay provider of the channels entry (default contract)').choices([
        'contract',
        'twilio',
        'telegram',
      ]),
    )
    .option('--sender <address>', 'the channels entry’s sender (phone number, bot, contract From)')
    .option('--address-field <column>', 'outbound-marketing: the contact column with the address (default mobilephone)')
    .option('--out <dir>', 'the folder to write (default ./NAME)')
    .option('--entry-file <file>', 'where to write the entry as a channels file of its own (default DIR.channels.json)')
    .option('--channels-file <file>', 'the channels file the printed entry is for (its tile path is relative to it)')
    .option('--force', 'replace the solution the folder already holds')
    .option('--json', 'print the result as JSON')
    .action(async (name: string, opts: NewOptions) => {
      const options: NewChannelOptions = {
        name,
        contract: opts.contract,
        publisherPrefix: opts.publisherPrefix,
        out: opts.out ?? name,
        inbound: opts.inbound === true,
        deliveryReports: opts.deliveryReports === true,
        force: opts.force === true,
      };
      const type = channelType(opts.channelType);
      if (type !== undefined) options.channelType = type;
      if (opts.parts !== undefined) options.parts = opts.parts.split(',');
      if (opts.provider !== undefined) options.provider = opts.provider;
      if (opts.sender !== undefined) options.sender = opts.sender;
      if (opts.addressField !== undefined) options.addressField = opts.addressField;
      if (opts.entryFile !== undefined) options.entryFile = opts.entryFile;
      if (opts.channelsFile !== undefined) options.channelsFile = opts.channelsFile;
      // Relative paths are the caller's: resolved against the command's working directory.
      for (const key of ['out', 'entryFile', 'channelsFile'] as const) {
        const value = options[key];
        if (value !== undefined) options[key] = path.resolve(io.cwd, value);
      }
      let result: NewChannelResult;
      try {
        result = await newChannelSolution(options);
      } catch (err) {
        if (!isSolutionError(err)) throw err;
        io.err(err.message);
        setExitCode(2);
        return;
      }
      if (opts.json === true) io.out(JSON.stringify(result, null, 2));
      else for (const line of summary(result)) io.out(line);
      if (result.placeholders.length > 0) {
        io.err(
          `set before the relay runs this channel: ${result.placeholders.join(', ')} (placeholders in the entry${opts.sender === undefined ? '; --sender sets the sender' : ''})`,
        );
      }
    });
}
