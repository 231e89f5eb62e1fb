import type { Channel } from '../../src/channels/index.js';
import type { ChannelLookup } from '../../src/pipeline/index.js';

/** The port every stage looks channels up through, over a fixed list (what a `ChannelRegistry` answers). */
export function channelLookup(channels: readonly Channel[]): ChannelLookup {
  return { byName: (name) => channels.find((c) => c.name === name), all: () => channels };
}
