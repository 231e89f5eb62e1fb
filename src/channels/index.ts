/** Channels: `channels.json` and the tile XML each channel names. */
export { loadChannels, type ChannelRegistry, type LoadChannelsOptions } from './load.js';
export { readTile, TileError, type ChannelTile, type TileResponseType } from './tile.js';
export type { Channel, ProviderSettings } from './types.js';
