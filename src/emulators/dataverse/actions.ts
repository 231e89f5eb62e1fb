/**
 * The unbound actions: `msdyncrm_CustomChannelActivityCreateInteraction` (every parameter checked against the
 * Custom Channel Activity row and against the response types of the channel's tile), and the real-time journeys
 * APIs `msdyn_D365ChannelsNotification` and `msdyn_D365ChannelsInbound` (every payload field checked by its documented
 * type; they answer 200 with `responseMessage`). Each stores an interaction with its time.
 */
import { DataverseFault, isGuid } from './faults.js';
import { nowIsoSeconds } from './payload.js';
import {
  JSON_HEADERS,
  type ActionHandler,
  type OperationRequest,
  type OperationResponse,
  type OrganizationService,
} from './service.js';
import type { LookupValue, Row } from './store.js';
import { CREATE_INTERACTION, REALTIME_ACTIONS, typeMismatch } from './assumptions.js';

const ACTIVITY_TABLE = 'msdyncrm_customerjourneycustomchannelactivity';
const NO_CONTENT: OperationResponse = { status: 204, headers: { 'OData-Version': '4.0' } };

function invalid(action: string, message: string): DataverseFault {
  return new DataverseFault('InvalidArgument', `${action}: ${message}`);
}

function requireString(action: string, params: Record<string, unknown>, name: string): string {
  const value = params[name];
  if (value === undefined || value === null) throw invalid(action, `the required parameter '${name}' is missing.`);
  if (typeof value !== 'string' || value === '')
    throw invalid(action, `the parameter '${name}' must be a non-empty string, found ${JSON.stringify(value)}.`);
  return value;
}

/** Reads an EntityReference parameter (`{"@odata.type": "Microsoft.Dynamics.CRM.<table>", "<table>id": "<guid>"}`). */
function requireReference(
  action: string,
  params: Record<string, unknown>,
  name: string,
  table: string,
  key: string,
): string {
  const value = params[name];
  if (value === undefined || value === null) throw invalid(action, `the required parameter '${name}' is missing.`);
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw invalid(
      action,
      `the parameter '${name}' must be an entity reference {"@odata.type":"Microsoft.Dynamics.CRM.${table}","${key}":"<guid>"}.`,
    );
  }
  const ref = value as Record<string, unknown>;
  const type = ref['@odata.type'];
  if (type !== undefined && type !== `Microsoft.Dynamics.CRM.${table}` && type !== `#Microsoft.Dynamics.CRM.${table}`) {
    throw invalid(action, `the parameter '${name}' must reference a '${table}', found @odata.type '${String(type)}'.`);
  }
  const id = ref[key];
  if (id === undefined)
    throw new DataverseFault(
      'Payload',
      `${action}: EdmEntityObject passed should have the key property value set: '${name}' needs '${key}'.`,
    );
  if (!isGuid(id)) throw invalid(action, `'${name}.${key}' is not a valid GUID: ${JSON.stringify(id)}.`);
  return id.toLowerCase();
}

function lookupId(row: Row, column: string): string | undefined {
  return (row[column] as LookupValue | null | undefined)?.id;
}

function mismatchFault(
  activityId: string,
  param: string,
  column: string,
  given: string,
  stored: string | undefined,
): DataverseFault {
  return invalid(
    CREATE_INTERACTION.action,
    `'${param}' is ${given}, but the Custom Channel Activity with msdyncrm_activityid '${activityId}' has ${column} ${stored ?? 'null'}.`,
  );
}

function sameTargets(row: Row, refs: Record<string, string>): boolean {
  return (
    lookupId(row, 'msdyncrm_contact') === refs['Contact'] &&
    lookupId(row, 'msdyncrm_customerjourney') === refs['CustomerJourney'] &&
    lookupId(row, 'msdyncrm_customerjourneyiteration') === refs['CustomerJourneyIteration']
  );
}

