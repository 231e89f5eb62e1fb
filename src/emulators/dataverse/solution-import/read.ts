/**
 * Reading a packed solution zip as the emulated org does, on its own (no code shared with the relay's `src/solution`):
 * the zip's parts (`[Content_Types].xml`, `solution.xml`, `customizations.xml`, the web resources' files named by
 * their `<FileName>`, `customapis/<uniquename>/…`), each XML document checked for well-formedness, and what the
 * components say, into plain values. Every refusal is a {@link SolutionImportError} naming the file and element.
 * Shapes: PA-docs `custom-api-solution.md` (custom APIs), MSDocs-CE `real-time-marketing-define-channel-definition.md`
 * and the message parts page (channel definitions and parts in customizations.xml), the SolutionPackager layout
 * (power-platform `alm/solution-packager-tool.md`); what they leave open is in assumptions.ts `SOLUTION_IMPORT`.
 */
import { unzipSync } from 'fflate';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { SOLUTION_IMPORT } from '../assumptions.js';

/** A refusal of the solution: the file in the zip and the element in it, in the import job's log and message. */
export class SolutionImportError extends Error {
  override readonly name = 'SolutionImportError';
  constructor(
    readonly file: string,
    readonly element: string,
    readonly detail: string,
  ) {
    super(`${file}: ${element}: ${detail}`);
  }
}

export type ColumnKind = 'string' | 'memo' | 'lookup' | 'bool' | 'int' | 'bigint' | 'decimal' | 'money' | 'datetime';
export type ColumnKindOrOther = ColumnKind | 'guid' | 'optionset' | 'state' | 'status';

export interface SolutionColumn {
  name: string;
  type: ColumnKindOrOther;
  maxLength?: number;
  required: boolean;
}

export interface SolutionTable {
  logicalName: string;
  entitySetName: string;
  primaryName?: string;
  columns: SolutionColumn[];
  /** Form ids (lowercase, no braces) declared under the entity's FormXml. */
  forms: string[];
  /** Saved query (view) ids declared under the entity's SavedQueries. */
  views: string[];
}

/** A 1:N relationship: the referencing table's lookup column and its single-valued navigation property. */
export interface SolutionRelationship {
  name: string;
  referencingTable: string;
  referencedTable: string;
  column: string;
  navigation: string;
}

export interface SolutionWebResource {
  id: string;
  name: string;
  displayName: string;
  type: number;
  /** The zip entry its content came from. */
  file: string;
  content: Uint8Array;
}

/** A record of customizations.xml (channel definition, message part): column → raw text or lookup id. */
export interface SolutionRecord {
  id: string;
  /** `<element id-attribute="…">` for messages. */
  where: string;
  values: Record<string, string | { lookup: string }>;
}

export interface SolutionCustomApiPart {
  uniqueName: string;
  file: string;
  values: Record<string, string>;
}

export interface SolutionCustomApi {
  uniqueName: string;
  file: string;
  values: Record<string, string>;
  requestParameters: SolutionCustomApiPart[];
  responseProperties: SolutionCustomApiPart[];
}

export interface SolutionContent {
  uniqueName: string;
  friendlyName: string;
  version: string;
  managed: boolean;
  publisher: { uniqueName: string; friendlyName: string; prefix: string; optionValuePrefix?: number };
  tables: SolutionTable[];
  relationships: SolutionRelationship[];
  webResources: SolutionWebResource[];
  channelDefinitions: SolutionRecord[];
  messageParts: SolutionRecord[];
  customApis: SolutionCustomApi[];
}

type Element = { $?: Record<string, string>; _?: string; [child: string]: unknown };

const REPEATED = new Set([
  'Entity',
  'attribute',
  'EntityRelationship',
  'EntityRelationshipRole',
  'WebResource',
  'msdyn_channeldefinition',
  'msdyn_channelmessagepart',
  'forms',
  'systemform',
  'savedquery',
  'LocalizedName',
  'label',
  'RootComponent',
]);

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '',
  attributesGroupName: '$',
  textNodeName: '_',
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: true,
  isArray: (tag) => REPEATED.has(tag),
});

const asElement = (v: unknown): Element | undefined =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Element) : v === '' ? {} : undefined;
const list = (v: unknown): Element[] =>
  (Array.isArray(v) ? v : v === undefined ? [] : [v]).map((e) => asElement(e) ?? {});
/** The text of an element (`<a>x</a>` → x, `<a/>` → ''). */
const text = (v: unknown): string => (typeof v === 'string' ? v : (asElement(v)?._ ?? '')).trim();

const GUID = /^\{?([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})\}?$/;

