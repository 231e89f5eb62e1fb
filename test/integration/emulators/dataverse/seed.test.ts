import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { isEmulatorError } from '../../../../src/emulators/errors.js';
import type { DataverseEmulator, SeedDocument } from '../../../../src/emulators/dataverse/index.js';
import { IDS, SEED_FILE, smallSeed, startEmulator, TILE_XML } from './helpers.js';

describe('Dataverse emulator: seed', () => {
  let emulator: DataverseEmulator | undefined;
  afterEach(async () => {
    await emulator?.close();
    emulator = undefined;
  });

  it('loads config/dataverse-seed.json: contacts, the custom message table, the tile, a journey that runs', async () => {
    emulator = await startEmulator({ seed: SEED_FILE });
    const stats = (await (await fetch(`${emulator.url}/_emulator/stats`)).json()) as { rows: Record<string, number> };
    assert.ok(stats.rows['contacts']! >= 200);
    assert.ok(stats.rows['sample_specialmessages']! >= 1);
    assert.equal(stats.rows['msdyn_channelmessageparts'], 1);
    const seed = JSON.parse(readFileSync(SEED_FILE, 'utf8')) as SeedDocument;
    const journeyId = seed.journeys![0]!.journeyId;
    const run = (await (
      await fetch(`${emulator.url}/_emulator/journeys/${journeyId}/run`, {
        method: 'POST',
        body: JSON.stringify({ count: 100 }),
      })
    ).json()) as {
      created: unknown[];
      skipped: unknown[];
    };
    assert.equal(run.created.length + run.skipped.length, 100);
    assert.ok(run.skipped.length > 0 && run.created.length > 0, 'some sample contacts opted out');
  });

  const broken: Array<[string, (seed: SeedDocument) => void, RegExp]> = [
    [
      'a tile for a table that is not declared',
      (s) => (s.tiles = [{ xml: TILE_XML.replace(/sample_specialmessage</g, 'nosuch_table<') }]),
      /tiles\[0\]: the tile's EntityType 'nosuch_table' is not a table/,
    ],
    [
      'a compliance field that is not a boolean of contact',
      (s) => (s.tiles = [{ xml: TILE_XML.replace('donotphone', 'firstname') }]),
      /ComplianceField 'firstname' must be a boolean column of contact/,
    ],
    [
      'rows of an unknown entity set',
      (s) => (s.rows!['widgets'] = [{}]),
      /rows\.widgets: no table has the entity set name 'widgets'/,
    ],
    [
      'a row with an unknown column',
      (s) => (s.rows!['contacts'] = [{ shoesize: 42 }]),
      /rows\.contacts\[0\]: .*'shoesize' does not exist/,
    ],
    [
      'a journey whose iteration is missing',
      (s) => (s.journeys![0]!.iterationId = IDS.message),
      /journeys\[0\]: no msdyncrm_customerjourneyiterations row/,
    ],
    [
      'a tile XML with two custom response types',
      (s) => (s.tiles = [{ xml: TILE_XML.replace('id="sent"', 'id="sent" custom="True"') }]),
      /only one response type may have custom="True"/,
    ],
  ];
  for (const [name, breakIt, message] of broken) {
    it(`refuses a seed with ${name}`, async () => {
      const seed = smallSeed(1);
      breakIt(seed);
      await assert.rejects(
        startEmulator({ seed }),
        (err: unknown) => isEmulatorError(err) && message.test(err.message),
      );
    });
  }
});
