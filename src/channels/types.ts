/**
 * A channel as the relay uses it, resolved from `config/channels.json` and the tile XML it names.
 */
import type { ProviderSettings } from '../providers/index.js';
import type { ChannelTile } from './tile.js';

export type { ProviderSettings };

/**
 * A provider whose settings a process did not read, because none of its stages calls the provider or verifies what it
 * posts (`loadChannels` option `providers`): its type only, no secret, no URL.
 */
export interface UnreadProviderSettings {
  type: ProviderSettings['type'];
  unread: true;
}

export interface Channel {
  /** The channel's name in channels.json; also what the message record's channel column holds. */
  name: string;
  /** Outbound marketing: the tile. Absent for a real-time journeys-only channel. */
  tile?: ChannelTile & { file: string };
  /** Real-time journeys: the `msdyn_channeldefinition` this channel serves. */
  channelDefinitionId?: string;
  /** The provider's settings; only its type where this process's stages never use them (`loadChannels` option `providers`). */
  provider: ProviderSettings | UnreadProviderSettings;
  /** The sender (phone number, bot name, contract `From`). */
  sender: string;
  /** The Service Bus SessionId of this channel's messages on `outbound`: one session = one sender. */
  senderKey: string;
  /** The contact column holding the recipient's address (e.g. `mobilephone`). */
  addressField: string;
  /** The message record's column holding the text (e.g. `sample_text`). */
  textField: string;
  /**
   * The message record's column naming the channel, when several channels share one tile; the record's value must
   * equal this channel's `name`.
   */
  channelField?: string;
  /** The sender's rate limit. */
  rateLimit: {
    /** Messages per interval for this sender. */
    messages: number;
    /** @defaultValue 1000 */
    intervalMs: number;
    /**
     * At most this many provider calls in flight for this sender: the ceiling, for a provider that limits concurrent
     * connections; below it dispatch sizes the calls in flight from the rate and the provider's observed latency.
     * @defaultValue 100
     */
    concurrency: number;
    /** Per recipient: at least this long between two messages to the same recipient (Telegram: 1 s per chat). @defaultValue 0 */
    perRecipientMs: number;
    /**
     * Telegram: at least this long between two messages to the same group, supergroup or public channel (`chat_id`
     * negative or `@name`): Telegram allows 20 a minute in a group. @defaultValue 3000 for Telegram, else 0 (off)
     */
    perGroupMs: number;
  };
  /** The tile's response type recorded for a permanent provider refusal (e.g. `failed`); absent: nothing recorded. */
  failureResponseType?: string;
  /** The provider call's timeout. @defaultValue 10000 */
  timeoutMs: number;
  /** The feedback path (delivery reports, tracked links, replies): absent, nothing comes back from this channel. */
  callbacks?: ChannelCallbacks;
  /** `callbacks.publicBaseUrl`, when the channel has callbacks (kept here for the stages that only need the URL). */
  publicBaseUrl?: string;
}

/** A channel's provider settings; throws a `TypeError` naming the channel when this process did not read them. */
export function providerSettings(channel: Channel): ProviderSettings {
  const provider = channel.provider;
  if ('unread' in provider)
    throw new TypeError(
      `channel "${channel.name}": its ${provider.type} provider settings were not read (this process's stages do not use them)`,
    );
  return provider;
}

/**
 * A channel's `callbacks` block, resolved: defaults filled in, secrets read from the environment, response types
 * checked against the tile. Words are matched case-insensitively on a reply's first word.
 */
export interface ChannelCallbacks {
  /**
   * The callbacks service's public URL for this channel, without a trailing slash. Status callbacks go to
   * `${publicBaseUrl}/callbacks/${name}/twilio/status`, tracked links to `${publicBaseUrl}/l/${code}`.
   */
  publicBaseUrl: string;
  /** Rewrite the links of journey messages to tracked links (a click records `opened`). @defaultValue false */
  trackLinks: boolean;
  /**
   * Keyword replies: a reply's first word (upper case, surrounding punctuation ignored) → the `TriggerKeyword`
   * recorded with the tile's custom response type. channels.json gives a list (each word is its own TriggerKeyword,
   * as spelled there) or a map (several words, one TriggerKeyword). A reply that matches no keyword (and no opt-out
   * or opt-in word) is not recorded: free text never becomes a TriggerKeyword. @defaultValue {} (none recorded)
   */
  keywords: Record<string, string>;
  /** Replies that opt the contact out (set the tile's compliance field). @defaultValue STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT, REVOKE, OPTOUT */
  optOutWords: string[];
  /** Replies that opt the contact back in (clear the compliance field). @defaultValue START, YES, UNSTOP */
  optInWords: string[];
  /**
   * How recent an opt-in reply must be to be applied, ms: a START (or other opt-in word) whose provider timestamp is
   * older is refused, so that a replayed or long-retried request cannot re-subscribe a contact who has opted out since
   * (Twilio: the `date_created` of the message fetched by its MessageSid; Telegram: the update's `message.date`).
   * Opt-outs always apply. 60000-86400000. @defaultValue {@link DEFAULT_OPT_IN_MAX_AGE_MS} (15 minutes)
   */
  optInMaxAgeMs: number;
  /** The automated reply to an opt-out; empty: none sent. @defaultValue {@link DEFAULT_OPT_OUT_CONFIRMATION} */
  optOutConfirmation: string;
  /** The automated reply to an opt-in; empty: none sent. @defaultValue {@link DEFAULT_OPT_IN_CONFIRMATION} */
  optInConfirmation: string;
  /**
   * Telegram: the `secret_token` given to setWebhook, checked against `X-Telegram-Bot-Api-Secret-Token` (from
   * `env:NAME`; each 1-256 of A-Z a-z 0-9 _ -; two separated by a space while rotating). Required for a Telegram
   * channel with callbacks.
   */
  webhookSecretToken?: string;
  /** Twilio: the previous auth token (from `env:NAME`), still accepted for `X-Twilio-Signature` while rotating. */
  previousAuthToken?: string;
  /**
   * Twilio: the secret of the SharedKey a Webhooks Rule signs this channel's callbacks with (from `env:NAME`; several
   * separated by spaces while rotating). A request that carries `X-Twilio-Webhooks-Signature-Settings` is verified with
   * it and the header's algorithm (HMAC_SHA1 or HMAC_SHA256), never with the auth token. @defaultValue none: such a
   * request is refused
   */
  sharedKeySecret?: string;
  /** Real-time journeys: the Dataverse OrganizationId for reports and inbound messages that carry none. */
  organizationId?: string;
  /**
   * The tile's response type recorded for a delivery report (validated against the tile's ResponseTypes).
   * @defaultValue 'delivered'
   */
  deliveredResponseType: string;
  /**
   * The tile's response type recorded for a read report or a tracked-link click (validated against the tile).
   * @defaultValue 'opened'
   */
  openedResponseType: string;
}

