/**
 * What an imported solution becomes in the emulated org. `planImport` checks the components against each other and
 * against the org (nothing changes yet), `applyImport` then writes them: tables and columns into the catalog (rows
 * creatable and queryable through the Web API), web resources as `webresourceset` rows (a tile web resource becomes
 * a tile the org knows), channel definitions, message parts, custom APIs with their request parameters and response
 * properties, publisher and solution rows. Rows are written in one transaction; a second import of the same solution
 * updates them. See assumptions.ts `SOLUTION_IMPORT` for the readings taken.
 */
import { randomUUID } from 'node:crypto';
import { SOLUTION_IMPORT, outboundApiName, CUSTOM_API_STEP_TYPES } from '../assumptions.js';
import { defineTable, type Column, type ColumnSpec, type TableDef } from '../metadata.js';
import { nowIsoSeconds } from '../payload.js';
import type { OrganizationService } from '../service.js';
import { Tx, type LookupValue, type Row } from '../store.js';
import { readSeedTile, SeedTileError, type SeedTile } from '../tile.js';
import {
  readGuid,
  SolutionImportError,
  type SolutionContent,
  type SolutionRecord,
  type SolutionTable,
} from './read.js';

/** One component in the import log. */
export interface ImportedComponent {
  kind: 'entity' | 'webResource' | 'channelDefinition' | 'messagePart' | 'customApi';
  name: string;
  created: boolean;
}

interface RowWrite {
  table: string;
  id: string;
  values: Row;
}

/** What `applyImport` writes, all checked. */
export interface ImportPlan {
  content: SolutionContent;
  tables: TableDef[];
  rows: RowWrite[];
  tiles: SeedTile[];
  components: ImportedComponent[];
}

const FILE = 'customizations.xml';

const CUSTOM_API_COLUMNS: Record<string, 'string' | 'int' | 'bool' | 'ignored'> = {
  allowedcustomprocessingsteptype: 'int',
  bindingtype: 'int',
  boundentitylogicalname: 'string',
  description: 'string',
  displayname: 'string',
  executeprivilegename: 'string',
  isfunction: 'bool',
  isprivate: 'bool',
  name: 'string',
  workflowsdkstepenabled: 'bool',
  iscustomizable: 'ignored',
  plugintypeid: 'ignored',
};
const PARAMETER_COLUMNS: Record<string, 'string' | 'int' | 'bool' | 'ignored'> = {
  description: 'string',
  displayname: 'string',
  isoptional: 'bool',
  logicalentityname: 'string',
  name: 'string',
  type: 'int',
  iscustomizable: 'ignored',
};
const { isoptional: _notForResponses, ...RESPONSE_COLUMNS } = PARAMETER_COLUMNS;
const IMMUTABLE = {
  customapi: [
    'allowedcustomprocessingsteptype',
    'bindingtype',
    'boundentitylogicalname',
    'isfunction',
    'workflowsdkstepenabled',
  ],
  customapirequestparameter: ['isoptional', 'logicalentityname', 'type'],
  customapiresponseproperty: ['logicalentityname', 'type'],
} as const;

function readValue(
  kind: 'string' | 'int' | 'bool',
  raw: string,
  file: string,
  element: string,
): string | number | boolean | null {
  if (raw === '') return null;
  if (kind === 'string') return raw;
  if (kind === 'bool') {
    if (raw === '1' || raw.toLowerCase() === 'true') return true;
    if (raw === '0' || raw.toLowerCase() === 'false') return false;
    throw new SolutionImportError(file, element, `'${raw}' is not a boolean (0 or 1)`);
  }
  if (!/^-?\d+$/.test(raw)) throw new SolutionImportError(file, element, `'${raw}' is not a whole number`);
  return Number(raw);
}

function readApiValues(
  values: Record<string, string>,
  columns: Record<string, 'string' | 'int' | 'bool' | 'ignored'>,
  file: string,
  where: string,
): Row {
  const row: Row = {};
  for (const [key, raw] of Object.entries(values)) {
    const kind = columns[key];
    if (kind === undefined)
      throw new SolutionImportError(
        file,
        `${where}/<${key}>`,
        `is not an element of this file (elements: ${Object.keys(columns).join(', ')})`,
      );
    if (kind === 'ignored') continue;
    const value = readValue(kind, raw, file, `${where}/<${key}>`);
    if (value !== null) row[key] = value;
  }
  return row;
}

