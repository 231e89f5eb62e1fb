/**
 * Every choice the emulator makes where no primary source was found (see
 * `reference/dataverse-contracts.md`, marked UNVERIFIED there). They live here, in one place, so that a capture from
 * a real org corrects them with one edit. `docs/emulators/dataverse.md` lists them for readers.
 */
import { randomUUID } from 'node:crypto';

/**
 * The Web API body of `msdyncrm_CustomChannelActivityCreateInteraction`: parameter names as in the C# docs; the
 * EntityReference parameters as `{ "@odata.type": "Microsoft.Dynamics.CRM.<table>", "<table>id": "<guid>" }`.
 * The `@odata.type` annotation is accepted but not required (the key property names the table).
 * UNVERIFIED: the exact `$metadata` declaration of the action.
 */
export const CREATE_INTERACTION = {
  action: 'msdyncrm_CustomChannelActivityCreateInteraction',
  /** String parameters that are always required. */
  requiredStrings: ['ActivityId', 'EntityType', 'EntityId', 'ResponseType'] as const,
  /** EntityReference parameters: parameter → [table logical name, key property]. */
  references: {
    Contact: ['contact', 'contactid'],
    CustomerJourney: ['msdyncrm_customerjourney', 'msdyncrm_customerjourneyid'],
    CustomerJourneyIteration: ['msdyncrm_customerjourneyiteration', 'msdyncrm_customerjourneyiterationid'],
  } as const,
  /** Optional; required exactly when the response type has `custom="True"`. */
  keyword: 'TriggerKeyword',
  /** The action has no documented output: the emulator answers 204 No Content. UNVERIFIED. */
  status: 204,
} as const;

/**
 * `msdyncrm_activityid` of the rows the journey engine creates: one value per tile per journey run, shared by every
 * contact the run creates a row for (a GUID string made for the run), distinct for each tile and each run.
 * UNVERIFIED. The column is a String(100), not the row's key; `CreateInteraction` takes `ActivityId` *and* the contact,
 * journey and iteration (MSDocs-CE create-custom-channel-activity-interaction.md), and the same column exists on the
 * phone call, appointment and task rows journeys create next to `msdyncrm_associatedcustomerjourneyiteration`: the
 * most likely reading is the journey tile's id. It is also the worst plausible one for the relay: a relay that keys
 * its messages, idempotency, link codes or callback lookups on it loses or misattributes every contact of a tile but
 * one, so the end-to-end tests fail on such a relay. If real rows carry a value of their own, nothing in the relay
 * changes (it keys on `msdyncrm_customerjourneycustomchannelactivityid`); if the value is also shared across runs,
 * only the emulator's attribution (`CreateInteraction` below) would need the run's row to be the newest.
 *
 * `CreateInteraction` names no row, so the emulator resolves the interaction to the row whose `msdyncrm_activityid`,
 * contact, journey and iteration are the ones given (the run gives a contact one row per tile, so this is one row);
 * when hand-made rows leave several, the oldest is taken. UNVERIFIED: how Dataverse attributes it.
 */
export function journeyActivityId(): string {
  return randomUUID();
}