/** A GUID as written in a customization file: lowercase (the docs' rule), braces allowed; returns it bare. */
export function readGuid(value: string, file: string, element: string): string {
  const m = GUID.exec(value.trim());
  if (!m) throw new SolutionImportError(file, element, `'${value}' is not a GUID`);
  if (m[1] !== m[1]!.toLowerCase())
    throw new SolutionImportError(
      file,
      element,
      `the GUID '${value}' has uppercase letters: GUIDs in customization files must be lowercase`,
    );
  return m[1]!;
}

function parseXml(bytes: Uint8Array, file: string): Record<string, unknown> {
  const source = new TextDecoder('utf-8').decode(bytes).replace(/^\uFEFF/, '');
  const doctype = /<!DOCTYPE/i.exec(source);
  if (doctype)
    // .NET's XmlReader prohibits DTDs by default ("For security reasons DTD is prohibited in this XML document"),
    // and a DTD's entities are how a hostile file grows: refused before parsing.
    throw new SolutionImportError(file, '<!DOCTYPE>', 'a DTD is prohibited in solution files');
  const valid = XMLValidator.validate(source);
  if (valid !== true) {
    throw new SolutionImportError(
      file,
      valid.err.col === undefined ? `line ${valid.err.line}` : `line ${valid.err.line}, column ${valid.err.col}`,
      `the file is not well-formed XML (${valid.err.msg})`,
    );
  }
  try {
    return parser.parse(source) as Record<string, unknown>;
  } catch (err) {
    // The validator lets a few malformed documents through (an unclosed processing instruction) that the parser refuses.
    throw new SolutionImportError(file, '(document)', `the file is not well-formed XML (${(err as Error).message})`);
  }
}

/** Unzips the customization file, refusing what is not a zip or expands past the emulator's limit. */
function unzip(zip: Uint8Array): Record<string, Uint8Array> {
  let total = 0;
  try {
    return unzipSync(zip, {
      filter: (file) => {
        total += file.originalSize;
        if (total > SOLUTION_IMPORT.maxExpandedBytes)
          throw new SolutionImportError(
            '(zip)',
            file.name,
            `the solution expands to more than ${SOLUTION_IMPORT.maxExpandedBytes} bytes`,
          );
        return true;
      },
    });
  } catch (err) {
    if (err instanceof SolutionImportError) throw err;
    throw new SolutionImportError(
      '(zip)',
      '(archive)',
      `the customization file is not a readable zip (${(err as Error).message})`,
    );
  }
}

function readManifest(
  doc: Record<string, unknown>,
): Pick<SolutionContent, 'uniqueName' | 'friendlyName' | 'version' | 'managed' | 'publisher'> {
  const file = 'solution.xml';
  const root = asElement(doc['ImportExportXml']);
  if (!root) throw new SolutionImportError(file, '(document)', 'the document element must be <ImportExportXml>');
  const manifest = asElement(root['SolutionManifest']);
  if (!manifest) throw new SolutionImportError(file, '<ImportExportXml>', 'has no <SolutionManifest>');
  const need = (parent: Element, name: string, where: string): string => {
    const v = text(parent[name]);
    if (v === '') throw new SolutionImportError(file, where, `has no <${name}>`);
    return v;
  };
  const uniqueName = need(manifest, 'UniqueName', '<SolutionManifest>');
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(uniqueName))
    throw new SolutionImportError(
      file,
      '<SolutionManifest>/<UniqueName>',
      `'${uniqueName}' is not a valid unique name (letters, digits and underscores, not starting with a digit)`,
    );
  const version = need(manifest, 'Version', '<SolutionManifest>');
  if (!/^\d+(\.\d+){1,3}$/.test(version))
    throw new SolutionImportError(
      file,
      '<SolutionManifest>/<Version>',
      `'${version}' is not a version such as 1.0.0.0`,
    );
  const managed = text(manifest['Managed']);
  if (managed !== '0' && managed !== '1')
    throw new SolutionImportError(file, '<SolutionManifest>/<Managed>', `must be 0 or 1, found '${managed}'`);
  const publisher = asElement(manifest['Publisher']);
  if (!publisher) throw new SolutionImportError(file, '<SolutionManifest>', 'has no <Publisher>');
  const prefix = need(publisher, 'CustomizationPrefix', '<Publisher>');
  if (!/^[a-z][a-z0-9]{1,7}$/.test(prefix))
    throw new SolutionImportError(
      file,
      '<Publisher>/<CustomizationPrefix>',
      `'${prefix}' must be 2-8 lowercase letters or digits, starting with a letter`,
    );
  const localized = (parent: Element): string =>
    list(asElement(parent['LocalizedNames'])?.['LocalizedName']).find((l) => l.$?.['languagecode'] === '1033')?.$?.[
      'description'
    ] ?? '';
  const out: ReturnType<typeof readManifest> = {
    uniqueName,
    friendlyName: localized(manifest) || uniqueName,
    version,
    managed: managed === '1',
    publisher: {
      uniqueName: need(publisher, 'UniqueName', '<Publisher>'),
      friendlyName: '',
      prefix,
    },
  };
  out.publisher.friendlyName = localized(publisher) || out.publisher.uniqueName;
  const optionPrefix = text(publisher['CustomizationOptionValuePrefix']);
  if (optionPrefix !== '') out.publisher.optionValuePrefix = Number(optionPrefix);
  return out;
}

