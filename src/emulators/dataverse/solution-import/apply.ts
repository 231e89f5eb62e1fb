/**
 * What an imported solution becomes in the emulated org. `planImport` checks the components against each other and
 * against the org (nothing changes yet), `applyImport` then writes them: tables and columns into the catalog (rows
 * creatable and queryable through the Web API), web resources as `webresourceset` rows (a tile web resource becomes
 * a tile the org knows), channel definitions, message parts, custom APIs with their request parameters and response
 * properties, publisher and solution rows. Rows are written in one transaction; a second import of the same solution
 * updates them. See assumptions.ts `SOLUTION_IMPORT` for the readings taken.
 */
import { randomUUID } from 'node:crypto';
import { SOLUTION_IMPORT } from '../assumptions.js';
import { defineTable, type Column, type ColumnSpec, type TableDef } from '../metadata.js';
import { nowIsoSeconds } from '../payload.js';
import type { OrganizationService } from '../service.js';
import { Tx, type LookupValue, type Row } from '../store.js';
import { readSeedTile, SeedTileError, type SeedTile } from '../tile.js';
import { planChannels } from './channels.js';
import { planCustomApis } from './custom-apis.js';
import { tableIn, type ImportPlan } from './plan.js';
import { SolutionImportError, type SolutionContent, type SolutionTable } from './read.js';
import { FILE } from './values.js';

export type { ImportedComponent, ImportPlan } from './plan.js';

function columnSpec(column: SolutionTable['columns'][number]): Column {
  const out: Column = { name: column.name, type: column.type };
  if (column.maxLength !== undefined) out.maxLength = column.maxLength;
  if (column.required) out.required = true;
  return out;
}

/** The tables after the import: new ones defined, existing ones with the columns and lookups the solution adds. */
function planTables(service: OrganizationService, content: SolutionContent): TableDef[] {
  const specs = new Map<
    string,
    { entitySetName: string; primaryName?: string; columns: Record<string, ColumnSpec>; indexed: string[] }
  >();
  const existingSet = (logical: string): string | undefined => service.catalog.byLogicalName(logical)?.entitySetName;
  const specOf = (logical: string, where: string): NonNullable<ReturnType<typeof specs.get>> => {
    let spec = specs.get(logical);
    if (spec) return spec;
    const def = service.catalog.byLogicalName(logical);
    if (!def)
      throw new SolutionImportError(
        FILE,
        where,
        `the table '${logical}' is neither in the solution nor in the organization`,
      );
    const columns: Record<string, ColumnSpec> = {};
    for (const col of def.columns.values()) if (col.name !== def.primaryKey) columns[col.name] = { ...col };
    spec = { entitySetName: def.entitySetName, columns, indexed: [...def.indexed] };
    if (def.primaryName !== undefined) spec.primaryName = def.primaryName;
    specs.set(logical, spec);
    return spec;
  };
  for (const table of content.tables) {
    const where = `<Entity> '${table.logicalName}'`;
    const setOwner = service.catalog.byEntitySet(table.entitySetName);
    if (setOwner && setOwner.logicalName !== table.logicalName)
      throw new SolutionImportError(
        FILE,
        `${where}/<EntitySetName>`,
        `'${table.entitySetName}' is already the entity set of '${setOwner.logicalName}'`,
      );
    const known = existingSet(table.logicalName);
    if (known !== undefined && known !== table.entitySetName)
      throw new SolutionImportError(
        FILE,
        `${where}/<EntitySetName>`,
        `'${table.logicalName}' exists with the entity set '${known}', not '${table.entitySetName}'`,
      );
    if (known === undefined)
      specs.set(table.logicalName, {
        entitySetName: table.entitySetName,
        primaryName: table.primaryName!,
        columns: {},
        indexed: [],
      });
    const spec = specOf(table.logicalName, where);
    for (const column of table.columns) {
      const previous = spec.columns[column.name];
      const previousType = typeof previous === 'string' ? previous.split(':')[0] : previous?.type;
      if (previous !== undefined && previousType !== column.type)
        throw new SolutionImportError(
          FILE,
          `${where}/<attribute> '${column.name}'`,
          `the column exists as ${previousType}; a solution cannot change it to ${column.type}`,
        );
      spec.columns[column.name] =
        previous !== undefined && typeof previous !== 'string' && previous.targets
          ? { ...columnSpec(column), targets: previous.targets }
          : columnSpec(column);
    }
  }
  for (const rel of content.relationships) {
    const where = `<EntityRelationship Name="${rel.name}">`;
    if (!specs.has(rel.referencedTable) && !service.catalog.byLogicalName(rel.referencedTable))
      throw new SolutionImportError(
        FILE,
        `${where}/<ReferencedEntityName>`,
        `the table '${rel.referencedTable}' is neither in the solution nor in the organization`,
      );
    const spec = specOf(rel.referencingTable, `${where}/<ReferencingEntityName>`);
    const previous = spec.columns[rel.column];
    const column = typeof previous === 'string' ? undefined : previous;
    if (previous !== undefined && (column?.type ?? String(previous).split(':')[0]) !== 'lookup')
      throw new SolutionImportError(
        FILE,
        `${where}/<ReferencingAttributeName>`,
        `'${rel.column}' of '${rel.referencingTable}' is not a lookup`,
      );
    spec.columns[rel.column] = {
      name: rel.column,
      type: 'lookup',
      ...(column?.required ? { required: true } : {}),
      targets: { ...(column?.targets ?? {}), [rel.navigation]: rel.referencedTable },
    };
  }
  return [...specs].map(([logicalName, spec]) => {
    const def = defineTable({ logicalName, ...spec });
    return def;
  });
}

