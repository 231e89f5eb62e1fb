/**
 * Collection queries: `$select`, `$filter`, `$orderby`, `$top`, `$count`, and paging through
 * `Prefer: odata.maxpagesize` with `@odata.nextLink` (`$skiptoken`). Equality on the primary key or an indexed
 * column reads the index instead of scanning the table.
 */
import { DataverseFault } from './faults.js';
import { compileFilter, parseFilter, resolveProperty, type FilterExpr, type Predicate } from './odata-filter.js';
import { columnOfProperty, type Column, type TableDef } from './metadata.js';
import { fullProjection, type Projection } from './representation.js';
import type { LookupValue, Row, Store } from './store.js';

/** Dataverse's default and largest page size. */
export const MAX_PAGE_SIZE = 5000;

export interface ListQuery {
  projection: Projection;
  /** The `$select` list as given, for `@odata.context`. */
  select?: string[];
  predicate?: Predicate;
  /** An equality (or `Microsoft.Dynamics.CRM.In`) the store can answer from an index: any of `values`. */
  indexed?: { column: string; values: unknown[] };
  order: Array<{ col: Column; desc: boolean }>;
  top?: number;
  count: boolean;
  /** Rows already returned by earlier pages. */
  skip: number;
}

/** The readable flag that tells whether a write-only column is set. */
const WRITE_ONLY_FLAGS: Readonly<Record<string, string>> = {
  saskey: 'issaskeyset',
  sastoken: 'issastokenset',
  authvalue: 'isauthvalueset',
};

const KNOWN_OPTIONS = new Set(['$select', '$filter', '$orderby', '$top', '$count', '$skiptoken']);
const SKIPTOKEN = /offset="(\d+)"/;

export function parseSelect(def: TableDef, text: string | null): { projection: Projection; select?: string[] } {
  if (text === null || text === '') return { projection: fullProjection(def) };
  const select = text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const projection = select.map((name) => {
    const col = columnOfProperty(def, name);
    if (!col) {
      const hint = def.columns.get(name)?.type === 'lookup' ? ` Lookups are selected as '_${name}_value'.` : '';
      throw new DataverseFault(
        'QuerySyntax',
        `Could not find a property named '${name}' on type 'Microsoft.Dynamics.CRM.${def.logicalName}'.${hint}`,
      );
    }
    if (col.writeOnly) {
      throw new DataverseFault(
        'QuerySyntax',
        `The property '${name}' of 'Microsoft.Dynamics.CRM.${def.logicalName}' cannot be read (it is write-only, like in Dataverse); read '${WRITE_ONLY_FLAGS[name] ?? name}' instead.`,
      );
    }
    return col;
  });
  return { projection, select };
}

function indexedEquality(def: TableDef, expr: FilterExpr): { column: string; values: unknown[] } | undefined {
  if (expr.kind === 'and') return indexedEquality(def, expr.left) ?? indexedEquality(def, expr.right);
  const isEq = expr.kind === 'compare' && expr.op === 'eq' && expr.value.type !== 'null';
  if (!isEq && expr.kind !== 'in') return undefined;
  const col = columnOfProperty(def, expr.property);
  if (!col || (col.name !== def.primaryKey && !def.indexed.includes(col.name))) return undefined;
  if (expr.kind === 'in')
    return col.type === 'string' || col.type === 'guid' ? { column: col.name, values: expr.values } : undefined;
  return expr.kind === 'compare' ? { column: col.name, values: [expr.value.value] } : undefined;
}

/** The rows an index gives for any of `values`, each once, or undefined when the column has no index. */
function indexedCandidates(
  store: Store,
  def: TableDef,
  indexed: { column: string; values: unknown[] },
): Row[] | undefined {
  if (indexed.values.length === 1) return store.findIndexed(def, indexed.column, indexed.values[0]);
  const seen = new Set<Row>();
  for (const value of indexed.values) {
    const rows = store.findIndexed(def, indexed.column, value);
    if (!rows) return undefined;
    for (const row of rows) seen.add(row);
  }
  return [...seen];
}

