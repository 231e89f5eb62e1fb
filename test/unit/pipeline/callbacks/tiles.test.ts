import assert from 'node:assert/strict';
import { tileDigest } from '../../../../src/correlation/index.js';
import { TileCache } from '../../../../src/pipeline/callbacks/tiles.js';
import { context } from './fakes.js';

describe('callbacks: the tiles met', () => {
  it('gives the context of any row of a tile met, with the row and contact asked; nothing for a tile not met', () => {
    const tiles = new TileCache();
    const digest = tileDigest(context(1));
    assert.equal(tiles.context(digest, 'row', 'contact'), undefined);
    tiles.remember(context(1));
    assert.deepEqual(tiles.context(digest, 'row', 'contact'), {
      ...context(1),
      activityRowId: 'row',
      contactId: 'contact',
    });
    assert.equal(tiles.context(tileDigest(context(2)), 'row', 'contact'), undefined);
  });

  it('forgets a tile after its time to live', () => {
    let t = 0;
    const tiles = new TileCache({ ttlMs: 1000, now: () => t });
    tiles.remember(context(1));
    t = 999;
    assert.ok(tiles.context(tileDigest(context(1)), 'r', 'c'));
    t = 1000;
    assert.equal(tiles.context(tileDigest(context(1)), 'r', 'c'), undefined);
  });

  it('two tiles with one digest (a collision): neither is given, so their clicks read their rows', () => {
    const tiles = new TileCache({ digest: () => 'same' });
    tiles.remember(context(1));
    tiles.remember({ ...context(1) });
    assert.ok(tiles.context('same', 'r', 'c'), 'the same tile again is no collision');
    tiles.remember(context(2));
    assert.equal(tiles.context('same', 'r', 'c'), undefined);
    tiles.remember(context(1));
    assert.equal(tiles.context('same', 'r', 'c'), undefined, 'stays ambiguous');
  });
});