/** customizations.xml attribute `<Type>` → the emulator's column type. */
const ATTRIBUTE_TYPES: Record<string, ColumnKindOrOther | null> = {
  primarykey: null,
  nvarchar: 'string',
  ntext: 'memo',
  memo: 'memo',
  lookup: 'lookup',
  customer: 'lookup',
  owner: 'lookup',
  bit: 'bool',
  int: 'int',
  bigint: 'bigint',
  decimal: 'decimal',
  float: 'decimal',
  money: 'money',
  datetime: 'datetime',
  uniqueidentifier: 'guid',
  picklist: 'optionset',
  state: 'state',
  status: 'status',
};
/** Columns every table has (defined by the emulator's table builder): an entity's own declaration of them is skipped. */
const SYSTEM_COLUMNS = new Set(['createdon', 'modifiedon', 'versionnumber', 'statecode', 'statuscode']);

function readEntity(entity: Element, index: number): SolutionTable {
  const file = 'customizations.xml';
  const info = asElement(asElement(entity['EntityInfo'])?.['entity']);
  const name = (info?.$?.['Name'] ?? text(entity['Name'])).toLowerCase();
  const where = name === '' ? `<Entities>/<Entity>[${index + 1}]` : `<Entity> '${name}'`;
  if (name === '') throw new SolutionImportError(file, where, 'has no <Name>');
  if (!info) throw new SolutionImportError(file, where, 'has no <EntityInfo>/<entity>');
  const entitySetName = text(info['EntitySetName']);
  if (entitySetName === '') throw new SolutionImportError(file, `${where}/<entity>`, 'has no <EntitySetName>');
  const table: SolutionTable = { logicalName: name, entitySetName, columns: [], forms: [], views: [] };
  list(asElement(info['attributes'])?.['attribute']).forEach((attribute, i) => {
    const logical = (text(attribute['LogicalName']) || text(attribute['Name'])).toLowerCase();
    const at = `${where}/<attribute>${logical === '' ? `[${i + 1}]` : ` '${logical}'`}`;
    if (logical === '') throw new SolutionImportError(file, at, 'has no <LogicalName>');
    const rawType = text(attribute['Type']).toLowerCase();
    if (!(rawType in ATTRIBUTE_TYPES))
      throw new SolutionImportError(
        file,
        `${at}/<Type>`,
        `the type '${rawType}' is not one the emulator can create (${Object.keys(ATTRIBUTE_TYPES).join(', ')})`,
      );
    const type = ATTRIBUTE_TYPES[rawType] ?? null;
    if (type === null || SYSTEM_COLUMNS.has(logical)) return;
    const column: SolutionColumn = {
      name: logical,
      type,
      // Only SystemRequired is enforced by the platform; ApplicationRequired ('required') is a form rule.
      required: text(attribute['RequiredLevel']).toLowerCase() === 'systemrequired',
    };
    const max = text(attribute['MaxLength']);
    if (type === 'string') {
      if (!/^\d+$/.test(max) || Number(max) < 1 || Number(max) > 4000)
        throw new SolutionImportError(
          file,
          `${at}/<MaxLength>`,
          `a text column needs a MaxLength of 1-4000, found '${max}'`,
        );
      column.maxLength = Number(max);
    }
    if (text(attribute['DisplayMask']).split('|').includes('PrimaryName')) {
      if (table.primaryName !== undefined)
        throw new SolutionImportError(file, at, `a second primary name column (the first is '${table.primaryName}')`);
      if (type !== 'string')
        throw new SolutionImportError(file, at, 'the primary name column must be of type nvarchar');
      table.primaryName = logical;
    }
    table.columns.push(column);
  });
  if (table.primaryName === undefined)
    throw new SolutionImportError(
      file,
      where,
      'has no primary name column (an nvarchar attribute with PrimaryName in its DisplayMask)',
    );
  for (const forms of list(asElement(entity['FormXml'])?.['forms'])) {
    for (const form of list(forms['systemform'])) {
      const id = text(form['formid']);
      if (id !== '') table.forms.push(readGuid(id, file, `${where}/<systemform>/<formid>`));
    }
  }
  for (const view of list(asElement(asElement(entity['SavedQueries'])?.['savedqueries'])?.['savedquery'])) {
    const id = text(view['savedqueryid']);
    if (id !== '') table.views.push(readGuid(id, file, `${where}/<savedquery>/<savedqueryid>`));
  }
  return table;
}

