/** Custom APIs of a solution → `customapi`, request parameter and response property rows (PA-docs custom-api-solution.md). */
import { randomUUID } from 'node:crypto';
import { CUSTOM_API_STEP_TYPES } from '../assumptions.js';
import type { TableDef } from '../metadata.js';
import type { OrganizationService } from '../service.js';
import type { LookupValue } from '../store.js';
import type { ImportPlan } from './plan.js';
import { SolutionImportError, type SolutionContent } from './read.js';
import { readApiValues } from './values.js';

const CUSTOM_API_COLUMNS: Record<string, 'string' | 'int' | 'bool' | 'ignored'> = {
  allowedcustomprocessingsteptype: 'int',
  bindingtype: 'int',
  boundentitylogicalname: 'string',
  description: 'string',
  displayname: 'string',
  executeprivilegename: 'string',
  isfunction: 'bool',
  isprivate: 'bool',
  name: 'string',
  workflowsdkstepenabled: 'bool',
  iscustomizable: 'ignored',
  plugintypeid: 'ignored',
};
const PARAMETER_COLUMNS: Record<string, 'string' | 'int' | 'bool' | 'ignored'> = {
  description: 'string',
  displayname: 'string',
  isoptional: 'bool',
  logicalentityname: 'string',
  name: 'string',
  type: 'int',
  iscustomizable: 'ignored',
};
const { isoptional: _notForResponses, ...RESPONSE_COLUMNS } = PARAMETER_COLUMNS;
const IMMUTABLE = {
  customapi: [
    'allowedcustomprocessingsteptype',
    'bindingtype',
    'boundentitylogicalname',
    'isfunction',
    'workflowsdkstepenabled',
  ],
  customapirequestparameter: ['isoptional', 'logicalentityname', 'type'],
  customapiresponseproperty: ['logicalentityname', 'type'],
} as const;

export function planCustomApis(service: OrganizationService, content: SolutionContent, plan: ImportPlan): void {
  const apis = service.table('customapi');
  const params = service.table('customapirequestparameter');
  const props = service.table('customapiresponseproperty');
  for (const api of content.customApis) {
    const where = `<customapi uniquename="${api.uniqueName}">`;
    const values = readApiValues(api.values, CUSTOM_API_COLUMNS, api.file, where);
    const steps = values['allowedcustomprocessingsteptype'] ?? CUSTOM_API_STEP_TYPES.none;
    if (![0, 1, 2].includes(steps as number))
      throw new SolutionImportError(
        api.file,
        `${where}/<allowedcustomprocessingsteptype>`,
        `must be 0, 1 or 2, found ${String(steps)}`,
      );
    if (values['bindingtype'] !== undefined && ![0, 1, 2].includes(values['bindingtype'] as number))
      throw new SolutionImportError(
        api.file,
        `${where}/<bindingtype>`,
        `must be 0, 1 or 2, found ${String(values['bindingtype'])}`,
      );
    const existing = service.store.findIndexed(apis, 'uniquename', api.uniqueName)?.[0];
    const id = (existing?.['customapiid'] as string | undefined) ?? randomUUID();
    if (existing) {
      for (const column of IMMUTABLE.customapi) {
        const next = column === 'allowedcustomprocessingsteptype' ? steps : (values[column] ?? null);
        if (next !== (existing[column] ?? null) && !(next === false && existing[column] === undefined))
          throw new SolutionImportError(
            api.file,
            `${where}/<${column}>`,
            `cannot change after the custom API is created (it is ${JSON.stringify(existing[column] ?? null)}, the solution has ${JSON.stringify(next)})`,
          );
      }
    }
    plan.rows.push({
      table: 'customapi',
      id,
      values: { ...values, uniquename: api.uniqueName, allowedcustomprocessingsteptype: steps },
    });
    plan.components.push({ kind: 'customApi', name: api.uniqueName, created: !existing });
    const parts: Array<
      [
        typeof api.requestParameters,
        TableDef,
        typeof PARAMETER_COLUMNS,
        'customapirequestparameter' | 'customapiresponseproperty',
      ]
    > = [
      [api.requestParameters, params, PARAMETER_COLUMNS, 'customapirequestparameter'],
      [api.responseProperties, props, RESPONSE_COLUMNS, 'customapiresponseproperty'],
    ];
    for (const [entries, def, columns, kind] of parts) {
      for (const part of entries) {
        const at = `<${kind} uniquename="${part.uniqueName}">`;
        const row = readApiValues(part.values, columns, part.file, at);
        const type = row['type'];
        if (typeof type !== 'number' || type < 0 || type > 12)
          throw new SolutionImportError(
            part.file,
            `${at}/<type>`,
            `must be a parameter type 0-12, found ${JSON.stringify(type ?? null)}`,
          );
        const previous = existing
          ? [...service.store.rows(def)].find(
              (r) => (r['customapiid'] as LookupValue | undefined)?.id === id && r['uniquename'] === part.uniqueName,
            )
          : undefined;
        if (previous) {
          for (const column of IMMUTABLE[kind]) {
            if (
              (row[column] ?? null) !== (previous[column] ?? null) &&
              !(row[column] === undefined && previous[column] === false)
            )
              throw new SolutionImportError(
                part.file,
                `${at}/<${column}>`,
                `cannot change after it is created (it is ${JSON.stringify(previous[column] ?? null)})`,
              );
          }
        }
        plan.rows.push({
          table: kind,
          id: (previous?.[def.primaryKey] as string | undefined) ?? randomUUID(),
          values: {
            ...row,
            uniquename: part.uniqueName,
            customapiid: { id, table: 'customapi' } satisfies LookupValue,
          },
        });
      }
    }
  }
}
