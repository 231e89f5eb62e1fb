/**
 * `$filter`: a tokenizer and recursive-descent parser for the subset the relay uses (eq, ne, lt, le, gt, ge, and,
 * or, not, parentheses, contains, startswith, endswith, `Microsoft.Dynamics.CRM.In`), and a compiler that checks
 * the properties and literal types against the table and returns a predicate. Like Dataverse, string comparisons
 * ignore case.
 */
import { DataverseFault, isGuid } from './faults.js';
import { columnOfProperty, type Column, type TableDef } from './metadata.js';
import type { LookupValue, Row } from './store.js';

export type Literal =
  | { type: 'string'; value: string }
  | { type: 'number'; value: number }
  | { type: 'bool'; value: boolean }
  | { type: 'null'; value: null }
  | { type: 'guid'; value: string }
  | { type: 'datetime'; value: string };

export type CompareOp = 'eq' | 'ne' | 'lt' | 'le' | 'gt' | 'ge';

export type FilterExpr =
  | { kind: 'and' | 'or'; left: FilterExpr; right: FilterExpr }
  | { kind: 'not'; expr: FilterExpr }
  | { kind: 'compare'; op: CompareOp; property: string; value: Literal }
  | { kind: 'function'; name: 'contains' | 'startswith' | 'endswith'; property: string; value: string }
  | { kind: 'in'; property: string; values: string[] };

type Token =
  { t: 'punct'; v: '(' | ')' | ',' | '[' | ']' | '=' } | { t: 'ident'; v: string } | { t: 'literal'; v: Literal };

const GUID_AT = /[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}(?![\w-])/y;
const DATETIME_AT = /\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})?)?(?![\w-])/y;
const NUMBER_AT = /-?\d+(?:\.\d+)?(?![\w-])/y;
const IDENT_AT = /[A-Za-z_][\w.]*/y;

function syntax(message: string): DataverseFault {
  return new DataverseFault('QuerySyntax', message);
}

export function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  const match = (re: RegExp): string | undefined => {
    re.lastIndex = i;
    const m = re.exec(text);
    if (!m) return undefined;
    i += m[0].length;
    return m[0];
  };
  while (i < text.length) {
    const c = text[i]!;
    if (c === ' ' || c === '\t' || c === '\r' || c === '\n') {
      i += 1;
      continue;
    }
    if (c === '(' || c === ')' || c === ',' || c === '[' || c === ']' || c === '=') {
      tokens.push({ t: 'punct', v: c });
      i += 1;
      continue;
    }
    if (c === "'") {
      let value = '';
      let j = i + 1;
      for (;;) {
        if (j >= text.length)
          throw syntax(`Syntax error: unterminated string literal at position ${i} in $filter '${text}'.`);
        if (text[j] === "'") {
          if (text[j + 1] === "'") {
            value += "'";
            j += 2;
            continue;
          }
          break;
        }
        value += text[j];
        j += 1;
      }
      tokens.push({ t: 'literal', v: { type: 'string', value } });
      i = j + 1;
      continue;
    }
    const guid = match(GUID_AT);
    if (guid !== undefined) {
      tokens.push({ t: 'literal', v: { type: 'guid', value: guid.toLowerCase() } });
      continue;
    }
    const date = match(DATETIME_AT);
    if (date !== undefined && date.length > 4) {
      tokens.push({ t: 'literal', v: { type: 'datetime', value: date } });
      continue;
    }
    const num = match(NUMBER_AT);
    if (num !== undefined) {
      tokens.push({ t: 'literal', v: { type: 'number', value: Number(num) } });
      continue;
    }
    const ident = match(IDENT_AT);
    if (ident !== undefined) {
      if (ident === 'true' || ident === 'false')
        tokens.push({ t: 'literal', v: { type: 'bool', value: ident === 'true' } });
      else if (ident === 'null') tokens.push({ t: 'literal', v: { type: 'null', value: null } });
      else tokens.push({ t: 'ident', v: ident });
      continue;
    }
    throw syntax(`Syntax error at position ${i} in $filter '${text}': unexpected '${c}'.`);
  }
  return tokens;
}

