/**
 * Pure decoding of the RemoteExecutionContext Dataverse posts to Service Bus (reference/dataverse-contracts.md §2.3)
 * into a typed event. The body may be a Buffer, a string or an already-parsed object (the @azure/service-bus
 * receiver parses JSON data sections), may start with a UTF-8 BOM, and uses the data-contract JSON encodings:
 * `__type` discriminators (Entity, EntityReference, OptionSetValue, Money), `\/Date(ms[±hhmm])\/` dates, and
 * attribute collections as `[{key, value}]` lists. Anything the relay cannot use is an `EventError` whose message
 * says exactly what was wrong, for the dead-letter description.
 */
import type {
  ActivityEvent,
  DecodedEvent,
  EventOrigin,
  RealtimeEvent,
  TruncatedActivityEvent,
} from '../pipeline/index.js';
import { EventError } from '../errors.js';
import { ACTIVITY_TILE_ID, REALTIME_OUTBOUND_CALL, TARGET_ATTRIBUTES, TRUNCATED_PROPERTY } from './assumptions.js';

export const ACTIVITY_TABLE = 'msdyncrm_customerjourneycustomchannelactivity';
export const ACTIVITY_SET = 'msdyncrm_customerjourneycustomchannelactivities';
export const ACTIVITY_KEY = 'msdyncrm_customerjourneycustomchannelactivityid';
/** The Web API columns {@link activityFromRow} reads (lookups as `_x_value`). */
export const ACTIVITY_COLUMNS = [
  ACTIVITY_KEY,
  ACTIVITY_TILE_ID,
  'msdyncrm_entitytype',
  'msdyncrm_entityid',
  'msdyncrm_name',
  '_msdyncrm_contact_value',
  '_msdyncrm_customerjourney_value',
  '_msdyncrm_customerjourneyiteration_value',
] as const;

export type {
  EventOrigin,
  ActivityEvent,
  TruncatedActivityEvent,
  RealtimeEvent,
  DecodedEvent,
} from '../pipeline/index.js';

/** What decoding needs of a received message (a port `Delivery` fits). */
export interface PostedEvent {
  body: unknown;
  contentType?: string | undefined;
  applicationProperties?: Readonly<Record<string, unknown>> | undefined;
}

/** A decoded EntityReference. */
export interface EntityRef {
  id: string;
  logicalName: string;
  name: string | null;
}

/** A decoded Entity: attributes by key, values decoded. */
export interface DecodedEntity {
  logicalName: string;
  id: string | undefined;
  attributes: Map<string, unknown>;
}

type Json = Record<string, unknown>;
const EMPTY_GUID = '00000000-0000-0000-0000-000000000000';
const DATE = /^\/Date\((-?\d+)([+-]\d{4})?\)\/$/;
/**
 * An endpoint without `messageformat` posts .NET Binary XML, Dataverse's default (PA-docs azure-integration.md: "XML
 * or JSON in addition to the default .NET binary format"); `channel-relay register` sets 2 (Json).
 */
const FORMAT_ADVICE =
  "the relay reads only JSON: set the step's service endpoint to messageformat 2 (Json), as `channel-relay register` does " +
  '(an endpoint made without messageformat posts .NET Binary XML, the default)';