function planWebResources(
  service: OrganizationService,
  content: SolutionContent,
  tables: TableDef[],
  plan: ImportPlan,
): void {
  const def = service.table('webresource');
  for (const resource of content.webResources) {
    const where = `<WebResource> '${resource.name}'`;
    const sameName = service.store.findIndexed(def, 'name', resource.name)?.[0];
    if (sameName && sameName['webresourceid'] !== resource.id)
      throw new SolutionImportError(
        FILE,
        `${where}/<WebResourceId>`,
        `a web resource named '${resource.name}' exists with the id ${String(sameName['webresourceid'])}`,
      );
    plan.rows.push({
      table: 'webresource',
      id: resource.id,
      values: {
        name: resource.name,
        displayname: resource.displayName,
        webresourcetype: resource.type,
        content: Buffer.from(resource.content).toString('base64'),
      },
    });
    plan.components.push({ kind: 'webResource', name: resource.name, created: !service.store.get(def, resource.id) });
    if (!resource.name.endsWith(SOLUTION_IMPORT.tileSuffix)) continue;
    let tile: SeedTile;
    try {
      tile = readSeedTile(new TextDecoder().decode(resource.content), resource.file);
    } catch (err) {
      if (err instanceof SeedTileError)
        throw new SolutionImportError(resource.file, '<LibraryTile>', err.message.replace(`${resource.file}: `, ''));
      throw err;
    }
    const table = tableIn(service, tables, tile.entityType);
    if (!table)
      throw new SolutionImportError(
        resource.file,
        '<ChannelProperties>/<EntityType>',
        `'${tile.entityType}' is neither a table of the solution nor of the organization`,
      );
    if (table.entitySetName !== tile.entitySetName)
      throw new SolutionImportError(
        resource.file,
        '<ChannelProperties>/<EntitySetName>',
        `'${tile.entitySetName}' is not the entity set of '${tile.entityType}' ('${table.entitySetName}')`,
      );
    const contact = tableIn(service, tables, 'contact')!;
    if (contact.columns.get(tile.complianceField)?.type !== 'bool')
      throw new SolutionImportError(
        resource.file,
        '<ChannelProperties>/<ComplianceField>',
        `'${tile.complianceField}' is not a boolean column of contact`,
      );
    plan.tiles.push(tile);
  }
}

/** Checks a read solution against itself and the org. Changes nothing. */
export function planImport(service: OrganizationService, content: SolutionContent): ImportPlan {
  const tables = planTables(service, content);
  const plan: ImportPlan = { content, tables, rows: [], tiles: [], components: [] };
  for (const table of content.tables)
    plan.components.push({
      kind: 'entity',
      name: table.logicalName,
      created: !service.catalog.byLogicalName(table.logicalName),
    });
  planWebResources(service, content, tables, plan);
  planCustomApis(service, content, plan);
  planChannels(service, content, tables, plan);
  return plan;
}

function upsert(service: OrganizationService, def: TableDef, id: string, values: Row, userId: string, tx: Tx): Row {
  const existing = service.store.get(def, id);
  if (!existing) return service.insertRow(def, { ...values, [def.primaryKey]: id }, userId, tx);
  const row = { ...existing, ...values, modifiedon: nowIsoSeconds(), versionnumber: service.store.nextVersion() };
  service.store.replace(def, row, tx);
  return row;
}

/** Writes a checked plan: rows in one transaction, then the tables and the tiles. */
export function applyImport(service: OrganizationService, plan: ImportPlan, userId: string): void {
  const { content } = plan;
  const tx = new Tx();
  try {
    const publishers = service.table('publisher');
    const publisher =
      service.store.findIndexed(publishers, 'uniquename', content.publisher.uniqueName)?.[0]?.['publisherid'] ??
      randomUUID();
    upsert(
      service,
      publishers,
      publisher as string,
      {
        uniquename: content.publisher.uniqueName,
        friendlyname: content.publisher.friendlyName,
        customizationprefix: content.publisher.prefix,
        ...(content.publisher.optionValuePrefix === undefined
          ? {}
          : { customizationoptionvalueprefix: content.publisher.optionValuePrefix }),
      },
      userId,
      tx,
    );
    const solutions = service.table('solution');
    const solution =
      service.store.findIndexed(solutions, 'uniquename', content.uniqueName)?.[0]?.['solutionid'] ?? randomUUID();
    upsert(
      service,
      solutions,
      solution as string,
      {
        uniquename: content.uniqueName,
        friendlyname: content.friendlyName,
        version: content.version,
        ismanaged: content.managed,
        installedon: nowIsoSeconds(),
        publisherid: { id: publisher as string, table: 'publisher' } satisfies LookupValue,
      },
      userId,
      tx,
    );
    for (const write of plan.rows) upsert(service, service.table(write.table), write.id, write.values, userId, tx);
  } catch (err) {
    tx.rollback();
    throw err;
  }
  tx.commit();
  for (const def of plan.tables) {
    if (service.catalog.byLogicalName(def.logicalName)) service.catalog.replace(def);
    else service.catalog.add(def);
  }
  for (const tile of plan.tiles) service.tiles.set(tile.entityType, tile);
}
