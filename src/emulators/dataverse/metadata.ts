/**
 * Table metadata: the tables the emulator knows, their columns and types, lookups with their navigation
 * properties, and which columns are indexed. Built-in tables follow the public entity reference pages; the custom
 * message tables and extra contact columns come from the seed.
 */

export type ColumnType =
  | 'string'
  | 'memo'
  | 'guid'
  | 'int'
  | 'bigint'
  | 'decimal'
  | 'money'
  | 'bool'
  | 'datetime'
  | 'optionset'
  | 'state'
  | 'status'
  | 'lookup';

export interface Column {
  name: string;
  type: ColumnType;
  maxLength?: number;
  /** SystemRequired: a create without it is refused. */
  required?: boolean;
  /** Set by the platform; a body that sets it is refused. */
  readOnly?: boolean;
  /** Accepted on create and update but never returned (IsValidForRead false: `saskey`, `sastoken`, `authvalue`). */
  writeOnly?: boolean;
  /** For lookups: navigation property → target table logical name. */
  targets?: Readonly<Record<string, string>>;
}

export interface TableDef {
  logicalName: string;
  entitySetName: string;
  primaryKey: string;
  primaryName?: string;
  columns: ReadonlyMap<string, Column>;
  /** Navigation property (case-sensitive, as in `@odata.bind`) → lookup column and target table. */
  navigations: ReadonlyMap<string, { column: string; table: string }>;
  /** Columns with an equality index (lower-cased values). */
  indexed: readonly string[];
}

/** A column declaration as written in code and in the seed: `type` or `type:maxLength`. */
export type ColumnSpec = string | Column;

export interface TableSpec {
  logicalName: string;
  entitySetName: string;
  primaryName?: string;
  columns: Record<string, ColumnSpec>;
  indexed?: string[];
}

const SYSTEM_COLUMNS: Record<string, ColumnSpec> = {
  createdon: { name: 'createdon', type: 'datetime', readOnly: true },
  modifiedon: { name: 'modifiedon', type: 'datetime', readOnly: true },
  versionnumber: { name: 'versionnumber', type: 'bigint', readOnly: true },
  statecode: 'state',
  statuscode: 'status',
};

const COLUMN_TYPES = new Set<ColumnType>([
  'string',
  'memo',
  'guid',
  'int',
  'bigint',
  'decimal',
  'money',
  'bool',
  'datetime',
  'optionset',
  'state',
  'status',
  'lookup',
]);

function lookup(targets: Record<string, string>, required = false): Column {
  return { name: '', type: 'lookup', targets, required };
}

/** Parses `string:100` / `bool` / a full column object into a column. */
export function parseColumn(name: string, spec: ColumnSpec): Column {
  if (typeof spec !== 'string') return { ...spec, name };
  const [type, max] = spec.split(':');
  if (!COLUMN_TYPES.has(type as ColumnType)) {
    throw new TypeError(
      `column '${name}': unknown type '${spec}' (expected one of ${[...COLUMN_TYPES].join(', ')}, optionally string:<maxLength>)`,
    );
  }
  const column: Column = { name, type: type as ColumnType };
  if (max !== undefined) column.maxLength = Number(max);
  return column;
}

/** Builds a table definition: primary key `<logicalName>id`, system columns, the given columns. */
export function defineTable(spec: TableSpec): TableDef {
  const primaryKey = `${spec.logicalName}id`;
  const columns = new Map<string, Column>();
  columns.set(primaryKey, { name: primaryKey, type: 'guid' });
  for (const [name, col] of Object.entries({ ...SYSTEM_COLUMNS, ...spec.columns }))
    columns.set(name, parseColumn(name, col));
  const navigations = new Map<string, { column: string; table: string }>();
  for (const col of columns.values()) {
    for (const [nav, table] of Object.entries(col.targets ?? {})) navigations.set(nav, { column: col.name, table });
  }
  const def: TableDef = {
    logicalName: spec.logicalName,
    entitySetName: spec.entitySetName,
    primaryKey,
    columns,
    navigations,
    indexed: spec.indexed ?? [],
  };
  if (spec.primaryName !== undefined) def.primaryName = spec.primaryName;
  return def;
}