const COMPARE_OPS = new Set(['eq', 'ne', 'lt', 'le', 'gt', 'ge']);
const FUNCTIONS = new Set(['contains', 'startswith', 'endswith']);
const IN_FUNCTION = 'microsoft.dynamics.crm.in';

/** Parses a `$filter` expression into a tree. */
export function parseFilter(text: string): FilterExpr {
  const tokens = tokenize(text);
  let pos = 0;
  const peek = (): Token | undefined => tokens[pos];
  const describe = (tok: Token | undefined): string =>
    tok === undefined ? 'the end' : tok.t === 'literal' ? `literal ${JSON.stringify(tok.v.value)}` : `'${tok.v}'`;
  const expectPunct = (v: string): void => {
    const tok = tokens[pos];
    if (tok?.t !== 'punct' || tok.v !== v)
      throw syntax(`Syntax error in $filter '${text}': expected '${v}', found ${describe(tok)}.`);
    pos += 1;
  };
  const isWord = (tok: Token | undefined, word: string): boolean => tok?.t === 'ident' && tok.v.toLowerCase() === word;
  const expectIdent = (): string => {
    const tok = tokens[pos];
    if (tok?.t !== 'ident')
      throw syntax(`Syntax error in $filter '${text}': expected a property name, found ${describe(tok)}.`);
    pos += 1;
    return tok.v;
  };
  const expectLiteral = (): Literal => {
    const tok = tokens[pos];
    if (tok?.t !== 'literal')
      throw syntax(`Syntax error in $filter '${text}': expected a literal, found ${describe(tok)}.`);
    pos += 1;
    return tok.v;
  };
  const expectString = (): string => {
    const lit = expectLiteral();
    if (lit.type !== 'string')
      throw syntax(`Syntax error in $filter '${text}': expected a string literal, found ${JSON.stringify(lit.value)}.`);
    return lit.value;
  };

  const parseOr = (): FilterExpr => {
    let left = parseAnd();
    while (isWord(peek(), 'or')) {
      pos += 1;
      left = { kind: 'or', left, right: parseAnd() };
    }
    return left;
  };
  const parseAnd = (): FilterExpr => {
    let left = parseUnary();
    while (isWord(peek(), 'and')) {
      pos += 1;
      left = { kind: 'and', left, right: parseUnary() };
    }
    return left;
  };
  const parseUnary = (): FilterExpr => {
    if (isWord(peek(), 'not')) {
      pos += 1;
      return { kind: 'not', expr: parseUnary() };
    }
    return parsePrimary();
  };
  const parsePrimary = (): FilterExpr => {
    const tok = peek();
    if (tok?.t === 'punct' && tok.v === '(') {
      pos += 1;
      const inner = parseOr();
      expectPunct(')');
      return inner;
    }
    const name = expectIdent();
    const lower = name.toLowerCase();
    const next = peek();
    if (next?.t === 'punct' && next.v === '(') {
      pos += 1;
      if (FUNCTIONS.has(lower)) {
        const property = expectIdent();
        expectPunct(',');
        const value = expectString();
        expectPunct(')');
        return { kind: 'function', name: lower as 'contains' | 'startswith' | 'endswith', property, value };
      }
      if (lower === IN_FUNCTION) return parseIn();
      throw syntax(`Syntax error in $filter '${text}': unknown function '${name}'.`);
    }
    const op = peek();
    if (op?.t !== 'ident' || !COMPARE_OPS.has(op.v)) {
      throw syntax(
        `Syntax error in $filter '${text}': expected an operator (eq, ne, lt, le, gt, ge) after '${name}', found ${describe(op)}.`,
      );
    }
    pos += 1;
    return { kind: 'compare', op: op.v as CompareOp, property: name, value: expectLiteral() };
  };
  const parseIn = (): FilterExpr => {
    let property: string | undefined;
    let values: string[] | undefined;
    for (;;) {
      const key = expectIdent();
      expectPunct('=');
      if (key === 'PropertyName') property = expectString();
      else if (key === 'PropertyValues') {
        expectPunct('[');
        values = [];
        if (!(peek()?.t === 'punct' && (peek() as { v: string }).v === ']')) {
          for (;;) {
            const lit = expectLiteral();
            values.push(String(lit.value));
            if (peek()?.t === 'punct' && (peek() as { v: string }).v === ',') pos += 1;
            else break;
          }
        }
        expectPunct(']');
      } else
        throw syntax(
          `Syntax error in $filter '${text}': Microsoft.Dynamics.CRM.In has no parameter '${key}' (expected PropertyName, PropertyValues).`,
        );
      const sep = peek();
      if (sep?.t === 'punct' && sep.v === ',') {
        pos += 1;
        continue;
      }
      expectPunct(')');
      break;
    }
    if (property === undefined || values === undefined) {
      throw syntax(
        `Syntax error in $filter '${text}': Microsoft.Dynamics.CRM.In needs PropertyName and PropertyValues.`,
      );
    }
    return { kind: 'in', property, values };
  };

  if (tokens.length === 0) throw syntax('Syntax error: $filter is empty.');
  const tree = parseOr();
  if (pos < tokens.length)
    throw syntax(
      `Syntax error in $filter '${text}': unexpected ${describe(tokens[pos])} after the end of the expression.`,
    );
  return tree;
}

