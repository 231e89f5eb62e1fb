/**
 * The `config/channels.json` entry of a generated channel (schema config/channels.schema.json), so that the relay and
 * the solution agree by construction: the tile and message table columns (outbound marketing), the channel definition
 * id and media parts (real-time). Secrets are `env:NAME` references and URLs `${NAME}`, named after the channel.
 */
import { ENTRY_RATE_LIMIT, SENDER_PLACEHOLDER } from './assumptions.js';
import type { ChannelNames } from './options.js';

/** What the solution decided that the entry repeats. */
export type SolutionFacts =
  | { contract: 'outbound-marketing'; tile: string; textField: string; channelField: string }
  | { contract: 'realtime'; channelDefinitionId: string; mediaParts: string[] };

/** A placeholder account SID (the schema's `AC` + 32 hex digits) for a Twilio entry: to be replaced. */
const ACCOUNT_SID_PLACEHOLDER = `AC${'0'.repeat(32)}`;

/** An entry, and the keys it holds placeholders in (to be set before the relay runs it). */
export interface ChannelsEntry {
  entry: Record<string, unknown>;
  placeholders: string[];
}

/** `realtime-sms` → `REALTIME_SMS`: the stem of the environment variables the entry references. */
export function envStem(name: string): string {
  return name.toUpperCase().replace(/[^A-Z0-9]/g, '_');
}

export function channelsEntry(n: ChannelNames, facts: SolutionFacts): ChannelsEntry {
  const stem = envStem(n.name);
  const placeholders: string[] = [];
  let provider: Record<string, unknown>;
  if (n.provider === 'twilio') {
    provider = { type: 'twilio', accountSid: ACCOUNT_SID_PLACEHOLDER, authToken: `env:${stem}_AUTH_TOKEN` };
    placeholders.push('provider.accountSid');
  } else if (n.provider === 'telegram') {
    provider = { type: 'telegram', botToken: `env:${stem}_BOT_TOKEN` };
  } else {
    provider = { type: 'contract', url: `\${${stem}_PROVIDER_URL}`, signingSecret: `env:${stem}_SIGNING_SECRET` };
    if (facts.contract === 'realtime' && facts.mediaParts.length > 0) provider['mediaParts'] = facts.mediaParts;
  }
  if (n.sender === undefined) placeholders.unshift('sender');
  const entry: Record<string, unknown> = { name: n.name };
  if (facts.contract === 'outbound-marketing') entry['tile'] = facts.tile;
  else entry['channelDefinitionId'] = facts.channelDefinitionId;
  entry['provider'] = provider;
  entry['sender'] = n.sender ?? SENDER_PLACEHOLDER;
  if (facts.contract === 'outbound-marketing') {
    entry['addressField'] = n.addressField;
    entry['textField'] = facts.textField;
    entry['channelField'] = facts.channelField;
  }
  entry['rateLimit'] = { ...ENTRY_RATE_LIMIT };
  if (facts.contract === 'outbound-marketing') entry['failureResponseType'] = 'failed';
  if (n.inbound || n.deliveryReports) {
    const callbacks: Record<string, unknown> = { publicBaseUrl: '${CALLBACKS_PUBLIC_URL}' };
    if (n.provider === 'telegram') callbacks['webhookSecretToken'] = `env:${stem}_WEBHOOK_SECRET`;
    entry['callbacks'] = callbacks;
  }
  return { entry, placeholders };
}
