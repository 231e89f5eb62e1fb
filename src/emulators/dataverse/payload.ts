/**
 * Request bodies → row values: every property is checked against the table (unknown names, read-only columns,
 * value types, lengths, GUIDs) and `<nav>@odata.bind` references are resolved to lookups. The messages say what
 * was wrong, in the words Dataverse uses where they are known.
 */
import { DataverseFault, isGuid } from './faults.js';
import type { Catalog, Column, TableDef } from './metadata.js';
import type { LookupValue, Row, Store } from './store.js';

/** Resolves `$1` Content-ID references inside a change set to a path such as `/contacts(<id>)`. */
export type ReferenceResolver = (ref: string) => string | undefined;

const BIND_PATH = /(?:^|\/)([A-Za-z_][\w]*)\(([^)]+)\)$/;

export interface PayloadContext {
  catalog: Catalog;
  store: Store;
  resolveReference?: ReferenceResolver | undefined;
}

function payloadFault(def: TableDef, message: string): DataverseFault {
  return new DataverseFault(
    'Payload',
    `Error identified in Payload provided by the user for Entity :'${def.entitySetName}': ${message}`,
  );
}

/** Reads a lookup reference (`/contacts(<id>)`, `contacts(<id>)`, a full URL, or `$1`) into a stored lookup. */
export function readBind(ctx: PayloadContext, def: TableDef, nav: string, target: string, raw: unknown): LookupValue {
  if (typeof raw !== 'string')
    throw payloadFault(def, `'${nav}@odata.bind' must be a string such as "/${target}s(<guid>)".`);
  let ref = raw;
  if (ref.startsWith('$')) {
    const resolved = ctx.resolveReference?.(ref);
    if (resolved === undefined)
      throw new DataverseFault('BatchInvalid', `Content-ID Reference: '${ref}' does not exist in the batch context.`);
    ref = resolved;
  }
  const m = BIND_PATH.exec(ref);
  const targetDef = ctx.catalog.byLogicalName(target);
  if (!m || !targetDef)
    throw payloadFault(
      def,
      `'${nav}@odata.bind' value '${raw}' is not a reference to a row of '${target}' (expected "/<entityset>(<guid>)").`,
    );
  const setDef = ctx.catalog.byEntitySet(m[1]!);
  if (setDef !== targetDef) {
    throw payloadFault(
      def,
      `'${nav}@odata.bind' refers to entity set '${m[1]}', but '${nav}' points to '${targetDef.entitySetName}'.`,
    );
  }
  const id = m[2]!.toLowerCase();
  if (!isGuid(id)) throw new DataverseFault('QuerySyntax', `'${m[2]}' in '${nav}@odata.bind' is not a valid GUID.`);
  if (!ctx.store.get(targetDef, id))
    throw new DataverseFault('RowNotFound', `${target} With Id = ${id} Does Not Exist`);
  return { id, table: target };
}

function checkValue(def: TableDef, col: Column, value: unknown): unknown {
  if (value === null) return null;
  const wrong = (expected: string): DataverseFault =>
    payloadFault(
      def,
      `Cannot convert the literal '${String(JSON.stringify(value))}' to the expected type '${expected}' for property '${col.name}'.`,
    );
  switch (col.type) {
    case 'string':
    case 'memo':
      if (typeof value !== 'string') throw wrong('Edm.String');
      if (col.maxLength !== undefined && value.length > col.maxLength) {
        throw new DataverseFault(
          'RequiredMissing',
          `A validation error occurred. The length of the '${col.name}' attribute of the '${def.logicalName}' entity exceeded the maximum allowed length of '${col.maxLength}'.`,
        );
      }
      return value;
    case 'guid':
      if (!isGuid(value)) throw wrong('Edm.Guid');
      return value.toLowerCase();
    case 'bool':
      if (typeof value !== 'boolean') throw wrong('Edm.Boolean');
      return value;
    case 'datetime': {
      if (typeof value !== 'string' || Number.isNaN(Date.parse(value))) throw wrong('Edm.DateTimeOffset');
      return isoSeconds(new Date(value));
    }
    case 'int':
    case 'bigint':
    case 'optionset':
    case 'state':
    case 'status':
      if (typeof value !== 'number' || !Number.isInteger(value)) throw wrong('Edm.Int32');
      return value;
    case 'decimal':
    case 'money':
      if (typeof value !== 'number') throw wrong('Edm.Decimal');
      return value;
    case 'lookup':
      throw payloadFault(def, `'${col.name}' is a lookup: set it with '<navigation property>@odata.bind'.`);
  }
}

/** `2026-11-22T00:00:00Z`: the form Dataverse writes dates in (no milliseconds). */
export function isoSeconds(date: Date): string {
  return `${date.toISOString().slice(0, 19)}Z`;
}

let cachedSecond = -1;
let cachedIso = '';

/** The current time as {@link isoSeconds} writes it, computed once per second (it is on every write's path). */
export function nowIsoSeconds(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== cachedSecond) {
    cachedSecond = second;
    cachedIso = isoSeconds(new Date(second * 1000));
  }
  return cachedIso;
}

/**
 * Converts a JSON body into column values (the primary key may be among them). `@odata.type` and instance
 * annotations (`@odata.etag` …) are ignored; other property annotations are refused.
 */
export function readPayload(ctx: PayloadContext, def: TableDef, body: unknown): Row {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw payloadFault(def, 'the body must be a JSON object.');
  }
  const values: Row = {};
  for (const [key, value] of Object.entries(body as Record<string, unknown>)) {
    const at = key.indexOf('@');
    if (at >= 0) {
      const annotation = key.slice(at + 1);
      if (annotation !== 'odata.bind') {
        if (at === 0 || annotation === 'odata.type') continue;
        throw payloadFault(def, `the annotation '${annotation}' on '${key.slice(0, at)}' is not supported here.`);
      }
      const nav = key.slice(0, at);
      const navigation = def.navigations.get(nav);
      if (!navigation) {
        const near = [...def.navigations.keys()].find((n) => n.toLowerCase() === nav.toLowerCase());
        throw payloadFault(
          def,
          `An undeclared property '${nav}' which only has property annotations in the payload but no property value was found in the payload.${near ? ` Navigation property names are case-sensitive: did you mean '${near}'?` : ''}`,
        );
      }
      if (!ctx.catalog.byLogicalName(navigation.table)) {
        throw payloadFault(def, `'${nav}' points to '${navigation.table}', which this emulator does not hold.`);
      }
      values[navigation.column] = value === null ? null : readBind(ctx, def, nav, navigation.table, value);
      continue;
    }
    const col = def.columns.get(key);
    if (!col) {
      const lookup = /^_(.+)_value$/.exec(key)?.[1];
      const lookupCol = lookup === undefined ? undefined : def.columns.get(lookup);
      if (lookupCol?.type === 'lookup') {
        const navs = Object.keys(lookupCol.targets ?? {})
          .map((n) => `'${n}@odata.bind'`)
          .join(' or ');
        throw payloadFault(def, `'${key}' is read-only: set the lookup '${lookup}' with ${navs}.`);
      }
      throw payloadFault(
        def,
        `The property '${key}' does not exist on type 'Microsoft.Dynamics.CRM.${def.logicalName}'. Make sure to only use property names that are defined by the type.`,
      );
    }
    if (col.readOnly) throw payloadFault(def, `The property '${key}' is read-only.`);
    values[key] = checkValue(def, col, value);
  }
  return values;
}
