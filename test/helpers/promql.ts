/**
 * What the deploy/ dashboard and rules ask of the relay's metrics: the metric names and labels in their PromQL (and
 * Grafana's `label_values` and legends), parsed just enough to check them against the metrics a relay exposes.
 *
 * A metric name is an identifier not followed by `(`, not a keyword, outside strings, `{}` and `[]`; the labels of a
 * selector are the names before the matchers inside its `{}`; `by (...)`, `without (...)`, `on (...)`,
 * `ignoring (...)` and `group_left/right (...)` list labels that some metric of the expression must have.
 */

/** What one expression uses. */
export interface PromqlUse {
  /** Each selected metric and the labels its matchers name. */
  selectors: Array<{ metric: string; labels: string[] }>;
  /** Labels named in grouping and matching clauses, and labels written by `label_replace`/`label_join`. */
  grouping: string[];
  /** Labels `label_replace`/`label_join` write (they exist after the call, on no metric). */
  written: string[];
}

const KEYWORDS = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'and',
  'or',
  'unless',
  'bool',
  'offset',
  'inf',
  'nan',
  // Aggregation operators, which may be followed by `by (...)` before their parenthesis.
  'sum',
  'min',
  'max',
  'avg',
  'group',
  'stddev',
  'stdvar',
  'count',
  'count_values',
  'bottomk',
  'topk',
  'quantile',
  'limitk',
  'limit_ratio',
]);
const CLAUSES = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right']);
const IDENT = /[A-Za-z_:][A-Za-z0-9_:]*/y;

/** Throws naming the expression when it cannot be read (an unclosed brace, bracket or string). */
export function promqlUses(expr: string): PromqlUse {
  const use: PromqlUse = { selectors: [], grouping: [], written: [] };
  let i = 0;
  const fail = (what: string): never => {
    throw new Error(`PromQL: ${what} at ${i} in: ${expr}`);
  };
  const skipString = (): string => {
    const quote = expr[i] as string;
    let j = i + 1;
    let text = '';
    while (j < expr.length && expr[j] !== quote) {
      if (expr[j] === '\\') j += 1;
      text += expr[j];
      j += 1;
    }
    if (j >= expr.length) fail('unclosed string');
    i = j + 1;
    return text;
  };
  const skipSpace = (): void => {
    while (i < expr.length && /\s/.test(expr[i] as string)) i += 1;
  };
  /**
   * The label names of a comma-separated list from the opening character at `i` to `close`: `{a="x", b=~"y"}` (each
   * name followed by a matcher, which `afterName` reads) or `(a, b)`.
   */
  const labelItems = (close: string, what: string, afterName: () => void = () => {}): string[] => {
    const labels: string[] = [];
    i += 1;
    for (;;) {
      skipSpace();
      if (i >= expr.length) fail(`unclosed ${what}`);
      if (expr[i] === close) {
        i += 1;
        return labels;
      }
      if (expr[i] === ',') {
        i += 1;
        continue;
      }
      IDENT.lastIndex = i;
      const m = IDENT.exec(expr);
      if (!m) fail(`a label name expected in a ${what}`);
      labels.push((m as RegExpExecArray)[0]);
      i = IDENT.lastIndex;
      afterName();
    }
  };
  /** A matcher's operator and quoted value, after its label name. */
  const matcher = (): void => {
    skipSpace();
    const op = /^(=~|!~|!=|=)/.exec(expr.slice(i));
    if (!op) fail('a matcher operator expected');
    i += (op as RegExpExecArray)[0].length;
    skipSpace();
    if (expr[i] !== '"' && expr[i] !== "'") fail('a quoted label value expected');
    skipString();
  };
  const matchers = (): string[] => labelItems('}', 'matcher list', matcher);
  const labelList = (): string[] => labelItems(')', 'label list');
  /** The string arguments of `label_replace(v, dst, repl, src, re)` / `label_join(v, dst, sep, src...)`. */
  const labelWriters: Array<{ depth: number; strings: string[]; fn: string }> = [];
  let depth = 0;

  while (i < expr.length) {
    const c = expr[i] as string;
    if (/\s/.test(c) || c === ',') {
      i += 1;
    } else if (c === '"' || c === "'" || c === '`') {
      const text = skipString();
      const writer = labelWriters.at(-1);
      if (writer && writer.depth === depth) writer.strings.push(text);
    } else if (c === '{') {
      use.selectors.push({ metric: '', labels: matchers() });
    } else if (c === '[') {
      const end = expr.indexOf(']', i);
      if (end < 0) fail('unclosed [');
      i = end + 1;
    } else if (c === '(') {
      depth += 1;
      i += 1;
    } else if (c === ')') {
      const writer = labelWriters.at(-1);
      if (writer && writer.depth === depth) {
        labelWriters.pop();
        const [dst, , src, ...more] = writer.strings;
        if (dst !== undefined) use.written.push(dst);
        if (writer.fn === 'label_replace' && src !== undefined) use.grouping.push(src);
        if (writer.fn === 'label_join') use.grouping.push(...[src, ...more].filter((s): s is string => !!s));
      }
      depth -= 1;
      i += 1;
    } else if (/[A-Za-z_:]/.test(c)) {
      IDENT.lastIndex = i;
      const name = (IDENT.exec(expr) as RegExpExecArray)[0];
      i = IDENT.lastIndex;
      skipSpace();
      if (CLAUSES.has(name)) {
        if (expr[i] === '(') use.grouping.push(...labelList());
      } else if (KEYWORDS.has(name)) {
        // An operator or a modifier: nothing to record.
      } else if (expr[i] === '(') {
        if (name === 'label_replace' || name === 'label_join')
          labelWriters.push({ depth: depth + 1, strings: [], fn: name });
      } else {
        const labels = expr[i] === '{' ? matchers() : [];
        use.selectors.push({ metric: name, labels });
      }
    } else if (/[0-9.]/.test(c)) {
      // A number or a duration (`offset 5m`, `1e3`, `0x1f`).
      const m = /[0-9.][0-9A-Za-z_.]*/y;
      m.lastIndex = i;
      m.exec(expr);
      i = m.lastIndex;
    } else {
      // An operator.
      i += 1;
    }
  }
  if (depth !== 0) fail('unbalanced parentheses');
  return use;
}

