/**
 * The seed: organization, extra contact columns, custom message tables, channel tiles (XML files relative to the
 * seed, or inline), rows per entity set (Web API bodies, `@odata.bind` allowed), and the journeys the
 * `/_emulator/journeys/{id}/run` endpoint can run. Problems are reported with the file and key.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { EmulatorError, isEmulatorError } from '../errors.js';
import { builtInTables, defineTable, type ColumnSpec, type TableSpec } from './metadata.js';
import { isFault } from './faults.js';
import { readPayload } from './payload.js';
import type { OrganizationService } from './service.js';
import { applyImport, planImport, readSolution } from './solution-import/index.js';
import { readSeedTile, SeedTileError, type SeedTile } from './tile.js';

export interface SeedJourney {
  /** `msdyncrm_customerjourneyid` of a journey row in the seed. */
  journeyId: string;
  /** `msdyncrm_customerjourneyiterationid` of an iteration row in the seed. */
  iterationId: string;
  /** The tile's EntityType (custom message table logical name). */
  entityType: string;
  /** The custom message row the activities point to. */
  entityId: string;
  /** `msdyncrm_name` of the activities. @defaultValue the journey name */
  activityName?: string;
}

export interface SeedDocument {
  organization?: { id?: string; name?: string; businessUnitId?: string };
  contactColumns?: Record<string, ColumnSpec>;
  tables?: TableSpec[];
  /** Tile XML: a path relative to the seed file, or `{ "xml": "<LibraryTile>…" }`. */
  tiles?: Array<string | { xml: string }>;
  /**
   * Packed solutions (zip files, paths relative to the seed file), imported as `ImportSolution` imports them (tables,
   * tiles, channel definitions, custom APIs …) before the rows are inserted.
   */
  solutions?: string[];
  /** Rows by entity set name, in insertion order. */
  rows?: Record<string, Array<Record<string, unknown>>>;
  journeys?: SeedJourney[];
}

export interface LoadedSeed {
  document: SeedDocument;
  /** Folder that tile paths are relative to. */
  baseDir: string;
  source: string;
}

function bad(source: string, key: string, message: string): EmulatorError {
  return new EmulatorError('EmulatorConfigInvalid', `${source}: ${key}: ${message}`, { context: { source, key } });
}

export function readSeedFile(file: string): LoadedSeed {
  let document: unknown;
  try {
    document = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw bad(file, '(root)', `expected a readable JSON file (${(err as Error).message})`);
  }
  if (typeof document !== 'object' || document === null || Array.isArray(document))
    throw bad(file, '(root)', 'expected a JSON object');
  return { document: document as SeedDocument, baseDir: path.dirname(path.resolve(file)), source: file };
}

/** Organization fields with defaults. */
export function seedOrganization(doc: SeedDocument): { id: string; name: string; businessUnitId: string } {
  return {
    id: doc.organization?.id ?? '00000000-0000-0000-0000-00000000c0de',
    name: doc.organization?.name ?? 'emulator',
    businessUnitId: doc.organization?.businessUnitId ?? '00000000-0000-0000-0000-0000000000b0',
  };
}