const KNOWN_PARAMETERS = new Set<string>([
  ...CREATE_INTERACTION.requiredStrings,
  ...Object.keys(CREATE_INTERACTION.references),
  CREATE_INTERACTION.keyword,
]);
const REFERENCES = Object.entries(CREATE_INTERACTION.references);

function createInteraction(service: OrganizationService): ActionHandler {
  const action = CREATE_INTERACTION.action;
  const known = KNOWN_PARAMETERS;
  return (params, req) => {
    for (const key of Object.keys(params)) {
      if (!known.has(key) && !key.startsWith('@'))
        throw invalid(action, `the action has no parameter '${key}' (parameters: ${[...known].join(', ')}).`);
    }
    const activityId = requireString(action, params, 'ActivityId');
    const entityType = requireString(action, params, 'EntityType');
    const entityId = requireString(action, params, 'EntityId');
    const responseType = requireString(action, params, 'ResponseType');
    const refs: Record<string, string> = {};
    for (const [name, [table, key]] of REFERENCES) refs[name] = requireReference(action, params, name, table, key);
    const keyword = params[CREATE_INTERACTION.keyword];
    if (keyword !== undefined && keyword !== null && typeof keyword !== 'string') {
      throw invalid(action, `the parameter 'TriggerKeyword' must be a string, found ${JSON.stringify(keyword)}.`);
    }

    const activities = service.table(ACTIVITY_TABLE);
    const store = service.store;
    const shared = store.countIndexed(activities, 'msdyncrm_activityid', activityId) ?? 0;
    if (shared === 0)
      throw new DataverseFault(
        'RowNotFound',
        `${action}: no Custom Channel Activity has msdyncrm_activityid '${activityId}'.`,
      );
    // The row is told by the tile's activity id, contact, journey and iteration (assumptions.ts journeyActivityId):
    // every row of a run shares the activity id, so the rows are found through the contact's index, not by a walk
    // over the run's rows (a run of 100,000 made each interaction cost that many).
    const row =
      shared === 1
        ? store.findIndexed(activities, 'msdyncrm_activityid', activityId)![0]!
        : store
            .findIndexedAll(activities, [
              ['msdyncrm_activityid', activityId],
              ['msdyncrm_contact', refs['Contact']],
            ])!
            .find((r) => sameTargets(r, refs));
    if (row === undefined) {
      throw invalid(
        action,
        `none of the ${shared} Custom Channel Activities with msdyncrm_activityid '${activityId}' has msdyncrm_contact ${refs['Contact']}, ` +
          `msdyncrm_customerjourney ${refs['CustomerJourney']} and msdyncrm_customerjourneyiteration ${refs['CustomerJourneyIteration']}.`,
      );
    }
    const mismatch = (param: string, column: string, given: string, stored: string | undefined): DataverseFault =>
      mismatchFault(activityId, param, column, given, stored);
    if (lookupId(row, 'msdyncrm_contact') !== refs['Contact'])
      throw mismatch('Contact', 'msdyncrm_contact', refs['Contact']!, lookupId(row, 'msdyncrm_contact'));
    if (lookupId(row, 'msdyncrm_customerjourney') !== refs['CustomerJourney']) {
      throw mismatch(
        'CustomerJourney',
        'msdyncrm_customerjourney',
        refs['CustomerJourney']!,
        lookupId(row, 'msdyncrm_customerjourney'),
      );
    }
    if (lookupId(row, 'msdyncrm_customerjourneyiteration') !== refs['CustomerJourneyIteration']) {
      throw mismatch(
        'CustomerJourneyIteration',
        'msdyncrm_customerjourneyiteration',
        refs['CustomerJourneyIteration']!,
        lookupId(row, 'msdyncrm_customerjourneyiteration'),
      );
    }
    if (String(row['msdyncrm_entitytype'] ?? '') !== entityType) {
      throw mismatch(
        'EntityType',
        'msdyncrm_entitytype',
        `'${entityType}'`,
        `'${String(row['msdyncrm_entitytype'] ?? '')}'`,
      );
    }
    if (String(row['msdyncrm_entityid'] ?? '').toLowerCase() !== entityId.toLowerCase()) {
      throw mismatch('EntityId', 'msdyncrm_entityid', `'${entityId}'`, `'${String(row['msdyncrm_entityid'] ?? '')}'`);
    }
    const tile = service.tiles.get(entityType);
    if (!tile) throw invalid(action, `no channel tile declares EntityType '${entityType}'.`);
    if (tile.responseTypes.length > 0) {
      const type = tile.responseTypes.find((t) => t.id === responseType);
      if (!type) {
        throw invalid(
          action,
          `the response type '${responseType}' is not defined by the tile for '${entityType}' (defined: ${tile.responseTypes.map((t) => t.id).join(', ')}).`,
        );
      }
      const hasKeyword = typeof keyword === 'string' && keyword !== '';
      if (type.custom && !hasKeyword)
        throw invalid(action, `'TriggerKeyword' is required for the response type '${responseType}' (custom="True").`);
      const custom = tile.responseTypes.find((t) => t.custom)?.id;
      if (!type.custom && hasKeyword)
        throw invalid(
          action,
          `'TriggerKeyword' is only allowed for the custom response type${custom ? ` '${custom}'` : ''}, not for '${responseType}'.`,
        );
    }
    const interaction: Parameters<typeof service.interactions.add>[0] = {
      kind: 'interaction',
      createdOn: nowIsoSeconds(),
      userId: req.userId,
      activityId,
      activityRowId: row[activities.primaryKey] as string,
      contactId: refs['Contact']!,
      journeyId: refs['CustomerJourney']!,
      iterationId: refs['CustomerJourneyIteration']!,
      entityType,
      entityId,
      responseType,
    };
    if (typeof keyword === 'string' && keyword !== '') interaction.triggerKeyword = keyword;
    service.interactions.add(interaction, req.tx);
    return { status: CREATE_INTERACTION.status, headers: { ...NO_CONTENT.headers } };
  };
}