function readRelationship(rel: Element, index: number): SolutionRelationship {
  const file = 'customizations.xml';
  const name = rel.$?.['Name'] ?? '';
  const where = `<EntityRelationship${name === '' ? `>[${index + 1}]` : ` Name="${name}">`}`;
  const need = (tag: string): string => {
    const v = text(rel[tag]);
    if (v === '') throw new SolutionImportError(file, where, `has no <${tag}>`);
    return v;
  };
  const type = need('EntityRelationshipType');
  if (type !== 'OneToMany')
    throw new SolutionImportError(
      file,
      `${where}/<EntityRelationshipType>`,
      `'${type}': the emulator creates OneToMany relationships only`,
    );
  const column = need('ReferencingAttributeName').toLowerCase();
  const roles = list(asElement(rel['EntityRelationshipRoles'])?.['EntityRelationshipRole']);
  const single = roles.find((r) => text(r['RelationshipRoleType']) === SOLUTION_IMPORT.singleValuedRoleType);
  return {
    name,
    referencingTable: need('ReferencingEntityName').toLowerCase(),
    referencedTable: need('ReferencedEntityName').toLowerCase(),
    column,
    navigation: text(single?.['NavigationPropertyName']) || column,
  };
}

function readRecords(root: Element, set: string, one: string, file: string): SolutionRecord[] {
  const idAttribute = `${one}id`;
  return list(asElement(root[set])?.[one]).map((record, i) => {
    const raw = record.$?.[idAttribute];
    const where = raw === undefined ? `<${one}>[${i + 1}]` : `<${one} ${idAttribute}="${raw}">`;
    if (raw === undefined) throw new SolutionImportError(file, where, `has no ${idAttribute} attribute`);
    const id = readGuid(raw, file, where);
    const values: SolutionRecord['values'] = {};
    for (const [key, value] of Object.entries(record)) {
      if (key === '$') continue;
      if (Array.isArray(value)) throw new SolutionImportError(file, `${where}/<${key}>`, 'appears more than once');
      const nested = asElement(value);
      const inner = nested?.[key];
      values[key] = inner !== undefined ? { lookup: text(inner) } : text(value);
    }
    return { id, where, values };
  });
}

/** The child elements of a custom API file as column text (`<displayname default="…">` → its default label). */
function customApiValues(doc: Element, file: string, where: string): Record<string, string> {
  const values: Record<string, string> = {};
  for (const [key, value] of Object.entries(doc)) {
    if (key === '$') continue;
    if (Array.isArray(value)) throw new SolutionImportError(file, `${where}/<${key}>`, 'appears more than once');
    const element = asElement(value);
    if (key === 'plugintypeid') values[key] = text(element?.['plugintypeexportkey']) || text(element?.['plugintypeid']);
    else values[key] = element?.$?.['default'] ?? text(value);
  }
  return values;
}