/** Declares the tables (built-in and from the seed) and reads the tiles. Runs before any row is inserted. */
export function applySchema(service: OrganizationService, seed: LoadedSeed | undefined): void {
  const doc = seed?.document ?? {};
  const source = seed?.source ?? 'seed';
  try {
    for (const spec of builtInTables(doc.contactColumns ?? {})) service.catalog.add(defineTable(spec));
    (doc.tables ?? []).forEach((spec, i) => {
      if (
        !spec ||
        typeof spec.logicalName !== 'string' ||
        typeof spec.entitySetName !== 'string' ||
        typeof spec.columns !== 'object'
      ) {
        throw bad(
          source,
          `tables[${i}]`,
          'expected { logicalName, entitySetName, primaryName?, columns: { name: "type[:maxLength]" } }',
        );
      }
      service.catalog.add(defineTable(spec));
    });
  } catch (err) {
    if (isEmulatorError(err)) throw err;
    throw bad(source, 'tables', (err as Error).message);
  }
  (doc.tiles ?? []).forEach((entry, i) => {
    let tile: SeedTile;
    const where = typeof entry === 'string' ? entry : `tiles[${i}]`;
    try {
      const xml =
        typeof entry === 'string' ? readFileSync(path.resolve(seed?.baseDir ?? '.', entry), 'utf8') : entry.xml;
      tile = readSeedTile(xml, where);
    } catch (err) {
      throw bad(
        source,
        `tiles[${i}]`,
        err instanceof SeedTileError ? err.message : `cannot read ${where}: ${(err as Error).message}`,
      );
    }
    const table = service.catalog.byLogicalName(tile.entityType);
    if (!table)
      throw bad(
        source,
        `tiles[${i}]`,
        `the tile's EntityType '${tile.entityType}' is not a table of the seed (declare it under "tables")`,
      );
    if (table.entitySetName !== tile.entitySetName) {
      throw bad(
        source,
        `tiles[${i}]`,
        `the tile's EntitySetName '${tile.entitySetName}' differs from the table's '${table.entitySetName}'`,
      );
    }
    const compliance = service.catalog.byLogicalName('contact')!.columns.get(tile.complianceField);
    if (compliance?.type !== 'bool') {
      throw bad(
        source,
        `tiles[${i}]`,
        `the tile's ComplianceField '${tile.complianceField}' must be a boolean column of contact`,
      );
    }
    service.tiles.set(tile.entityType, tile);
  });
}

/** Imports the seed's solutions, inserts its rows and checks its journeys. */
export function applyRows(service: OrganizationService, seed: LoadedSeed | undefined, userId: string): void {
  const doc = seed?.document ?? {};
  const source = seed?.source ?? 'seed';
  (doc.solutions ?? []).forEach((file, i) => {
    try {
      const zip = new Uint8Array(readFileSync(path.resolve(seed?.baseDir ?? '.', file)));
      applyImport(service, planImport(service, readSolution(zip)), userId);
    } catch (err) {
      throw bad(source, `solutions[${i}]`, `${file}: ${(err as Error).message}`);
    }
  });
  for (const [set, rows] of Object.entries(doc.rows ?? {})) {
    const def = service.catalog.byEntitySet(set);
    if (!def) throw bad(source, `rows.${set}`, `no table has the entity set name '${set}'`);
    if (!Array.isArray(rows)) throw bad(source, `rows.${set}`, 'expected an array of rows');
    rows.forEach((body, i) => {
      try {
        service.insertRow(def, readPayload({ catalog: service.catalog, store: service.store }, def, body), userId);
      } catch (err) {
        throw bad(source, `rows.${set}[${i}]`, isFault(err) ? err.message : (err as Error).message);
      }
    });
  }
  (doc.journeys ?? []).forEach((j, i) => {
    const check = (ok: boolean, message: string): void => {
      if (!ok) throw bad(source, `journeys[${i}]`, message);
    };
    check(
      !!service.store.get(service.table('msdyncrm_customerjourney'), String(j.journeyId).toLowerCase()),
      `no msdyncrm_customerjourneys row has id '${j.journeyId}'`,
    );
    check(
      !!service.store.get(service.table('msdyncrm_customerjourneyiteration'), String(j.iterationId).toLowerCase()),
      `no msdyncrm_customerjourneyiterations row has id '${j.iterationId}'`,
    );
    const table = service.catalog.byLogicalName(j.entityType);
    // A journey on a table that a solution import brings later is checked when it runs (journeys.ts).
    if (!table && !service.tiles.has(j.entityType)) return;
    check(service.tiles.has(j.entityType), `no tile declares EntityType '${j.entityType}'`);
    check(
      !!table && !!service.store.get(table, String(j.entityId).toLowerCase()),
      `no ${j.entityType} row has id '${j.entityId}'`,
    );
  });
}