/**
 * Real-time journeys: the Custom APIs take one string parameter holding serialized JSON. Parameter casing is
 * UNVERIFIED (the docs write both `notificationPayLoad` and `notificationPayload`); both spellings are accepted.
 *
 * Field types, as the docs give them (MicrosoftDocs/dynamics-365-customer-engagement
 * ce/marketing/real-time-marketing-custom-channel-custom-API.md, 2023 and later; the 01/30/2023 version, seed
 * `002_19ce9b36dacb4443.txt`, for `StatusDetails`): `ChannelDefinitionId` GUID, `RequestId`, `MessageId`, `From`,
 * `To`, `OrganizationId`, `Status` strings; inbound `Message` `Dictionary<string, string>` ("all the message parts for
 * a channel"), notification `StatusDetails` `Dictionary<string, object>`. The platform's own plug-in deserializes the
 * JSON into those types, so every field is checked: worst reading, a field of the wrong type fails the whole call.
 * - `OrganizationId`: "The organization ID": a GUID, and the emulator's own organization's (worst reading: a
 *   notification naming another org is refused). UNVERIFIED.
 * - `StatusDetails`: optional (the current docs no longer list it); when present an object, never a string or null.
 *   Community plug-ins modelled on Microsoft's samples always send one (`new Dictionary<string, object>()`).
 * - Unknown fields (the relay's inbound `MessageId`) are ignored, as both .NET JSON serializers do by default.
 * - The type-mismatch error: the emulator answers the way it answers a Web API value of the wrong type
 *   (`typeMismatch`, 0x80048d19 "Cannot convert the literal … to the expected type …"), naming the payload field.
 *   UNVERIFIED: the real text comes from Microsoft's plug-in (a deserializer message inside an ISV error); what
 *   matters to the relay is a 400 that a retry does not change.
 * - Answer: both actions have an output, `responseMessage` (plug-ins modelled on Microsoft's samples read
 *   `response.Results["responseMessage"]`, e.g. the community XgateSmsChannel InboundPlugin and WhatsApp
 *   DeliveryReportPlugin): the emulator answers 200 with `{"@odata.context": …, "responseMessage": …}`. UNVERIFIED:
 *   what the message says (the emulator writes `Accepted`).
 */
export const REALTIME_ACTIONS = {
  notification: { action: 'msdyn_D365ChannelsNotification', parameter: ['notificationPayLoad', 'notificationPayload'] },
  inbound: { action: 'msdyn_D365ChannelsInbound', parameter: ['inboundPayLoad', 'inboundPayload'] },
  notificationStatuses: ['Delivered', 'NotDelivered'],
  /** .NET type names for the error message, by payload field. */
  types: {
    string: 'System.String',
    guid: 'System.Guid',
    messageParts: 'System.Collections.Generic.Dictionary`2[System.String,System.String]',
    statusDetails: 'System.Collections.Generic.Dictionary`2[System.String,System.Object]',
  },
  responseMessage: 'Accepted',
} as const;

/** The message of the fault (kind `Payload`) for a payload field of the wrong type (see REALTIME_ACTIONS). */
export function typeMismatch(
  action: string,
  parameter: string,
  field: string,
  value: unknown,
  expected: string,
): string {
  const literal = JSON.stringify(value) ?? String(value);
  return `${action}: Cannot convert the literal '${literal.length > 80 ? `${literal.slice(0, 80)}…` : literal}' to the expected type '${expected}' for property '${parameter}.${field}'.`;
}

/**
 * The outbound Custom API's `response` output. "Without a plug-in, any output parameter values return the default
 * values for the type because there's no code to set them" (PA-docs custom-api.md, "Use a plug-in to include logic
 * in your custom API"); a Service Bus step is asynchronous and cannot set it. The emulator runs no plug-in, so every
 * outbound call it makes has no `response`, and it counts them under `realtime` in `/_emulator/stats` with a line in
 * `problems`. UNVERIFIED, and found nowhere: what the journey does with a call that returned no Status (a retry, a
 * failure, or nothing).
 */
export const OUTBOUND_RESPONSE = {
  problem: (customApi: string, calls: number): string =>
    `${calls} real-time outbound call(s) to the Custom API ${customApi} returned no 'response' (no synchronous plug-in sets it; a Service Bus step cannot): the journey got no Sent/NotSent status for them`,
} as const;

/**
 * `customapi.allowedcustomprocessingsteptype` (PA-docs customapi-tables: 0 None, 1 Async Only, 2 Sync and Async;
 * "Cannot be changed after it is saved"). The emulator refuses a step on the message of a Custom API with 0, a
 * synchronous step (mode 0) with 1, and an update of the column. UNVERIFIED: Dataverse's wording of those refusals.
 * A Custom API row created through the Web API gets its `sdkmessage` (same name) if none exists, as Dataverse
 * creates the message with the API. A message with no `customapi` row (the seed's) is not checked.
 */
