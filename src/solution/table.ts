/**
 * A custom table in SolutionPackager's unpacked layout: `Entities/<SchemaName>/Entity.xml` (the table and its
 * columns), `FormXml/main/{id}.xml` (a main form with every column) and `SavedQueries/{id}.xml` (views), in the
 * shapes an export from Dataverse unpacks to (PA-docs solution-packager-tool.md; public unpacked solutions).
 */
import { TABLE_OWNERSHIP } from './assumptions.js';
import { braced } from './ids.js';
import { el, labels, leaf, xmlDocument, XSI, type XmlElement } from './xml.js';

export interface Column {
  /** Schema name (`sample_text`): lower case, as the real-time docs' examples write them, so also the logical name. */
  schema: string;
  display: string;
  description: string;
  kind: 'string' | 'memo';
  maxLength: number;
  /** On the form but hidden (`visible="false"`), as the docs' message editor form has `placeholders`. */
  hidden?: boolean;
}

export interface TableSpec {
  /** Schema name (`sample_specialmessage`, lower case like the docs' `cr65f_samplechannelinstance`): the folder under `Entities/`. */
  schema: string;
  display: string;
  displayPlural: string;
  description: string;
  entitySetName: string;
  /** The primary name column (a string). */
  primaryName: Column;
  columns: Column[];
  /** The main form's id. */
  formId: string;
  /** Views: each `{ id, name, querytype }` (0 public, 64 lookup). */
  views: Array<{ id: string; name: string; querytype: 0 | 64 }>;
}

/** The control class ids of the form editor: single line of text and multiple lines of text. */
const CONTROL_CLASS = {
  string: '4273edbd-ac1d-40d3-9fb2-095c621b552d',
  memo: 'e0dece4b-6fc8-4a8f-a065-082708572369',
} as const;

export const logical = (schema: string): string => schema.toLowerCase();

function attribute(c: Column, primaryName: boolean): XmlElement {
  return el(
    'attribute',
    { PhysicalName: c.schema },
    leaf('Type', c.kind === 'memo' ? 'ntext' : 'nvarchar'),
    leaf('Name', logical(c.schema)),
    leaf('LogicalName', logical(c.schema)),
    leaf('RequiredLevel', primaryName ? 'required' : 'none'),
    leaf(
      'DisplayMask',
      primaryName
        ? 'PrimaryName|ValidForAdvancedFind|ValidForForm|ValidForGrid|RequiredForForm'
        : 'ValidForAdvancedFind|ValidForForm|ValidForGrid',
    ),
    leaf('ValidForUpdateApi', 1),
    leaf('ValidForReadApi', 1),
    leaf('ValidForCreateApi', 1),
    leaf('IsCustomField', 1),
    leaf('IsSecured', 0),
    leaf('IntroducedVersion', '1.0'),
    leaf('IsCustomizable', 1),
    leaf('IsSearchable', primaryName ? 1 : 0),
    leaf('IsFilterable', 0),
    leaf('IsRetrievable', 1),
    leaf('Format', c.kind === 'memo' ? 'textarea' : 'text'),
    leaf('MaxLength', c.maxLength),
    el('displaynames', {}, el('displayname', { description: c.display, languagecode: 1033 })),
    el('Descriptions', {}, el('Description', { description: c.description, languagecode: 1033 })),
  );
}

function keyAttribute(t: TableSpec): XmlElement {
  const key = `${t.schema}id`;
  return el(
    'attribute',
    { PhysicalName: key },
    leaf('Type', 'primarykey'),
    leaf('Name', logical(key)),
    leaf('LogicalName', logical(key)),
    leaf('RequiredLevel', 'systemrequired'),
    leaf('DisplayMask', 'ValidForAdvancedFind|RequiredForGrid'),
    leaf('ValidForUpdateApi', 0),
    leaf('ValidForReadApi', 1),
    leaf('ValidForCreateApi', 1),
    leaf('IsCustomField', 0),
    leaf('IsSecured', 0),
    leaf('IntroducedVersion', '1.0'),
    leaf('IsCustomizable', 1),
    el('displaynames', {}, el('displayname', { description: t.display, languagecode: 1033 })),
    el(
      'Descriptions',
      {},
      el('Description', { description: 'Unique identifier for entity instances', languagecode: 1033 }),
    ),
  );
}

