/**
 * `channel check`: a solution folder (packed in memory first, so that one checker reads one form) or zip against the
 * rules Dataverse's import and the custom channel pages state: the three root files, well-formed XML with the line of
 * the error, the content types, the manifest, lowercase GUIDs in the customization files, the web resources, the
 * custom APIs, and the channel parts (check-channel.ts). Each problem names its file, element and line.
 */
import { unzipSync } from 'fflate';
import type { ChannelRegistry } from '../channels/index.js';
import { isSolutionPackageError, type SolutionProblem } from '../errors.js';
import { checkChannelParts } from './check-channel.js';
import { at, readModel, type SolutionModel } from './check-model.js';
import { assembleFolder, CONTENT_TYPES, CUSTOMIZATIONS_XML, SOLUTION_XML, type PackedSolution } from './pack.js';
import { child, children, childText, decodeText, isProblem, parseXml, type XmlElement } from './pack-xml.js';

export type SolutionSource = { dir: string } | { zip: Uint8Array; name: string };

export interface CheckSolutionOptions {
  /** The relay's channels file: the solution's tiles and channel definitions must be the ones it names. */
  channels?: ChannelRegistry;
  /**
   * A zip whose entries declare more than this many bytes, all together, is refused before it is expanded (a zip
   * bomb). Not a Dataverse limit: a channel's solution is a few kilobytes. @defaultValue 268435456 (256 MiB)
   */
  maxExpandedBytes?: number;
}

const MAX_EXPANDED_BYTES = 256 * 1024 * 1024;

/**
 * Dataverse's own refusal names these three ("The compressed file must contain the following files at its root:
 * solution.xml, customizations.xml, and [Content_Types].xml").
 */
const ROOT_FILES = [SOLUTION_XML, CUSTOMIZATIONS_XML, CONTENT_TYPES];

/** A GUID anywhere in a value, to find upper-case ones. */
const ANY_GUID = /[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}/g;

/** Web resource types 1 to 12 (HTML … SVG, RESX), PA-docs webresource table `WebResourceType`. */
const WEB_RESOURCE_TYPE = /^(?:[1-9]|1[0-2])$/;

/** Reads a zip into what the checker reads, or the problems that stop it. */
function openZip(zip: Uint8Array, name: string, maxExpandedBytes: number): PackedSolution | SolutionProblem[] {
  let files: Record<string, Uint8Array>;
  let expanded = 0;
  try {
    // Each entry is expanded right after the filter takes it, into a buffer of its declared size.
    files = unzipSync(zip, { filter: (entry) => (expanded += entry.originalSize) <= maxExpandedBytes });
  } catch (err) {
    return [{ file: name, message: `not a zip file: ${(err as Error).message}` }];
  }
  if (expanded > maxExpandedBytes) {
    return [{ file: name, message: `its entries declare more than ${maxExpandedBytes} bytes: refused unread` }];
  }
  const entries = new Map(Object.entries(files).filter(([entry]) => !entry.endsWith('/')));
  const missing = ROOT_FILES.filter((f) => !entries.has(f));
  if (missing.length > 0) {
    return [
      {
        file: name,
        message: `a solution zip must contain solution.xml, customizations.xml and [Content_Types].xml at its root; missing: ${missing.join(', ')}`,
      },
    ];
  }
  const problems: SolutionProblem[] = [];
  const roots: XmlElement[] = [];
  for (const file of [SOLUTION_XML, CUSTOMIZATIONS_XML]) {
    const root = parseXml(decodeText(entries.get(file)!), file);
    if (isProblem(root)) problems.push(root);
    else if (root.name !== 'ImportExportXml')
      problems.push(at(root, root.name, 'the root element must be <ImportExportXml>'));
    else roots.push(root);
  }
  if (problems.length > 0) return problems;
  return { entries, solution: roots[0]!, customizations: roots[1]!, sources: new Map() };
}

/** Every entry has a content type: a Default for its extension or an Override for its part name. */
function checkContentTypes(packed: PackedSolution, problems: SolutionProblem[]): void {
  const root = parseXml(decodeText(packed.entries.get(CONTENT_TYPES)!), CONTENT_TYPES);
  if (isProblem(root)) {
    problems.push(root);
    return;
  }
  if (root.name !== 'Types') {
    problems.push(at(root, root.name, 'the root element must be <Types> (Open Packaging content types)'));
    return;
  }
  const defaults = new Set(children(root, 'Default').map((d) => (d.attributes['Extension'] ?? '').toLowerCase()));
  const overrides = new Set(children(root, 'Override').map((o) => (o.attributes['PartName'] ?? '').toLowerCase()));
  for (const entry of packed.entries.keys()) {
    if (entry === CONTENT_TYPES) continue;
    const base = entry.slice(entry.lastIndexOf('/') + 1);
    const dot = base.lastIndexOf('.');
    const ext = dot <= 0 ? undefined : base.slice(dot + 1).toLowerCase();
    if ((ext === undefined || !defaults.has(ext)) && !overrides.has(`/${entry}`.toLowerCase())) {
      problems.push(
        at(
          root,
          'Types',
          `declares no content type for ${entry} (a Default for its extension or an Override for /${entry})`,
        ),
      );
    }
  }
}

