/**
 * What `channel check` reads out of a packed solution before it applies its rules: the tables with their columns,
 * forms and views, the web resources, the custom APIs with their parameters, the channel definitions and message
 * parts. Every part keeps its element (and so its file and line) for the problems.
 */
import type { SolutionProblem } from '../errors.js';
import { child, children, childText, decodeText, isProblem, parseXml, type XmlElement } from './pack-xml.js';
import type { PackedSolution } from './pack.js';

/** A GUID with or without braces, any case. */
export const GUID = /^\{?[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\}?$/;

/** The comparable form of a GUID: no braces, lower case. */
export function normalGuid(value: string): string {
  return value.replace(/^\{|\}$/g, '').toLowerCase();
}

export interface Table {
  element: XmlElement;
  logicalName: string;
  entitySetName?: string;
  /** Column logical names. */
  columns: Set<string>;
  /** The columns marked as the primary name (`PrimaryName` in their `DisplayMask`), with their types. */
  primaryNames: Array<{ name: string; type: string | undefined }>;
  /** Form ids (normalised). */
  forms: Set<string>;
  /** View ids (normalised). */
  views: Set<string>;
}

export interface WebResource {
  element: XmlElement;
  name: string;
  /** The zip entry of its content. */
  entry: string;
  /** The file to name in problems about its content (the folder's path when packed from a folder). */
  contentFile: string;
}

export interface CustomApiPart {
  element: XmlElement;
  uniqueName: string;
}

export interface CustomApi {
  element: XmlElement;
  uniqueName: string;
  requestParameters: CustomApiPart[];
  responseProperties: CustomApiPart[];
}

export interface SolutionModel {
  packed: PackedSolution;
  tables: Map<string, Table>;
  webResources: WebResource[];
  customApis: Map<string, CustomApi>;
  /** Every customapis/ document, for the rules that look at all XML (lowercase GUIDs). */
  customApiDocuments: XmlElement[];
  channelDefinitions: XmlElement[];
  messageParts: XmlElement[];
}

/** A problem located at an element. */
export function at(el: XmlElement, element: string, message: string): SolutionProblem {
  return { file: el.file, line: el.line, element, message };
}

function tableOf(entity: XmlElement): Table | undefined {
  const info = child(child(entity, 'EntityInfo'), 'entity');
  const logicalName = (info?.attributes['Name'] ?? childText(entity, 'Name'))?.toLowerCase();
  if (logicalName === undefined) return undefined;
  const columns = new Set<string>();
  const primaryNames: Table['primaryNames'] = [];
  for (const attribute of children(child(info, 'attributes'), 'attribute')) {
    const name =
      childText(attribute, 'LogicalName') ?? childText(attribute, 'Name') ?? attribute.attributes['PhysicalName'];
    if (name === undefined) continue;
    columns.add(name.toLowerCase());
    if ((childText(attribute, 'DisplayMask') ?? '').split('|').includes('PrimaryName')) {
      primaryNames.push({ name: name.toLowerCase(), type: childText(attribute, 'Type') });
    }
  }
  const forms = new Set<string>();
  for (const forms_ of children(child(entity, 'FormXml'), 'forms')) {
    for (const form of children(forms_, 'systemform')) {
      const id = childText(form, 'formid');
      if (id !== undefined) forms.add(normalGuid(id));
    }
  }
  const views = new Set<string>();
  for (const view of children(child(child(entity, 'SavedQueries'), 'savedqueries'), 'savedquery')) {
    const id = childText(view, 'savedqueryid');
    if (id !== undefined) views.add(normalGuid(id));
  }
  const table: Table = { element: entity, logicalName, columns, primaryNames, forms, views };
  const set = childText(info, 'EntitySetName');
  if (set !== undefined) table.entitySetName = set;
  return table;
}

const API_FILE = /^customapis\/([^/]+)\/customapi\.xml$/;
const API_PART_FILE =
  /^customapis\/([^/]+)\/(customapirequestparameters|customapiresponseproperties)\/([^/]+)\/(customapirequestparameter|customapiresponseproperty)\.xml$/;

/** Reads the custom APIs of `customapis/` (the layout of PA-docs create-custom-api-solution.md). */
function readCustomApis(
  packed: PackedSolution,
  problems: SolutionProblem[],
  documents: XmlElement[],
): Map<string, CustomApi> {
  const apis = new Map<string, CustomApi>();
  const names = [...packed.entries.keys()].filter((n) => n.startsWith('customapis/') && !n.endsWith('/'));
  const parse = (name: string): XmlElement | undefined => {
    const parsed = parseXml(decodeText(packed.entries.get(name)!), name);
    if (isProblem(parsed)) {
      problems.push(parsed);
      return undefined;
    }
    documents.push(parsed);
    return parsed;
  };
  for (const name of names) {
    const m = API_FILE.exec(name);
    if (m === null) continue;
    const root = parse(name);
    if (root === undefined) continue;
    if (root.name !== 'customapi') {
      problems.push(at(root, root.name, 'the root element must be <customapi>'));
      continue;
    }
    const uniqueName = root.attributes['uniquename'] ?? '';
    if (uniqueName !== m[1]) {
      problems.push(
        at(root, 'customapi', `its uniquename attribute ('${uniqueName}') must be its folder's name ('${m[1]}')`),
      );
    }
    apis.set(m[1]!, { element: root, uniqueName: m[1]!, requestParameters: [], responseProperties: [] });
  }
  for (const name of names) {
    if (API_FILE.test(name)) continue;
    const m = API_PART_FILE.exec(name);
    const folderMatches =
      m !== null && (m[2] === 'customapirequestparameters') === (m[4] === 'customapirequestparameter');
    if (m === null || !folderMatches) {
      problems.push({
        file: name,
        message:
          'is not part of a custom API: customapis/<api>/customapi.xml, …/customapirequestparameters/<name>/customapirequestparameter.xml or …/customapiresponseproperties/<name>/customapiresponseproperty.xml',
      });
      continue;
    }
    const root = parse(name);
    if (root === undefined) continue;
    if (root.name !== m[4]) {
      problems.push(at(root, root.name, `the root element must be <${m[4]}>`));
      continue;
    }
    const uniqueName = root.attributes['uniquename'] ?? '';
    if (uniqueName !== m[3]) {
      problems.push(
        at(root, m[4]!, `its uniquename attribute ('${uniqueName}') must be its folder's name ('${m[3]}')`),
      );
    }
    const api = apis.get(m[1]!);
    if (api === undefined) {
      problems.push({
        file: name,
        message: `belongs to custom API '${m[1]}', which has no customapis/${m[1]}/customapi.xml`,
      });
      continue;
    }
    (m[4] === 'customapirequestparameter' ? api.requestParameters : api.responseProperties).push({
      element: root,
      uniqueName: m[3]!,
    });
  }
  return apis;
}

/** Reads the model of a packed solution; problems met while reading (a custom API file not well-formed) are added. */
export function readModel(packed: PackedSolution, problems: SolutionProblem[]): SolutionModel {
  const tables = new Map<string, Table>();
  for (const entity of children(child(packed.customizations, 'Entities'), 'Entity')) {
    const table = tableOf(entity);
    if (table === undefined) {
      problems.push(
        at(entity, 'Entities/Entity', 'needs <Name> or <EntityInfo><entity Name="…">: the table it defines'),
      );
      continue;
    }
    tables.set(table.logicalName, table);
  }
  const webResources: WebResource[] = [];
  for (const wr of children(child(packed.customizations, 'WebResources'), 'WebResource')) {
    const name = childText(wr, 'Name') ?? '';
    const entry = (childText(wr, 'FileName') ?? '').replace(/^\/+/, '');
    webResources.push({ element: wr, name, entry, contentFile: packed.sources.get(entry) ?? entry });
  }
  const customApiDocuments: XmlElement[] = [];
  const customApis = readCustomApis(packed, problems, customApiDocuments);
  return {
    packed,
    tables,
    webResources,
    customApis,
    customApiDocuments,
    channelDefinitions: children(child(packed.customizations, 'msdyn_channeldefinitions'), 'msdyn_channeldefinition'),
    messageParts: children(child(packed.customizations, 'msdyn_channelmessageparts'), 'msdyn_channelmessagepart'),
  };
}
