/**
 * The relay's choices where no primary source was found (reference/dataverse-contracts.md marks them UNVERIFIED).
 * Kept in one place so that a capture from a real org corrects each with one edit.
 */

/**
 * `msdyncrm_activityid` of a Custom Channel Activity (String(100), "ApplicationRequired"). What it identifies is
 * undocumented; the relay reads it as the journey tile's id, shared by every contact that passes the tile: the
 * CreateInteraction action takes `ActivityId` *and* `CustomerJourney`, `CustomerJourneyIteration` and `Contact`
 * (MSDocs-CE create-custom-channel-activity-interaction.md), and the column also exists on the phone call, appointment
 * and task rows that journeys create, next to `msdyncrm_associatedcustomerjourneyiteration`. UNVERIFIED.
 *
 * Decided: it is passed unchanged to CreateInteraction's `ActivityId` (the contract) and is never a key. Every key
 * of an activity is its row id `msdyncrm_customerjourneycustomchannelactivityid`: the `outbound` MessageId and the
 * provider's idempotency key (the contract's `RequestId` and `webhook-id`), the interaction MessageIds, link codes
 * and the callbacks' row lookups. Keyed on a shared tile id, duplicate detection on `outbound` and `interactions`
 * would drop every contact of a tile but the first, with no error. If the column turned out to be unique per row,
 * nothing would change. The Dataverse emulator gives the rows of a journey run one shared value
 * (src/emulators/dataverse/assumptions.ts `journeyActivityId`) so that the end-to-end tests fail on a relay keyed on it.
 */
export const ACTIVITY_TILE_ID = 'msdyncrm_activityid';

/**
 * How the relay recognizes a real-time journeys outbound Custom API call in a posted RemoteExecutionContext.
 * The docs say the outbound Custom API has "one input `payload`" holding serialized JSON with `ChannelDefinitionId`,
 * `RequestId`, `From`, `To`, `Message`, `MarketingAppContext`; the API's name is the channel's own
 * (`msdyn_outboundendpointurltemplate`), so it cannot be matched by message name. UNVERIFIED: the parameter casing
 * (`payload`), and that a Service Bus step on the API's message posts it this way (the emulator does:
 * src/emulators/dataverse/assumptions.ts REALTIME_OUTBOUND).
 *
 * Rule: a message other than `Create` whose `InputParameters` hold a string `payload` is a real-time outbound call;
 * its JSON must then carry every field in `requiredFields`.
 */
export const REALTIME_OUTBOUND_CALL = {
  inputParameter: 'payload',
  requiredFields: ['ChannelDefinitionId', 'RequestId', 'From', 'To', 'Message'],
} as const;

/**
 * Over 192 KB Dataverse drops `ParentContext`, `InputParameters` and the images "and adds a MessageMaxSizeExceeded
 * property". UNVERIFIED: where that property is (the emulator sets an application property `true`). The relay treats
 * an event as truncated when that application property is truthy, or when a `Create` body has no `InputParameters`
 * (missing or empty), which is what the trimming leaves whichever way the flag is carried.
 */
export const TRUNCATED_PROPERTY = 'MessageMaxSizeExceeded';

/**
 * A Create's `Target` is the entity of the create request (PA-docs understand-the-data-context.md: the
 * `InputParameters` of a Create hold the `Target` entity passed in the request), so it carries the columns the creator
 * set, not the row: a column the journey engine fills in a later update, or a plug-in sets, is on the row only.
 * UNVERIFIED: which columns the journey engine sets in its Create (no capture). The relay reads the row when any of
 * these attributes, the ones it builds an activity from, is absent from the Target (remote-context.ts), and
 * dead-letters only when the row lacks it too.
 */
export const TARGET_ATTRIBUTES = [
  ACTIVITY_TILE_ID,
  'msdyncrm_contact',
  'msdyncrm_customerjourney',
  'msdyncrm_customerjourneyiteration',
  'msdyncrm_entitytype',
  'msdyncrm_entityid',
] as const;

/**
 * The service-protection governor's readings (governor.ts):
 * - Execution time is what Dataverse's servers spend on a request; the relay cannot see it and counts the duration it
 *   observes (server time plus network and queueing: an upper bound). UNVERIFIED: how close the two are on a real
 *   org; if Dataverse counts more (a plug-in's own calls?), the execution-time 429 raises the estimate per operation,
 *   by at most `maxEstimateStep` at a time.
 * - The `x-ms-ratelimit-*` headers come from whichever server answered and reset when another one does (PA-docs
 *   api-limits.md): a reading above the last one means another server; they are believed again after
 *   `headerTrustReadings` readings in a row that did not rise. UNVERIFIED: how servers share an identity's counts.
 * - `x-ms-dop-hint` (PA-docs send-parallel-requests.md: the recommended degree of parallelism, varying by
 *   environment) caps the concurrency; the last hint seen wins.
 * - When a request is counted: the limits are evaluated over a sliding window (PA-docs api-limits-overview.md, "Evaluated
 *   in a 5-minute sliding window"), but the docs do not say whether a request enters it when it arrives, starts or
 *   ends. The governor counts a request when it sends it and its execution time when its answer came (the latest
 *   possible moment), and plans its own window `windowSlack` longer than the configured one, so that a request that
 *   reached Dataverse up to that much later than it was sent (2 % of 5 minutes: 6 s) has left Dataverse's window when
 *   it leaves the governor's. UNVERIFIED: the moment; a longer delay than the slack at a budget fully spent could
 *   cost a 429, which the governor then honours.
 * - Bursts (`burstReserve`): the limits are sums over the sliding window and nothing else (PA-docs api-limits.md and
 *   api-limits-overview.md: requests and execution time per user "evaluated in a 5-minute sliding window", plus the
 *   concurrent requests; no per-second or per-minute cap is named), so spending a window's budget in its first minute
 *   is allowed as long as nothing more is spent until it slides out. UNVERIFIED: that no
 *   shorter, undocumented window or smoothing exists on Dataverse's side; if one did, a burst would meet 429s, which
 *   the governor honours (pause, probe, half the concurrency) and, held back, paces from then on.
 * - Several processes of one identity: each governor counts only its own calls, so a burst is safe only within its
 *   process's part of the budgets (README: give each process its part); the headers, while believed, see the whole
 *   identity and stop a burst they say does not fit. UNVERIFIED: that operators split the budget (if two processes
 *   each burst to the whole budget, Dataverse answers 429s, honoured as above).
 */
