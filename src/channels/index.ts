/** Channels: `channels.json` and the tile XML each channel names. */
export {
  loadChannels,
  loadMessaging,
  type ChannelRegistry,
  type LoadChannelsOptions,
  type LoadMessagingOptions,
  type ProviderReading,
} from './load.js';
export { messagingRegistry, type MessagingReading } from './messaging.js';
export { readTile, TileError, type ChannelTile, type TileResponseType } from './tile.js';
export {
  DEFAULT_OPT_IN_CONFIRMATION,
  DEFAULT_OPT_IN_MAX_AGE_MS,
  DEFAULT_OPT_IN_WORDS,
  DEFAULT_OPT_OUT_CONFIRMATION,
  DEFAULT_OPT_OUT_WORDS,
  DEFAULT_ATTACHMENT_REFUSAL,
  DEFAULT_AUTHORITY_HOST,
  DEFAULT_DIRECT_LINE_URL,
  MULTI_TENANT,
  type Channel,
  type ChannelCallbacks,
  type ProviderSettings,
  type UnreadProviderSettings,
  type MessagingAccount,
  type MessagingChannel,
  type MessagingRegistry,
  providerSettings,
} from './types.js';
