/**
 * Every package package-lock.json installs declares (in `engines.node`) that it runs on the oldest Node the project
 * supports (package.json `engines`, 20.19.0) and on the LTS it ships on and tests with `npm run test:lts`
 * (package.json `config.nodeLts`, the Dockerfile's image). A package that excludes one is a defect unless listed in
 * ALLOWED with the reason it runs anyway; an entry that no longer matches the lock fails too, so the list stays true.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { packageRoot } from '../../src/paths.js';

interface LockPackage {
  version?: string;
  dev?: boolean;
  engines?: Record<string, string> | string[] | string;
}
const root = packageRoot();
const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as {
  engines: { node: string };
  config: { nodeLts: string };
};
const lock = JSON.parse(readFileSync(path.join(root, 'package-lock.json'), 'utf8')) as {
  packages: Record<string, LockPackage>;
};

/**
 * name@version → why it runs although its engines exclude a supported Node. Only dev-only packages, or a runtime
 * package the relay never loads, pending a fix.
 */
const ALLOWED: Record<string, string> = {};

type Version = [number, number, number];

function parseVersion(text: string): Version {
  const m = /^v?(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (!m) throw new Error(`not a version: ${text}`);
  return [Number(m[1]), Number(m[2]), Number(m[3])];
}

function compare(a: Version, b: Version): number {
  return a[0] - b[0] || a[1] - b[1] || a[2] - b[2];
}

/** A possibly partial version (`20`, `14.17`, `10.x`, `6.*`) as its parts, undefined for a wildcard part. */
function partial(text: string): Array<number | undefined> {
  return text
    .replace(/^v/, '')
    .split('.')
    .map((p) => (p === 'x' || p === 'X' || p === '*' ? undefined : Number(p)))
    .map((n) =>
      n !== undefined && Number.isNaN(n)
        ? (() => {
            throw new Error(`not a version: ${text}`);
          })()
        : n,
    );
}

const floor = (p: Array<number | undefined>): Version => [p[0] ?? 0, p[1] ?? 0, p[2] ?? 0];

/** The first version after every version with the first `given` parts of `v` (`>20` is `>=21.0.0`). */
const bump = (v: Version, given: number): Version =>
  v.map((x, i) => (i < given - 1 ? x : i === given - 1 ? x + 1 : 0)) as Version;

/** Whether `v` satisfies one comparator (`>=20.19.0`, `^20.19.0`, `~1.2`, `20`, `*`, `<9.0.0`). */
function satisfiesComparator(v: Version, comparator: string): boolean {
  const m = /^(>=|<=|>|<|=|\^|~)?(.*)$/.exec(comparator) as RegExpExecArray;
  const op = m[1] ?? '';
  const rest = m[2] as string;
  if (rest === '*' || rest === '') return true;
  const p = partial(rest);
  const low = floor(p);
  const known = p.findIndex((x) => x === undefined);
  const given = known < 0 ? Math.min(p.length, 3) : known;
  switch (op) {
    case '>=':
      return compare(v, low) >= 0;
    case '<':
      return compare(v, low) < 0;
    case '>':
      return compare(v, given === 3 ? low : bump(low, given)) >= (given === 3 ? 1 : 0);
    case '<=':
      return given === 3 ? compare(v, low) <= 0 : compare(v, bump(low, given)) < 0;
    case '^': {
      const lead = low[0] > 0 ? 0 : low[1] > 0 ? 1 : 2;
      return compare(v, low) >= 0 && v.slice(0, lead + 1).every((x, i) => x === low[i]);
    }
    case '~':
      return compare(v, low) >= 0 && v[0] === low[0] && (given < 2 || v[1] === low[1]);
    default:
      // `20`, `20.19`, `10.x`: that prefix; `20.19.0`, `=20.19.0`: exactly.
      return v.slice(0, given).every((x, i) => x === low[i]);
  }
}

/** Whether `version` satisfies an npm range (`||` of space-separated comparators, `>= 18` spacing included). */
function satisfies(version: string, range: string): boolean {
  const v = parseVersion(version);
  return range.split('||').some((set) => {
    const comparators = set
      .trim()
      .replace(/(>=|<=|>|<|=|\^|~)\s+/g, '$1')
      .split(/\s+/)
      .filter(Boolean);
    if (comparators.some((c) => c.includes(' - '))) throw new Error(`hyphen ranges are not read: ${range}`);
    return comparators.every((c) => satisfiesComparator(v, c));
  });
}

describe('engines', () => {
  const oldest = /^>=\s*(\d+\.\d+\.\d+)$/.exec(pkg.engines.node)?.[1];
  const lts = pkg.config.nodeLts;

  it('the project supports Node 20.19 and its LTS, and the Dockerfile ships that LTS', () => {
    assert.equal(oldest, '20.19.0');
    assert.ok(satisfies(lts, pkg.engines.node), `config.nodeLts ${lts} is within engines ${pkg.engines.node}`);
    const dockerfile = readFileSync(path.join(root, 'Dockerfile'), 'utf8');
    const major = lts.split('.')[0] as string;
    assert.match(dockerfile, new RegExp(`^ARG NODE_IMAGE=node:${major}-slim$`, 'm'));
  });

  it('reads npm ranges as npm does', () => {
    const cases: Array<[string, string, boolean]> = [
      ['20.19.0', '>=20.19.0', true],
      ['20.18.3', '>= 20.19.0', false],
      ['26.12.1', '^20.19.0 || ^22.13.0 || >=24', true],
      ['22.12.0', '^20.19.0 || ^22.13.0 || >=24', false],
      ['20.19.0', '^18.19.0 || >=20.6.0', true],
      ['26.12.1', '20 || >=22', true],
      ['21.0.0', '20 || >=22', false],
      ['20.19.0', '>=16 || 14 >=14.17', true],
      ['20.19.0', '6.* || 8.* || >= 10.*', true],
      ['7.1.0', '6.* || 8.* || >= 10.*', false],
      ['20.19.0', '>=9.3.0 || >=8.10.0 <9.0.0', true],
      ['8.11.0', '>=9.3.0 || >=8.10.0 <9.0.0', true],
      ['9.0.0', '>=9.3.0 || >=8.10.0 <9.0.0', false],
      ['20.19.0', '>=22', false],
      ['20.19.0', '*', true],
      ['20.19.0', '~20.18.0', false],
      ['20.19.5', '~20.19.0', true],
      ['21.0.0', '>20', true],
      ['20.19.0', '>20', false],
      ['20.19.0', '<=20', true],
      ['21.0.0', '<=20', false],
    ];
    for (const [version, range, expected] of cases)
      assert.equal(satisfies(version, range), expected, `${version} in ${range}`);
  });

  it(`every package in package-lock.json runs on Node 20.19.0 and ${lts}, or is allowed with a reason`, () => {
    const refusing: string[] = [];
    const seen = new Set<string>();
    for (const [where, p] of Object.entries(lock.packages)) {
      if (where === '') continue;
      const name = where.slice(where.lastIndexOf('node_modules/') + 'node_modules/'.length);
      const id = `${name}@${p.version ?? '?'}`;
      const range = typeof p.engines === 'object' && !Array.isArray(p.engines) ? p.engines['node'] : undefined;
      if (range === undefined) continue;
      const excluded = [oldest as string, lts].filter((v) => !satisfies(v, range));
      if (excluded.length === 0) continue;
      seen.add(id);
      if (ALLOWED[id] !== undefined) continue;
      refusing.push(
        `${id} (${p.dev ? 'dev' : 'runtime'}, ${where}): engines.node "${range}" excludes ${excluded.join(' and ')}`,
      );
    }
    assert.deepEqual(refusing, [], 'packages whose engines exclude a supported Node');
    const stale = Object.keys(ALLOWED).filter((id) => !seen.has(id));
    assert.deepEqual(stale, [], 'ALLOWED entries that no longer match a refusing package in the lock: delete them');
  });
});
