/**
 * The journey tiles the callbacks service has met, by digest (src/correlation's `tileDigest`): what a link code of
 * version 3 names instead of the tile's fields. Content-addressed, so an entry is never stale: a digest stands for
 * one set of fields for ever (a new journey iteration is another digest). Filled from every context the service
 * holds anyway: a status callback's token, an activity row it read (a click whose tile it did not know yet, a contract
 * report, a keyword's activity). Per process and bounded; a miss costs the read a click always made before.
 */
import { TtlCache } from '../../cache.js';
import { tileDigest, type MarketingContext, type TileFields } from '../../correlation/index.js';

/** Tiles kept per process, and for how long (a tile is 5 short strings; the bound only limits a flood of tiles). */
export const TILES_DEFAULTS = { max: 10_000, ttlMs: 24 * 3_600_000 } as const;

export class TileCache {
  readonly #tiles: TtlCache<string, TileFields>;

  constructor(options: { max?: number; ttlMs?: number; now?: (() => number) | undefined } = {}) {
    this.#tiles = new TtlCache({
      max: options.max ?? TILES_DEFAULTS.max,
      ttlMs: options.ttlMs ?? TILES_DEFAULTS.ttlMs,
      now: options.now,
      name: 'createCallbacksServer: tiles',
    });
  }

  /** Keeps the tile of a context the service holds (from a verified token or a row Dataverse returned). */
  remember(context: MarketingContext): void {
    const { activityId, journeyId, iterationId, entityType, entityId } = context;
    const tile = { activityId, journeyId, iterationId, entityType, entityId };
    this.#tiles.set(tileDigest(tile), tile);
  }

  /**
   * The context of a row of the tile `digest` names, with its row id and contact; undefined when the tile is not
   * known here.
   */
  context(digest: string, activityRowId: string, contactId: string): MarketingContext | undefined {
    const tile = this.#tiles.get(digest);
    return tile === undefined ? undefined : { kind: 'marketing', ...tile, activityRowId, contactId };
  }
}