function readCustomApis(files: Record<string, Uint8Array>): SolutionCustomApi[] {
  const apis = new Map<string, SolutionCustomApi>();
  const parts: Array<{ api: string; kind: 'request' | 'response'; unique: string; file: string }> = [];
  for (const name of Object.keys(files)) {
    if (!name.startsWith('customapis/') || name.endsWith('/')) continue;
    const segments = name.split('/');
    if (segments.length === 3 && segments[2] === 'customapi.xml') {
      apis.set(segments[1]!, {
        uniqueName: segments[1]!,
        file: name,
        values: {},
        requestParameters: [],
        responseProperties: [],
      });
    } else if (
      segments.length === 5 &&
      segments[2] === 'customapirequestparameters' &&
      segments[4] === 'customapirequestparameter.xml'
    ) {
      parts.push({ api: segments[1]!, kind: 'request', unique: segments[3]!, file: name });
    } else if (
      segments.length === 5 &&
      segments[2] === 'customapiresponseproperties' &&
      segments[4] === 'customapiresponseproperty.xml'
    ) {
      parts.push({ api: segments[1]!, kind: 'response', unique: segments[3]!, file: name });
    } else {
      throw new SolutionImportError(
        name,
        '(file)',
        'is not where a custom API file can be (customapis/<uniquename>/customapi.xml, …/customapirequestparameters/<uniquename>/customapirequestparameter.xml, …/customapiresponseproperties/<uniquename>/customapiresponseproperty.xml)',
      );
    }
  }
  for (const api of apis.values()) {
    const doc = asElement(parseXml(files[api.file]!, api.file)['customapi']);
    if (!doc) throw new SolutionImportError(api.file, '(document)', 'the document element must be <customapi>');
    const unique = doc.$?.['uniquename'] ?? '';
    if (unique !== api.uniqueName)
      throw new SolutionImportError(
        api.file,
        '<customapi uniquename>',
        `'${unique}' differs from its folder name '${api.uniqueName}'`,
      );
    api.values = customApiValues(doc, api.file, `<customapi uniquename="${unique}">`);
  }
  for (const part of parts) {
    const api = apis.get(part.api);
    if (!api) throw new SolutionImportError(part.file, '(file)', `its custom API folder has no customapi.xml`);
    const rootName = part.kind === 'request' ? 'customapirequestparameter' : 'customapiresponseproperty';
    const doc = asElement(parseXml(files[part.file]!, part.file)[rootName]);
    if (!doc) throw new SolutionImportError(part.file, '(document)', `the document element must be <${rootName}>`);
    const unique = doc.$?.['uniquename'] ?? '';
    const where = `<${rootName} uniquename="${unique}">`;
    if (unique !== part.unique)
      throw new SolutionImportError(
        part.file,
        `<${rootName} uniquename>`,
        `'${unique}' differs from its folder name '${part.unique}'`,
      );
    const entry = { uniqueName: unique, file: part.file, values: customApiValues(doc, part.file, where) };
    (part.kind === 'request' ? api.requestParameters : api.responseProperties).push(entry);
  }
  return [...apis.values()];
}

/** Reads and checks the structure of a packed solution. What the components mean is checked by validate.ts. */
export function readSolution(zip: Uint8Array): SolutionContent {
  const files = unzip(zip);
  for (const required of SOLUTION_IMPORT.requiredEntries) {
    if (files[required] === undefined)
      throw new SolutionImportError(
        required,
        '(file)',
        `the zip has no ${required} (entries: ${Object.keys(files).slice(0, 10).join(', ') || 'none'})`,
      );
  }
  parseXml(files['[Content_Types].xml']!, '[Content_Types].xml');
  const manifest = readManifest(parseXml(files['solution.xml']!, 'solution.xml'));
  const customizations = asElement(parseXml(files['customizations.xml']!, 'customizations.xml')['ImportExportXml']);
  if (!customizations)
    throw new SolutionImportError('customizations.xml', '(document)', 'the document element must be <ImportExportXml>');
  const tables = list(asElement(customizations['Entities'])?.['Entity']).map(readEntity);
  const relationships = list(asElement(customizations['EntityRelationships'])?.['EntityRelationship']).map(
    readRelationship,
  );
  const webResources = list(asElement(customizations['WebResources'])?.['WebResource']).map((resource, i) => {
    const file = 'customizations.xml';
    const name = text(resource['Name']);
    const where = `<WebResource>${name === '' ? `[${i + 1}]` : ` '${name}'`}`;
    if (name === '') throw new SolutionImportError(file, where, 'has no <Name>');
    const rawId = text(resource['WebResourceId']);
    if (rawId === '') throw new SolutionImportError(file, where, 'has no <WebResourceId>');
    const type = text(resource['WebResourceType']);
    if (!/^\d+$/.test(type))
      throw new SolutionImportError(file, `${where}/<WebResourceType>`, `'${type}' is not a web resource type`);
    const fileName = text(resource['FileName']).replace(/^\/+/, '');
    if (fileName === '') throw new SolutionImportError(file, where, 'has no <FileName>');
    const content = files[fileName];
    if (content === undefined)
      throw new SolutionImportError(file, `${where}/<FileName>`, `names '${fileName}', which is not in the zip`);
    return {
      id: readGuid(rawId, file, `${where}/<WebResourceId>`),
      name,
      displayName: text(resource['DisplayName']) || name,
      type: Number(type),
      file: fileName,
      content,
    };
  });
  return {
    ...manifest,
    tables,
    relationships,
    webResources,
    channelDefinitions: readRecords(
      customizations,
      'msdyn_channeldefinitions',
      'msdyn_channeldefinition',
      'customizations.xml',
    ),
    messageParts: readRecords(
      customizations,
      'msdyn_channelmessageparts',
      'msdyn_channelmessagepart',
      'customizations.xml',
    ),
    customApis: readCustomApis(files),
  };
}
