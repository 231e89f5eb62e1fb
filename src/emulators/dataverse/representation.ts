/** Rows as the Web API returns them: `@odata.etag`, lookups as `_<name>_value`, `$select` honoured. */
import { webApiName, type Column, type TableDef } from './metadata.js';
import type { LookupValue, Row } from './store.js';

/** The columns to return, resolved once per request. */
export type Projection = readonly Column[];

export function fullProjection(def: TableDef): Projection {
  return [...def.columns.values()];
}

export function etagOf(row: Row): string {
  return `W/"${String(row['versionnumber'])}"`;
}

/** Renders a row for a response. The primary key is always included, as Dataverse does. */
export function represent(def: TableDef, row: Row, projection: Projection): Record<string, unknown> {
  const out: Record<string, unknown> = { '@odata.etag': etagOf(row) };
  let keyIncluded = false;
  for (const col of projection) {
    const value = row[col.name];
    if (col.name === def.primaryKey) keyIncluded = true;
    out[webApiName(col)] = col.type === 'lookup' ? ((value as LookupValue | undefined)?.id ?? null) : (value ?? null);
  }
  if (!keyIncluded) out[def.primaryKey] = row[def.primaryKey];
  return out;
}