/** Converts a record of customizations.xml to column values of its table, refusing what the table does not have. */
function readRecordValues(def: TableDef, record: SolutionRecord, guidColumns: readonly string[]): Row {
  const row: Row = {};
  for (const [key, raw] of Object.entries(record.values)) {
    const element = `${record.where}/<${key}>`;
    const column = def.columns.get(key);
    if (!column || column.readOnly || key === def.primaryKey)
      throw new SolutionImportError(
        FILE,
        element,
        `'${def.logicalName}' has no column '${key}' that an import can set`,
      );
    if (typeof raw === 'object') {
      if (column.type !== 'lookup') throw new SolutionImportError(FILE, element, `'${key}' is not a lookup`);
      const [target] = Object.values(column.targets ?? {});
      row[key] = { id: readGuid(raw.lookup, FILE, `${element}/<${key}>`), table: target! } satisfies LookupValue;
      continue;
    }
    if (raw === '') continue;
    if (guidColumns.includes(key)) {
      row[key] = readGuid(raw, FILE, element);
      continue;
    }
    switch (column.type) {
      case 'bool':
        row[key] = readValue('bool', raw, FILE, element);
        break;
      case 'int':
      case 'optionset':
      case 'state':
      case 'status':
        row[key] = readValue('int', raw, FILE, element);
        break;
      case 'string':
      case 'memo':
        if (column.maxLength !== undefined && raw.length > column.maxLength)
          throw new SolutionImportError(FILE, element, `is ${raw.length} characters long, over ${column.maxLength}`);
        row[key] = raw;
        break;
      default:
        throw new SolutionImportError(FILE, element, `the emulator cannot import a value of type ${column.type}`);
    }
  }
  return row;
}

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

