/**
 * The dashboard and the rules of deploy/ as the tests read them: every PromQL expression with where it is, and the
 * labels its legend or annotations name.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { packageRoot } from '../../src/paths.js';
import { promqlUses, templateLabels } from './promql.js';

export const DASHBOARD_FILE = 'deploy/grafana/channel-relay.json';
export const RULES_FILE = 'deploy/prometheus/channel-relay.rules.yml';

export interface Target {
  refId?: string;
  expr?: string;
  legendFormat?: string;
  datasource?: { type?: string; uid?: string };
}
export interface Panel {
  id?: number;
  type?: string;
  title?: string;
  datasource?: { type?: string; uid?: string };
  gridPos?: { h: number; w: number; x: number; y: number };
  targets?: Target[];
  panels?: Panel[];
}
export interface Variable {
  name: string;
  type: string;
  query?: string | { query?: string };
  datasource?: { type?: string; uid?: string };
}
export interface Dashboard {
  title?: string;
  uid?: string;
  schemaVersion?: number;
  templating?: { list?: Variable[] };
  panels?: Panel[];
}
export interface Rule {
  record?: string;
  alert?: string;
  expr?: unknown;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
export interface RulesFile {
  groups?: Array<{ name?: string; interval?: string; rules?: Rule[] }>;
}

/** One expression to check: where it is, the PromQL, and the labels its legend or annotations name. */
export interface Expression {
  where: string;
  expr: string;
  templateLabels: string[];
}

const read = (file: string): string => readFileSync(path.join(packageRoot(), file), 'utf8');

export function readDashboard(): Dashboard {
  return JSON.parse(read(DASHBOARD_FILE)) as Dashboard;
}

export function readRules(): RulesFile {
  return parse(read(RULES_FILE)) as RulesFile;
}

/** Every panel, rows' nested panels included. */
export function allPanels(d: Dashboard): Panel[] {
  return (d.panels ?? []).flatMap((p) => [p, ...(p.panels ?? [])]);
}

/**
 * The dashboard's expressions: each target's `expr` (with its legend's labels) and each query variable's
 * `label_values(selector, label)` as the selector (with the label as one it must have).
 */
export function dashboardExpressions(d: Dashboard): Expression[] {
  const out: Expression[] = [];
  for (const p of allPanels(d))
    for (const t of p.targets ?? [])
      out.push({
        where: `panel "${p.title ?? p.id}" ${t.refId ?? ''}`,
        expr: t.expr ?? '',
        templateLabels: templateLabels(t.legendFormat ?? ''),
      });
  for (const v of d.templating?.list ?? []) {
    if (v.type !== 'query') continue;
    const q = typeof v.query === 'string' ? v.query : (v.query?.query ?? '');
    const m = /^label_values\((.+),\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)$/.exec(q.trim());
    if (!m)
      throw new Error(`${DASHBOARD_FILE}: variable ${v.name}: expected label_values(selector, label), found ${q}`);
    out.push({ where: `variable ${v.name}`, expr: m[1] as string, templateLabels: [m[2] as string] });
  }
  return out;
}

/** The rules' expressions, with the labels their annotations name. */
export function ruleExpressions(r: RulesFile): Expression[] {
  return (r.groups ?? []).flatMap((g) =>
    (g.rules ?? []).map((rule) => ({
      where: `${RULES_FILE} ${g.name ?? '?'}/${rule.alert ?? rule.record ?? '?'}`,
      expr: String(rule.expr),
      templateLabels: Object.values(rule.annotations ?? {}).flatMap((a) => templateLabels(a)),
    })),
  );
}

/**
 * The series the recording rules make, with the labels they keep: their grouping labels (`by`), what they write, and
 * the labels of a selector they filter on; `le` goes with `histogram_quantile`.
 */
export function recordedMetrics(r: RulesFile): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const g of r.groups ?? [])
    for (const rule of g.rules ?? []) {
      if (rule.record === undefined) continue;
      const use = promqlUses(String(rule.expr));
      out.set(rule.record, new Set([...use.grouping, ...use.written]));
    }
  return out;
}
