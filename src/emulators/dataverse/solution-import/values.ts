/** Text of the solution files → column values, each refusal naming the file and element. */
import type { LookupValue, Row } from '../store.js';
import type { TableDef } from '../metadata.js';
import { readGuid, SolutionImportError, type SolutionRecord } from './read.js';

export const FILE = 'customizations.xml';

export function readValue(
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

export function readApiValues(
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
export function readRecordValues(def: TableDef, record: SolutionRecord, guidColumns: readonly string[]): Row {
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
