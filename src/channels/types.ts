/**
 * A channel as the relay uses it, resolved from `config/channels.json` and the tile XML it names.
 */
import type { ChannelTile } from './tile.js';

/** Provider settings; secrets already resolved from their `env:` references. */
export type ProviderSettings =
  | { type: 'twilio'; accountSid: string; authToken: string; baseUrl?: string }
  | { type: 'telegram'; botToken: string; baseUrl?: string }
  | { type: 'contract'; url: string; signingSecret: string };

export interface Channel {
  /** The channel's name in channels.json; also what the message record's channel column holds. */
  name: string;
  /** Outbound marketing: the tile. Absent for a real-time journeys-only channel. */
  tile?: ChannelTile & { file: string };
  /** Real-time journeys: the `msdyn_channeldefinition` this channel serves. */
  channelDefinitionId?: string;
  provider: ProviderSettings;
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
    /** At most this many provider calls in flight for this sender. @defaultValue 10 */
    concurrency: number;
    /** Per recipient: at least this long between two messages to the same recipient (Telegram: 1 s per chat). @defaultValue 0 */
    perRecipientMs: number;
  };
  /** The tile's response type recorded for a permanent provider refusal (e.g. `failed`); absent: nothing recorded. */
  failureResponseType?: string;
  /** The provider call's timeout. @defaultValue 10000 */
  timeoutMs: number;
  /** Public base URL of the callbacks service for this channel (status callbacks, tracked links), when set. */
  publicBaseUrl?: string;
}
