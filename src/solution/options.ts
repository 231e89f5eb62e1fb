/**
 * The options of `channel new`, checked once, and the names derived from them: every refusal is a `SolutionError`
 * naming the option as the command line spells it, what was expected and what was found.
 */
import path from 'node:path';
import { SolutionError } from '../errors.js';
import { DEFAULT_PUBLISHER_PREFIX, SMS_TEXT_MAX_LENGTH, TEXT_MAX_LENGTH } from './assumptions.js';

/** `msdyn_type` of a message part (MSDocs-CE ce/marketing/real-time-marketing-custom-channel-message-parts.md). */
export const MESSAGE_PART_TYPES = {
  plaintext: 192350000,
  media: 192350003,
  image: 192350004,
  record: 192350005,
} as const;

export type ChannelContract = 'outbound-marketing' | 'realtime';
/** Real-time journeys' channel types (`msdyn_channeltype`). */
export type RealtimeChannelType = 'SMS' | 'Custom';
export type MessagePartType = keyof typeof MESSAGE_PART_TYPES;
export type ProviderType = 'twilio' | 'telegram' | 'contract';

export interface NewChannelOptions {
  /** The channel's name: the relay channel's name and, without its dashes, the schema name part of every component. */
  name: string;
  contract: ChannelContract;
  /** Real-time only: `SMS` (exactly one part, `text`; an instance account table) or `Custom`. @defaultValue 'Custom' */
  channelType?: RealtimeChannelType;
  /**
   * Real-time only: the message parts, each `name[:type][?]` (type plaintext, media, image or record; `?` = optional),
   * in the order the message editor shows them. @defaultValue ['text']
   */
  parts?: readonly string[];
  /** The channel receives messages from customers (real-time: the inbound custom API). @defaultValue false */
  inbound?: boolean;
  /** The channel reports deliveries (real-time: the delivery report custom API). @defaultValue false */
  deliveryReports?: boolean;
  /** 2-8 lowercase letters and digits, starting with a letter. @defaultValue 'relay' */
  publisherPrefix?: string;
  /** The relay's provider for the channels entry. @defaultValue 'contract' */
  provider?: ProviderType;
  /** The channels entry's `sender` (phone number, bot or contract `From`); without it the entry holds a placeholder. */
  sender?: string;
  /** Outbound marketing: the contact column holding the recipient's address. @defaultValue 'mobilephone' */
  addressField?: string;
  /** The folder to write; created, or replaced when it holds a solution written before and `force` is set. */
  out: string;
  /**
   * The channels file `channel new` writes with the entry alone (loadable as it is; never inside `out`, which holds
   * only the solution). @defaultValue `<out>.channels.json`, next to the folder
   */
  entryFile?: string;
  /**
   * The channels file the returned entry is meant for: its `tile` is written relative to it.
   * @defaultValue `entryFile`
   */
  channelsFile?: string;
  /** Replace the solution folder `out` already holds. @defaultValue false */
  force?: boolean;
}

/** A message part as the solution declares it. */
export interface MessagePart {
  name: string;
  type: MessagePartType;
  required: boolean;
  maxLength: number;
}

/** The options checked, with the defaults applied and every name the files use. */
export interface ChannelNames {
  name: string;
  contract: ChannelContract;
  channelType: RealtimeChannelType;
  parts: MessagePart[];
  inbound: boolean;
  deliveryReports: boolean;
  prefix: string;
  provider: ProviderType;
  sender?: string;
  addressField: string;
  /** The name without separators, lower case: `realtime-sms` → `realtimesms` (logical names). */
  part: string;
  /** The name in Pascal case: `realtime-sms` → `RealtimeSms` (schema names, web resource names). */
  pascal: string;
  /** A display name: `realtime-sms` → `Realtime Sms`. */
  title: string;
  /** The solution's unique name: prefix + Pascal name (`sample_Special`). */
  uniqueName: string;
}

