/**
 * Channel definitions and message parts of a solution → rows, checked against each other, the solution's custom
 * APIs and tables, and the org (MSDocs-CE real-time-marketing-define-channel-definition.md, the message parts page).
 */
import { SOLUTION_IMPORT, outboundApiName } from '../assumptions.js';
import type { TableDef } from '../metadata.js';
import type { OrganizationService } from '../service.js';
import type { LookupValue, Row } from '../store.js';
import { tableIn, type ImportPlan } from './plan.js';
import { SolutionImportError, type SolutionContent, type SolutionRecord } from './read.js';
import { FILE, readRecordValues } from './values.js';

const DEFINITION_GUIDS = [
  'msdyn_channeldefinitionexternalformid',
  'msdyn_channeldefinitionaccountexternalformid',
  'msdyn_messageformid',
] as const;
const DEFINITION_REQUIRED = [
  'msdyn_channeltype',
  'msdyn_outboundendpointurltemplate',
  'msdyn_hasinbound',
  'msdyn_hasdeliveryreceipt',
  'msdyn_supportsaccount',
  'msdyn_channeldefinitionexternalentity',
  'msdyn_channeldefinitionexternalformid',
] as const;

export function planChannels(
  service: OrganizationService,
  content: SolutionContent,
  tables: TableDef[],
  plan: ImportPlan,
): void {
  const definitions = service.table('msdyn_channeldefinition');
  const partsDef = service.table('msdyn_channelmessagepart');
  const read = new Map<string, { record: SolutionRecord; values: Row }>();
  for (const record of content.channelDefinitions) {
    const values = readRecordValues(definitions, record, DEFINITION_GUIDS);
    for (const column of DEFINITION_REQUIRED) {
      if (values[column] === undefined)
        throw new SolutionImportError(FILE, record.where, `has no <${column}> (required)`);
    }
    const type = values['msdyn_channeltype'] as string;
    if (!(SOLUTION_IMPORT.channelTypes as readonly string[]).includes(type))
      throw new SolutionImportError(
        FILE,
        `${record.where}/<msdyn_channeltype>`,
        `must be ${SOLUTION_IMPORT.channelTypes.join(' or ')}, found '${type}'`,
      );
    if (type === 'SMS' && values['msdyn_supportsaccount'] !== true)
      throw new SolutionImportError(
        FILE,
        `${record.where}/<msdyn_supportsaccount>`,
        'an SMS channel must support accounts (1)',
      );
    const api = outboundApiName(values['msdyn_outboundendpointurltemplate'] as string);
    const inSolution = content.customApis.some((a) => a.uniqueName === api);
    if (!inSolution && !service.store.findIndexed(service.table('customapi'), 'uniquename', api)?.length)
      throw new SolutionImportError(
        FILE,
        `${record.where}/<msdyn_outboundendpointurltemplate>`,
        `names the custom API '${api}', which is neither in the solution (customapis/${api}/customapi.xml) nor in the organization`,
      );
    const pairs: Array<[string, string]> = [
      ['msdyn_channeldefinitionexternalentity', 'msdyn_channeldefinitionexternalformid'],
      ['msdyn_channeldefinitionaccountexternalentity', 'msdyn_channeldefinitionaccountexternalformid'],
    ];
    for (const [entityColumn, formColumn] of pairs) {
      const entity = values[entityColumn] as string | undefined;
      if (entity === undefined) continue;
      if (!tableIn(service, tables, entity.toLowerCase()))
        throw new SolutionImportError(
          FILE,
          `${record.where}/<${entityColumn}>`,
          `'${entity}' is neither a table of the solution nor of the organization`,
        );
      const solutionTable = content.tables.find((t) => t.logicalName === entity.toLowerCase());
      const form = values[formColumn] as string | undefined;
      if (solutionTable && form !== undefined && !solutionTable.forms.includes(form))
        throw new SolutionImportError(
          FILE,
          `${record.where}/<${formColumn}>`,
          `${form} is not a form of '${solutionTable.logicalName}' in the solution (forms: ${solutionTable.forms.join(', ') || 'none'})`,
        );
    }
    read.set(record.id, { record, values });
    plan.rows.push({ table: 'msdyn_channeldefinition', id: record.id, values });
    plan.components.push({
      kind: 'channelDefinition',
      name: String(values['msdyn_displayname'] ?? record.id),
      created: !service.store.get(definitions, record.id),
    });
  }
  const partsOf = new Map<string, string[]>();
  for (const record of content.messageParts) {
    const values = readRecordValues(partsDef, record, ['msdyn_entityviewid']);
    const definition = (values['msdyn_channeldefinitionid'] as LookupValue | undefined)?.id;
    if (definition === undefined)
      throw new SolutionImportError(FILE, record.where, 'has no <msdyn_channeldefinitionid> (required)');
    if (!read.has(definition) && !service.store.get(definitions, definition))
      throw new SolutionImportError(
        FILE,
        `${record.where}/<msdyn_channeldefinitionid>`,
        `${definition} is neither a channel definition of the solution nor of the organization`,
      );
    const name = values['msdyn_name'];
    if (typeof name !== 'string') throw new SolutionImportError(FILE, record.where, 'has no <msdyn_name> (required)');
    const type = values['msdyn_type'];
    if (!(SOLUTION_IMPORT.messagePartTypes as readonly unknown[]).includes(type))
      throw new SolutionImportError(
        FILE,
        `${record.where}/<msdyn_type>`,
        `must be one of ${SOLUTION_IMPORT.messagePartTypes.join(', ')}, found ${JSON.stringify(type ?? null)}`,
      );
    const names = partsOf.get(definition) ?? [];
    if (names.includes(name))
      throw new SolutionImportError(
        FILE,
        `${record.where}/<msdyn_name>`,
        `a second part named '${name}' for the same channel definition`,
      );
    partsOf.set(definition, [...names, name]);
    plan.rows.push({ table: 'msdyn_channelmessagepart', id: record.id, values });
    plan.components.push({ kind: 'messagePart', name, created: !service.store.get(partsDef, record.id) });
  }
  for (const [id, { record, values }] of read) {
    const names = partsOf.get(id) ?? [];
    // Parts already in the org for this definition that the solution does not bring stay (an import deletes nothing).
    for (const row of service.store.rows(partsDef)) {
      const ref = (row['msdyn_channeldefinitionid'] as LookupValue | undefined)?.id;
      if (ref === id && !content.messageParts.some((p) => p.id === row['msdyn_channelmessagepartid']))
        names.push(String(row['msdyn_name']));
    }
    if (values['msdyn_channeltype'] === 'SMS' && (names.length !== 1 || names[0] !== SOLUTION_IMPORT.smsPart))
      throw new SolutionImportError(
        FILE,
        `<msdyn_channelmessageparts> for ${record.where}`,
        `an SMS channel has exactly one message part, named '${SOLUTION_IMPORT.smsPart}' (found: ${names.join(', ') || 'none'})`,
      );
    if (names.length === 0)
      throw new SolutionImportError(
        FILE,
        `<msdyn_channelmessageparts> for ${record.where}`,
        'a custom channel needs at least one message part',
      );
  }
}