/** `statecode` and `statuscode` with their option sets (Active 0/1, Inactive 1/2), as exports of a custom table hold. */
function stateAttributes(t: TableSpec): XmlElement[] {
  const common = (name: string, type: 'state' | 'status', display: string) => [
    leaf('Type', type),
    leaf('Name', name),
    leaf('LogicalName', name),
    leaf('RequiredLevel', type === 'state' ? 'systemrequired' : 'none'),
    leaf('DisplayMask', 'ValidForAdvancedFind|ValidForForm|ValidForGrid'),
    leaf('ValidForUpdateApi', 1),
    leaf('ValidForReadApi', 1),
    leaf('ValidForCreateApi', type === 'state' ? 0 : 1),
    leaf('IsCustomField', 0),
    leaf('IntroducedVersion', '1.0'),
    leaf('IsCustomizable', 1),
    el('displaynames', {}, el('displayname', { description: display, languagecode: 1033 })),
  ];
  const option = (tag: 'state' | 'status', attrs: Record<string, string | number>, label: string) =>
    el(tag, attrs, labels('labels', 'label', label));
  return [
    el(
      'attribute',
      { PhysicalName: 'statecode' },
      ...common('statecode', 'state', 'Status'),
      el(
        'optionset',
        { Name: `${t.schema}_statecode` },
        leaf('OptionSetType', 'state'),
        el(
          'states',
          {},
          option('state', { value: 0, defaultstatus: 1, invariantname: 'Active' }, 'Active'),
          option('state', { value: 1, defaultstatus: 2, invariantname: 'Inactive' }, 'Inactive'),
        ),
      ),
    ),
    el(
      'attribute',
      { PhysicalName: 'statuscode' },
      ...common('statuscode', 'status', 'Status Reason'),
      el(
        'optionset',
        { Name: `${t.schema}_statuscode` },
        leaf('OptionSetType', 'status'),
        el(
          'statuses',
          {},
          option('status', { value: 1, state: 0 }, 'Active'),
          option('status', { value: 2, state: 1 }, 'Inactive'),
        ),
      ),
    ),
  ];
}

/** `Entities/<schema>/Entity.xml`. */
export function entityXml(t: TableSpec): string {
  return xmlDocument(
    el(
      'Entity',
      XSI,
      el('Name', { LocalizedName: t.display, OriginalName: t.display }, t.schema),
      el(
        'EntityInfo',
        {},
        el(
          'entity',
          { Name: t.schema },
          labels('LocalizedNames', 'LocalizedName', t.display),
          labels('LocalizedCollectionNames', 'LocalizedCollectionName', t.displayPlural),
          labels('Descriptions', 'Description', t.description),
          el(
            'attributes',
            {},
            keyAttribute(t),
            attribute(t.primaryName, true),
            t.columns.map((c) => attribute(c, false)),
            stateAttributes(t),
          ),
          leaf('EntitySetName', t.entitySetName),
          leaf('IsDuplicateCheckSupported', 0),
          leaf('IsBusinessProcessEnabled', 0),
          leaf('IsActivity', 0),
          leaf('IsActivityParty', 0),
          leaf('OwnershipTypeMask', TABLE_OWNERSHIP),
          leaf('IsAuditEnabled', 0),
          leaf('IsQuickCreateEnabled', 0),
          leaf('IntroducedVersion', '1.0'),
          leaf('IsCustomizable', 1),
          leaf('IsRenameable', 1),
          leaf('IsMappable', 1),
          leaf('CanCreateAttributes', 1),
          leaf('CanCreateForms', 1),
          leaf('CanCreateViews', 1),
        ),
      ),
      el('FormXml'),
      el('SavedQueries'),
      el('RibbonDiffXml'),
    ),
  );
}

