/**
 * Dataverse's RemoteExecutionContext for a Create post-operation step, as posted to Service Bus: the JSON of the
 * .NET data contract (`__type` annotations, `\/Date(ms)\/` dates, EntityReference objects, `InputParameters`
 * `Target`, alphabetical member order, `/` escaped as `\/`), plus the claims application properties.
 */
import type { TableDef } from './metadata.js';
import type { LookupValue, Row } from './store.js';
import { MAX_SIZE_PROPERTY } from './assumptions.js';

const CONTRACTS = 'http://schemas.microsoft.com/xrm/2011/Contracts';
const CLAIMS = 'http://schemas.microsoft.com/xrm/2011/Claims';
/** Above this many bytes the body loses ParentContext, InputParameters and the images. */
export const MAX_CONTEXT_BYTES = 192 * 1024;
const EMPTY_GUID = '00000000-0000-0000-0000-000000000000';

export interface ContextInput {
  table: TableDef;
  row: Row;
  /** `Create`. */
  messageName: string;
  userId: string;
  initiatingUserId: string;
  organizationId: string;
  organizationName: string;
  businessUnitId: string;
  correlationId: string;
  operationId: string;
  requestId: string;
  operationCreatedOn: Date;
  step: { id: string; name: string };
}

export interface DataCollectionEntry {
  key: string;
  value: unknown;
}

/** `\/Date(<ms>)\/` before escaping: the string `/Date(<ms>)/`. */
export function wcfDate(date: Date | string): string {
  const ms = typeof date === 'string' ? Date.parse(date) : date.getTime();
  return `/Date(${ms})/`;
}

export function entityReference(logicalName: string, id: string, name: string | null = null): Record<string, unknown> {
  return {
    __type: `EntityReference:${CONTRACTS}`,
    Id: id,
    KeyAttributes: [],
    LogicalName: logicalName,
    Name: name,
    RowVersion: null,
  };
}

/** Encodes one attribute value the way the data contract serializer does. */
export function encodeAttribute(table: TableDef, column: string, value: unknown): unknown {
  if (value === null || value === undefined) return null;
  const col = table.columns.get(column);
  switch (col?.type) {
    case 'lookup': {
      const ref = value as LookupValue;
      return entityReference(ref.table, ref.id);
    }
    case 'datetime':
      return wcfDate(value as string);
    case 'optionset':
    case 'state':
    case 'status':
      return { __type: `OptionSetValue:${CONTRACTS}`, Value: value };
    case 'money':
      // UNVERIFIED against a Microsoft sample (seen in third-party fixtures only).
      return { __type: `Money:${CONTRACTS}`, Value: value };
    default:
      return value;
  }
}

const STATE_LABELS: Readonly<Record<number, string>> = { 0: 'Active', 1: 'Inactive' };
const STATUS_LABELS: Readonly<Record<number, string>> = { 1: 'Active', 2: 'Inactive' };

/** The `Target` entity of a Create. */
export function targetEntity(table: TableDef, row: Row): Record<string, unknown> {
  const attributes: DataCollectionEntry[] = [];
  const formatted: DataCollectionEntry[] = [];
  for (const [key, value] of Object.entries(row)) {
    if (value === undefined) continue;
    attributes.push({ key, value: encodeAttribute(table, key, value) });
    if (key === 'statecode' && typeof value === 'number' && STATE_LABELS[value])
      formatted.push({ key, value: STATE_LABELS[value] });
    if (key === 'statuscode' && typeof value === 'number' && STATUS_LABELS[value])
      formatted.push({ key, value: STATUS_LABELS[value] });
  }
  return {
    __type: `Entity:${CONTRACTS}`,
    Attributes: attributes,
    EntityState: null,
    FormattedValues: formatted,
    Id: row[table.primaryKey],
    KeyAttributes: [],
    LogicalName: table.logicalName,
    RelatedEntities: [],
    RowVersion: row['versionnumber'] === undefined ? null : String(row['versionnumber']),
  };
}

/** What differs between the context of a Create and that of another message (a Custom API). */
interface ContextSubject {
  primaryEntityId: string;
  primaryEntityName: string;
  inputParameters: DataCollectionEntry[];
  outputParameters: DataCollectionEntry[];
}

