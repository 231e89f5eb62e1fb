/**
 * Attribution of an inbound reply, with no state of the relay's own: the sender's address → the contact whose
 * address field (the channel's `addressField`, e.g. `mobilephone`) holds it → that contact's most recent Custom
 * Channel Activity of the channel's message table (newest `createdon` first). When several channels share one tile
 * (`channelField`), the activity's message record must name this channel; the newest few activities are checked.
 */
import type { Channel } from '../../channels/index.js';
import type { MarketingContext } from '../messages.js';
import type { Row } from '../ports.js';
import { contextFromActivityRow } from './activity.js';
import type { CallbackDirectory } from './directory.js';

export type SenderLookup =
  | { kind: 'contact'; contactId: string; row: Row }
  /** No contact holds the address. */
  | { kind: 'unknown' }
  /** Several contacts hold it: nothing is attributed (a reply must not change the wrong contact). */
  | { kind: 'ambiguous' };

/** Activities read when a tile is shared by several channels. */
const SHARED_TILE_LOOKBACK = 10;

/** The contact behind an address on a channel, with `columns` (the compliance field) read. */
export async function findSender(directory: CallbackDirectory, channel: Channel, address: string, columns: readonly string[], signal?: AbortSignal): Promise<SenderLookup> {
  const found = await directory.contactsByAddress(channel.addressField, address, columns, signal);
  if (found.length === 0) return { kind: 'unknown' };
  if (found.length > 1) return { kind: 'ambiguous' };
  const [only] = found as [(typeof found)[number]];
  return { kind: 'contact', contactId: only.contactId, row: only.row };
}

/** The context of the contact's most recent activity on the channel; undefined when there is none. */
export async function latestActivity(directory: CallbackDirectory, channel: Channel, contactId: string, signal?: AbortSignal): Promise<MarketingContext | undefined> {
  const tile = channel.tile;
  if (tile === undefined) return undefined;
  const shared = channel.channelField;
  const rows = await directory.latestActivities(contactId, tile.entityType, shared === undefined ? 1 : SHARED_TILE_LOOKBACK, signal);
  for (const row of rows) {
    const context = contextFromActivityRow(row);
    if (context === undefined) continue;
    if (shared === undefined) return context;
    const record = await directory.messageRecord(tile.entitySetName, context.entityId, [shared], signal);
    if (record?.[shared] === channel.name) return context;
  }
  return undefined;
}