export function parseListQuery(def: TableDef, params: URLSearchParams): ListQuery {
  for (const key of params.keys()) {
    if (key.startsWith('$') && !KNOWN_OPTIONS.has(key)) {
      throw new DataverseFault(
        'QuerySyntax',
        `The query option '${key}' is not supported by the emulator (supported: ${[...KNOWN_OPTIONS].join(', ')}).`,
      );
    }
  }
  const query: ListQuery = { ...parseSelect(def, params.get('$select')), order: [], count: false, skip: 0 };
  const filter = params.get('$filter');
  if (filter !== null) {
    const tree = parseFilter(filter);
    query.predicate = compileFilter(def, tree);
    const indexed = indexedEquality(def, tree);
    if (indexed) query.indexed = indexed;
  }
  const orderby = params.get('$orderby');
  if (orderby) {
    for (const item of orderby.split(',')) {
      const [name, dir, extra] = item.trim().split(/\s+/);
      if (!name || extra !== undefined || (dir !== undefined && dir !== 'asc' && dir !== 'desc')) {
        throw new DataverseFault(
          'QuerySyntax',
          `Syntax error in $orderby '${orderby}': expected '<property> [asc|desc]'.`,
        );
      }
      query.order.push({ col: resolveProperty(def, name), desc: dir === 'desc' });
    }
  }
  const top = params.get('$top');
  if (top !== null) {
    const n = Number(top);
    if (!Number.isInteger(n) || n < 0)
      throw new DataverseFault('QuerySyntax', `Invalid value '${top}' for $top: expected a non-negative integer.`);
    query.top = n;
  }
  const count = params.get('$count');
  if (count !== null) {
    if (count !== 'true' && count !== 'false')
      throw new DataverseFault('QuerySyntax', `Invalid value '${count}' for $count: expected true or false.`);
    query.count = count === 'true';
  }
  const token = params.get('$skiptoken');
  if (token !== null) {
    const m = SKIPTOKEN.exec(token);
    if (!m)
      throw new DataverseFault(
        'QuerySyntax',
        `Invalid $skiptoken '${token}': use the @odata.nextLink of the previous page as is.`,
      );
    query.skip = Number(m[1]);
  }
  return query;
}

/** The `$skiptoken` of the page starting after `offset` rows (a paging cookie, opaque to callers). */
export function skipToken(offset: number, page: number): string {
  return `<cookie pagenumber="${page}" offset="${offset}" istracking="False" />`;
}

function sortValue(col: Column, row: Row): unknown {
  const v = row[col.name];
  if (v === null || v === undefined) return null;
  if (col.type === 'lookup') return (v as LookupValue).id;
  if (typeof v === 'string') return v.toLowerCase();
  return v;
}

export interface ListResult {
  rows: Row[];
  /** All matching rows (for `$count`). */
  total: number;
  /** Offset of the next page, when there is one. */
  nextOffset?: number;
}

export function runList(store: Store, def: TableDef, query: ListQuery, pageSize: number): ListResult {
  const candidates: Iterable<Row> = (query.indexed && indexedCandidates(store, def, query.indexed)) || store.rows(def);
  const predicate = query.predicate;
  let matched: Row[] = [];
  const needAll = query.order.length > 0 || query.count;
  const limit = query.top ?? Number.POSITIVE_INFINITY;
  const stopAt = needAll ? Number.POSITIVE_INFINITY : Math.min(limit, query.skip + pageSize + 1);
  for (const row of candidates) {
    if (predicate && !predicate(row)) continue;
    matched.push(row);
    if (matched.length >= stopAt) break;
  }
  if (query.order.length > 0) {
    const order = query.order;
    matched.sort((a, b) => {
      for (const { col, desc } of order) {
        const x = sortValue(col, a);
        const y = sortValue(col, b);
        if (x === y) continue;
        // Nulls first ascending, as SQL Server sorts them.
        const c = x === null ? -1 : y === null ? 1 : (x as number | string) < (y as number | string) ? -1 : 1;
        return desc ? -c : c;
      }
      return 0;
    });
  }
  // Like Dataverse, @odata.count is the number of matching rows, whatever $top says.
  const total = matched.length;
  if (matched.length > limit) matched = matched.slice(0, limit);
  const end = query.skip + pageSize;
  const rows = matched.slice(query.skip, end);
  const result: ListResult = { rows, total };
  if (end < matched.length) result.nextOffset = end;
  return result;
}
