/**
 * The part of kustomize that deploy/kubernetes/ uses, so that its tests need no kustomize binary: resources (files and
 * kustomization folders), `namespace`, `images`, `configMapGenerator` (files and literals; local-config ConfigMaps are
 * read by replacements and left out), JSON 6902 `patches` from files, and `replacements` (field paths with `[k=v]`
 * list selectors, `[a.b/c]` keys, list indexes, and the `delimiter`/`index` options). Anything else in a
 * kustomization is refused by name rather than ignored; generated names carry no hash suffix.
 * test/unit/deploy/kubernetes.test.ts compares this rendering with `kubectl kustomize` where kubectl exists.
 */
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';

export type KubeObject = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; annotations?: Record<string, string>; labels?: Record<string, string> };
  [key: string]: unknown;
};

interface Selector {
  kind?: string;
  name?: string;
}
interface Kustomization {
  namespace?: string;
  resources?: string[];
  images?: Array<{ name: string; newName?: string; newTag?: string }>;
  configMapGenerator?: Array<{
    name: string;
    files?: string[];
    literals?: string[];
    options?: { disableNameSuffixHash?: boolean; annotations?: Record<string, string> };
  }>;
  patches?: Array<{ path: string; target: Selector }>;
  replacements?: Array<{
    source: Selector & { fieldPath: string };
    targets: Array<{ select: Selector; fieldPaths: string[]; options?: { delimiter?: string; index?: number } }>;
  }>;
}

const SUPPORTED = new Set([
  'apiVersion',
  'kind',
  'namespace',
  'resources',
  'images',
  'configMapGenerator',
  'patches',
  'replacements',
]);
const LOCAL_CONFIG = 'config.kubernetes.io/local-config';