/** `[a-z]` first, then lowercase letters and digits, groups joined by one `-` or `_`; at most 24 characters. */
const NAME = /^[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*$/;
const NAME_MAX = 24;
/** Dataverse: a publisher prefix is 2-8 letters or digits, starts with a letter, and not `mscrm`. Lowercase here. */
const PREFIX = /^[a-z][a-z0-9]{1,7}$/;
const PART = /^([a-z][a-z0-9_]{0,39})(?::([a-z]+))?(\?)?$/;
/** A contact column's logical name. */
const COLUMN = /^[a-z_][a-z0-9_]*$/;
/** Column names the message editor table has besides the parts. */
const RESERVED_PARTS = ['name', 'placeholders'];

function refuse(option: string, expected: string, found: unknown): never {
  throw new SolutionError('SolutionOptionInvalid', option, `expected ${expected}, found ${describe(found)}`);
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}

/** Parses `--parts` entries (`name[:type][?]`). */
export function parseParts(specs: readonly string[], channelType: RealtimeChannelType): MessagePart[] {
  if (specs.length === 0) refuse('--parts', 'at least one message part (a custom channel needs one)', 'none');
  const seen = new Set<string>();
  const parts = specs.map((spec) => {
    const m = PART.exec(spec.trim());
    if (!m) {
      refuse(
        '--parts',
        `name[:type][?] for each part: a name of lowercase letters, digits and _ starting with a letter (at most 40), type one of ${Object.keys(MESSAGE_PART_TYPES).join(', ')}`,
        spec,
      );
    }
    const [, name, type = 'plaintext', optional] = m as unknown as [string, string, string | undefined, string?];
    if (!(type in MESSAGE_PART_TYPES))
      refuse('--parts', `a part type of ${Object.keys(MESSAGE_PART_TYPES).join(', ')}`, `${type} in ${spec}`);
    if (RESERVED_PARTS.includes(name))
      refuse(
        '--parts',
        `a part name other than ${RESERVED_PARTS.join(' and ')} (columns of the message editor table)`,
        name,
      );
    if (seen.has(name)) refuse('--parts', 'each part named once', `${name} twice`);
    seen.add(name);
    const maxLength = channelType === 'SMS' ? SMS_TEXT_MAX_LENGTH : TEXT_MAX_LENGTH;
    return { name, type: type as MessagePartType, required: optional === undefined, maxLength };
  });
  const text = parts[0]!;
  if (
    channelType === 'SMS' &&
    (parts.length !== 1 || text.name !== 'text' || text.type !== 'plaintext' || !text.required)
  ) {
    refuse(
      '--parts',
      'exactly one part, text (plaintext, required), for an SMS channel: the Marketing SMS editor fills only that part',
      specs.join(','),
    );
  }
  return parts;
}

function isInside(dir: string, file: string): boolean {
  const rel = path.relative(path.resolve(dir), path.resolve(file));
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
}

function pascalOf(name: string): string {
  return name
    .split(/[-_]/)
    .map((w) => w.charAt(0).toUpperCase() + w.slice(1))
    .join('');
}

/** Checks the options and derives the names; throws `SolutionError` (`SolutionOptionInvalid`). */
export function channelNames(options: NewChannelOptions): ChannelNames {
  const { name } = options;
  if (typeof name !== 'string' || !NAME.test(name) || name.length > NAME_MAX) {
    refuse(
      'NAME',
      `a channel name of at most ${NAME_MAX} characters: a lowercase letter, then lowercase letters and digits, groups joined by one - or _ (it becomes part of table and API schema names)`,
      name,
    );
  }
  const contracts: ChannelContract[] = ['outbound-marketing', 'realtime'];
  if (!contracts.includes(options.contract)) refuse('--contract', contracts.join(' or '), options.contract);
  const prefix = options.publisherPrefix ?? DEFAULT_PUBLISHER_PREFIX;
  if (!PREFIX.test(prefix) || prefix.startsWith('mscrm')) {
    refuse(
      '--publisher-prefix',
      'a publisher prefix of 2 to 8 lowercase letters and digits starting with a letter, not mscrm (Dataverse publishers)',
      prefix,
    );
  }
  const providers: ProviderType[] = ['contract', 'twilio', 'telegram'];
  const provider = options.provider ?? 'contract';
  if (!providers.includes(provider)) refuse('--provider', providers.join(', '), provider);
  const realtime = options.contract === 'realtime';
  const channelType = options.channelType ?? 'Custom';
  if (options.channelType !== undefined && !realtime)
    refuse(
      '--channel-type',
      'no channel type: it is a real-time journeys setting, and the contract is outbound-marketing',
      options.channelType,
    );
  if (channelType !== 'SMS' && channelType !== 'Custom') refuse('--channel-type', 'SMS or Custom', channelType);
  if (options.parts !== undefined && !realtime)
    refuse(
      '--parts',
      'no parts: message parts belong to real-time channels; an outbound-marketing message is one text column',
      options.parts.join(','),
    );
  if (realtime && provider !== 'contract')
    refuse(
      '--provider',
      'contract for a real-time channel (the relay sends real-time messages through the custom channel contract)',
      provider,
    );
  const addressField = options.addressField ?? 'mobilephone';
  if (!COLUMN.test(addressField)) refuse('--address-field', 'a contact column logical name', addressField);
  if (options.addressField !== undefined && realtime)
    refuse('--address-field', 'no address field: a real-time journey passes the recipient (To) itself', addressField);
  if (options.sender !== undefined && options.sender.trim() === '') refuse('--sender', 'a sender', options.sender);
  if (typeof options.out !== 'string' || options.out === '') refuse('--out', 'a folder', options.out);
  if (options.entryFile !== undefined && isInside(options.out, options.entryFile))
    refuse(
      '--entry-file',
      'a file outside the solution folder (it holds only what channel pack reads)',
      options.entryFile,
    );
  const part = name.replace(/[-_]/g, '');
  const pascal = pascalOf(name);
  const names: ChannelNames = {
    name,
    contract: options.contract,
    channelType,
    parts: realtime ? parseParts(options.parts ?? ['text'], channelType) : [],
    inbound: options.inbound ?? false,
    deliveryReports: options.deliveryReports ?? false,
    prefix,
    provider,
    addressField,
    part,
    pascal,
    title: name
      .split(/[-_]/)
      .map((w) => w.charAt(0).toUpperCase() + w.slice(1))
      .join(' '),
    uniqueName: `${prefix}_${pascal}`,
  };
  if (options.sender !== undefined) names.sender = options.sender;
  return names;
}
