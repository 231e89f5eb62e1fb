import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { packageRoot } from '../../src/paths.js';

/** The hand-written unpacked solutions of test/fixtures/solutions/: `outbound` (a tile) and `realtime` (SMS). */
export type SolutionFixture = 'outbound' | 'realtime';

export function fixtureDir(name: SolutionFixture): string {
  return path.join(packageRoot(), 'test', 'fixtures', 'solutions', name);
}

/** A copy of a fixture in a temporary folder, to break; `remove()` deletes it. */
export function copyFixture(name: SolutionFixture): {
  dir: string;
  edit: (file: string, from: string | RegExp, to: string) => void;
  remove: () => void;
} {
  const root = mkdtempSync(path.join(tmpdir(), 'relay-solution-'));
  const dir = path.join(root, name);
  cpSync(fixtureDir(name), dir, { recursive: true });
  return {
    dir,
    edit: (file, from, to) => {
      const full = path.join(dir, file);
      const text = readFileSync(full, 'utf8');
      const next = text.replace(from, to);
      if (next === text) throw new Error(`the edit of ${file} changed nothing: ${String(from)}`);
      writeFileSync(full, next);
    },
    remove: () => rmSync(root, { recursive: true, force: true }),
  };
}

/** The 1-based line of the first line of `text` that contains `needle`. */
export function lineOf(text: string, needle: string): number {
  const index = text.indexOf(needle);
  if (index === -1) throw new Error(`'${needle}' is not in the text`);
  return text.slice(0, index).split('\n').length;
}