/** solution.xml names the solution, its version and its publisher. */
function checkManifest(solution: XmlElement, problems: SolutionProblem[]): void {
  const manifest = child(solution, 'SolutionManifest');
  if (manifest === undefined) {
    problems.push(at(solution, 'ImportExportXml/SolutionManifest', 'is required'));
    return;
  }
  const where = 'ImportExportXml/SolutionManifest';
  if (childText(manifest, 'UniqueName') === undefined)
    problems.push(at(manifest, `${where}/UniqueName`, 'is required'));
  const version = childText(manifest, 'Version');
  if (version === undefined || !/^\d+(\.\d+){1,3}$/.test(version)) {
    problems.push(
      at(
        child(manifest, 'Version') ?? manifest,
        `${where}/Version`,
        `must be a version such as 1.0.0.0, found '${version ?? 'nothing'}'`,
      ),
    );
  }
  const publisher = child(manifest, 'Publisher');
  for (const name of ['UniqueName', 'CustomizationPrefix']) {
    if (childText(publisher, name) === undefined)
      problems.push(at(publisher ?? manifest, `${where}/Publisher/${name}`, 'is required'));
  }
}

/**
 * Parts of a customization file whose GUIDs are not ids a solution defines, written as Microsoft writes them: a form's
 * layout (its controls' `classid`s are upper case in exports), a ribbon's XML, and a web resource's `FileName` (a path
 * in the zip; public material shows it with the id in either case, and an import does not depend on it). The
 * lowercase rule is about the records and ids a solution defines.
 */
const FOREIGN_GUIDS = new Set(['form', 'RibbonDiffXml', 'FileName']);

/**
 * GUIDs in the customization files are lowercase (the channel definition and message part pages: "make sure that
 * GUIDs are defined in lowercase"); applied to every element of solution.xml, customizations.xml and customapis/ but
 * {@link FOREIGN_GUIDS}.
 */
function checkGuidCase(documents: readonly XmlElement[], problems: SolutionProblem[]): void {
  const walk = (el: XmlElement, path: string): void => {
    if (FOREIGN_GUIDS.has(el.name)) return;
    const values = [el.text, ...Object.values(el.attributes)];
    const upper = values.flatMap((v) => v.match(ANY_GUID) ?? []).filter((g) => g !== g.toLowerCase());
    if (upper.length > 0) {
      problems.push(at(el, path, `GUIDs in customization files must be lowercase, found ${upper.join(', ')}`));
    }
    for (const c of el.children) walk(c, `${path}/${c.name}`);
  };
  for (const doc of documents) walk(doc, doc.name);
}

/** Each web resource has an id, a name, a known type and its content in the zip. */
function checkWebResources(model: SolutionModel, problems: SolutionProblem[]): void {
  for (const wr of model.webResources) {
    const where = `WebResource${wr.name ? `[Name='${wr.name}']` : ''}`;
    if (wr.name === '') problems.push(at(wr.element, `${where}/Name`, 'is required'));
    const id = childText(wr.element, 'WebResourceId');
    if (id === undefined || !/^\{?[0-9a-fA-F-]{36}\}?$/.test(id)) {
      problems.push(
        at(
          child(wr.element, 'WebResourceId') ?? wr.element,
          `${where}/WebResourceId`,
          `must be a GUID, found '${id ?? 'nothing'}'`,
        ),
      );
    }
    const type = childText(wr.element, 'WebResourceType');
    if (type === undefined || !WEB_RESOURCE_TYPE.test(type)) {
      problems.push(
        at(
          child(wr.element, 'WebResourceType') ?? wr.element,
          `${where}/WebResourceType`,
          `must be 1 to 12, found '${type ?? 'nothing'}'`,
        ),
      );
    }
    if (wr.entry === '' || !model.packed.entries.has(wr.entry)) {
      problems.push(
        at(
          child(wr.element, 'FileName') ?? wr.element,
          `${where}/FileName`,
          `names /${wr.entry}, which is not in the zip`,
        ),
      );
    }
  }
}

