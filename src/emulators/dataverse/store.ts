/**
 * The in-memory rows: one map per table keyed by primary key (lower-case GUID), equality indexes on declared
 * columns, a global version counter for ETags, and transactions (an undo log and after-commit hooks) for change
 * sets.
 */
import type { TableDef } from './metadata.js';

/** A lookup as stored: the target row id and its table. */
export interface LookupValue {
  id: string;
  table: string;
}

export type Row = Record<string, unknown>;

/** A unit of atomic work: `undo` runs in reverse on rollback, `after` runs in order on commit. */
export class Tx {
  readonly undo: Array<() => void> = [];
  readonly after: Array<() => void> = [];

  rollback(): void {
    for (let i = this.undo.length - 1; i >= 0; i -= 1) this.undo[i]!();
    this.undo.length = 0;
    this.after.length = 0;
  }
  commit(): void {
    const after = this.after.splice(0);
    this.undo.length = 0;
    for (const fn of after) fn();
  }
}

class TableData {
  readonly rows = new Map<string, Row>();
  readonly indexes = new Map<string, Map<string, Set<string>>>();

  constructor(readonly def: TableDef) {
    for (const col of def.indexed) this.indexes.set(col, new Map());
  }

  index(row: Row, add: boolean): void {
    const id = row[this.def.primaryKey] as string;
    for (const [col, index] of this.indexes) {
      const value = indexKey(row[col]);
      if (value === undefined) continue;
      let ids = index.get(value);
      if (add) {
        if (!ids) index.set(value, (ids = new Set()));
        ids.add(id);
      } else if (ids) {
        ids.delete(id);
        if (ids.size === 0) index.delete(value);
      }
    }
  }
}

function indexKey(value: unknown): string | undefined {
  if (value === null || value === undefined) return undefined;
  if (typeof value === 'object') return (value as LookupValue).id;
  return String(value).toLowerCase();
}

export class Store {
  readonly #tables = new Map<string, TableData>();
  #version = 1_000_000;

  #data(def: TableDef): TableData {
    let data = this.#tables.get(def.logicalName);
    if (!data) this.#tables.set(def.logicalName, (data = new TableData(def)));
    return data;
  }

  nextVersion(): number {
    this.#version += 1;
    return this.#version;
  }

  get(def: TableDef, id: string): Row | undefined {
    return this.#data(def).rows.get(id);
  }

  /** Rows in creation order. */
  rows(def: TableDef): Iterable<Row> {
    return this.#data(def).rows.values();
  }

  count(def: TableDef): number {
    return this.#data(def).rows.size;
  }

  /** Rows whose indexed column equals `value` (case-insensitive), or undefined when the column is not indexed. */
  findIndexed(def: TableDef, column: string, value: unknown): Row[] | undefined {
    const data = this.#data(def);
    if (column === def.primaryKey) {
      const row = typeof value === 'string' ? data.rows.get(value.toLowerCase()) : undefined;
      return row ? [row] : [];
    }
    const index = data.indexes.get(column);
    if (!index) return undefined;
    const key = indexKey(value);
    const ids = key === undefined ? undefined : index.get(key);
    return ids ? [...ids].map((id) => data.rows.get(id)!) : [];
  }

  /**
   * Rows whose indexed columns all equal the given values (case-insensitive), or undefined when one of the columns is
   * not indexed. Read from the smallest of the indexes' sets, in that set's order, so that a value shared by many rows
   * (a journey run's `msdyncrm_activityid`) costs nothing when another condition is selective.
   */
  findIndexedAll(
    def: TableDef,
    conditions: ReadonlyArray<readonly [column: string, value: unknown]>,
  ): Row[] | undefined {
    const data = this.#data(def);
    const sets: Array<Set<string>> = [];
    for (const [column, value] of conditions) {
      const index = data.indexes.get(column);
      if (!index) return undefined;
      const key = indexKey(value);
      const ids = key === undefined ? undefined : index.get(key);
      if (!ids) return [];
      sets.push(ids);
    }
    sets.sort((a, b) => a.size - b.size);
    const [smallest, ...others] = sets;
    if (!smallest) return [];
    const out: Row[] = [];
    for (const id of smallest) if (others.every((ids) => ids.has(id))) out.push(data.rows.get(id)!);
    return out;
  }

  /** How many rows an indexed column's value has (0 when none, undefined when the column is not indexed). */
  countIndexed(def: TableDef, column: string, value: unknown): number | undefined {
    const index = this.#data(def).indexes.get(column);
    if (!index) return undefined;
    const key = indexKey(value);
    return key === undefined ? 0 : (index.get(key)?.size ?? 0);
  }

  insert(def: TableDef, row: Row, tx?: Tx): void {
    const data = this.#data(def);
    const id = row[def.primaryKey] as string;
    data.rows.set(id, row);
    data.index(row, true);
    tx?.undo.push(() => {
      data.index(row, false);
      data.rows.delete(id);
    });
  }

  /** Replaces the stored row with `next` (same id). */
  replace(def: TableDef, next: Row, tx?: Tx): void {
    const data = this.#data(def);
    const id = next[def.primaryKey] as string;
    const previous = data.rows.get(id);
    if (previous) data.index(previous, false);
    data.rows.set(id, next);
    data.index(next, true);
    tx?.undo.push(() => {
      data.index(next, false);
      if (previous) {
        data.rows.set(id, previous);
        data.index(previous, true);
      } else data.rows.delete(id);
    });
  }

  remove(def: TableDef, id: string, tx?: Tx): Row | undefined {
    const data = this.#data(def);
    const row = data.rows.get(id);
    if (!row) return undefined;
    data.index(row, false);
    data.rows.delete(id);
    // Re-inserting keeps the map's order close enough for an emulator (the row moves to the end on undo).
    tx?.undo.push(() => {
      data.rows.set(id, row);
      data.index(row, true);
    });
    return row;
  }
}
