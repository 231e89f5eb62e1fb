/** Dataverse solutions of custom channels: `channel new` (generate). */
export { defaultEntryFile, newChannelSolution, type NewChannelResult } from './generate.js';
export {
  MESSAGE_PART_TYPES,
  type ChannelContract,
  type MessagePartType,
  type NewChannelOptions,
  type ProviderType,
  type RealtimeChannelType,
} from './options.js';
export { DEFAULT_PUBLISHER_PREFIX } from './assumptions.js';
