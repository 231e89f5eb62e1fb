/**
 * `channel pack`: an unpacked solution folder (the layout `pac solution unpack` writes) into the zip Dataverse imports,
 * in the layout `pac solution pack` gives it: `Other/Solution.xml` becomes `solution.xml`; `Other/Customizations.xml`
 * becomes `customizations.xml` with the tables (`Entities/<name>/Entity.xml` with its forms, views and ribbon), the
 * relationships (`Other/Relationships.xml` + `Other/Relationships/*.xml`) and the web resources' metadata
 * (`WebResources/**\/*.data.xml`) merged in; each web resource's content goes to the entry its `<FileName>` names;
 * `customapis/**` is copied as it is; `[Content_Types].xml` declares every entry. What the layout rests on, and what
 * was assumed, is in docs/solutions.md.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { zipSync, type Zippable } from 'fflate';
import { SolutionPackageError, type SolutionProblem } from '../errors.js';
import {
  CONTENT_TYPE,
  CUSTOMIZATIONS_ORDER,
  ENTITY_PARTS_AFTER_INFO,
  ROOT_ENTRY_ORDER,
  ZIP_LEVEL,
} from './pack-assumptions.js';
import {
  child,
  children,
  decodeText,
  isProblem,
  newElement,
  parseXml,
  serializeXml,
  type XmlElement,
} from './pack-xml.js';

/** A solution as the checker reads it, whether it came from a folder (packed in memory) or a zip. */
export interface PackedSolution {
  /** The zip's entries in order: `[Content_Types].xml`, `solution.xml`, `customizations.xml`, then by path. */
  entries: ReadonlyMap<string, Uint8Array>;
  /** `solution.xml`'s root (`ImportExportXml`). */
  solution: XmlElement;
  /** `customizations.xml`'s root (`ImportExportXml`), each element located in the file it came from. */
  customizations: XmlElement;
  /** For an entry copied from a folder: the folder's path of it (a web resource's content file), for problems. */
  sources: ReadonlyMap<string, string>;
}

export const [CONTENT_TYPES, SOLUTION_XML, CUSTOMIZATIONS_XML] = ROOT_ENTRY_ORDER;

const OTHER_SOLUTION = 'Other/Solution.xml';
const OTHER_CUSTOMIZATIONS = 'Other/Customizations.xml';
const OTHER_RELATIONSHIPS = 'Other/Relationships.xml';

/** Reads a folder's files (dot files left out) as paths relative to it with `/`, sorted. */
async function readFolder(dir: string): Promise<Map<string, Uint8Array>> {
  const info = await stat(dir).catch(() => undefined);
  if (!info?.isDirectory()) {
    throw new SolutionPackageError('SolutionUnreadable', [{ file: dir, message: 'no such folder' }]);
  }
  const files = new Map<string, Uint8Array>();
  const walk = async (rel: string): Promise<void> => {
    const entries = await readdir(path.join(dir, rel), { withFileTypes: true });
    for (const entry of entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      if (entry.name.startsWith('.')) continue;
      const relPath = rel === '' ? entry.name : `${rel}/${entry.name}`;
      if (entry.isDirectory()) await walk(relPath);
      else if (entry.isFile()) files.set(relPath, new Uint8Array(await readFile(path.join(dir, relPath))));
    }
  };
  await walk('');
  return files;
}

