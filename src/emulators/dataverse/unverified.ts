/**
 * Every choice the emulator makes where no primary source was found (see
 * `reference/dataverse-contracts.md`, marked UNVERIFIED there). They live here, in one place, so that a capture from
 * a real org corrects them with one edit. `docs/emulators/dataverse.md` lists them for readers.
 */

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
 * `msdyncrm_activityid` of the rows the journey engine creates. The emulator gives each row its own value (the
 * row's id, as a string), so that an interaction names exactly one activity. UNVERIFIED: real journeys may reuse
 * the tile's id for every contact; the CreateInteraction validation works for both (it matches the row on
 * activity id, contact, journey and iteration).
 */
export function journeyActivityId(rowId: string): string {
  return rowId;
}

/**
 * Real-time journeys: the Custom APIs take one string parameter holding serialized JSON. Parameter casing is
 * UNVERIFIED (the docs write both `notificationPayLoad` and `notificationPayload`); both spellings are accepted.
 * No output is documented: 204 No Content.
 */
export const REALTIME_ACTIONS = {
  notification: { action: 'msdyn_D365ChannelsNotification', parameter: ['notificationPayLoad', 'notificationPayload'] },
  inbound: { action: 'msdyn_D365ChannelsInbound', parameter: ['inboundPayLoad', 'inboundPayload'] },
  notificationStatuses: ['Delivered', 'NotDelivered'],
} as const;

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
    const host = /^\s*Endpoint\s*=\s*sb:\/\/([^/;]+)/i.exec(parts.find((p) => /^\s*Endpoint\s*=/i.test(p)) ?? '')?.[1] ?? '';
    if (isLoopback(host) && !parts.some((p) => /^\s*UseDevelopmentEmulator\s*=/i.test(p))) parts.push('UseDevelopmentEmulator=true');
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
export const MESSAGE_FORMATS: Readonly<Record<number, string>> = { 1: 'application/msbin1', 2: 'application/json', 3: 'application/xml' };
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
export const UNAUTHORIZED = { code: '0x80040220', message: 'The request has no bearer token: send Authorization: Bearer <token>.' } as const;

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
