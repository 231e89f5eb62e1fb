/**
 * The journey tiles the callbacks service has met, by digest (src/correlation's `tileDigest`): what a link code of
 * version 3 names instead of the tile's fields. Content-addressed, so an entry is never stale: a digest stands for
 * one set of fields for ever (a new journey iteration is another digest). Filled from every context the service
 * holds anyway: a status callback's token, an activity row it read (a click whose tile it did not know yet, a contract
 * report, a keyword's activity). Per process and bounded; a miss costs the read a click always made before. A digest
 * is 48 bits: two tiles of an org share one with a chance of about n²/2^49 (10,000 tiles: 2 in 10 million); when two
 * tiles met here do, the digest is marked ambiguous and its clicks read their row, so a collision never records a
 * click against the wrong journey.
 */
import { TtlCache } from '../../cache.js';
import { tileDigest, type MarketingContext, type TileFields } from '../../correlation/index.js';

/** Tiles kept per process, and for how long (a tile is 5 short strings; the bound only limits a flood of tiles). */
export const TILES_DEFAULTS = { max: 10_000, ttlMs: 24 * 3_600_000 } as const;

export class TileCache {
  /** By digest: the tile's fields, or `ambiguous` when two tiles with this digest were met. */
  readonly #tiles: TtlCache<string, TileFields | 'ambiguous'>;

  readonly #digest: (tile: TileFields) => string;

  /** `digest`: how a tile is named (tests make it collide). @defaultValue src/correlation's `tileDigest` */
  constructor(
    options: {
      max?: number;
      ttlMs?: number;
      now?: (() => number) | undefined;
      digest?: (tile: TileFields) => string;
    } = {},
  ) {
    this.#digest = options.digest ?? tileDigest;
    this.#tiles = new TtlCache({
      max: options.max ?? TILES_DEFAULTS.max,
      ttlMs: options.ttlMs ?? TILES_DEFAULTS.ttlMs,
      now: options.now,
      name: 'createCallbacksServer: tiles',
    });
  }

  /** Keeps the tile of a context the service holds (from a verified token or a row Dataverse returned); its digest. */
  remember(context: MarketingContext): string {
    const { activityId, journeyId, iterationId, entityType, entityId } = context;
    const tile = { activityId, journeyId, iterationId, entityType, entityId };
    const digest = this.#digest(tile);
    const known = this.#tiles.get(digest);
    if (known === undefined) this.#tiles.set(digest, tile);
    else if (known !== 'ambiguous' && !sameTile(known, tile)) this.#tiles.set(digest, 'ambiguous');
    return digest;
  }

  /**
   * The context of a row of the tile `digest` names, with its row id and contact; undefined when the tile is not
   * known here.
   */
  context(digest: string, activityRowId: string, contactId: string): MarketingContext | undefined {
    const tile = this.#tiles.get(digest);
    return tile === undefined || tile === 'ambiguous'
      ? undefined
      : { kind: 'marketing', ...tile, activityRowId, contactId };
  }
}

function sameTile(a: TileFields, b: TileFields): boolean {
  return (
    a.activityId === b.activityId &&
    a.journeyId === b.journeyId &&
    a.iterationId === b.iterationId &&
    a.entityType === b.entityType &&
    a.entityId === b.entityId
  );
}