export const CUSTOM_API_STEP_TYPES = { none: 0, asyncOnly: 1, syncAndAsync: 2 } as const;

/**
 * Service endpoint → Service Bus connection. No Microsoft sample creates a Service Bus endpoint through the Web API.
 * - `authtype` 2 (SAS Key, the combination in the reference): `namespaceaddress` (`sb://host[:port]/`), `saskeyname`,
 *   `saskey`.
 * - `authtype` 7 (Connection String): the connection string in `authvalue` (the only string column that can hold
 *   one; an `EntityPath=` in it is dropped, `path` names the entity).
 * In both cases `path` is the queue or topic. A loopback host gets `UseDevelopmentEmulator=true`. When the emulator
 * was started with a connection string (`--servicebus`), that string is used for every endpoint and only `path` is
 * read from the row. UNVERIFIED: which columns the Plug-in Registration Tool fills for each auth type.
 */
export function endpointConnectionString(row: Record<string, unknown>, override: string | undefined): string {
  if (override) return override;
  if (row['authtype'] === 7 && typeof row['authvalue'] === 'string' && row['authvalue'] !== '') {
    const parts = row['authvalue'].split(';').filter((p) => p.trim() !== '' && !/^\s*EntityPath\s*=/i.test(p));
    const host =
      /^\s*Endpoint\s*=\s*sb:\/\/([^/;]+)/i.exec(parts.find((p) => /^\s*Endpoint\s*=/i.test(p)) ?? '')?.[1] ?? '';
    if (isLoopback(host) && !parts.some((p) => /^\s*UseDevelopmentEmulator\s*=/i.test(p)))
      parts.push('UseDevelopmentEmulator=true');
    return parts.join(';');
  }
  const address = String(row['namespaceaddress'] ?? '');
  const keyName = String(row['saskeyname'] ?? '');
  const key = String(row['saskey'] ?? '');
  const host = address.replace(/^sb:\/\//i, '').replace(/\/.*$/, '');
  return `Endpoint=sb://${host}/;SharedAccessKeyName=${keyName};SharedAccessKey=${key}${isLoopback(host) ? ';UseDevelopmentEmulator=true' : ''}`;
}

function isLoopback(host: string): boolean {
  return /^(localhost|127\.0\.0\.1|\[::1\])(:\d+)?$/i.test(host);
}

/**
 * `sdkmessagefilter.primaryobjecttypecode` holds the table's logical name in Web API responses (it is an
 * EntityName attribute). The emulator matches it against the created row's table by logical name. UNVERIFIED:
 * the community pattern `primaryobjecttypecode eq '<logicalname>'`.
 */
export function filterMatchesTable(filter: Record<string, unknown>, logicalName: string): boolean {
  return String(filter['primaryobjecttypecode'] ?? '').toLowerCase() === logicalName;
}

/**
 * Content type of a posted message by `serviceendpoint.messageformat` (documented: PA-docs
 * write-listener-application-azure-solution.md). Other values are refused when the endpoint is created. An endpoint
 * without `messageformat` posts .NET Binary XML: the docs call it the default ("can be formatted in XML or JSON in
 * addition to the default .NET binary format", PA-docs azure-integration.md). Worst plausible reading, too: a relay
 * whose endpoint was made without the column gets events it cannot read. UNVERIFIED: whether a Web API create without the column stores 1 or leaves
 * it null (the emulator leaves it as given and posts binary for null).
 */
export const MESSAGE_FORMATS: Readonly<Record<number, string>> = {
  1: 'application/msbin1',
  2: 'application/json',
  3: 'application/xml',
};
export const DEFAULT_MESSAGE_FORMAT = 1;

/**
 * The XML shape of the RemoteExecutionContext for `messageformat` 3 (Text XML) and 1 (.NET Binary XML). No captured
 * XML or binary message from a real org was found; the shape follows the DataContractSerializer's rules and the
 * SOAP (2011 Organization service) payloads of the same types seen in public code. UNVERIFIED, each:
 * - member order: that of the JSON body (alphabetical, `InitiatingUserAgent` and the AAD object ids included);
 * - namespace prefixes and where they are declared: `a` (System.Collections.Generic) on the first collection
 *   element that needs it, `b` (Serialization, for `b:guid`) and `c` (XMLSchema, for `c:string`, `c:int`,
 *   `c:boolean`, `c:dateTime`, `c:long`, `c:decimal`, `c:double`) on each `a:value` that uses them. The WCF writer
 *   generates its own prefixes (`a`, `b`, `c`… in order of need); a namespace-aware reader sees no difference;
 * - contract types in `i:type` unprefixed (`i:type="Entity"`), the Contracts namespace being the default one;
 * - `EntityImageCollection` entries as `KeyValuePairOfstringEntity` (the emulator posts no images);
 * - dates: UTC xs:dateTime with the fraction's trailing zeros dropped (`2024-07-24T10:28:25.786Z`,
 *   `2024-07-24T10:28:25Z`), as `XmlConvert.ToString(DateTime, RoundtripKind)` writes a UTC DateTime;
 * - no XML declaration, no whitespace between elements; UTF-8 without BOM; an empty string as `<x/>` (the same
 *   infoset as `<x></x>`); on a typed value, `i:type` before the `xmlns:c` it needs (as in SOAP captures);
 * - .NET Binary XML: the same infoset with inline strings and Chars text records only (no [MC-NBFS] dictionary, no
 *   session dictionary, no typed text records), namespace declaration records before the attribute records: a
 *   [MC-NBFX] reader gets the same document, the bytes differ from WCF's.
 */
export const XML_CONTEXT = {
  prefixes: { generic: 'a', serialization: 'b', schema: 'c' },
  /** `i:type` of a Contracts type (Entity, EntityReference, OptionSetValue, Money). */
  contractType: (name: string): string => name,
  dateTime: (date: Date): string => date.toISOString().replace(/\.?0+Z$/, 'Z'),
} as const;

/**
 * `x-ms-ratelimit-time-remaining-xrm-requests`: the remaining combined execution time in seconds, written the way
 * captured responses show it: en-US grouping and two decimals (`1,200.00`, `1,199.46`; PA-docs quick-start-ps.md
 * and other captures). A caller that parses it with `Number()` gets NaN on real Dataverse, so neither does it
 * here: strip the commas first. The header's unit is inferred from those captures (the docs name the header only).
 */
export function formatTimeRemaining(ms: number): string {
  return (Math.max(0, ms) / 1000).toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 });
}