function shown(value: unknown): string {
  if (value === undefined) return 'nothing';
  const text = JSON.stringify(value);
  return text === undefined ? String(value) : text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/** `\/Date(1721816905000)\/` or `/Date(1721816905000-0700)/` → the instant (the ms are UTC; the offset is the writer's zone). */
export function parseWcfDate(value: string): Date | undefined {
  const m = DATE.exec(value);
  return m === null ? undefined : new Date(Number(m[1]));
}

function typeName(value: Json): string | undefined {
  const t = value['__type'];
  return typeof t === 'string' ? t.split(':')[0] : undefined;
}

/** Decodes one data-contract value: EntityReference → {@link EntityRef}, OptionSetValue and Money → their number, Entity → {@link DecodedEntity}, a WCF date → Date; the rest as it is. */
export function decodeValue(value: unknown): unknown {
  if (typeof value === 'string') return parseWcfDate(value) ?? value;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return value;
  const o = value as Json;
  switch (typeName(o)) {
    case 'EntityReference':
      return {
        id: String(o['Id']),
        logicalName: String(o['LogicalName']),
        name: typeof o['Name'] === 'string' ? o['Name'] : null,
      } satisfies EntityRef;
    case 'OptionSetValue':
    case 'Money':
      return o['Value'];
    case 'Entity':
      return decodeEntity(o);
    default:
      return value;
  }
}

/** `[{key, value}]` (or a plain object) → a Map. */
function collection(value: unknown): Map<string, unknown> | undefined {
  if (Array.isArray(value)) {
    const map = new Map<string, unknown>();
    for (const entry of value) {
      if (typeof entry === 'object' && entry !== null && typeof (entry as Json)['key'] === 'string')
        map.set((entry as Json)['key'] as string, (entry as Json)['value']);
    }
    return map;
  }
  if (typeof value === 'object' && value !== null) return new Map(Object.entries(value as Json));
  return undefined;
}

function decodeEntity(o: Json): DecodedEntity {
  const attributes = new Map<string, unknown>();
  for (const [k, v] of collection(o['Attributes']) ?? []) attributes.set(k, decodeValue(v));
  return {
    logicalName: String(o['LogicalName'] ?? ''),
    id: typeof o['Id'] === 'string' ? o['Id'] : undefined,
    attributes,
  };
}

function mediaType(contentType: string | undefined): string {
  return (contentType ?? '').split(';')[0]!.trim().toLowerCase();
}

function unsupported(format: string): EventError {
  return new EventError('EventUnsupportedFormat', `the body is ${format}; ${FORMAT_ADVICE}`);
}

/** Turns the body into the context object, or says why it cannot. */
function parseBody(event: PostedEvent): Json {
  const type = mediaType(event.contentType);
  if (type === 'application/msbin1')
    throw unsupported('.NET Binary XML (application/msbin1, serviceendpoint messageformat 1)');
  if (type === 'application/xml' || type === 'text/xml')
    throw unsupported(`Text XML (${type}, serviceendpoint messageformat 3)`);
  let body = event.body;
  if (Buffer.isBuffer(body) || body instanceof Uint8Array) {
    const bytes = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    const start = bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;
    const first = bytes[start];
    // [MC-NBFX] documents start with an element record (0x40-0x77); text never holds control bytes like these.
    if (
      first !== undefined &&
      ((first >= 0x40 && first <= 0x77 && bytes.length > start + 1 && bytes[start + 1]! < 0x20) ||
        hasBinaryBytes(bytes, start))
    ) {
      throw unsupported(
        `binary (first byte 0x${first.toString(16).padStart(2, '0')}, likely .NET Binary XML, serviceendpoint messageformat 1)`,
      );
    }
    body = bytes.toString('utf8', start);
  }
  if (typeof body === 'string') {
    const text = body.replace(/^\uFEFF/, '').trim();
    if (text === '') throw new EventError('EventUndecodable', 'the body is empty');
    if (text.startsWith('<')) throw unsupported('XML (it starts with "<", serviceendpoint messageformat 3 Text XML)');
    try {
      body = JSON.parse(text);
    } catch (err) {
      throw new EventError(
        'EventUndecodable',
        `the body is not valid JSON: ${(err as Error).message} (it starts with ${shown(text.slice(0, 40))})`,
      );
    }
  }
  if (body === undefined || body === null) throw new EventError('EventUndecodable', 'the body is empty');
  if (typeof body !== 'object' || Array.isArray(body)) {
    throw new EventError(
      'EventUndecodable',
      `the body must be a JSON object (a RemoteExecutionContext), found ${Array.isArray(body) ? 'an array' : typeof body}`,
    );
  }
  return body as Json;
}

function hasBinaryBytes(bytes: Buffer, start: number): boolean {
  const end = Math.min(bytes.length, start + 64);
  for (let i = start; i < end; i++) {
    const b = bytes[i]!;
    if (b < 0x09 || (b > 0x0d && b < 0x20)) return true;
  }
  return false;
}

function missing(where: string, expected: string, found: unknown, extra = ''): never {
  throw new EventError('EventMissingAttribute', `${where} must be ${expected}, found ${shown(found)}${extra}`);
}

function requiredString(o: Json, key: string, where = key): string {
  const v = o[key];
  if (typeof v !== 'string' || v === '') missing(where, 'a non-empty string', v);
  return v;
}

function origin(context: Json): EventOrigin {
  return {
    organizationId: requiredString(context, 'OrganizationId'),
    correlationId: requiredString(context, 'CorrelationId'),
    operationId: requiredString(context, 'OperationId'),
  };
}

function isTruncated(event: PostedEvent, context: Json): boolean {
  const flag = event.applicationProperties?.[TRUNCATED_PROPERTY];
  if (flag === true || (typeof flag === 'string' && flag.toLowerCase() === 'true')) return true;
  const inputs = context['InputParameters'];
  return inputs === undefined || inputs === null || (Array.isArray(inputs) && inputs.length === 0);
}

function attributeString(attrs: Map<string, unknown>, key: string): string {
  const v = attrs.get(key);
  if (typeof v !== 'string' || v === '') missing(`Target attribute '${key}'`, 'a non-empty string', v);
  return v;
}

function attributeReference(attrs: Map<string, unknown>, key: string, table: string): string {
  const v = attrs.get(key);
  const ref = v as Partial<EntityRef> | undefined;
  if (
    typeof v !== 'object' ||
    v === null ||
    v instanceof Date ||
    typeof ref?.id !== 'string' ||
    ref.id === '' ||
    typeof ref.logicalName !== 'string'
  ) {
    missing(`Target attribute '${key}'`, `an EntityReference to ${table}`, v instanceof Date ? v.toISOString() : v);
  }
  if (ref.logicalName !== table)
    missing(`Target attribute '${key}'`, `an EntityReference to ${table}`, `a reference to ${ref.logicalName}`);
  return ref.id;
}

function decodeActivity(context: Json, from: EventOrigin): ActivityEvent | TruncatedActivityEvent {
  const inputs = collection(context['InputParameters']);
  const target = inputs?.get('Target');
  if (typeof target !== 'object' || target === null) {
    missing(
      "InputParameters 'Target'",
      'the created Entity',
      target,
      ` (input parameters: ${inputs === undefined ? 'none' : [...inputs.keys()].join(', ') || 'none'})`,
    );
  }
  const entity = decodeEntity(target as Json);
  const attrs = entity.attributes;
  const rowId =
    entity.id ??
    (typeof attrs.get(ACTIVITY_KEY) === 'string' ? (attrs.get(ACTIVITY_KEY) as string) : undefined) ??
    (context['PrimaryEntityId'] as string | undefined);
  if (typeof rowId !== 'string' || rowId === '' || rowId === EMPTY_GUID)
    missing('Target Id', 'the activity row id', rowId);
  // A Create's Target holds what the create request set: an attribute set later (or by a plug-in) is on the row only.
  const absent = TARGET_ATTRIBUTES.filter((key) => !attrs.has(key));
  if (absent.length > 0) return { kind: 'activity-truncated', activityRowId: rowId, missing: absent, ...from };
  const name = attrs.get('msdyncrm_name');
  return {
    kind: 'activity',
    activityRowId: rowId,
    activityId: attributeString(attrs, ACTIVITY_TILE_ID),
    contactId: attributeReference(attrs, 'msdyncrm_contact', 'contact'),
    journeyId: attributeReference(attrs, 'msdyncrm_customerjourney', 'msdyncrm_customerjourney'),
    iterationId: attributeReference(attrs, 'msdyncrm_customerjourneyiteration', 'msdyncrm_customerjourneyiteration'),
    entityType: attributeString(attrs, 'msdyncrm_entitytype'),
    entityId: attributeString(attrs, 'msdyncrm_entityid'),
    ...(typeof name === 'string' && name !== '' ? { name } : {}),
    ...from,
  };
}

/** The `payload` of a real-time outbound call, when the context is one (see REALTIME_OUTBOUND_CALL). */
function realtimePayload(context: Json): string | undefined {
  if (context['MessageName'] === 'Create') return undefined;
  const value = collection(context['InputParameters'])?.get(REALTIME_OUTBOUND_CALL.inputParameter);
  return typeof value === 'string' ? value : undefined;
}

function decodeRealtime(context: Json, raw: string, from: EventOrigin): RealtimeEvent {
  const api = String(context['MessageName']);
  const where = `the '${REALTIME_OUTBOUND_CALL.inputParameter}' input of ${api}`;
  let payload: unknown;
  try {
    payload = JSON.parse(raw);
  } catch (err) {
    throw new EventError('EventUndecodable', `${where} is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload))
    throw new EventError('EventUndecodable', `${where} must hold a JSON object, found ${shown(payload)}`);
  const p = payload as Json;
  const field = (key: string): string => requiredString(p, key, `${where}: '${key}'`);
  const message = p['Message'];
  if (
    typeof message !== 'object' ||
    message === null ||
    Array.isArray(message) ||
    !Object.values(message).every((v) => typeof v === 'string')
  ) {
    missing(`${where}: 'Message'`, 'an object of strings (message parts by name)', message);
  }
  const app = p['MarketingAppContext'];
  const appContext = typeof app === 'object' && app !== null ? (app as Json) : {};
  const journeyId = appContext['CustomerJourneyId'];
  const isTestSend = appContext['IsTestSend'];
  if (isTestSend !== undefined && typeof isTestSend !== 'boolean')
    missing(`${where}: 'MarketingAppContext.IsTestSend'`, 'true or false', isTestSend);
  return {
    kind: 'realtime',
    customApi: api,
    channelDefinitionId: field('ChannelDefinitionId'),
    requestId: field('RequestId'),
    from: field('From'),
    to: field('To'),
    message: { ...(message as Record<string, string>) },
    ...(typeof journeyId === 'string' && journeyId !== '' && journeyId !== EMPTY_GUID ? { journeyId } : {}),
    isTestSend: isTestSend === true,
    ...from,
  };
}

/**
 * Decodes a posted RemoteExecutionContext. Throws `EventError`: `EventUnsupportedFormat` (XML, .NET Binary XML),
 * `EventUndecodable` (empty, broken JSON, not an object, not a RemoteExecutionContext), `EventUnknownTable` (another
 * table or message), `EventMissingAttribute` (names the attribute and what was found).
 */
export function decodeRemoteContext(event: PostedEvent): DecodedEvent {
  const context = parseBody(event);
  const messageName = context['MessageName'];
  if (typeof messageName !== 'string' || messageName === '') {
    const keys = Object.keys(context).slice(0, 8).join(', ') || 'none';
    throw new EventError(
      'EventUndecodable',
      `the body is not a RemoteExecutionContext: it has no MessageName (members: ${keys})`,
    );
  }
  const table = typeof context['PrimaryEntityName'] === 'string' ? context['PrimaryEntityName'] : undefined;
  const raw = realtimePayload(context);
  if (raw !== undefined) return decodeRealtime(context, raw, origin(context));
  if (messageName !== 'Create') {
    throw new EventError(
      'EventUnknownTable',
      `the message '${messageName}' on '${table ?? 'none'}' is not one the relay handles (Create of ${ACTIVITY_TABLE}, or a real-time journeys outbound Custom API with a '${REALTIME_OUTBOUND_CALL.inputParameter}' input)`,
    );
  }
  if (table !== ACTIVITY_TABLE)
    throw new EventError(
      'EventUnknownTable',
      `a Create of '${table ?? 'nothing'}', not of ${ACTIVITY_TABLE}: the step is registered on the wrong table`,
    );
  const from = origin(context);
  if (isTruncated(event, context)) {
    const rowId = context['PrimaryEntityId'];
    if (typeof rowId !== 'string' || rowId === '' || rowId === EMPTY_GUID)
      missing('PrimaryEntityId (of an event truncated by Dataverse)', 'the activity row id', rowId);
    return { kind: 'activity-truncated', activityRowId: rowId, ...from };
  }
  return decodeActivity(context, from);
}

/**
 * The activity event from the Custom Channel Activity row read through the Web API (lookups as `_x_value`), for an
 * event Dataverse truncated or whose Target lacked attributes; `origin` is that event's.
 */
export function activityFromRow(row: Readonly<Record<string, unknown>>, from: EventOrigin): ActivityEvent {
  const rowId = row[ACTIVITY_KEY];
  const where = `activity row ${typeof rowId === 'string' ? rowId : '?'}`;
  const col = (key: string): string => requiredString(row as Json, key, `${where}: column '${key}'`);
  const name = row['msdyncrm_name'];
  return {
    kind: 'activity',
    activityRowId: col(ACTIVITY_KEY),
    activityId: col(ACTIVITY_TILE_ID),
    contactId: col('_msdyncrm_contact_value'),
    journeyId: col('_msdyncrm_customerjourney_value'),
    iterationId: col('_msdyncrm_customerjourneyiteration_value'),
    entityType: col('msdyncrm_entitytype'),
    entityId: col('msdyncrm_entityid'),
    ...(typeof name === 'string' && name !== '' ? { name } : {}),
    organizationId: from.organizationId,
    correlationId: from.correlationId,
    operationId: from.operationId,
  };
}