/** The tables every emulator has, before the seed adds its own. */
export function builtInTables(extraContactColumns: Record<string, ColumnSpec> = {}): TableSpec[] {
  return [
    {
      logicalName: 'contact',
      entitySetName: 'contacts',
      primaryName: 'fullname',
      columns: {
        firstname: 'string:50',
        lastname: 'string:50',
        fullname: 'string:160',
        mobilephone: 'string:50',
        telephone1: 'string:50',
        emailaddress1: 'string:100',
        donotphone: 'bool',
        donotemail: 'bool',
        donotbulkemail: 'bool',
        donotsendmm: 'bool',
        preferredcontactmethodcode: 'optionset',
        ...extraContactColumns,
      },
    },
    {
      logicalName: 'msdyncrm_customerjourney',
      entitySetName: 'msdyncrm_customerjourneys',
      primaryName: 'msdyncrm_name',
      columns: { msdyncrm_name: 'string:256', msdyncrm_description: 'memo' },
    },
    {
      logicalName: 'msdyncrm_customerjourneyiteration',
      entitySetName: 'msdyncrm_customerjourneyiterations',
      primaryName: 'msdyncrm_name',
      columns: { msdyncrm_name: 'string:256' },
    },
    {
      logicalName: 'msdyncrm_customerjourneycustomchannelactivity',
      entitySetName: 'msdyncrm_customerjourneycustomchannelactivities',
      primaryName: 'msdyncrm_name',
      columns: {
        msdyncrm_activityid: 'string:100',
        msdyncrm_entityid: 'string:100',
        msdyncrm_entitytype: 'string:100',
        msdyncrm_name: 'string:100',
        msdyncrm_contact: lookup({ msdyncrm_Contact: 'contact' }),
        msdyncrm_customerjourney: lookup({ msdyncrm_CustomerJourney: 'msdyncrm_customerjourney' }),
        msdyncrm_customerjourneyiteration: lookup({
          msdyncrm_CustomerJourneyIteration: 'msdyncrm_customerjourneyiteration',
        }),
      },
      // The contact's rows: CreateInteraction finds a run's row by contact (actions.ts).
      indexed: ['msdyncrm_activityid', 'msdyncrm_contact'],
    },
    {
      logicalName: 'serviceendpoint',
      entitySetName: 'serviceendpoints',
      primaryName: 'name',
      columns: {
        name: { name: 'name', type: 'string', maxLength: 256, required: true },
        description: 'memo',
        contract: 'optionset',
        messageformat: 'optionset',
        authtype: 'optionset',
        userclaim: { name: 'userclaim', type: 'optionset', required: true },
        connectionmode: { name: 'connectionmode', type: 'optionset', required: true },
        namespaceformat: 'optionset',
        messagecharset: 'optionset',
        namespaceaddress: 'string:255',
        path: { name: 'path', type: 'string', maxLength: 160, required: true },
        solutionnamespace: { name: 'solutionnamespace', type: 'string', maxLength: 160, required: true },
        saskeyname: 'string:256',
        url: 'string:2000',
        // Not readable in Dataverse (IsValidForRead False); read back whether they are set through the is…set columns.
        saskey: { name: 'saskey', type: 'string', maxLength: 256, writeOnly: true },
        sastoken: { name: 'sastoken', type: 'string', maxLength: 256, writeOnly: true },
        authvalue: { name: 'authvalue', type: 'string', maxLength: 2048, writeOnly: true },
        issaskeyset: { name: 'issaskeyset', type: 'bool', readOnly: true },
        issastokenset: { name: 'issastokenset', type: 'bool', readOnly: true },
        isauthvalueset: { name: 'isauthvalueset', type: 'bool', readOnly: true },
      },
    },
    {
      logicalName: 'sdkmessage',
      entitySetName: 'sdkmessages',
      primaryName: 'name',
      columns: { name: 'string:256' },
      indexed: ['name'],
    },
    {
      logicalName: 'sdkmessagefilter',
      entitySetName: 'sdkmessagefilters',
      primaryName: 'name',
      columns: {
        name: 'string:256',
        primaryobjecttypecode: 'string:128',
        secondaryobjecttypecode: 'string:128',
        iscustomprocessingstepallowed: 'bool',
        sdkmessageid: lookup({ sdkmessageid: 'sdkmessage' }),
      },
      indexed: ['primaryobjecttypecode'],
    },
    {
      logicalName: 'sdkmessageprocessingstep',
      entitySetName: 'sdkmessageprocessingsteps',
      primaryName: 'name',
      columns: {
        name: 'string:256',
        description: 'string:256',
        mode: 'optionset',
        stage: 'optionset',
        rank: 'int',
        supporteddeployment: 'optionset',
        asyncautodelete: 'bool',
        filteringattributes: 'string:100000',
        configuration: 'memo',
        eventhandler: lookup({
          eventhandler_serviceendpoint: 'serviceendpoint',
          eventhandler_plugintype: 'plugintype',
        }),
        sdkmessageid: lookup({ sdkmessageid: 'sdkmessage' }),
        sdkmessagefilterid: lookup({ sdkmessagefilterid: 'sdkmessagefilter' }),
      },
    },
    {
      logicalName: 'plugintype',
      entitySetName: 'plugintypes',
      primaryName: 'name',
      columns: { name: 'string:256', typename: 'string:256' },
    },
    {
      // PA-docs reference/entities/customapi.md and customapi-tables.md. Creating one creates its sdkmessage.
      logicalName: 'customapi',
      entitySetName: 'customapis',
      primaryName: 'name',
      columns: {
        uniquename: { name: 'uniquename', type: 'string', maxLength: 128, required: true },
        name: 'string:100',
        displayname: 'string:100',
        description: 'string:300',
        allowedcustomprocessingsteptype: 'optionset',
        bindingtype: 'optionset',
        boundentitylogicalname: 'string:100',
        isfunction: 'bool',
        isprivate: 'bool',
        workflowsdkstepenabled: 'bool',
        executeprivilegename: 'string:100',
        plugintypeid: lookup({ PluginTypeId: 'plugintype' }),
        sdkmessageid: { name: 'sdkmessageid', type: 'lookup', targets: { SdkMessageId: 'sdkmessage' }, readOnly: true },
      },
      indexed: ['uniquename'],
    },
    {
      logicalName: 'msdyn_channeldefinition',
      entitySetName: 'msdyn_channeldefinitions',
      primaryName: 'msdyn_displayname',
      columns: {
        msdyn_displayname: 'string:256',
        msdyn_description: 'memo',
        msdyn_channeltype: 'string:100',
        msdyn_outboundendpointurltemplate: 'string:1000',
        msdyn_outboundbatchendpointurltemplate: 'string:1000',
        msdyn_instanceregistrationendpointurltemplate: 'string:1000',
        msdyn_hasinbound: 'bool',
        msdyn_hasdeliveryreceipt: 'bool',
        msdyn_supportsaccount: 'bool',
        msdyn_supportsattachment: 'bool',
        msdyn_supportsbinary: 'bool',
        msdyn_specialconsentrequired: 'bool',
        msdyn_specialconsentlabel: 'string:256',
        msdyn_channeldefinitionexternalentity: 'string:256',
        msdyn_channeldefinitionexternalformid: 'string:100',
        msdyn_channeldefinitionaccountexternalentity: 'string:256',
        msdyn_channeldefinitionaccountexternalformid: 'string:100',
        msdyn_messageformid: 'string:100',
      },
    },
    {
      logicalName: 'msdyn_channelmessagepart',
      entitySetName: 'msdyn_channelmessageparts',
      primaryName: 'msdyn_name',
      columns: {
        msdyn_name: 'string:256',
        msdyn_displayname: 'string:256',
        msdyn_description: 'memo',
        msdyn_type: 'optionset',
        msdyn_isrequired: 'bool',
        msdyn_maxlength: 'int',
        msdyn_order: 'int',
        msdyn_entityname: 'string:100',
        msdyn_entityviewid: 'string:100',
        msdyn_channeldefinitionid: lookup({ msdyn_ChannelDefinitionId: 'msdyn_channeldefinition' }),
      },
    },
    {
      logicalName: 'msdyn_channelinstance',
      entitySetName: 'msdyn_channelinstances',
      primaryName: 'msdyn_name',
      columns: {
        msdyn_name: 'string:256',
        msdyn_description: 'memo',
        msdyn_contactpointid: 'string:256',
        msdyn_channeldefinitionid: lookup({ msdyn_ChannelDefinitionId: 'msdyn_channeldefinition' }),
      },
    },
    {
      // The base solution's Channel Instance Account (MSDocs-CE real-time-marketing-define-channel-instance-account.md):
      // an SMS channel's extended account table points at it through msdyn_extendedentityid.
      logicalName: 'msdyn_channelinstanceaccount',
      entitySetName: 'msdyn_channelinstanceaccounts',
      primaryName: 'msdyn_name',
      columns: {
        msdyn_name: 'string:256',
        msdyn_description: 'memo',
        msdyn_channeldefinitionid: lookup({ msdyn_ChannelDefinitionId: 'msdyn_channeldefinition' }),
      },
    },
    {
      // PA-docs reference/entities/customapirequestparameter.md, customapiresponseproperty.md.
      logicalName: 'customapirequestparameter',
      entitySetName: 'customapirequestparameters',
      primaryName: 'name',
      columns: {
        uniquename: { name: 'uniquename', type: 'string', maxLength: 128, required: true },
        name: 'string:100',
        displayname: 'string:100',
        description: 'string:300',
        type: 'optionset',
        isoptional: 'bool',
        logicalentityname: 'string:100',
        customapiid: lookup({ CustomAPIId: 'customapi' }, true),
      },
    },
    {
      logicalName: 'customapiresponseproperty',
      entitySetName: 'customapiresponseproperties',
      primaryName: 'name',
      columns: {
        uniquename: { name: 'uniquename', type: 'string', maxLength: 128, required: true },
        name: 'string:100',
        displayname: 'string:100',
        description: 'string:300',
        type: 'optionset',
        logicalentityname: 'string:100',
        customapiid: lookup({ CustomAPIId: 'customapi' }, true),
      },
    },
    {
      // PA-docs reference/entities/webresource.md: the entity set is `webresourceset`.
      logicalName: 'webresource',
      entitySetName: 'webresourceset',
      primaryName: 'name',
      columns: {
        name: 'string:256',
        displayname: 'string:200',
        description: 'string:2000',
        webresourcetype: 'optionset',
        content: 'memo',
      },
      indexed: ['name'],
    },
    {
      logicalName: 'publisher',
      entitySetName: 'publishers',
      primaryName: 'friendlyname',
      columns: {
        uniquename: 'string:256',
        friendlyname: 'string:256',
        customizationprefix: 'string:8',
        customizationoptionvalueprefix: 'int',
      },
      indexed: ['uniquename'],
    },
    {
      logicalName: 'solution',
      entitySetName: 'solutions',
      primaryName: 'friendlyname',
      columns: {
        uniquename: 'string:65',
        friendlyname: 'string:256',
        version: 'string:256',
        ismanaged: 'bool',
        installedon: 'datetime',
        publisherid: lookup({ publisherid: 'publisher' }),
      },
      indexed: ['uniquename'],
    },
    {
      // PA-docs reference/entities/importjob.md.
      logicalName: 'importjob',
      entitySetName: 'importjobs',
      primaryName: 'name',
      columns: {
        name: 'string:100',
        solutionname: 'string:256',
        data: 'memo',
        progress: 'decimal',
        startedon: 'datetime',
        completedon: 'datetime',
        operationcontext: 'string:100',
        importcontext: 'string:110',
      },
    },
    {
      // PA-docs reference/entities/asyncoperation.md (the columns a client polls).
      logicalName: 'asyncoperation',
      entitySetName: 'asyncoperations',
      primaryName: 'name',
      columns: {
        name: 'string:256',
        operationtype: 'optionset',
        message: 'memo',
        friendlymessage: 'memo',
        startedon: 'datetime',
        completedon: 'datetime',
        correlationid: 'guid',
      },
    },
  ];
}