/**
 * Execution time per operation, for the execution-time limit (1,200,000 ms per identity per 5 minutes; a `$batch`
 * adds every operation's). Dataverse measures the time its servers spend on each request and documents no figure
 * per operation; these are assumptions, of the order plug-in-free Dataverse operations are commonly reported to take:
 * a read 10 ms, a write (create, update, an action such as CreateInteraction, which creates interaction records)
 * 20 ms. At 20 ms a CreateInteraction the budget allows 60,000 per 5 minutes (200/s), far below what 6,000 `$batch`
 * requests of 1,000 could carry: the execution time is the limit that binds batched writes. UNVERIFIED: if real
 * writes cost more, the relay's governor learns it from the durations it observes (and an execution-time 429); if
 * less, it spends less than it could.
 */
export const EXECUTION_COSTS = { readMs: 10, writeMs: 20 } as const;

/**
 * A request without a bearer token: real Dataverse answers 401 with a `WWW-Authenticate` header and no JSON body;
 * the emulator adds the JSON error shape (code 0x80040220, "Principal user is missing privilege" family) so that
 * the caller reads what was wrong. UNVERIFIED code.
 */
export const UNAUTHORIZED = {
  code: '0x80040220',
  message: 'The request has no bearer token: send Authorization: Bearer <token>.',
} as const;