function contextBody(
  input: Omit<ContextInput, 'table' | 'row'>,
  subject: ContextSubject,
  stage: number,
  mode: number,
  parent: unknown,
): Record<string, unknown> {
  return {
    BusinessUnitId: input.businessUnitId,
    CorrelationId: input.correlationId,
    Depth: 1,
    InitiatingUserAgent: '',
    InitiatingUserAzureActiveDirectoryObjectId: EMPTY_GUID,
    InitiatingUserId: input.initiatingUserId,
    InputParameters: subject.inputParameters,
    IsExecutingOffline: false,
    IsInTransaction: stage === 30,
    IsOfflinePlayback: false,
    IsolationMode: 1,
    MessageName: input.messageName,
    Mode: mode,
    OperationCreatedOn: wcfDate(input.operationCreatedOn),
    OperationId: input.operationId,
    OrganizationId: input.organizationId,
    OrganizationName: input.organizationName,
    OutputParameters: subject.outputParameters,
    OwningExtension: {
      Id: input.step.id,
      KeyAttributes: [],
      LogicalName: 'sdkmessageprocessingstep',
      Name: input.step.name,
      RowVersion: null,
    },
    ParentContext: parent,
    PostEntityImages: [],
    PreEntityImages: [],
    PrimaryEntityId: subject.primaryEntityId,
    PrimaryEntityName: subject.primaryEntityName,
    RequestId: input.requestId,
    SecondaryEntityName: 'none',
    SharedVariables: [{ key: 'IsAutoTransact', value: true }],
    Stage: stage,
    UserAzureActiveDirectoryObjectId: EMPTY_GUID,
    UserId: input.userId,
  };
}

/** The context of an asynchronous (Mode 1) post-operation (Stage 40) step, with the main operation as parent. */
export function buildRemoteExecutionContext(input: ContextInput): Record<string, unknown> {
  const target = targetEntity(input.table, input.row);
  const id = input.row[input.table.primaryKey] as string;
  const subject: ContextSubject = {
    primaryEntityId: id,
    primaryEntityName: input.table.logicalName,
    inputParameters: [{ key: 'Target', value: target }],
    outputParameters: [{ key: 'id', value: id }],
  };
  const parent = contextBody(input, subject, 30, 0, null);
  return contextBody(input, subject, 40, 1, parent);
}

/**
 * The context of an asynchronous post-operation step on an unbound Custom API (the real-time journeys outbound API):
 * no primary entity (`none`, the empty GUID), the API's input parameters as given, no output parameters (the emulator
 * runs no plug-in that would set `response`). UNVERIFIED: captured from no real org.
 */
export function buildCustomApiContext(
  input: Omit<ContextInput, 'table' | 'row'>,
  inputParameters: DataCollectionEntry[],
): Record<string, unknown> {
  const subject: ContextSubject = {
    primaryEntityId: EMPTY_GUID,
    primaryEntityName: 'none',
    inputParameters,
    outputParameters: [],
  };
  const parent = contextBody(input, subject, 30, 0, null);
  return contextBody(input, subject, 40, 1, parent);
}

/** JSON as the .NET serializer writes it: `/` escaped as `\/` (only strings can hold `/` in JSON). */
export function serializeContext(context: Record<string, unknown>): string {
  return JSON.stringify(context).replace(/\//g, '\\/');
}

export interface PostedBody<B extends string | Buffer = string> {
  body: B;
  /** True when the body was cut down to fit {@link MAX_CONTEXT_BYTES}. */
  trimmed: boolean;
}

/**
 * Serializes (JSON unless `serialize` says otherwise), and when the body is above 192 KB drops ParentContext,
 * InputParameters and the images, as Dataverse does. The size is that of the body in its own format.
 */
export function fitContext(context: Record<string, unknown>): PostedBody;
export function fitContext<B extends string | Buffer>(
  context: Record<string, unknown>,
  serialize: (context: Record<string, unknown>) => B,
): PostedBody<B>;
export function fitContext(
  context: Record<string, unknown>,
  serialize: (context: Record<string, unknown>) => string | Buffer = serializeContext,
): PostedBody<string | Buffer> {
  const body = serialize(context);
  if (Buffer.byteLength(body) <= MAX_CONTEXT_BYTES) return { body, trimmed: false };
  const trimmed = { ...context, ParentContext: null, InputParameters: [], PreEntityImages: [], PostEntityImages: [] };
  return { body: serialize(trimmed), trimmed: true };
}

/** The application properties Dataverse sets on a posted message. */
export function claimsProperties(input: {
  organization: string;
  userId: string;
  initiatingUserId: string;
  entityLogicalName: string;
  requestName: string;
  trimmed: boolean;
}): Record<string, string | boolean> {
  const props: Record<string, string | boolean> = {
    [`${CLAIMS}/Organization`]: input.organization,
    [`${CLAIMS}/User`]: input.userId,
    [`${CLAIMS}/InitiatingUser`]: input.initiatingUserId,
    [`${CLAIMS}/EntityLogicalName`]: input.entityLogicalName,
    [`${CLAIMS}/RequestName`]: input.requestName,
  };
  if (input.trimmed) props[MAX_SIZE_PROPERTY] = true;
  return props;
}