/** The labels a Grafana legend (`{{label}}`) or an alert template (`$labels.label`) names. */
export function templateLabels(text: string): string[] {
  return [
    ...[...text.matchAll(/\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g)].map((m) => m[1] as string),
    ...[...text.matchAll(/\$labels\.([A-Za-z_][A-Za-z0-9_]*)/g)].map((m) => m[1] as string),
  ];
}

/** A metric set to check against: each metric's labels. */
export type MetricSet = ReadonlyMap<string, ReadonlySet<string>>;

/**
 * The problems of one expression against `metrics`: each metric that does not exist, each selector label the metric
 * lacks, each grouping or legend label no metric of the expression has (nor `extraLabels`, nor one it writes).
 */
export function checkExpression(
  where: string,
  expr: string,
  metrics: MetricSet,
  extraLabels: readonly string[],
  legendLabels: readonly string[] = [],
): string[] {
  const problems: string[] = [];
  const use = promqlUses(expr);
  const available = new Set<string>([...extraLabels, ...use.written]);
  for (const { metric, labels } of use.selectors) {
    if (metric === '') {
      problems.push(`${where}: a selector without a metric name: ${expr}`);
      continue;
    }
    const known = metrics.get(metric);
    if (known === undefined) {
      problems.push(`${where}: no metric ${metric}`);
      continue;
    }
    for (const l of known) available.add(l);
    for (const l of labels)
      if (!known.has(l) && !extraLabels.includes(l)) problems.push(`${where}: ${metric} has no label ${l}`);
  }
  for (const l of [...use.grouping, ...legendLabels])
    if (!available.has(l)) problems.push(`${where}: no metric of the expression has the label ${l}`);
  return problems;
}