/** The YAML documents of a file, parsed; a syntax error names the file. */
export function readManifests(file: string): KubeObject[] {
  return parseAllDocuments(readFileSync(file, 'utf8')).flatMap((doc) => {
    if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors.map((e) => e.message).join('; ')}`);
    const value = doc.toJS() as KubeObject | null;
    return value === null ? [] : [value];
  });
}

/** A kustomization folder's kustomization.yaml, refusing fields this renderer does not implement. */
export function readKustomization(dir: string): Kustomization {
  const file = path.join(dir, 'kustomization.yaml');
  const k = readManifests(file)[0] as unknown as Kustomization & Record<string, unknown>;
  const unsupported = Object.keys(k).filter((key) => !SUPPORTED.has(key));
  if (unsupported.length > 0) throw new Error(`${file}: ${unsupported.join(', ')} not supported by this renderer`);
  return k;
}

function matches(o: KubeObject, s: Selector): boolean {
  return (s.kind === undefined || o.kind === s.kind) && (s.name === undefined || o.metadata.name === s.name);
}

/** A field path's segments: `a.b`, `[k=v]`, `[key.with.dots]` and list indexes. */
function segments(fieldPath: string): string[] {
  return [...fieldPath.matchAll(/\[[^\]]*\]|[^.[\]]+/g)].map((m) => m[0]);
}

type Container = Record<string, unknown> | unknown[];

/** The container holding a field path's last segment, and that segment resolved (a key or an index). */
function locate(root: KubeObject, fieldPath: string, where: string): { parent: Container; key: string | number } {
  const parts = segments(fieldPath);
  let node: unknown = root;
  const step = (n: unknown, seg: string): { parent: Container; key: string | number } => {
    const selector = /^\[([^=\]]+)=([^\]]*)\]$/.exec(seg);
    if (selector) {
      if (!Array.isArray(n)) throw new Error(`${where}: ${fieldPath}: ${seg} selects in a non-list`);
      const i = n.findIndex((e) => (e as Record<string, unknown>)[selector[1]!] === selector[2]);
      if (i < 0) throw new Error(`${where}: ${fieldPath}: no element ${seg}`);
      return { parent: n, key: i };
    }
    const key = seg.startsWith('[') ? seg.slice(1, -1) : seg;
    if (Array.isArray(n) && /^\d+$/.test(key)) return { parent: n, key: Number(key) };
    if (n === null || typeof n !== 'object' || Array.isArray(n))
      throw new Error(`${where}: ${fieldPath}: ${seg} is not in a map`);
    return { parent: n as Record<string, unknown>, key };
  };
  for (const seg of parts.slice(0, -1)) {
    const { parent, key } = step(node, seg);
    node = (parent as Record<string | number, unknown>)[key];
    if (node === undefined) throw new Error(`${where}: ${fieldPath}: nothing at ${seg}`);
  }
  return step(node, parts[parts.length - 1]!);
}

function get(o: KubeObject, fieldPath: string, where: string): unknown {
  const { parent, key } = locate(o, fieldPath, where);
  const value = (parent as Record<string | number, unknown>)[key];
  if (value === undefined) throw new Error(`${where}: ${fieldPath}: no value`);
  return value;
}

/** JSON 6902 `replace` and `add` on object keys and list indexes. */
function applyJsonPatch(o: KubeObject, ops: Array<{ op: string; path: string; value: unknown }>, where: string): void {
  for (const { op, path: pointer, value } of ops) {
    if (op !== 'replace' && op !== 'add') throw new Error(`${where}: op ${op} not supported by this renderer`);
    const fieldPath = pointer
      .split('/')
      .slice(1)
      .map((p) => `[${p.replace(/~1/g, '/').replace(/~0/g, '~')}]`)
      .join('.');
    const { parent, key } = locate(o, fieldPath, where);
    if (op === 'replace' && (parent as Record<string | number, unknown>)[key] === undefined)
      throw new Error(`${where}: replace ${pointer}: nothing there`);
    (parent as Record<string | number, unknown>)[key] = value;
  }
}

/** Every object a kustomization folder renders to, in resource order, generated objects after. */
export function renderKustomization(dir: string): KubeObject[] {
  const k = readKustomization(dir);
  const objects: KubeObject[] = [];
  for (const resource of k.resources ?? []) {
    const target = path.join(dir, resource);
    objects.push(...(statSync(target).isDirectory() ? renderKustomization(target) : readManifests(target)));
  }
  for (const gen of k.configMapGenerator ?? []) {
    const data: Record<string, string> = {};
    for (const f of gen.files ?? []) data[path.basename(f)] = readFileSync(path.join(dir, f), 'utf8');
    for (const l of gen.literals ?? []) data[l.slice(0, l.indexOf('='))] = l.slice(l.indexOf('=') + 1);
    const annotations = gen.options?.annotations;
    objects.push({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: gen.name, ...(annotations ? { annotations: { ...annotations } } : {}) },
      data,
    });
  }
  for (const o of objects) if (k.namespace !== undefined) o.metadata.namespace = k.namespace;
  for (const image of k.images ?? [])
    for (const o of objects.filter((x) => x.kind === 'Deployment'))
      for (const c of (o as unknown as { spec: { template: { spec: { containers: Array<{ image: string }> } } } }).spec
        .template.spec.containers)
        if (c.image === image.name || c.image.startsWith(`${image.name}:`))
          c.image = `${image.newName ?? image.name}${image.newTag ? `:${image.newTag}` : ''}`;
  for (const patch of k.patches ?? []) {
    const file = path.join(dir, patch.path);
    const ops = readManifests(file)[0] as unknown;
    if (!Array.isArray(ops)) throw new Error(`${file}: only JSON 6902 patches (a list of ops) are supported`);
    const targets = objects.filter((o) => matches(o, patch.target));
    if (targets.length === 0) throw new Error(`${file}: the target ${JSON.stringify(patch.target)} matches nothing`);
    for (const o of targets) applyJsonPatch(o, ops as Array<{ op: string; path: string; value: unknown }>, file);
  }
  for (const r of k.replacements ?? []) {
    const sources = objects.filter((o) => matches(o, r.source));
    if (sources.length !== 1)
      throw new Error(`${dir}: replacement source ${JSON.stringify(r.source)} is not one object`);
    const value = get(sources[0]!, r.source.fieldPath, `${dir} source`);
    for (const t of r.targets) {
      const selected = objects.filter((o) => matches(o, t.select));
      if (selected.length === 0)
        throw new Error(`${dir}: replacement target ${JSON.stringify(t.select)} matches nothing`);
      for (const o of selected)
        for (const fp of t.fieldPaths) {
          const where = `${dir}: ${o.kind}/${o.metadata.name}`;
          const { parent, key } = locate(o, fp, where);
          const slot = parent as Record<string | number, unknown>;
          if (t.options?.delimiter !== undefined) {
            const parts = String(slot[key]).split(t.options.delimiter);
            parts[t.options.index ?? 0] = String(value);
            slot[key] = parts.join(t.options.delimiter);
          } else slot[key] = value;
        }
    }
  }
  return objects.filter((o) => o.metadata.annotations?.[LOCAL_CONFIG] !== 'true');
}
