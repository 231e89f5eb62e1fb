/**
 * The newest journey message this process knows was sent to each recipient of each channel, learned from verified
 * delivery reports only: a Twilio status callback whose context token (sealed by dispatch, version 2: with the send
 * time) opens with the callbacks keys and names the channel, and whose `To` Twilio signed with the rest of the body.
 * A keyword reply from that recipient on that channel is then attributed to that message without a Dataverse read.
 *
 * Correctness (docs/callbacks.md, "Replies without a read"): a read attributes a keyword to the replying contact's
 * newest activity on the channel. An entry stands for the newest message this process has heard of for the address:
 * a report of an older message never replaces a newer one (send times compared), so within one process the entry
 * differs from the read only while a newer activity has produced no status callback here yet (created, not sent yet,
 * or sent and not yet reported: the recipient has not got it, and a reply then answers the message known here). With
 * several replicas a newer message's callbacks may all have gone to another one: then this replica attributes the
 * reply to the older message it knows. {@link REPLIES_DEFAULTS}.`maxAgeMs` bounds that, and the reassigned number
 * (an entry is used only while its message is younger than that). Opt-outs and opt-ins never use it: they must reach
 * every contact holding the number now, which only a read knows.
 *
 * An entry is a row id, a contact id, a tile digest (the tile's fields come from the {@link TileCache}) and a time, its
 * strings copied flat: about 340 bytes with its key (measured: 341 bytes of heap per entry at 200,000), so the default
 * bound holds about 35 MB at most.
 */
import { TtlCache } from '../../cache.js';
import { intOption } from '../../options.js';

/** Recipients kept per process, and the longest a message stands for its recipient's replies (from its send). */
export const REPLIES_DEFAULTS = { max: 100_000, maxAgeMs: 24 * 3_600_000 } as const;

/** What is known of the newest message sent to a recipient. */
export interface SentMessage {
  /** The activity row (`msdyncrm_customerjourneycustomchannelactivityid`). */
  activityRowId: string;
  contactId: string;
  /** The tile's digest (`tileDigest`): its fields are in the tile cache. */
  tile: string;
  /** When dispatch sent it (ms since the epoch, dispatch's clock). */
  sentAt: number;
}

export class ReplyCache {
  readonly maxAgeMs: number;
  readonly #entries: TtlCache<string, SentMessage>;
  readonly #now: () => number;

  /** `max: 0` or `maxAgeMs: 0`: nothing is kept, every reply reads. A bad option throws a `TypeError` naming it. */
  constructor(options: { max?: number; maxAgeMs?: number; now?: (() => number) | undefined } = {}) {
    const component = 'createCallbacksServer';
    this.maxAgeMs = intOption(component, 'replyCache.maxAgeMs', options.maxAgeMs, REPLIES_DEFAULTS.maxAgeMs, 0);
    this.#now = options.now ?? Date.now;
    this.#entries = new TtlCache({
      max: intOption(component, 'replyCache.max', options.max, REPLIES_DEFAULTS.max, 0),
      ttlMs: this.maxAgeMs,
      now: this.#now,
      name: 'createCallbacksServer: replyCache',
    });
  }

  /**
   * Learns from a verified report that `message` was sent to `address` on `channel`: kept unless a message sent later
   * (or at the same time: the first one known stays) is known for the address, or it is already too old to be used.
   */
  learn(channel: string, address: string, message: SentMessage): void {
    const key = keyOf(channel, address);
    if (key === undefined || this.#now() - message.sentAt > this.maxAgeMs) return;
    const known = this.#entries.get(key);
    if (known !== undefined && known.activityRowId !== message.activityRowId && known.sentAt >= message.sentAt) return;
    this.#entries.set(flat(key), {
      activityRowId: flat(message.activityRowId),
      contactId: flat(message.contactId),
      tile: flat(message.tile),
      sentAt: message.sentAt,
    });
  }

  /** The newest message known to have been sent to `address` on `channel`, if sent within `maxAgeMs`. */
  newest(channel: string, address: string): SentMessage | undefined {
    const key = keyOf(channel, address);
    const known = key === undefined ? undefined : this.#entries.get(key);
    return known === undefined || this.#now() - known.sentAt > this.maxAgeMs ? undefined : known;
  }

  /** Recipients held, expired ones not yet met included. */
  get size(): number {
    return this.#entries.size;
  }
}

/** The key of a recipient of a channel; undefined for an empty address. */
function keyOf(channel: string, address: string): string | undefined {
  const trimmed = address.trim();
  return trimmed === '' ? undefined : `${channel}\u0000${trimmed}`;
}

/**
 * A copy of `s` in one piece: the ids a token opens to are slices and concatenations that keep the token's whole
 * decoded text alive (about 900 bytes per entry instead of 340, measured).
 */
function flat(s: string): string {
  return Buffer.from(s, 'utf8').toString('utf8');
}
