/** Rows as the Web API returns them: `@odata.etag`, lookups as `_<name>_value`, `$select` honoured. */
import { webApiName, type Column, type TableDef } from './metadata.js';
import type { LookupValue, Row } from './store.js';

/** The columns to return, resolved once per request. */
export type Projection = readonly Column[];

/** Every readable column (write-only ones such as `serviceendpoint.saskey` are never returned). */
export function fullProjection(def: TableDef): Projection {
  return [...def.columns.values()].filter((c) => !c.writeOnly);
}

export function etagOf(row: Row): string {
  return `W/"${String(row['versionnumber'])}"`;
}

/**
 * Whether an `If-Match` / `If-None-Match` value names the row's current version: `*`, or a comma list of ETags
 * compared weakly (`W/"5"`, `"5"` and `w/"5"` are the same version).
 */
export function etagMatches(header: string, row: Row): boolean {
  if (header.trim() === '*') return true;
  const version = String(row['versionnumber']);
  return header.split(',').some(
    (tag) =>
      tag
        .trim()
        .replace(/^W\//i, '')
        .replace(/^"(.*)"$/, '$1') === version,
  );
}

/**
 * Annotations asked for with `Prefer: odata.include-annotations="…"`. The emulator writes, for lookups, the
 * lookup logical name, the navigation property and the formatted value (the target row's primary name), and the
 * formatted value of statecode/statuscode.
 */
export interface Annotations {
  /** Primary name of a lookup's target row, or null. */
  nameOf(lookup: LookupValue): string | null;
}

const FORMATTED = 'OData.Community.Display.V1.FormattedValue';
const LOOKUP_NAME = 'Microsoft.Dynamics.CRM.lookuplogicalname';
const NAVIGATION = 'Microsoft.Dynamics.CRM.associatednavigationproperty';
const STATE_LABELS: Readonly<Record<string, Readonly<Record<number, string>>>> = {
  statecode: { 0: 'Active', 1: 'Inactive' },
  statuscode: { 1: 'Active', 2: 'Inactive' },
};

/** Which annotations a `Prefer` header asks for (`*`, or a comma list with `*` wildcards), or undefined for none. */
export function requestedAnnotations(prefer: string | undefined): ((name: string) => boolean) | undefined {
  const m = prefer ? /odata\.include-annotations\s*=\s*"?([^",;]+(?:,[^",;]+)*)"?/i.exec(prefer) : null;
  if (!m) return undefined;
  const patterns = m[1]!.split(',').map((p) => new RegExp(`^${p.trim().replace(/[.]/g, '\\.').replace(/\*/g, '.*')}$`));
  return (name) => patterns.some((p) => p.test(name));
}

/** Renders a row for a response. The primary key is always included, as Dataverse does. */
export function represent(
  def: TableDef,
  row: Row,
  projection: Projection,
  annotations?: { wants: (name: string) => boolean; source: Annotations },
): Record<string, unknown> {
  const out: Record<string, unknown> = { '@odata.etag': etagOf(row) };
  let keyIncluded = false;
  for (const col of projection) {
    const value = row[col.name];
    if (col.name === def.primaryKey) keyIncluded = true;
    const name = webApiName(col);
    if (col.type !== 'lookup') {
      out[name] = value ?? null;
      const labels = STATE_LABELS[col.name];
      if (annotations && labels && typeof value === 'number' && labels[value] && annotations.wants(FORMATTED))
        out[`${name}@${FORMATTED}`] = labels[value];
      continue;
    }
    const lookup = value as LookupValue | null | undefined;
    if (lookup && annotations) {
      if (annotations.wants(FORMATTED)) out[`${name}@${FORMATTED}`] = annotations.source.nameOf(lookup);
      if (annotations.wants(NAVIGATION)) {
        const nav = Object.entries(col.targets ?? {}).find(([, table]) => table === lookup.table)?.[0];
        if (nav) out[`${name}@${NAVIGATION}`] = nav;
      }
      if (annotations.wants(LOOKUP_NAME)) out[`${name}@${LOOKUP_NAME}`] = lookup.table;
    }
    out[name] = lookup?.id ?? null;
  }
  if (!keyIncluded) out[def.primaryKey] = row[def.primaryKey];
  return out;
}