/** The serialized-JSON payload parameter, parsed, with the name it was given under. */
function readPayloadParameter(
  action: string,
  params: Record<string, unknown>,
  names: readonly string[],
): { name: string; payload: Record<string, unknown> } {
  const name = names.find((n) => params[n] !== undefined);
  if (name === undefined) throw invalid(action, `the required parameter '${names[0]}' is missing.`);
  const raw = params[name];
  if (typeof raw !== 'string')
    throw invalid(action, `the parameter '${name}' must be a string holding serialized JSON.`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw invalid(action, `the parameter '${name}' is not valid JSON.`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw invalid(action, `the parameter '${name}' must hold a JSON object.`);
  return { name, payload: parsed as Record<string, unknown> };
}

/** Reads the payload's fields by their documented .NET types (REALTIME_ACTIONS): a wrong type is Dataverse's type mismatch. */
class PayloadReader {
  constructor(
    readonly action: string,
    readonly parameter: string,
    readonly payload: Record<string, unknown>,
  ) {}

  #mismatch(field: string, expected: string): DataverseFault {
    return new DataverseFault(
      'Payload',
      typeMismatch(this.action, this.parameter, field, this.payload[field], expected),
    );
  }

  #present(field: string): unknown {
    const v = this.payload[field];
    if (v === undefined || v === null || v === '')
      throw invalid(this.action, `the payload field '${field}' is required.`);
    return v;
  }

  string(field: string): string {
    const v = this.#present(field);
    if (typeof v !== 'string') throw this.#mismatch(field, REALTIME_ACTIONS.types.string);
    return v;
  }

  guid(field: string): string {
    const v = this.#present(field);
    if (!isGuid(v)) throw this.#mismatch(field, REALTIME_ACTIONS.types.guid);
    return v.toLowerCase();
  }

  /** `Dictionary<string, string>`: a JSON object whose values are all strings. */
  parts(field: string): Record<string, string> {
    const v = this.#present(field);
    if (typeof v !== 'object' || Array.isArray(v) || !Object.values(v as object).every((x) => typeof x === 'string'))
      throw this.#mismatch(field, REALTIME_ACTIONS.types.messageParts);
    return v as Record<string, string>;
  }

  /** `Dictionary<string, object>`, optional: absent, or a JSON object (not null, not a string). */
  optionalObject(field: string): void {
    const v = this.payload[field];
    if (v === undefined) return;
    if (typeof v !== 'object' || v === null || Array.isArray(v))
      throw this.#mismatch(field, REALTIME_ACTIONS.types.statusDetails);
  }
}