export const SERVICE_PROTECTION = { headerTrustReadings: 3, maxEstimateStep: 10, windowSlack: 0.02 } as const;

/**
 * `msdyn_D365ChannelsNotification` for a real-time journeys send (MicrosoftDocs/dynamics-365-customer-engagement
 * ce/marketing/real-time-marketing-custom-channel-custom-API.md):
 * - `Status`: the documented values are `Delivered` and `NotDelivered`. The outbound Custom API's documented
 *   `response` (Status `NotSent`/`Sent`) cannot come from the relay: a Service Bus step is asynchronous, and "without
 *   a plug-in, any output parameter values return the default values for the type" (PA-docs custom-api.md), so the
 *   journey gets a null `response` unless a plug-in of the org's own sets it. What the journey then does is
 *   documented nowhere (README "Real-time journeys"). So the relay reports every outcome here: an interaction with
 *   responseType `Sent` writes nothing ({ ok: true } without a request); `NotSent` is written as `NotDelivered`
 *   with `StatusDetails` carrying the provider's detail. UNVERIFIED: whether Dataverse expects a notification for a
 *   message that was never sent.
 * - `MessageId` is required by the payload: the provider's message id when there is one, else the `RequestId`.
 *   UNVERIFIED: what Customer Insights does with it.
 * - `StatusDetails` is `Dictionary<string, object>` ("channel specific information regarding the status": the
 *   01/30/2023 version of the docs, seed `002_19ce9b36dacb4443.txt`; later versions drop it). Sent always, as an
 *   object, as community plug-ins modelled on Microsoft's samples do (`new Dictionary<string, object>()`): the
 *   channel's name, the provider's message id, and on a failure the provider's code and message. Never a
 *   "code: message" string: a deserializer refuses a string for a dictionary. UNVERIFIED: the key names (the docs
 *   name none) and whether anything reads them.
 * - The answer: an output `responseMessage` (those plug-ins read `response.Results["responseMessage"]`), so a 200
 *   with a body; a 204 is read the same. Nothing in it is used.
 * - The parameter name: `notificationPayLoad` (the docs spell it both ways).
 */
export const REALTIME_NOTIFICATION = {
  action: 'msdyn_D365ChannelsNotification',
  parameter: 'notificationPayLoad',
  /** Statuses with nothing to write. */
  nothingToWrite: ['Sent'] as readonly string[],
  /** Relay status → notification Status. */
  statusMap: { NotSent: 'NotDelivered' } as Readonly<Record<string, string>>,
  /** `StatusDetails` keys. */
  statusDetails: {
    channel: 'Channel',
    providerMessageId: 'ProviderMessageId',
    code: 'ProviderCode',
    message: 'ProviderMessage',
  },
} as const;

/**
 * `msdyn_D365ChannelsInbound` for a real-time journeys inbound message: one serialized-JSON parameter
 * `inboundPayLoad` with `ChannelDefinitionId`, `To` (the channel instance's address), `From` (the contact's),
 * `OrganizationId` and `Message`, a `Dictionary<string, string>` that "contains all the message parts for a channel"
 * (MicrosoftDocs/dynamics-365-customer-engagement ce/marketing/real-time-marketing-custom-channel-custom-API.md, 2023
 * and later; the seed's 01/30/2023 version only says the payload is proxied). So `Message` is an object: the `text`
 * part (SMS channels have exactly that one part, reference/dataverse-contracts.md §5) plus any parts the provider
 * named (the contract's inbound `Message` object). Twilio MMS media and Telegram attachments have no part to go into
 * on an SMS definition and are not forwarded. The relay adds `MessageId` (the provider's id of the message), which
 * the docs do not list: .NET deserializers ignore unknown members by default. UNVERIFIED: that nothing refuses it,
 * and the part names of a custom channel's inbound message.
 */
export const REALTIME_INBOUND = {
  action: 'msdyn_D365ChannelsInbound',
  parameter: 'inboundPayLoad',
  /** The part that carries the text. */
  textPart: 'text',
} as const;