/**
 * The `…/Claims/Organization` application property: the docs say "Organization URI"; the emulator writes the host
 * of its own URL (`127.0.0.1:<port>`), as a real org would write `<org>.crm.dynamics.com`. UNVERIFIED.
 */
export function organizationClaim(baseUrl: string): string {
  return new URL(baseUrl).host;
}

/**
 * Over 192 KB Dataverse drops ParentContext, InputParameters and the images and "adds a MessageMaxSizeExceeded
 * property". The emulator adds it as an application property with the value `true`. UNVERIFIED: where exactly.
 */
export const MAX_SIZE_PROPERTY = 'MessageMaxSizeExceeded';

/**
 * Real-time journeys outbound: the Custom API the journey calls for each message is named by the channel
 * definition's `msdyn_outboundendpointurltemplate` without its leading `/` (`/cr65f_OutboundCustomApi` →
 * message `cr65f_OutboundCustomApi`); its one input parameter is `payload`, the serialized JSON of
 * `{ChannelDefinitionId, RequestId, From, To, Message, MarketingAppContext}`. When no `from` is given, `From` is the
 * `msdyn_contactpointid` (else the id) of the definition's first channel instance. UNVERIFIED: the parameter casing
 * and what `From` holds for a custom channel.
 */
export const REALTIME_OUTBOUND = { inputParameter: 'payload', userEntityType: 'contact' } as const;

export function outboundApiName(template: string): string {
  return template.trim().replace(/^\/+/, '');
}

/**
 * How the emulated org reads a tile XML (tile.ts): `<ChannelProperties>` with `EntityType`, `EntitySetName`,
 * `ComplianceField` and `LookupViewId` (the current docs mark it required; an older version called it optional: the
 * strict reading refuses a tile without it), a `<Label locId="1033">` on each response type ("labels must include
 * locId 1033"), at most one `custom="True"` response type. UNVERIFIED: whether Dataverse itself refuses such a tile
 * at import or only the journey designer misbehaves; if it accepts more, only the seed checks here are stricter.
 */
export const TILE_READING = { alsoRequired: ['LookupViewId'], requiredLabelLocale: '1033' } as const;