/** All tables by logical name and by entity set name. */
export class Catalog {
  readonly #byLogical = new Map<string, TableDef>();
  readonly #bySet = new Map<string, TableDef>();

  add(def: TableDef): void {
    if (this.#byLogical.has(def.logicalName)) throw new TypeError(`table '${def.logicalName}' is declared twice`);
    this.#byLogical.set(def.logicalName, def);
    this.#bySet.set(def.entitySetName, def);
  }
  /** Replaces a table's definition (a solution import adding columns); its logical and entity set names stay. */
  replace(def: TableDef): void {
    const previous = this.#byLogical.get(def.logicalName);
    if (!previous || previous.entitySetName !== def.entitySetName || previous.primaryKey !== def.primaryKey)
      throw new TypeError(`table '${def.logicalName}' cannot be replaced by one with other names`);
    this.#byLogical.set(def.logicalName, def);
    this.#bySet.set(def.entitySetName, def);
  }
  byLogicalName(name: string): TableDef | undefined {
    return this.#byLogical.get(name);
  }
  byEntitySet(name: string): TableDef | undefined {
    return this.#bySet.get(name);
  }
  tables(): IterableIterator<TableDef> {
    return this.#byLogical.values();
  }
}

/** The Web API name of a column: lookups read back as `_<name>_value`. */
export function webApiName(col: Column): string {
  return col.type === 'lookup' ? `_${col.name}_value` : col.name;
}

/** Resolves a Web API property name (`firstname`, `_msdyncrm_contact_value`) to its column. */
export function columnOfProperty(def: TableDef, property: string): Column | undefined {
  if (property.startsWith('_') && property.endsWith('_value')) {
    const col = def.columns.get(property.slice(1, -6));
    return col?.type === 'lookup' ? col : undefined;
  }
  const col = def.columns.get(property);
  return col && col.type !== 'lookup' ? col : undefined;
}