function tableIn(service: OrganizationService, tables: TableDef[], logical: string): TableDef | undefined {
  return tables.find((t) => t.logicalName === logical) ?? service.catalog.byLogicalName(logical);
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

function planCustomApis(service: OrganizationService, content: SolutionContent, plan: ImportPlan): void {
  const apis = service.table('customapi');
  const params = service.table('customapirequestparameter');
  const props = service.table('customapiresponseproperty');
  for (const api of content.customApis) {
    const where = `<customapi uniquename="${api.uniqueName}">`;
    const values = readApiValues(api.values, CUSTOM_API_COLUMNS, api.file, where);
    const steps = values['allowedcustomprocessingsteptype'] ?? CUSTOM_API_STEP_TYPES.none;
    if (![0, 1, 2].includes(steps as number))
      throw new SolutionImportError(
        api.file,
        `${where}/<allowedcustomprocessingsteptype>`,
        `must be 0, 1 or 2, found ${String(steps)}`,
      );
    if (values['bindingtype'] !== undefined && ![0, 1, 2].includes(values['bindingtype'] as number))
      throw new SolutionImportError(
        api.file,
        `${where}/<bindingtype>`,
        `must be 0, 1 or 2, found ${String(values['bindingtype'])}`,
      );
    const existing = service.store.findIndexed(apis, 'uniquename', api.uniqueName)?.[0];
    const id = (existing?.['customapiid'] as string | undefined) ?? randomUUID();
    if (existing) {
      for (const column of IMMUTABLE.customapi) {
        const next = column === 'allowedcustomprocessingsteptype' ? steps : (values[column] ?? null);
        if (next !== (existing[column] ?? null) && !(next === false && existing[column] === undefined))
          throw new SolutionImportError(
            api.file,
            `${where}/<${column}>`,
            `cannot change after the custom API is created (it is ${JSON.stringify(existing[column] ?? null)}, the solution has ${JSON.stringify(next)})`,
          );
      }
    }
    plan.rows.push({
      table: 'customapi',
      id,
      values: { ...values, uniquename: api.uniqueName, allowedcustomprocessingsteptype: steps },
    });
    plan.components.push({ kind: 'customApi', name: api.uniqueName, created: !existing });
    const parts: Array<
      [
        typeof api.requestParameters,
        TableDef,
        typeof PARAMETER_COLUMNS,
        'customapirequestparameter' | 'customapiresponseproperty',
      ]
    > = [
      [api.requestParameters, params, PARAMETER_COLUMNS, 'customapirequestparameter'],
      [api.responseProperties, props, RESPONSE_COLUMNS, 'customapiresponseproperty'],
    ];
    for (const [entries, def, columns, kind] of parts) {
      for (const part of entries) {
        const at = `<${kind} uniquename="${part.uniqueName}">`;
        const row = readApiValues(part.values, columns, part.file, at);
        const type = row['type'];
        if (typeof type !== 'number' || type < 0 || type > 12)
          throw new SolutionImportError(
            part.file,
            `${at}/<type>`,
            `must be a parameter type 0-12, found ${JSON.stringify(type ?? null)}`,
          );
        const previous = existing
          ? [...service.store.rows(def)].find(
              (r) => (r['customapiid'] as LookupValue | undefined)?.id === id && r['uniquename'] === part.uniqueName,
            )
          : undefined;
        if (previous) {
          for (const column of IMMUTABLE[kind]) {
            if (
              (row[column] ?? null) !== (previous[column] ?? null) &&
              !(row[column] === undefined && previous[column] === false)
            )
              throw new SolutionImportError(
                part.file,
                `${at}/<${column}>`,
                `cannot change after it is created (it is ${JSON.stringify(previous[column] ?? null)})`,
              );
          }
        }
        plan.rows.push({
          table: kind,
          id: (previous?.[def.primaryKey] as string | undefined) ?? randomUUID(),
          values: {
            ...row,
            uniquename: part.uniqueName,
            customapiid: { id, table: 'customapi' } satisfies LookupValue,
          },
        });
      }
    }
  }
}

const DEFINITION_GUIDS = [
  'msdyn_channeldefinitionexternalformid',
  'msdyn_channeldefinitionaccountexternalformid',
  'msdyn_messageformid',
] as const;
const DEFINITION_REQUIRED = [
  'msdyn_channeltype',
  'msdyn_outboundendpointurltemplate',
  'msdyn_hasinbound',
  'msdyn_hasdeliveryreceipt',
  'msdyn_supportsaccount',
  'msdyn_channeldefinitionexternalentity',
  'msdyn_channeldefinitionexternalformid',
] as const;

function planChannels(
  service: OrganizationService,
  content: SolutionContent,
  tables: TableDef[],
  plan: ImportPlan,
): void {
  const definitions = service.table('msdyn_channeldefinition');
  const partsDef = service.table('msdyn_channelmessagepart');
  const read = new Map<string, { record: SolutionRecord; values: Row }>();
  for (const record of content.channelDefinitions) {
    const values = readRecordValues(definitions, record, DEFINITION_GUIDS);
    for (const column of DEFINITION_REQUIRED) {
      if (values[column] === undefined)
        throw new SolutionImportError(FILE, record.where, `has no <${column}> (required)`);
    }
    const type = values['msdyn_channeltype'] as string;
    if (!(SOLUTION_IMPORT.channelTypes as readonly string[]).includes(type))
      throw new SolutionImportError(
        FILE,
        `${record.where}/<msdyn_channeltype>`,
        `must be ${SOLUTION_IMPORT.channelTypes.join(' or ')}, found '${type}'`,
      );
    if (type === 'SMS' && values['msdyn_supportsaccount'] !== true)
      throw new SolutionImportError(
        FILE,
        `${record.where}/<msdyn_supportsaccount>`,
        'an SMS channel must support accounts (1)',
      );
    const api = outboundApiName(values['msdyn_outboundendpointurltemplate'] as string);
    const inSolution = content.customApis.some((a) => a.uniqueName === api);
    if (!inSolution && !service.store.findIndexed(service.table('customapi'), 'uniquename', api)?.length)
      throw new SolutionImportError(
        FILE,
        `${record.where}/<msdyn_outboundendpointurltemplate>`,
        `names the custom API '${api}', which is neither in the solution (customapis/${api}/customapi.xml) nor in the organization`,
      );
    const pairs: Array<[string, string]> = [
      ['msdyn_channeldefinitionexternalentity', 'msdyn_channeldefinitionexternalformid'],
      ['msdyn_channeldefinitionaccountexternalentity', 'msdyn_channeldefinitionaccountexternalformid'],
    ];
    for (const [entityColumn, formColumn] of pairs) {
      const entity = values[entityColumn] as string | undefined;
      if (entity === undefined) continue;
      if (!tableIn(service, tables, entity.toLowerCase()))
        throw new SolutionImportError(
          FILE,
          `${record.where}/<${entityColumn}>`,
          `'${entity}' is neither a table of the solution nor of the organization`,
        );
      const solutionTable = content.tables.find((t) => t.logicalName === entity.toLowerCase());
      const form = values[formColumn] as string | undefined;
      if (solutionTable && form !== undefined && !solutionTable.forms.includes(form))
        throw new SolutionImportError(
          FILE,
          `${record.where}/<${formColumn}>`,
          `${form} is not a form of '${solutionTable.logicalName}' in the solution (forms: ${solutionTable.forms.join(', ') || 'none'})`,
        );
    }
    read.set(record.id, { record, values });
    plan.rows.push({ table: 'msdyn_channeldefinition', id: record.id, values });
    plan.components.push({
      kind: 'channelDefinition',
      name: String(values['msdyn_displayname'] ?? record.id),
      created: !service.store.get(definitions, record.id),
    });
  }
  const partsOf = new Map<string, string[]>();
  for (const record of content.messageParts) {
    const values = readRecordValues(partsDef, record, ['msdyn_entityviewid']);
    const definition = (values['msdyn_channeldefinitionid'] as LookupValue | undefined)?.id;
    if (definition === undefined)
      throw new SolutionImportError(FILE, record.where, 'has no <msdyn_channeldefinitionid> (required)');
    if (!read.has(definition) && !service.store.get(definitions, definition))
      throw new SolutionImportError(
        FILE,
        `${record.where}/<msdyn_channeldefinitionid>`,
        `${definition} is neither a channel definition of the solution nor of the organization`,
      );
    const name = values['msdyn_name'];
    if (typeof name !== 'string') throw new SolutionImportError(FILE, record.where, 'has no <msdyn_name> (required)');
    const type = values['msdyn_type'];
    if (!(SOLUTION_IMPORT.messagePartTypes as readonly unknown[]).includes(type))
      throw new SolutionImportError(
        FILE,
        `${record.where}/<msdyn_type>`,
        `must be one of ${SOLUTION_IMPORT.messagePartTypes.join(', ')}, found ${JSON.stringify(type ?? null)}`,
      );
    const names = partsOf.get(definition) ?? [];
    if (names.includes(name))
      throw new SolutionImportError(
        FILE,
        `${record.where}/<msdyn_name>`,
        `a second part named '${name}' for the same channel definition`,
      );
    partsOf.set(definition, [...names, name]);
    plan.rows.push({ table: 'msdyn_channelmessagepart', id: record.id, values });
    plan.components.push({ kind: 'messagePart', name, created: !service.store.get(partsDef, record.id) });
  }
  for (const [id, { record, values }] of read) {
    const names = partsOf.get(id) ?? [];
    // Parts already in the org for this definition that the solution does not bring stay (an import deletes nothing).
    for (const row of service.store.rows(partsDef)) {
      const ref = (row['msdyn_channeldefinitionid'] as LookupValue | undefined)?.id;
      if (ref === id && !content.messageParts.some((p) => p.id === row['msdyn_channelmessagepartid']))
        names.push(String(row['msdyn_name']));
    }
    if (values['msdyn_channeltype'] === 'SMS' && (names.length !== 1 || names[0] !== SOLUTION_IMPORT.smsPart))
      throw new SolutionImportError(
        FILE,
        `<msdyn_channelmessageparts> for ${record.where}`,
        `an SMS channel has exactly one message part, named '${SOLUTION_IMPORT.smsPart}' (found: ${names.join(', ') || 'none'})`,
      );
    if (names.length === 0)
      throw new SolutionImportError(
        FILE,
        `<msdyn_channelmessageparts> for ${record.where}`,
        'a custom channel needs at least one message part',
      );
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
