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
 * (src/emulators/dataverse/unverified.ts `journeyActivityId`) so that the end-to-end tests fail on a relay keyed on it.
 */
export const ACTIVITY_TILE_ID = 'msdyncrm_activityid';

/**
 * How the relay recognizes a real-time journeys outbound Custom API call in a posted RemoteExecutionContext.
 * The docs say the outbound Custom API has "one input `payload`" holding serialized JSON with `ChannelDefinitionId`,
 * `RequestId`, `From`, `To`, `Message`, `MarketingAppContext`; the API's name is the channel's own
 * (`msdyn_outboundendpointurltemplate`), so it cannot be matched by message name. UNVERIFIED: the parameter casing
 * (`payload`), and that a Service Bus step on the API's message posts it this way (the emulator does:
 * src/emulators/dataverse/unverified.ts REALTIME_OUTBOUND).
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
 * `msdyn_D365ChannelsNotification` for a real-time journeys send:
 * - `Status`: the documented values are `Delivered` and `NotDelivered`. The outbound Custom API is asynchronous here
 *   (a Service Bus step, no `response` output), so the relay has no way to answer `Sent`: an interaction with
 *   responseType `Sent` writes nothing ({ ok: true } without a request). `NotSent` is written as `NotDelivered` with
 *   `StatusDetails` carrying the provider's detail. UNVERIFIED: whether Dataverse expects a notification for a
 *   message that was never sent.
 * - `MessageId` is required by the payload: the provider's message id when there is one, else the `RequestId`.
 *   UNVERIFIED: what Customer Insights does with it.
 * - `StatusDetails`: listed by an older version of the docs only. UNVERIFIED.
 * - The parameter name: `notificationPayLoad` (the docs spell it both ways).
 */
export const REALTIME_NOTIFICATION = {
  action: 'msdyn_D365ChannelsNotification',
  parameter: 'notificationPayLoad',
  /** Statuses with nothing to write. */
  nothingToWrite: ['Sent'] as readonly string[],
  /** Relay status → notification Status. */
  statusMap: { NotSent: 'NotDelivered' } as Readonly<Record<string, string>>,
} as const;

/**
 * `msdyn_D365ChannelsInbound` for a real-time journeys inbound message: the docs only say the API takes one
 * serialized-JSON parameter that "is proxied to the Channel Definition Inbound API". UNVERIFIED: the parameter name
 * (`inboundPayLoad`, by analogy with `notificationPayLoad`) and the fields, taken to mirror the outbound contract:
 * `ChannelDefinitionId`, `From` (who wrote), `To` (the channel's sender), `OrganizationId`, `Message` (the text),
 * plus `MessageId` (the provider's id of the message).
 */
export const REALTIME_INBOUND = {
  action: 'msdyn_D365ChannelsInbound',
  parameter: 'inboundPayLoad',
} as const;
