/**
 * The emulated organization: tables, rows, interactions, and the Web API operations on them (retrieve, list,
 * create, update/upsert, delete, actions, WhoAmI). Operations run synchronously, so a change set is atomic by
 * running in one turn and undoing on failure. Creates in tables with a registered Service Bus step queue a post
 * after their transaction commits.
 */
import { createHash, randomUUID } from 'node:crypto';
import { DataverseFault, isGuid } from './faults.js';
import type { Logger } from '../../log.js';
import { InteractionLog } from './interactions.js';
import { Catalog, type TableDef } from './metadata.js';
import { nowIsoSeconds, readPayload, type ReferenceResolver } from './payload.js';
import { MAX_PAGE_SIZE, parseListQuery, parseSelect, runList, skipToken } from './query.js';
import { serializeContextBinary, serializeContextXml, type ColumnTypeOf } from './context-xml.js';
import {
  buildCustomApiContext,
  buildRemoteExecutionContext,
  claimsProperties,
  fitContext,
  serializeContext,
  type ContextInput,
} from './remote-context.js';
import { etagMatches, etagOf, represent, requestedAnnotations, type Annotations } from './representation.js';
import { Store, type LookupValue, type Row, type Tx } from './store.js';
import type { SeedTile } from './tile.js';
import {
  CUSTOM_API_STEP_TYPES,
  MESSAGE_FORMATS,
  DEFAULT_MESSAGE_FORMAT,
  endpointConnectionString,
  filterMatchesTable,
  organizationClaim,
} from './assumptions.js';
import type { Poster, PostingEvent } from './posting.js';

export interface OperationRequest {
  method: string;
  /** Path below the API root, with its query string (`contacts?$top=1`, `contacts(<id>)`, `$1`). */
  path: string;
  /** Lower-case header names. */
  headers: Record<string, string | undefined>;
  body: string;
  userId: string;
  tx?: Tx;
  resolveReference?: ReferenceResolver;
}

export interface OperationResponse {
  status: number;
  headers: Record<string, string>;
  body?: string;
  /** The path of the row created or changed (`contacts(<id>)`), for `Content-ID` references. */
  entityPath?: string;
}

export interface Organization {
  id: string;
  name: string;
  businessUnitId: string;
}

/** An action handler: the parsed JSON body in, a response out. */
export type ActionHandler = (params: Record<string, unknown>, request: OperationRequest) => OperationResponse;

interface StepTarget {
  step: { id: string; name: string };
  connectionString: string;
  entityPath: string;
  contentType: string;
  /** `serviceendpoint.messageformat`: 1 .NET Binary XML, 2 Json, 3 Text XML. */
  messageFormat: number;
}

const SEGMENT = /^([A-Za-z_$][\w.$]*)(?:\((.*)\))?$/;
export const JSON_HEADERS = {
  'Content-Type': 'application/json; odata.metadata=minimal',
  'OData-Version': '4.0',
} as const;