function requireChannelDefinition(service: OrganizationService, action: string, id: string): void {
  if (!service.store.get(service.table('msdyn_channeldefinition'), id)) {
    throw new DataverseFault('RowNotFound', `${action}: msdyn_channeldefinition With Id = ${id} Does Not Exist`);
  }
}

function requireOrganization(service: OrganizationService, action: string, id: string): void {
  if (id !== service.organization.id.toLowerCase())
    throw invalid(action, `'OrganizationId' ${id} is not this organization (${service.organization.id}).`);
}

/** 200 with the action's output `responseMessage` (see REALTIME_ACTIONS). */
function responseMessage(service: OrganizationService, action: string): OperationResponse {
  const body = {
    '@odata.context': `${service.apiRoot}$metadata#Microsoft.Dynamics.CRM.${action}Response`,
    responseMessage: REALTIME_ACTIONS.responseMessage,
  };
  return { status: 200, headers: { ...JSON_HEADERS }, body: JSON.stringify(body) };
}

function notification(service: OrganizationService): ActionHandler {
  const { action, parameter } = REALTIME_ACTIONS.notification;
  return (params, req: OperationRequest) => {
    const { name, payload } = readPayloadParameter(action, params, parameter);
    const read = new PayloadReader(action, name, payload);
    const definition = read.guid('ChannelDefinitionId');
    for (const f of ['RequestId', 'MessageId', 'From', 'Status']) read.string(f);
    const organization = read.guid('OrganizationId');
    read.optionalObject('StatusDetails');
    const status = payload['Status'] as string;
    if (!(REALTIME_ACTIONS.notificationStatuses as readonly string[]).includes(status)) {
      throw invalid(
        action,
        `'Status' must be one of ${REALTIME_ACTIONS.notificationStatuses.join(', ')}, found '${status}'.`,
      );
    }
    requireOrganization(service, action, organization);
    requireChannelDefinition(service, action, definition);
    service.interactions.add(
      { kind: 'notification', createdOn: nowIsoSeconds(), userId: req.userId, responseType: status, payload },
      req.tx,
    );
    return responseMessage(service, action);
  };
}

function inbound(service: OrganizationService): ActionHandler {
  const { action, parameter } = REALTIME_ACTIONS.inbound;
  return (params, req: OperationRequest) => {
    const { name, payload } = readPayloadParameter(action, params, parameter);
    const read = new PayloadReader(action, name, payload);
    const definition = read.guid('ChannelDefinitionId');
    read.string('To');
    read.string('From');
    const organization = read.guid('OrganizationId');
    read.parts('Message');
    requireOrganization(service, action, organization);
    requireChannelDefinition(service, action, definition);
    service.interactions.add({ kind: 'inbound', createdOn: nowIsoSeconds(), userId: req.userId, payload }, req.tx);
    return responseMessage(service, action);
  };
}

/** Registers the actions on the service. */
export function registerActions(service: OrganizationService): void {
  service.actions.set(CREATE_INTERACTION.action, createInteraction(service));
  service.actions.set(REALTIME_ACTIONS.notification.action, notification(service));
  service.actions.set(REALTIME_ACTIONS.inbound.action, inbound(service));
}