/**
 * Solution import (`ImportSolution`, `ImportSolutionAsync`; solution-import/). Documented: the actions' parameters
 * and types (PA-docs webapi/reference importsolution, importsolutionasync: `OverwriteUnmanagedCustomizations` and
 * `PublishWorkflows` Edm.Boolean required, `CustomizationFile` Edm.Binary, `ImportJobId` Edm.Guid; the async answer
 * `AsyncOperationId` Edm.Guid and `ImportJobKey` Edm.String), the `importjob` columns (`progress` Edm.Double,
 * `data` the log, `solutionname`, `startedon`, `completedon`), `asyncoperation` statecode 0 Ready / 2 Locked /
 * 3 Completed and statuscode 0 Waiting For Resources / 20 In Progress / 30 Succeeded / 31 Failed (Dataverse SDK
 * AsyncStatusResponse enums), custom API files and their immutable columns (PA-docs custom-api-solution.md), channel
 * definitions and message parts as records in customizations.xml with lowercase GUIDs (MSDocs-CE
 * real-time-marketing-define-channel-definition.md and the message parts page). UNVERIFIED, each the worst plausible
 * reading for the relay:
 * - `ImportJobKey` is an opaque key, not the import job's id: a client that wants the job's progress and log passes
 *   its own `ImportJobId` (without one the job gets an id of its own that the answer does not tell).
 * - The async import takes simulated time (`importDurationMs`, progress in steps of `progressSteps`) and finds a
 *   broken solution only when it runs: the call itself answers 200 for any zip-shaped base64; the failure is in
 *   the async operation (`statuscode` 31, `message`, `friendlymessage`) and the import job's `data`. The sync
 *   `ImportSolution` runs at once and answers the failure as a fault (`ImportFailed`; code UNVERIFIED).
 * - A second import while one runs fails ("another solution is being imported": PA-docs mention the concurrency
 *   failure, not its text).
 * - The log in `importjob.data`: `<importexportxml>` with a `<solutionManifests>` entry and one element per
 *   component, each with `<result result="success|failure" errorcode errortext>`, as community readers of the log
 *   parse it; the exact shape is not documented.
 * - The zip must hold `[Content_Types].xml`, `solution.xml` and `customizations.xml` under those exact names; no XML
 *   file may carry a DTD (.NET's XmlReader default, DtdProcessing.Prohibit).
 * - A tile is an XML web resource whose name ends with `CustomerJourneyDesignerTileConfig.xml` (the tile's naming
 *   rule); it is read with the emulator's tile reading (TILE_READING) and a tile the org would refuse fails the import.
 * - The lowercase-GUID rule applies to every GUID the emulator reads from the files (record ids, lookups, form and
 *   view ids, web resource ids), not only to the channel records the docs name.
 * - A channel definition's outbound Custom API (`msdyn_outboundendpointurltemplate`) must be in the solution or
 *   already in the org; its `msdyn_channeldefinitionexternalentity` (and account entity) must be a table of either,
 *   and the form ids must be forms of those tables when the tables come with the solution. An SMS definition must
 *   have `msdyn_supportsaccount` 1 and exactly one message part, named `text`; a Custom one at least one part.
 *   Message part `msdyn_type` as documented (192350000 plain text, 192350003 media, 192350004 image, 192350005
 *   record). An element the record's table does not have fails the import.
 * - Relationship roles: the `<EntityRelationshipRole>` with `RelationshipRoleType` 1 carries the single-valued
 *   navigation property of the referencing table (the docs' polymorphic example names it `<lookup>_<referenced>`).
 * - Re-importing a solution updates what it contains (tables gain columns, rows are updated by id, custom APIs by
 *   unique name); a column of an existing table whose type changes, or an immutable custom API column that changes,
 *   fails the import. Nothing the new version no longer contains is removed (unmanaged solutions do not delete).
 * - A custom API's `plugintypeid` is not checked (the emulator runs no plug-in).
 * - The refusal's text is the emulator's: `<file in the zip>: <element>: <what is wrong>`, in the fault, the async
 *   operation's `message`/`friendlymessage` and the log's `errortext`. Dataverse's own import errors name the
 *   failing component in the log; their wording is not documented, so a client should show the text, not parse it.
 */
export const SOLUTION_IMPORT = {
  requiredEntries: ['[Content_Types].xml', 'solution.xml', 'customizations.xml'],
  /** The most a solution may expand to in the emulator. */
  maxExpandedBytes: 64 * 1024 * 1024,
  singleValuedRoleType: '1',
  tileSuffix: 'CustomerJourneyDesignerTileConfig.xml',
  /** Plain text, media, image, record (MSDocs-CE real-time-marketing-custom-channel-message-parts / custom SMS parts). */
  messagePartTypes: [192350000, 192350003, 192350004, 192350005],
  channelTypes: ['Custom', 'SMS'],
  smsPart: 'text',
  /** Default duration of an async import, ms, and the number of progress updates on the way. */
  importDurationMs: 1_000,
  progressSteps: 4,
  concurrentImportMessage:
    'Cannot start the requested operation [Import] because there is another [Import] running at this moment. Try again later.',
  asyncState: { ready: 0, locked: 2, completed: 3 },
  asyncStatus: { waitingForResources: 0, inProgress: 20, succeeded: 30, failed: 31 },
} as const;