/** `Entities/<schema>/FormXml/main/{formId}.xml`: one tab, one section, a row per column. */
export function mainFormXml(t: TableSpec, componentId: (what: string) => string): string {
  const cells = [t.primaryName, ...t.columns].map((c) =>
    el(
      'row',
      {},
      el(
        'cell',
        {
          id: braced(componentId(`cell:${logical(c.schema)}`)),
          showlabel: 'true',
          visible: c.hidden ? 'false' : undefined,
        },
        labels('labels', 'label', c.display),
        el('control', {
          id: logical(c.schema),
          classid: braced(CONTROL_CLASS[c.kind]),
          datafieldname: logical(c.schema),
          disabled: 'false',
        }),
      ),
    ),
  );
  return xmlDocument(
    el(
      'forms',
      XSI,
      el(
        'systemform',
        {},
        leaf('formid', braced(t.formId)),
        leaf('IntroducedVersion', '1.0'),
        leaf('FormPresentation', 1),
        leaf('FormActivationState', 1),
        el(
          'form',
          {},
          el(
            'tabs',
            {},
            el(
              'tab',
              { verticallayout: 'true', id: braced(componentId('tab:general')), IsUserDefined: '1' },
              labels('labels', 'label', 'General'),
              el(
                'columns',
                {},
                el(
                  'column',
                  { width: '100%' },
                  el(
                    'sections',
                    {},
                    el(
                      'section',
                      {
                        showlabel: 'false',
                        showbar: 'false',
                        IsUserDefined: '0',
                        id: braced(componentId('section:general')),
                      },
                      labels('labels', 'label', 'General'),
                      el('rows', {}, cells),
                    ),
                  ),
                ),
              ),
            ),
          ),
        ),
        leaf('IsCustomizable', 1),
        leaf('CanBeDeleted', 1),
        labels('LocalizedNames', 'LocalizedName', 'Information'),
        labels('Descriptions', 'Description', `The main form of ${t.display}.`),
      ),
    ),
  );
}

/** `Entities/<schema>/SavedQueries/{id}.xml`: active rows, primary name first, ordered by it. */
export function viewXml(t: TableSpec, view: TableSpec['views'][number]): string {
  const table = logical(t.schema);
  const name = logical(t.primaryName.schema);
  const shown = [t.primaryName, ...t.columns.filter((c) => c.kind === 'string')];
  return xmlDocument(
    el(
      'savedqueries',
      XSI,
      el(
        'savedquery',
        {},
        leaf('IsCustomizable', 1),
        leaf('CanBeDeleted', 0),
        leaf('isquickfindquery', 0),
        leaf('isprivate', 0),
        leaf('isdefault', 1),
        leaf('savedqueryid', braced(view.id)),
        el(
          'layoutxml',
          {},
          el(
            'grid',
            { name: 'resultset', jump: name, select: '1', icon: '1', preview: '1' },
            el(
              'row',
              { name: 'result', id: `${table}id` },
              shown.map((c) => el('cell', { name: logical(c.schema), width: '300' })),
            ),
          ),
        ),
        leaf('querytype', view.querytype),
        el(
          'fetchxml',
          {},
          el(
            'fetch',
            { version: '1.0', mapping: 'logical' },
            el(
              'entity',
              { name: table },
              el('attribute', { name: `${table}id` }),
              shown.map((c) => el('attribute', { name: logical(c.schema) })),
              el('order', { attribute: name, descending: 'false' }),
              el('filter', { type: 'and' }, el('condition', { attribute: 'statecode', operator: 'eq', value: '0' })),
            ),
          ),
        ),
        leaf('IntroducedVersion', '1.0'),
        labels('LocalizedNames', 'LocalizedName', view.name),
      ),
    ),
  );
}

/** Every file of the table, by path relative to the solution folder. */
export function tableFiles(t: TableSpec, componentId: (what: string) => string): Array<[string, string]> {
  const dir = `Entities/${t.schema}`;
  return [
    [`${dir}/Entity.xml`, entityXml(t)],
    [`${dir}/FormXml/main/${braced(t.formId)}.xml`, mainFormXml(t, componentId)],
    ...t.views.map((v): [string, string] => [`${dir}/SavedQueries/${braced(v.id)}.xml`, viewXml(t, v)]),
  ];
}