export type Predicate = (row: Row) => boolean;

const EDM: Readonly<Record<string, string>> = {
  string: 'Edm.String',
  memo: 'Edm.String',
  guid: 'Edm.Guid',
  lookup: 'Edm.Guid',
  int: 'Edm.Int32',
  bigint: 'Edm.Int64',
  decimal: 'Edm.Decimal',
  money: 'Edm.Decimal',
  bool: 'Edm.Boolean',
  datetime: 'Edm.DateTimeOffset',
  optionset: 'Edm.Int32',
  state: 'Edm.Int32',
  status: 'Edm.Int32',
};
const LITERAL_EDM: Readonly<Record<Literal['type'], string>> = {
  string: 'Edm.String',
  number: 'Edm.Int32',
  bool: 'Edm.Boolean',
  null: 'null',
  guid: 'Edm.Guid',
  datetime: 'Edm.DateTimeOffset',
};
const NUMERIC = new Set(['int', 'bigint', 'decimal', 'money', 'optionset', 'state', 'status']);

function literalFits(col: Column, lit: Literal): boolean {
  if (lit.type === 'null') return true;
  if (col.type === 'guid' || col.type === 'lookup') return lit.type === 'guid';
  if (col.type === 'string' || col.type === 'memo') return lit.type === 'string';
  if (NUMERIC.has(col.type)) return lit.type === 'number';
  if (col.type === 'bool') return lit.type === 'bool';
  if (col.type === 'datetime') return lit.type === 'datetime';
  return false;
}

/** Resolves a property of the filter; unknown names are refused the way Dataverse refuses them. */
export function resolveProperty(def: TableDef, property: string): Column {
  const col = columnOfProperty(def, property);
  if (!col) {
    const hint = def.columns.get(property)?.type === 'lookup' ? ` Lookups are filtered as '_${property}_value'.` : '';
    throw new DataverseFault(
      'QuerySyntax',
      `Could not find a property named '${property}' on type 'Microsoft.Dynamics.CRM.${def.logicalName}'.${hint}`,
    );
  }
  if (col.writeOnly)
    throw new DataverseFault(
      'QuerySyntax',
      `The property '${property}' of 'Microsoft.Dynamics.CRM.${def.logicalName}' cannot be read, so it cannot be filtered or sorted on.`,
    );
  return col;
}