/**
 * Every table has one primary name column, a string (`nvarchar`) marked `PrimaryName` in its `DisplayMask`, as every
 * exported table declares it: the lookups and the journey designer show its value.
 */
function checkTables(model: SolutionModel, problems: SolutionProblem[]): void {
  for (const table of model.tables.values()) {
    const where = `Entity[${table.logicalName}]/EntityInfo/entity/attributes`;
    if (table.primaryNames.length !== 1) {
      problems.push(
        at(
          table.element,
          where,
          `needs exactly one primary name column (an nvarchar attribute with PrimaryName in its DisplayMask), found ${table.primaryNames.length === 0 ? 'none' : table.primaryNames.map((p) => p.name).join(', ')}`,
        ),
      );
    } else if (table.primaryNames[0]!.type !== 'nvarchar') {
      problems.push(
        at(
          table.element,
          where,
          `the primary name column ${table.primaryNames[0]!.name} must be of type nvarchar, found ${table.primaryNames[0]!.type ?? 'none'}`,
        ),
      );
    }
  }
}

/** The custom APIs' own fields (PA-docs create-custom-api-solution.md): values of the documented ranges. */
function checkCustomApis(model: SolutionModel, problems: SolutionProblem[]): void {
  const range = (
    el: XmlElement,
    root: string,
    name: string,
    allowed: RegExp,
    expected: string,
    required: boolean,
  ): void => {
    const value = childText(el, name);
    if (value === undefined ? required : !allowed.test(value)) {
      problems.push(at(child(el, name) ?? el, `${root}/${name}`, `must be ${expected}, found ${value ?? 'nothing'}`));
    }
  };
  for (const api of model.customApis.values()) {
    range(api.element, 'customapi', 'bindingtype', /^[0-2]$/, '0 (global), 1 (table) or 2 (table collection)', false);
    range(api.element, 'customapi', 'isfunction', /^[01]$/, '0 or 1', false);
    range(
      api.element,
      'customapi',
      'allowedcustomprocessingsteptype',
      /^[0-2]$/,
      '0 (none), 1 (async only) or 2 (sync and async)',
      false,
    );
    for (const p of api.requestParameters) {
      range(p.element, 'customapirequestparameter', 'type', /^(?:\d|1[0-2])$/, 'a parameter type 0 to 12', true);
      range(p.element, 'customapirequestparameter', 'isoptional', /^[01]$/, '0 or 1', false);
    }
    for (const p of api.responseProperties) {
      range(p.element, 'customapiresponseproperty', 'type', /^(?:\d|1[0-2])$/, 'a property type 0 to 12', true);
      if (child(p.element, 'isoptional') !== undefined) {
        problems.push(
          at(
            child(p.element, 'isoptional')!,
            'customapiresponseproperty/isoptional',
            'is not valid on a response property: the import fails on it',
          ),
        );
      }
    }
  }
}

/** All rules over a packed solution. */
function checkPacked(packed: PackedSolution, options: CheckSolutionOptions): SolutionProblem[] {
  const problems: SolutionProblem[] = [];
  for (const [entry, bytes] of packed.entries) {
    if (entry === SOLUTION_XML || entry === CUSTOMIZATIONS_XML || !entry.toLowerCase().endsWith('.xml')) continue;
    const parsed = parseXml(decodeText(bytes), packed.sources.get(entry) ?? entry);
    if (isProblem(parsed)) problems.push(parsed);
  }
  if (problems.length > 0) return problems;
  checkContentTypes(packed, problems);
  checkManifest(packed.solution, problems);
  const model = readModel(packed, problems);
  checkGuidCase([packed.solution, packed.customizations, ...model.customApiDocuments], problems);
  checkTables(model, problems);
  checkWebResources(model, problems);
  checkCustomApis(model, problems);
  checkChannelParts(model, problems, options.channels);
  return problems;
}

/**
 * Checks a solution folder (packed in memory) or zip. Returns every problem, each naming its file and element (and line
 * where known); none: the solution is fine.
 */
export async function checkSolution(
  source: SolutionSource,
  options: CheckSolutionOptions = {},
): Promise<SolutionProblem[]> {
  let packed: PackedSolution;
  if ('dir' in source) {
    try {
      packed = await assembleFolder(source.dir);
    } catch (err) {
      if (isSolutionPackageError(err)) return [...err.problems];
      throw err;
    }
  } else {
    const opened = openZip(source.zip, source.name, options.maxExpandedBytes ?? MAX_EXPANDED_BYTES);
    if (Array.isArray(opened)) return opened;
    packed = opened;
  }
  return checkPacked(packed, options);
}
