/**
 * Where the package's own files are, from the source tree (tsx) and from the compiled tree (`dist/`) alike.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

let root: string | undefined;

/** The folder holding the package's `package.json` (and `config/`). */
export function packageRoot(): string {
  if (root) return root;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json'))) {
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`no package.json above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
  root = dir;
  return root;
}

/** A path inside the package's `config/` folder. */
export function configPath(...parts: string[]): string {
  return path.join(packageRoot(), 'config', ...parts);
}