/** A stable user id for a caller identity (the bearer token's text). */
export function userIdOf(identity: string): string {
  const h = createHash('sha1').update(`channel-relay:${identity}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${((parseInt(h[16]!, 16) & 0x3) | 0x8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

export function parsePrefer(header: string | undefined): {
  representation: boolean;
  maxPageSize?: number;
  continueOnError: boolean;
} {
  const out: { representation: boolean; maxPageSize?: number; continueOnError: boolean } = {
    representation: false,
    continueOnError: false,
  };
  if (!header) return out;
  for (const item of header.split(',')) {
    const [k, v] = item.trim().split('=');
    const key = k?.trim().toLowerCase();
    if (key === 'return' && v?.trim() === 'representation') out.representation = true;
    else if (key === 'odata.maxpagesize' && v) out.maxPageSize = Number(v.replace(/"/g, ''));
    else if (key === 'odata.continue-on-error') out.continueOnError = true;
  }
  return out;
}

/** Columns the platform computes from others (the `is…set` flags of the write-only service endpoint secrets). */
function derive(def: TableDef, row: Row): void {
  if (def.logicalName !== 'serviceendpoint') return;
  const set = (v: unknown): boolean => typeof v === 'string' && v !== '';
  row['issaskeyset'] = set(row['saskey']);
  row['issastokenset'] = set(row['sastoken']);
  row['isauthvalueset'] = set(row['authvalue']);
}

/**
 * Creates whose posted `Target` leaves columns out (the row itself keeps them), as when the creator set them in a
 * later update or Dataverse filled them in a plug-in: the Target of a Create carries the attributes of the create
 * request, not the row (see assumptions.ts PARTIAL_TARGET).
 */
export interface PartialTargets {
  /** Column logical names left out of `Target` (never the primary key). */
  omit: readonly string[];
  /** Share of the Creates posted that way, 0-1, spread evenly in creation order (1: every one). @defaultValue 1 */
  share?: number;
}

export class OrganizationService {
  readonly catalog = new Catalog();
  readonly store = new Store();
  readonly interactions = new InteractionLog();
  /** Tiles by their EntityType (the custom message table). */
  readonly tiles = new Map<string, SeedTile>();
  readonly actions = new Map<string, ActionHandler>();
  #stepCache = new Map<string, StepTarget[]>();
  apiRoot = '';
  eventsQueued = 0;
  /**
   * Real-time outbound Custom API calls by API name, and how many returned no `response` (all of them: the emulator
   * runs no plug-in; see OUTBOUND_RESPONSE in assumptions.ts). Shown under `realtime` and `problems` in the stats.
   */
  readonly realtimeOutbound = new Map<string, { calls: number; responsesMissing: number }>();
  /** Set by the emulator's `partialTargets` option; undefined: every Target carries the whole row. */
  partialTargets: PartialTargets | undefined;
  /** Creates posted since start, for spreading `partialTargets.share`. */
  #creates = 0;
  /** Creates whose Target was posted without `partialTargets.omit` (for the stats). */
  partialTargetsPosted = 0;

  constructor(
    readonly organization: Organization,
    readonly log: Logger,
    readonly poster: Poster,
    readonly servicebusOverride: string | undefined,
  ) {}

  table(logicalName: string): TableDef {
    const def = this.catalog.byLogicalName(logicalName);
    if (!def) throw new DataverseFault('ResourceNotFound', `The table '${logicalName}' does not exist.`);
    return def;
  }

  /** Runs one Web API operation. Throws {@link DataverseFault} for refusals. */
  execute(req: OperationRequest): OperationResponse {
    const q = req.path.indexOf('?');
    let path = q < 0 ? req.path : req.path.slice(0, q);
    const query = new URLSearchParams(q < 0 ? '' : req.path.slice(q + 1));
    if (path.startsWith('$') && req.resolveReference) {
      const resolved = req.resolveReference(path);
      if (resolved === undefined)
        throw new DataverseFault(
          'BatchInvalid',
          `Content-ID Reference: '${path}' does not exist in the batch context.`,
        );
      path = resolved.replace(/^\//, '');
    }
    let decoded: string;
    try {
      decoded = decodeURIComponent(path);
    } catch {
      throw new DataverseFault('QuerySyntax', `The path '${path}' is not correctly percent-encoded.`);
    }
    const m = SEGMENT.exec(decoded);
    if (!m || path.includes('/'))
      throw new DataverseFault('ResourceNotFound', `Resource not found for the segment '${path}'.`);
    const name = m[1]!;
    const key = m[2];
    if (name === 'WhoAmI') {
      if (req.method !== 'GET')
        throw new DataverseFault('MethodNotAllowed', `WhoAmI is a function: use GET, not ${req.method}.`);
      return this.#json(200, {
        '@odata.context': `${this.apiRoot}$metadata#Microsoft.Dynamics.CRM.WhoAmIResponse`,
        BusinessUnitId: this.organization.businessUnitId,
        UserId: req.userId,
        OrganizationId: this.organization.id,
      });
    }
    const action = this.actions.get(name);
    if (action) {
      if (req.method !== 'POST')
        throw new DataverseFault('MethodNotAllowed', `${name} is an action: use POST, not ${req.method}.`);
      let params: unknown = {};
      if (req.body.trim() !== '') {
        try {
          params = JSON.parse(req.body);
        } catch {
          throw new DataverseFault('Payload', `The body of ${name} is not valid JSON.`);
        }
      }
      if (typeof params !== 'object' || params === null || Array.isArray(params))
        throw new DataverseFault('Payload', `The body of ${name} must be a JSON object.`);
      return action(params as Record<string, unknown>, req);
    }
    const def = this.catalog.byEntitySet(name);
    if (!def) throw new DataverseFault('ResourceNotFound', `Resource not found for the segment '${name}'.`);
    if (key === undefined) {
      if (req.method === 'GET') return this.#list(def, query, req);
      if (req.method === 'POST') return this.#create(def, req);
      throw new DataverseFault('MethodNotAllowed', `The entity set '${name}' accepts GET and POST, not ${req.method}.`);
    }
    const id = key.replace(/^\{|\}$/g, '').toLowerCase();
    if (!isGuid(id)) {
      throw new DataverseFault(
        'QuerySyntax',
        `The key '${key}' of '${name}' is not a valid GUID (expected 8-4-4-4-12 hexadecimal digits); alternate keys are not supported by the emulator.`,
      );
    }
    switch (req.method) {
      case 'GET':
        return this.#retrieve(def, id, query, req);
      case 'PATCH':
        return this.#update(def, id, req);
      case 'DELETE':
        return this.#delete(def, id, req);
      default:
        throw new DataverseFault(
          'MethodNotAllowed',
          `A row of '${name}' accepts GET, PATCH and DELETE, not ${req.method}.`,
        );
    }
  }

  readonly #annotationSource: Annotations = {
    nameOf: (lookup) => {
      const def = this.catalog.byLogicalName(lookup.table);
      const row = def ? this.store.get(def, lookup.id) : undefined;
      return def?.primaryName && row ? ((row[def.primaryName] as string | undefined) ?? null) : null;
    },
  };

  /** The annotations a request asks for, in the form `represent` takes. */
  #annotations(req: OperationRequest): { wants: (name: string) => boolean; source: Annotations } | undefined {
    const wants = requestedAnnotations(req.headers['prefer']);
    return wants ? { wants, source: this.#annotationSource } : undefined;
  }

  #json(status: number, body: unknown, extra: Record<string, string> = {}): OperationResponse {
    return { status, headers: { ...JSON_HEADERS, ...extra }, body: JSON.stringify(body) };
  }

  #entityUrl(def: TableDef, id: string): string {
    return `${this.apiRoot}${def.entitySetName}(${id})`;
  }

  #notFound(def: TableDef, id: string): DataverseFault {
    return new DataverseFault('RowNotFound', `${def.logicalName} With Id = ${id} Does Not Exist`);
  }

  #retrieve(def: TableDef, id: string, query: URLSearchParams, req: OperationRequest): OperationResponse {
    for (const k of query.keys()) {
      if (k !== '$select')
        throw new DataverseFault(
          'QuerySyntax',
          `The query option '${k}' is not supported when retrieving one row (use $select).`,
        );
    }
    const { projection, select } = parseSelect(def, query.get('$select'));
    const row = this.store.get(def, id);
    if (!row) throw this.#notFound(def, id);
    const ifNoneMatch = req.headers['if-none-match'];
    if (ifNoneMatch !== undefined && ifNoneMatch !== 'null' && etagMatches(ifNoneMatch, row)) {
      return { status: 304, headers: { 'OData-Version': '4.0', ETag: etagOf(row) } };
    }
    const body = {
      '@odata.context': `${this.apiRoot}$metadata#${def.entitySetName}${select ? `(${select.join(',')})` : ''}/$entity`,
      ...represent(def, row, projection, this.#annotations(req)),
    };
    return this.#json(200, body, { ETag: etagOf(row) });
  }

  #list(def: TableDef, query: URLSearchParams, req: OperationRequest): OperationResponse {
    const parsed = parseListQuery(def, query);
    const prefer = parsePrefer(req.headers['prefer']);
    const requested = prefer.maxPageSize;
    const pageSize =
      requested !== undefined && Number.isInteger(requested) && requested > 0
        ? Math.min(requested, MAX_PAGE_SIZE)
        : MAX_PAGE_SIZE;
    const result = runList(this.store, def, parsed, pageSize);
    const body: Record<string, unknown> = {
      '@odata.context': `${this.apiRoot}$metadata#${def.entitySetName}${parsed.select ? `(${parsed.select.join(',')})` : ''}`,
    };
    if (parsed.count) body['@odata.count'] = result.total;
    const annotations = this.#annotations(req);
    body['value'] = result.rows.map((row) => represent(def, row, parsed.projection, annotations));
    if (result.nextOffset !== undefined) {
      const next = new URLSearchParams(query);
      next.set('$skiptoken', skipToken(result.nextOffset, Math.floor(result.nextOffset / pageSize) + 1));
      body['@odata.nextLink'] = `${this.apiRoot}${def.entitySetName}?${next.toString().replace(/\+/g, '%20')}`;
    }
    const extra: Record<string, string> = {};
    if (requested !== undefined) extra['Preference-Applied'] = `odata.maxpagesize=${pageSize}`;
    return this.#json(200, body, extra);
  }

  /** Creates a row from column values already read (used by the Web API, the seed and the journey engine). */
  insertRow(def: TableDef, values: Row, userId: string, tx?: Tx): Row {
    let id = values[def.primaryKey] as string | undefined;
    if (id === undefined) id = randomUUID();
    if (this.store.get(def, id)) {
      throw new DataverseFault(
        'DuplicateKey',
        `A record with matching key values already exists: ${def.logicalName} with ${def.primaryKey} = ${id}.`,
      );
    }
    for (const col of def.columns.values()) {
      if (col.required && (values[col.name] === undefined || values[col.name] === null)) {
        throw new DataverseFault(
          'RequiredMissing',
          `A validation error occurred. The value of '${col.name}' on record of type '${def.logicalName}' is required: it is missing or null.`,
        );
      }
    }
    this.#validateRow(def, values);
    const now = nowIsoSeconds();
    const row: Row = { statecode: 0, statuscode: 1, ...values };
    if (def.logicalName === 'customapi') this.#customApiMessage(row, userId, tx);
    row[def.primaryKey] = id;
    row['createdon'] = now;
    row['modifiedon'] = now;
    row['versionnumber'] = this.store.nextVersion();
    derive(def, row);
    if (def.logicalName === 'contact' && row['fullname'] === undefined) {
      const full = [row['firstname'], row['lastname']].filter((v) => typeof v === 'string' && v !== '').join(' ');
      if (full) row['fullname'] = full;
    }
    this.store.insert(def, row, tx);
    this.#afterWrite(def, tx);
    this.#queuePosts(def, row, userId, tx);
    return row;
  }

  /** Rules the platform enforces on particular tables. */
  #validateRow(def: TableDef, values: Row): void {
    if (def.logicalName === 'serviceendpoint') {
      const format = values['messageformat'];
      if (format !== undefined && format !== null && MESSAGE_FORMATS[format as number] === undefined) {
        throw new DataverseFault(
          'InvalidArgument',
          `messageformat ${String(format)} is not a valid value: use 1 (.NET Binary XML), 2 (Json) or 3 (Text XML).`,
        );
      }
    }
    if (def.logicalName === 'customapi') {
      const allowed = values['allowedcustomprocessingsteptype'];
      if (
        allowed !== undefined &&
        allowed !== null &&
        !(Object.values(CUSTOM_API_STEP_TYPES) as unknown[]).includes(allowed)
      ) {
        throw new DataverseFault(
          'InvalidArgument',
          `allowedcustomprocessingsteptype ${String(allowed)} is not a valid value: use 0 (None), 1 (Async Only) or 2 (Sync and Async).`,
        );
      }
    }
    if (def.logicalName === 'sdkmessageprocessingstep') {
      this.#checkCustomApiStep(values);
      const handler = values['eventhandler'] as LookupValue | undefined;
      if (handler?.table === 'serviceendpoint' && values['mode'] !== undefined && values['mode'] !== 1) {
        throw new DataverseFault(
          'InvalidArgument',
          'A step whose event handler is a service endpoint must be asynchronous (mode 1): Azure Service Bus only allows asynchronous steps.',
        );
      }
      const messageRef = values['sdkmessageid'] as LookupValue | null | undefined;
      const filterRef = values['sdkmessagefilterid'] as LookupValue | null | undefined;
      if (messageRef && filterRef) {
        const filter = this.store.get(this.table('sdkmessagefilter'), filterRef.id);
        const filterMessage = (filter?.['sdkmessageid'] as LookupValue | null | undefined)?.id;
        if (filterMessage !== undefined && filterMessage !== messageRef.id) {
          throw new DataverseFault(
            'InvalidArgument',
            `The sdkmessagefilter ${filterRef.id} belongs to the sdkmessage ${filterMessage}, not to the step's sdkmessage ${messageRef.id}: resolve the filter with '_sdkmessageid_value eq ${messageRef.id}'.`,
          );
        }
      }
    }
  }

  /**
   * A new custom API: `allowedcustomprocessingsteptype` defaults to 0 (None), and its message is created (or the
   * existing one with its name linked), as Dataverse creates the sdkmessage with the API.
   */
  #customApiMessage(row: Row, userId: string, tx?: Tx): void {
    row['allowedcustomprocessingsteptype'] ??= CUSTOM_API_STEP_TYPES.none;
    const messages = this.table('sdkmessage');
    const name = String(row['uniquename']);
    const existing = this.store.findIndexed(messages, 'name', name)?.[0];
    const message = existing ?? this.insertRow(messages, { name }, userId, tx);
    row['sdkmessageid'] = { id: message[messages.primaryKey] as string, table: 'sdkmessage' } satisfies LookupValue;
  }

  /** The custom API whose message a step binds to (by the message's name), if the message is a custom API's. */
  #customApiOf(messageId: string): Row | undefined {
    const message = this.store.get(this.table('sdkmessage'), messageId);
    if (!message) return undefined;
    return this.store.findIndexed(this.table('customapi'), 'uniquename', String(message['name']))?.[0];
  }

  /** `allowedcustomprocessingsteptype`: 0 takes no step, 1 only asynchronous ones (mode 1). */
  #checkCustomApiStep(values: Row): void {
    const messageRef = values['sdkmessageid'] as LookupValue | null | undefined;
    const api = messageRef ? this.#customApiOf(messageRef.id) : undefined;
    if (!api) return;
    const allowed = api['allowedcustomprocessingsteptype'];
    const name = String(api['uniquename']);
    if (allowed === CUSTOM_API_STEP_TYPES.none) {
      throw new DataverseFault(
        'InvalidArgument',
        `Custom processing steps are not allowed for the custom API '${name}': its allowedcustomprocessingsteptype is 0 (None), which cannot be changed after the custom API is created.`,
      );
    }
    if (allowed === CUSTOM_API_STEP_TYPES.asyncOnly && values['mode'] !== 1) {
      throw new DataverseFault(
        'InvalidArgument',
        `Only asynchronous steps (mode 1) are allowed for the custom API '${name}': its allowedcustomprocessingsteptype is 1 (Async Only).`,
      );
    }
  }

  #afterWrite(def: TableDef, tx?: Tx): void {
    if (['serviceendpoint', 'sdkmessageprocessingstep', 'sdkmessagefilter', 'sdkmessage'].includes(def.logicalName)) {
      this.#stepCache.clear();
      tx?.undo.push(() => this.#stepCache.clear());
    }
  }

  #create(def: TableDef, req: OperationRequest): OperationResponse {
    let body: unknown;
    try {
      body = req.body.trim() === '' ? {} : JSON.parse(req.body);
    } catch {
      throw new DataverseFault(
        'Payload',
        `The body of the create request for '${def.entitySetName}' is not valid JSON.`,
      );
    }
    const values = readPayload(
      { catalog: this.catalog, store: this.store, resolveReference: req.resolveReference },
      def,
      body,
    );
    const row = this.insertRow(def, values, req.userId, req.tx);
    const id = row[def.primaryKey] as string;
    const url = this.#entityUrl(def, id);
    const entityPath = `${def.entitySetName}(${id})`;
    if (parsePrefer(req.headers['prefer']).representation) {
      const { projection, select } = parseSelect(def, new URLSearchParams(req.path.split('?')[1] ?? '').get('$select'));
      const out = {
        '@odata.context': `${this.apiRoot}$metadata#${def.entitySetName}${select ? `(${select.join(',')})` : ''}/$entity`,
        ...represent(def, row, projection, this.#annotations(req)),
      };
      return {
        ...this.#json(201, out, {
          'OData-EntityId': url,
          Location: url,
          ETag: etagOf(row),
          'Preference-Applied': 'return=representation',
        }),
        entityPath,
      };
    }
    return { status: 204, headers: { 'OData-Version': '4.0', 'OData-EntityId': url, Location: url }, entityPath };
  }

  #update(def: TableDef, id: string, req: OperationRequest): OperationResponse {
    let body: unknown;
    try {
      body = req.body.trim() === '' ? {} : JSON.parse(req.body);
    } catch {
      throw new DataverseFault(
        'Payload',
        `The body of the update request for '${def.entitySetName}' is not valid JSON.`,
      );
    }
    const values = readPayload(
      { catalog: this.catalog, store: this.store, resolveReference: req.resolveReference },
      def,
      body,
    );
    const existing = this.store.get(def, id);
    const ifMatch = req.headers['if-match'];
    const ifNoneMatch = req.headers['if-none-match'];
    if (existing && ifNoneMatch === '*') {
      throw new DataverseFault(
        'DuplicateKey',
        `A record with matching key values already exists: ${def.logicalName} with ${def.primaryKey} = ${id} (If-None-Match: *).`,
      );
    }
    let row: Row;
    const created = !existing;
    if (!existing) {
      if (ifMatch !== undefined) throw this.#notFound(def, id);
      row = this.insertRow(def, { ...values, [def.primaryKey]: id }, req.userId, req.tx);
    } else {
      if (ifMatch !== undefined && !etagMatches(ifMatch, existing)) {
        throw new DataverseFault(
          'PreconditionFailed',
          `The version of the existing record doesn't match the RowVersion property provided (If-Match ${ifMatch}, current ${etagOf(existing)}).`,
        );
      }
      if (values[def.primaryKey] !== undefined && values[def.primaryKey] !== id) {
        throw new DataverseFault(
          'Payload',
          `The primary key '${def.primaryKey}' in the body does not match the key in the URL.`,
        );
      }
      if (def.logicalName === 'customapi') {
        for (const column of [
          'uniquename',
          'allowedcustomprocessingsteptype',
          'bindingtype',
          'boundentitylogicalname',
          'isfunction',
        ]) {
          if (values[column] !== undefined && values[column] !== existing[column]) {
            throw new DataverseFault(
              'InvalidArgument',
              `The customapi column '${column}' cannot be changed after the custom API is created (it is ${JSON.stringify(existing[column] ?? null)}): delete and re-create the custom API.`,
            );
          }
        }
      }
      this.#validateRow(def, { ...existing, ...values });
      row = { ...existing, ...values, modifiedon: nowIsoSeconds(), versionnumber: this.store.nextVersion() };
      derive(def, row);
      this.store.replace(def, row, req.tx);
      this.#afterWrite(def, req.tx);
    }
    const url = this.#entityUrl(def, id);
    const entityPath = `${def.entitySetName}(${id})`;
    if (parsePrefer(req.headers['prefer']).representation) {
      const { projection } = parseSelect(def, new URLSearchParams(req.path.split('?')[1] ?? '').get('$select'));
      return {
        ...this.#json(
          created ? 201 : 200,
          {
            '@odata.context': `${this.apiRoot}$metadata#${def.entitySetName}/$entity`,
            ...represent(def, row, projection, this.#annotations(req)),
          },
          { 'OData-EntityId': url, ETag: etagOf(row) },
        ),
        entityPath,
      };
    }
    return { status: 204, headers: { 'OData-Version': '4.0', 'OData-EntityId': url }, entityPath };
  }

  #delete(def: TableDef, id: string, req: OperationRequest): OperationResponse {
    const existing = this.store.get(def, id);
    if (!existing) throw this.#notFound(def, id);
    const ifMatch = req.headers['if-match'];
    if (ifMatch !== undefined && !etagMatches(ifMatch, existing)) {
      throw new DataverseFault(
        'PreconditionFailed',
        `The version of the existing record doesn't match the RowVersion property provided (If-Match ${ifMatch}, current ${etagOf(existing)}).`,
      );
    }
    this.store.remove(def, id, req.tx);
    this.#afterWrite(def, req.tx);
    return { status: 204, headers: { 'OData-Version': '4.0' } };
  }

  /** The Service Bus steps registered for Create on a table (cached until a registration table changes). */
  /** The body writer for a `messageformat`: JSON (2), Text XML (3) or .NET Binary XML (1) of the same context. */
  #serializer(format: number): (context: Record<string, unknown>) => string | Buffer {
    const columnType: ColumnTypeOf = (table, column) => this.catalog.byLogicalName(table)?.columns.get(column)?.type;
    if (format === 3) return (context) => serializeContextXml(context, columnType);
    if (format === 1) return (context) => serializeContextBinary(context, columnType);
    return serializeContext;
  }

  stepsFor(def: TableDef): StepTarget[] {
    return this.#steps('Create', def.logicalName);
  }

  /**
   * The async post-operation Service Bus steps on `messageName`: for a table (`Create`), steps whose filter names
   * the table; for an unbound message (`table` undefined, a Custom API), steps without a filter or with a filter on
   * `none`. Message names compare case-insensitively. Cached until a registration table changes.
   */
  #steps(messageName: string, table: string | undefined): StepTarget[] {
    const cacheKey = `${messageName.toLowerCase()}|${table ?? ''}`;
    const cached = this.#stepCache.get(cacheKey);
    if (cached) return cached;
    const targets: StepTarget[] = [];
    const steps = this.catalog.byLogicalName('sdkmessageprocessingstep')!;
    const messages = this.catalog.byLogicalName('sdkmessage')!;
    const filters = this.catalog.byLogicalName('sdkmessagefilter')!;
    const endpoints = this.catalog.byLogicalName('serviceendpoint')!;
    const ordered = [...this.store.rows(steps)].sort(
      (a, b) => ((a['rank'] as number) ?? 0) - ((b['rank'] as number) ?? 0),
    );
    for (const step of ordered) {
      if (step['statecode'] !== 0 || step['stage'] !== 40 || step['mode'] !== 1) continue;
      const handler = step['eventhandler'] as LookupValue | null | undefined;
      const messageRef = step['sdkmessageid'] as LookupValue | null | undefined;
      if (handler?.table !== 'serviceendpoint' || !messageRef) continue;
      const message = this.store.get(messages, messageRef.id);
      if (String(message?.['name'] ?? '').toLowerCase() !== messageName.toLowerCase()) continue;
      const filterRef = step['sdkmessagefilterid'] as LookupValue | null | undefined;
      const filter = filterRef ? this.store.get(filters, filterRef.id) : undefined;
      if (
        table !== undefined
          ? !filter || !filterMatchesTable(filter, table)
          : filter !== undefined && !filterMatchesTable(filter, 'none')
      )
        continue;
      const endpoint = this.store.get(endpoints, handler.id);
      if (!endpoint || (endpoint['contract'] !== 2 && endpoint['contract'] !== 5)) continue;
      targets.push({
        step: { id: step['sdkmessageprocessingstepid'] as string, name: String(step['name'] ?? '') },
        connectionString: endpointConnectionString(endpoint, this.servicebusOverride),
        entityPath: String(endpoint['path']),
        contentType: MESSAGE_FORMATS[(endpoint['messageformat'] as number | undefined) ?? DEFAULT_MESSAGE_FORMAT]!,
        messageFormat: (endpoint['messageformat'] as number | undefined) ?? DEFAULT_MESSAGE_FORMAT,
      });
    }
    this.#stepCache.set(cacheKey, targets);
    return targets;
  }

  /**
   * Runs an unbound Custom API the way the platform would for the registered async steps: queues one post per
   * Service Bus step on `messageName`, with `inputs` as the context's InputParameters. Returns the posts queued.
   */
  postCustomApi(messageName: string, inputs: Array<{ key: string; value: unknown }>, userId: string): number {
    const targets = this.#steps(messageName, undefined);
    const request = {
      messageName,
      entityLogicalName: 'none',
      created: new Date(),
      organization: organizationClaim(this.apiRoot),
    };
    for (const t of targets) {
      this.poster.enqueue(this.#postingEvent(t, userId, request, (common) => buildCustomApiContext(common, inputs)));
    }
    this.eventsQueued += targets.length;
    return targets.length;
  }

  /**
   * One post for one step: the fields every context shares are fixed now; the body is built by `build` and
   * serialized in the endpoint's format when it is sent, with the claims application properties.
   */
  #postingEvent(
    t: StepTarget,
    userId: string,
    request: { messageName: string; entityLogicalName: string; created: Date; organization: string },
    build: (common: Omit<ContextInput, 'table' | 'row'>) => Record<string, unknown>,
  ): PostingEvent {
    const operationId = randomUUID();
    const common = {
      messageName: request.messageName,
      userId,
      initiatingUserId: userId,
      organizationId: this.organization.id,
      organizationName: this.organization.name,
      businessUnitId: this.organization.businessUnitId,
      correlationId: randomUUID(),
      operationId,
      requestId: operationId,
      operationCreatedOn: request.created,
      step: t.step,
    };
    return {
      connectionString: t.connectionString,
      entityPath: t.entityPath,
      contentType: t.contentType,
      messageId: operationId,
      render: () => {
        const { body, trimmed } = fitContext(build(common), this.#serializer(t.messageFormat));
        const applicationProperties = claimsProperties({
          organization: request.organization,
          userId,
          initiatingUserId: userId,
          entityLogicalName: request.entityLogicalName,
          requestName: request.messageName,
          trimmed,
        });
        return { body, applicationProperties };
      },
    };
  }

  /** The row as the posted `Target` shows it: without `partialTargets.omit` for that share of the Creates. */
  #targetRow(def: TableDef, row: Row): Row {
    const partial = this.partialTargets;
    if (partial === undefined) return row;
    const n = this.#creates++;
    const share = partial.share ?? 1;
    // Evenly spread: Create n is partial when the running count of partial ones steps up at n.
    if (Math.floor((n + 1) * share) === Math.floor(n * share)) return row;
    const out: Row = { ...row };
    for (const column of partial.omit) if (column !== def.primaryKey) delete out[column];
    this.partialTargetsPosted += 1;
    return out;
  }

  #queuePosts(def: TableDef, row: Row, userId: string, tx?: Tx): void {
    const targets = this.stepsFor(def);
    if (targets.length === 0) return;
    const request = {
      messageName: 'Create',
      entityLogicalName: def.logicalName,
      created: new Date(),
      organization: organizationClaim(this.apiRoot),
    };
    // Rendered when sent: `row` is a snapshot (the store replaces rows on update, never mutates them).
    const target = this.#targetRow(def, row);
    const events = targets.map((t) =>
      this.#postingEvent(t, userId, request, (common) =>
        buildRemoteExecutionContext({ ...common, table: def, row: target }),
      ),
    );
    const post = (): void => {
      for (const e of events) this.poster.enqueue(e);
      this.eventsQueued += events.length;
    };
    if (tx) tx.after.push(post);
    else post();
  }
}