function getter(col: Column): (row: Row) => unknown {
  const name = col.name;
  if (col.type === 'lookup') return (row) => (row[name] as LookupValue | null | undefined)?.id ?? null;
  if (col.type === 'datetime') return (row) => (row[name] == null ? null : Date.parse(row[name] as string));
  if (col.type === 'string' || col.type === 'memo')
    return (row) => (row[name] == null ? null : (row[name] as string).toLowerCase());
  return (row) => row[name] ?? null;
}

function literalValue(col: Column, lit: Literal): unknown {
  if (lit.type === 'null') return null;
  if (col.type === 'datetime') return Date.parse(lit.value as string);
  if (typeof lit.value === 'string') return lit.value.toLowerCase();
  return lit.value;
}

/** Compiles a filter tree against a table into a predicate. */
export function compileFilter(def: TableDef, expr: FilterExpr): Predicate {
  switch (expr.kind) {
    case 'and': {
      const l = compileFilter(def, expr.left);
      const r = compileFilter(def, expr.right);
      return (row) => l(row) && r(row);
    }
    case 'or': {
      const l = compileFilter(def, expr.left);
      const r = compileFilter(def, expr.right);
      return (row) => l(row) || r(row);
    }
    case 'not': {
      const inner = compileFilter(def, expr.expr);
      return (row) => !inner(row);
    }
    case 'compare': {
      const col = resolveProperty(def, expr.property);
      if (!literalFits(col, expr.value)) {
        throw new DataverseFault(
          'QuerySyntax',
          `A binary operator with incompatible types was detected. Found operand types '${EDM[col.type]}' and '${LITERAL_EDM[expr.value.type]}' for operator kind '${expr.op}' on property '${expr.property}'.`,
        );
      }
      const get = getter(col);
      const value = literalValue(col, expr.value);
      switch (expr.op) {
        case 'eq':
          return (row) => get(row) === value;
        case 'ne':
          return (row) => get(row) !== value;
        case 'lt':
          return (row) => ordered(get(row), value, (a, b) => a < b);
        case 'le':
          return (row) => ordered(get(row), value, (a, b) => a <= b);
        case 'gt':
          return (row) => ordered(get(row), value, (a, b) => a > b);
        case 'ge':
          return (row) => ordered(get(row), value, (a, b) => a >= b);
      }
      break;
    }
    case 'function': {
      const col = resolveProperty(def, expr.property);
      if (col.type !== 'string' && col.type !== 'memo') {
        throw new DataverseFault(
          'QuerySyntax',
          `The function '${expr.name}' needs a string property; '${expr.property}' is ${EDM[col.type]}.`,
        );
      }
      const get = getter(col);
      const needle = expr.value.toLowerCase();
      if (expr.name === 'contains') return (row) => ((get(row) as string | null) ?? '').includes(needle);
      if (expr.name === 'startswith') return (row) => ((get(row) as string | null) ?? '').startsWith(needle);
      return (row) => ((get(row) as string | null) ?? '').endsWith(needle);
    }
    case 'in': {
      const col = resolveProperty(def, expr.property);
      if ((col.type === 'guid' || col.type === 'lookup') && !expr.values.every(isGuid)) {
        throw new DataverseFault(
          'QuerySyntax',
          `Microsoft.Dynamics.CRM.In: every value for '${expr.property}' must be a GUID.`,
        );
      }
      const get = getter(col);
      const numeric = NUMERIC.has(col.type);
      const set = new Set<unknown>(
        expr.values.map((v) => (numeric ? Number(v) : col.type === 'bool' ? v === 'true' : v.toLowerCase())),
      );
      return (row) => set.has(get(row));
    }
  }
  throw new DataverseFault('QuerySyntax', 'Unsupported $filter expression.');
}

function ordered(a: unknown, b: unknown, cmp: (a: number | string, b: number | string) => boolean): boolean {
  if (a === null || b === null) return false;
  return cmp(a as number | string, b as number | string);
}