function ordinal(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Parses a file of the folder, or records why not. */
function parseFile(
  files: ReadonlyMap<string, Uint8Array>,
  file: string,
  problems: SolutionProblem[],
): XmlElement | undefined {
  const bytes = files.get(file);
  if (bytes === undefined) return undefined;
  const parsed = parseXml(decodeText(bytes), file);
  if (isProblem(parsed)) {
    problems.push(parsed);
    return undefined;
  }
  return parsed;
}

function expectRoot(root: XmlElement | undefined, name: string, problems: SolutionProblem[]): XmlElement | undefined {
  if (root === undefined) return undefined;
  if (root.name === name) return root;
  problems.push({
    file: root.file,
    line: root.line,
    element: root.name,
    message: `the root element must be <${name}>`,
  });
  return undefined;
}

/**
 * A file's root as a part of customizations.xml: without its own `xmlns:xsi`, which `<ImportExportXml>` declares
 * once (exports declare it there only).
 */
function merged(root: XmlElement): XmlElement {
  const { 'xmlns:xsi': _declared, ...attributes } = root.attributes;
  return { ...root, attributes };
}

/** Sets `block` into `root`: replaces a child of that name, or inserts it where exports place it. */
function placeBlock(root: XmlElement, block: XmlElement): void {
  const at = root.children.findIndex((c) => c.name === block.name);
  if (at !== -1) {
    root.children[at] = { ...block, file: root.children[at]!.file, line: root.children[at]!.line };
    return;
  }
  const order: readonly string[] = CUSTOMIZATIONS_ORDER;
  const rank = order.indexOf(block.name);
  const before = root.children.findIndex((c) => {
    const r = order.indexOf(c.name);
    return r > rank || (r === -1 && c.name === 'Languages');
  });
  root.children.splice(before === -1 ? root.children.length : before, 0, block);
}

/**
 * One table: `Entity.xml` with the forms of `FormXml/<type>/*.xml` (as `<forms type="<type>">`), the views of
 * `SavedQueries/*.xml` and `RibbonDiff.xml` put back after `<EntityInfo>`, in the order exports have them.
 */
function entityBlock(
  files: ReadonlyMap<string, Uint8Array>,
  folder: string,
  problems: SolutionProblem[],
): XmlElement | undefined {
  const entity = expectRoot(parseFile(files, `${folder}/Entity.xml`, problems), 'Entity', problems);
  if (entity === undefined) return undefined;
  const inFolder = (sub: string): string[] =>
    [...files.keys()].filter((f) => f.startsWith(`${folder}/${sub}/`) && f.endsWith('.xml')).sort(ordinal);

  const formTypes = new Map<string, XmlElement[]>();
  for (const file of inFolder('FormXml')) {
    const type = file.slice(`${folder}/FormXml/`.length).split('/');
    if (type.length !== 2) {
      problems.push({ file, message: 'a form belongs in FormXml/<form type>/{form id}.xml' });
      continue;
    }
    const forms = expectRoot(parseFile(files, file, problems), 'forms', problems);
    if (forms === undefined) continue;
    const list = formTypes.get(type[0]!.toLowerCase()) ?? [];
    list.push(...children(forms, 'systemform'));
    formTypes.set(type[0]!.toLowerCase(), list);
  }
  const views: XmlElement[] = [];
  for (const file of inFolder('SavedQueries')) {
    const queries = expectRoot(parseFile(files, file, problems), 'savedqueries', problems);
    views.push(...children(queries, 'savedquery'));
  }
  const ribbon = expectRoot(parseFile(files, `${folder}/RibbonDiff.xml`, problems), 'RibbonDiffXml', problems);

  const file = `${folder}/Entity.xml`;
  const built: XmlElement[] = [];
  if (formTypes.size > 0) {
    built.push(
      newElement(
        'FormXml',
        file,
        [...formTypes].map(([type, forms]) => newElement('forms', file, forms, { type })),
      ),
    );
  }
  if (views.length > 0) built.push(newElement('SavedQueries', file, [newElement('savedqueries', file, views)]));
  if (ribbon !== undefined) built.push(merged(ribbon));
  const parts: readonly string[] = ENTITY_PARTS_AFTER_INFO;
  built.sort((a, b) => parts.indexOf(a.name) - parts.indexOf(b.name));
  const replaced = new Set(built.map((b) => b.name));
  const kept = entity.children.filter((c) => !replaced.has(c.name));
  const info = kept.findIndex((c) => c.name === 'EntityInfo');
  kept.splice(info === -1 ? kept.length : info + 1, 0, ...built);
  return { ...merged(entity), children: kept };
}

/** `Other/Relationships.xml` names the relationships; `Other/Relationships/<table>.xml` defines them. */
function relationshipsBlock(
  files: ReadonlyMap<string, Uint8Array>,
  problems: SolutionProblem[],
): XmlElement | undefined {
  const index = expectRoot(parseFile(files, OTHER_RELATIONSHIPS, problems), 'EntityRelationships', problems);
  const defined = new Map<string, XmlElement>();
  for (const file of [...files.keys()]
    .filter((f) => f.startsWith('Other/Relationships/') && f.endsWith('.xml'))
    .sort(ordinal)) {
    const root = expectRoot(parseFile(files, file, problems), 'EntityRelationships', problems);
    for (const rel of children(root, 'EntityRelationship')) {
      const name = rel.attributes['Name'];
      if (name === undefined) {
        problems.push({
          file,
          line: rel.line,
          element: 'EntityRelationships/EntityRelationship',
          message: 'needs a Name attribute',
        });
      } else defined.set(name, rel);
    }
  }
  if (index === undefined && defined.size === 0) return undefined;
  const ordered: XmlElement[] = [];
  for (const ref of children(index, 'EntityRelationship')) {
    const name = ref.attributes['Name'] ?? '';
    const rel = defined.get(name);
    if (rel === undefined) {
      problems.push({
        file: ref.file,
        line: ref.line,
        element: 'EntityRelationships/EntityRelationship',
        message: `relationship '${name}' is listed but no Other/Relationships/*.xml defines it`,
      });
      continue;
    }
    ordered.push(rel);
    defined.delete(name);
  }
  ordered.push(...defined.values());
  return newElement('EntityRelationships', index?.file ?? OTHER_RELATIONSHIPS, ordered);
}

interface WebResourceFile {
  metadata: XmlElement;
  /** The content's path in the folder and in the zip. */
  folderPath: string;
  zipPath: string;
}

/** Each `WebResources/**\/<name>.data.xml` and the content file beside it. */
function webResources(files: ReadonlyMap<string, Uint8Array>, problems: SolutionProblem[]): WebResourceFile[] {
  const out: WebResourceFile[] = [];
  const dataFiles = [...files.keys()].filter((f) => f.startsWith('WebResources/') && f.endsWith('.data.xml'));
  for (const file of dataFiles.sort(ordinal)) {
    const metadata = expectRoot(parseFile(files, file, problems), 'WebResource', problems);
    if (metadata === undefined) continue;
    const folderPath = file.slice(0, -'.data.xml'.length);
    if (!files.has(folderPath)) {
      problems.push({ file, element: 'WebResource', message: `its content file ${folderPath} is missing` });
      continue;
    }
    const fileName = child(metadata, 'FileName');
    if (fileName === undefined || fileName.text === '') {
      problems.push({
        file,
        line: metadata.line,
        element: 'WebResource/FileName',
        message: 'is required: the path of the content in the packed zip (e.g. /WebResources/<name>)',
      });
      continue;
    }
    out.push({ metadata: merged(metadata), folderPath, zipPath: fileName.text.replace(/^\/+/, '') });
  }
  return out;
}

/** What pack handles: everything else in a folder is refused rather than left out of the zip unnoticed. */
function handled(file: string, web: ReadonlySet<string>): boolean {
  return (
    file === OTHER_SOLUTION ||
    file === OTHER_CUSTOMIZATIONS ||
    file === OTHER_RELATIONSHIPS ||
    (file.startsWith('Other/Relationships/') && file.endsWith('.xml')) ||
    /^Entities\/[^/]+\/(Entity\.xml|RibbonDiff\.xml|FormXml\/.+\.xml|SavedQueries\/[^/]+\.xml)$/.test(file) ||
    (file.startsWith('WebResources/') && (file.endsWith('.data.xml') || web.has(file))) ||
    file.startsWith('customapis/')
  );
}

/** `[Content_Types].xml`: a Default per extension (xml first), an Override per entry without one. */
function contentTypes(names: readonly string[]): Uint8Array {
  const extensions = ['xml'];
  const overrides: string[] = [];
  for (const name of names) {
    const base = name.slice(name.lastIndexOf('/') + 1);
    const dot = base.lastIndexOf('.');
    if (dot <= 0) overrides.push(`/${name}`);
    else if (!extensions.includes(base.slice(dot + 1).toLowerCase()))
      extensions.push(base.slice(dot + 1).toLowerCase());
  }
  const escape = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/"/g, '&quot;');
  const body =
    extensions.map((e) => `<Default Extension="${escape(e)}" ContentType="${CONTENT_TYPE}" />`).join('') +
    overrides.map((p) => `<Override PartName="${escape(p)}" ContentType="${CONTENT_TYPE}" />`).join('');
  return new TextEncoder().encode(
    `<?xml version="1.0" encoding="utf-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">${body}</Types>`,
  );
}

/**
 * Assembles the zip's entries from a folder's files (paths relative to the folder, `/`-separated). Throws a
 * `SolutionPackageError` with every problem found (a file that is not well-formed, a missing part, a file pack does not
 * handle).
 */
function assembleSolution(files: ReadonlyMap<string, Uint8Array>): PackedSolution {
  const problems: SolutionProblem[] = [];
  for (const required of [OTHER_SOLUTION, OTHER_CUSTOMIZATIONS]) {
    if (!files.has(required)) problems.push({ file: required, message: 'is missing: every unpacked solution has it' });
  }
  const solution = expectRoot(parseFile(files, OTHER_SOLUTION, problems), 'ImportExportXml', problems);
  const customizations = expectRoot(parseFile(files, OTHER_CUSTOMIZATIONS, problems), 'ImportExportXml', problems);

  const entityFolders = [
    ...new Set(
      [...files.keys()].filter((f) => f.startsWith('Entities/')).map((f) => f.split('/').slice(0, 2).join('/')),
    ),
  ].sort(ordinal);
  const entities = entityFolders
    .map((folder) => entityBlock(files, folder, problems))
    .filter((e): e is XmlElement => e !== undefined);
  const relationships = relationshipsBlock(files, problems);
  const web = webResources(files, problems);

  const webContent = new Set(web.map((w) => w.folderPath));
  for (const file of files.keys()) {
    if (!handled(file, webContent)) {
      problems.push({
        file,
        message:
          'is not a part of a solution that channel pack handles (Other/, Entities/<table>/, WebResources/, customapis/)',
      });
    }
  }
  const zipPaths = new Map<string, string>();
  for (const w of web) {
    const other = zipPaths.get(w.zipPath.toLowerCase());
    if (other !== undefined || (ROOT_ENTRY_ORDER as readonly string[]).includes(w.zipPath)) {
      problems.push({
        file: `${w.folderPath}.data.xml`,
        element: 'WebResource/FileName',
        message: `/${w.zipPath} is the packed path of ${other ?? 'a root file'} already`,
      });
    }
    zipPaths.set(w.zipPath.toLowerCase(), `${w.folderPath}.data.xml`);
  }
  if (problems.length > 0 || solution === undefined || customizations === undefined) {
    throw new SolutionPackageError('SolutionInvalid', problems);
  }

  const result: XmlElement = { ...customizations, children: [...customizations.children] };
  placeBlock(result, newElement('Entities', OTHER_CUSTOMIZATIONS, entities));
  if (relationships !== undefined) placeBlock(result, relationships);
  if (web.length > 0)
    placeBlock(
      result,
      newElement(
        'WebResources',
        OTHER_CUSTOMIZATIONS,
        web.map((w) => w.metadata),
      ),
    );

  const rest = new Map<string, Uint8Array>();
  const sources = new Map<string, string>();
  for (const w of web) {
    rest.set(w.zipPath, files.get(w.folderPath)!);
    sources.set(w.zipPath, w.folderPath);
  }
  for (const [file, bytes] of files) if (file.startsWith('customapis/')) rest.set(file, bytes);
  const restNames = [...rest.keys()].sort(ordinal);

  const encoder = new TextEncoder();
  const entries = new Map<string, Uint8Array>();
  entries.set(CONTENT_TYPES, contentTypes([SOLUTION_XML, CUSTOMIZATIONS_XML, ...restNames]));
  entries.set(SOLUTION_XML, encoder.encode(serializeXml(solution)));
  entries.set(CUSTOMIZATIONS_XML, encoder.encode(serializeXml(result)));
  for (const name of restNames) entries.set(name, rest.get(name)!);
  return { entries, solution, customizations: result, sources };
}

/**
 * The zip of entries in their order, deflated, every entry dated 1980-01-01 00:00 (the zip format's earliest): same
 * entries, same bytes. The date is made in local time when zipping, because the zip's DOS time fields are local:
 * the same folder gives the same bytes in any time zone.
 */
function zipEntries(entries: ReadonlyMap<string, Uint8Array>): Uint8Array {
  const mtime = new Date(1980, 0, 1, 0, 0, 0);
  const zippable: Zippable = {};
  for (const [name, bytes] of entries) zippable[name] = [bytes, { level: ZIP_LEVEL, mtime }];
  return zipSync(zippable);
}

/** Packs an unpacked solution folder into the zip Dataverse imports. Throws a `SolutionPackageError` naming each problem. */
export async function packSolution(dir: string): Promise<Uint8Array> {
  return zipEntries(assembleSolution(await readFolder(dir)).entries);
}

/** The folder's files and what pack makes of them, for `checkSolution`. */
export async function assembleFolder(dir: string): Promise<PackedSolution> {
  return assembleSolution(await readFolder(dir));
}