/** Twilio's standard English opt-out words (Twilio Advanced Opt-Out; the CTIA list plus REVOKE and OPTOUT). */
export const DEFAULT_OPT_OUT_WORDS: readonly string[] = [
  'STOP',
  'STOPALL',
  'UNSUBSCRIBE',
  'CANCEL',
  'END',
  'QUIT',
  'REVOKE',
  'OPTOUT',
];
/** Twilio's standard opt-in words. */
export const DEFAULT_OPT_IN_WORDS: readonly string[] = ['START', 'YES', 'UNSTOP'];
/** How recent an opt-in reply must be, by default: 15 minutes. */
export const DEFAULT_OPT_IN_MAX_AGE_MS = 900_000;
export const DEFAULT_OPT_OUT_CONFIRMATION =
  'You have been unsubscribed and will receive no more messages. Reply START to subscribe again.';
export const DEFAULT_OPT_IN_CONFIRMATION = 'You have been subscribed again. Reply STOP to unsubscribe.';

/**
 * An Omnichannel custom messaging account (the channels file's `messaging.accounts`): the Azure Bot behind it (its
 * Microsoft app ID and client secret, validated like the admin centre's "Validate app ID + secret") and the Direct
 * Line secret the relay opens conversations with.
 */
export interface MessagingAccount {
  name: string;
  /** The Microsoft app ID (a GUID, lower case). */
  appId: string;
  /** `multi`: a multi-tenant app (tokens from the botframework.com tenant); otherwise the app's tenant (GUID or domain). */
  tenant: string;
  /** Resolved from its `env:NAME`; never in the file. Absent where this process never validates the account. */
  clientSecret?: string;
  /** Resolved from its `env:NAME`; never in the file. Absent where this process's stages never open a conversation. */
  directLineSecret?: string;
  /**
   * Direct Line's base URL (regional, or an emulator), without a trailing slash. Where this process does not read
   * Direct Line (`loadChannels` option `messaging`), as written in the file (`${NAME}` not replaced).
   * @defaultValue {@link DEFAULT_DIRECT_LINE_URL}
   */
  directLineUrl: string;
  /**
   * The identity platform, without a trailing slash. Where this process does not read the identity settings, as
   * written in the file. @defaultValue {@link DEFAULT_AUTHORITY_HOST}
   */
  authorityHost: string;
  channels: MessagingChannel[];
}

/** A custom messaging channel of an account: one relay channel bridged to Omnichannel's agents. */
export interface MessagingChannel {
  /** Unique across the file. */
  name: string;
  /** The account's name. */
  account: string;
  /** The channel ID in Omnichannel (at most once per account: the Bot Framework allows one per app ID). */
  channelId: string;
  /** The relay channel (`channels[].name`) that carries it: provider, sender, address. At most one messaging channel each. */
  relayChannel: string;
  workstream: string;
  /** e.g. `en-US`. */
  language: string;
  /** `channelData.conversationcontext` posted with the first message: routing context for the workstream. */
  conversationContext: Record<string, string>;
  /** Whether customers and agents may send files. @defaultValue both false (Omnichannel's default: attachments off) */
  attachments: { customer: boolean; agent: boolean };
  /** Sent to a customer whose attachment the channel refuses. @defaultValue {@link DEFAULT_ATTACHMENT_REFUSAL} */
  attachmentRefusal: string;
}

/** `tenant` of a multi-tenant app. */
export const MULTI_TENANT = 'multi';
export const DEFAULT_DIRECT_LINE_URL = 'https://directline.botframework.com';
export const DEFAULT_AUTHORITY_HOST = 'https://login.microsoftonline.com';
export const DEFAULT_ATTACHMENT_REFUSAL = 'Sorry, we cannot receive files here.';

/** The messaging section of a channels file, looked up by the relay channel a customer writes on. */
export interface MessagingRegistry {
  readonly accounts: readonly MessagingAccount[];
  account(name: string): MessagingAccount | undefined;
  /** The messaging channel a relay channel is bridged to, if any. */
  byRelayChannel(relayChannel: string): MessagingChannel | undefined;
}
