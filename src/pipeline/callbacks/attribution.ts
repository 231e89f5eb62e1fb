/**
 * Attribution of an inbound reply, with no state of the relay's own: the sender's address → the contacts whose
 * address field (the channel's `addressField`, e.g. `mobilephone`) hold it → (for a keyword, when exactly one does)
 * that contact's most recent Custom Channel Activity of the channel's message table (newest `createdon` first). When several channels share one tile
 * (`channelField`), the activity's message record must name this channel; the newest few activities are checked.
 */
import type { Channel } from '../../channels/index.js';
import type { MarketingContext } from '../messages.js';
import type { CallbackDirectory, FoundContact } from '../ports.js';
import { activityContext } from './activity.js';

/** Activities read when a tile is shared by several channels. */
const SHARED_TILE_LOOKBACK = 10;

/**
 * Every contact whose address field (the channel's `addressField`) holds `address`, with `columns` (the compliance
 * field) read. Several contacts may share a number (a family phone): an opt-out or opt-in applies to all of them, a
 * keyword is attributed only when exactly one holds it (a reply must not land on the wrong contact's activity).
 */
export async function findHolders(
  directory: CallbackDirectory,
  channel: Channel,
  address: string,
  columns: readonly string[],
  signal?: AbortSignal,
): Promise<FoundContact[]> {
  return directory.contactsByAddress(channel.addressField, address, columns, signal);
}

/** The context of the contact's most recent activity on the channel; undefined when there is none. */
export async function latestActivity(
  directory: CallbackDirectory,
  channel: Channel,
  contactId: string,
  signal?: AbortSignal,
): Promise<MarketingContext | undefined> {
  const tile = channel.tile;
  if (tile === undefined) return undefined;
  const shared = channel.channelField;
  const activities = await directory.latestActivities(
    contactId,
    tile.entityType,
    shared === undefined ? 1 : SHARED_TILE_LOOKBACK,
    signal,
  );
  for (const activity of activities) {
    const context = activityContext(activity);
    if (context === undefined) continue;
    if (shared === undefined) return context;
    const record = await directory.messageRecord(tile.entitySetName, context.entityId, [shared], signal);
    if (record?.[shared] === channel.name) return context;
  }
  return undefined;
}
