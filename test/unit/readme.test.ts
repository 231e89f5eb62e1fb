import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ENV_OVERRIDES, secretPaths } from '../../src/config/index.js';
import { packageRoot } from '../../src/paths.js';

/** The README's configuration reference must stay true to the schema and the environment overrides. */
describe('README', () => {
  const readme = readFileSync(path.join(packageRoot(), 'README.md'), 'utf8');
  const schema = JSON.parse(readFileSync(path.join(packageRoot(), 'config/schema.json'), 'utf8')) as {
    properties: Record<string, unknown>;
  };
  // The rows of the configuration reference's table, up to its next heading (the channels file's table follows it).
  const start = readme.indexOf('## Configuration reference');
  const reference = readme.slice(start, readme.slice(start + 1).search(/^##+ /m) + start + 1);
  const rows = new Map(
    [...reference.matchAll(/^\| `([^`]+)` \| (?:`([A-Z_]+)`)? *\|/gm)].map((m) => [m[1] as string, m[2]]),
  );

  const leaves = (node: { properties?: Record<string, unknown> }, prefix = ''): string[] =>
    Object.entries(node.properties ?? {}).flatMap(([k, child]) => {
      const p = prefix ? `${prefix}.${k}` : k;
      const c = child as { properties?: Record<string, unknown> };
      return c.properties ? leaves(c, p) : [p];
    });

  it('opens with the two quick-start commands', () => {
    const quick = readme.slice(0, readme.indexOf('## Concepts'));
    assert.match(quick, /npm install && npm start/);
    assert.match(quick, /npm install && npm test/);
  });

  it('documents every configuration key of the schema, and no other', () => {
    assert.deepEqual([...rows.keys()].sort(), leaves(schema).sort());
  });

  it('names the environment variable of every override', () => {
    for (const [name, key] of Object.entries(ENV_OVERRIDES)) assert.equal(rows.get(key), name, `${key} ↔ ${name}`);
  });

  it('marks every secret as one', () => {
    for (const key of secretPaths()) {
      const line = readme.split('\n').find((l) => l.startsWith(`| \`${key}\``));
      assert.match(line ?? '', /Secret\./, key);
    }
  });
});
