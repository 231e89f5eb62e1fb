/**
 * The relay's choices where no primary source was found (reference/dataverse-contracts.md marks them UNVERIFIED).
 * Kept in one place so that a capture from a real org corrects each with one edit.
 */

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
 * A Create's `Target` is the entity of the create request (PA-docs understand-the-data-context.md: the
 * `InputParameters` of a Create hold the `Target` entity passed in the request), so it carries the columns the creator
 * set, not the row: a column the journey engine fills in a later update, or a plug-in sets, is on the row only.
 * UNVERIFIED: which columns the journey engine sets in its Create (no capture). The relay reads the row when any of
 * these attributes, the ones it builds an activity from, is absent from the Target (remote-context.ts), and
 * dead-letters only when the row lacks it too.
 */
export const TARGET_ATTRIBUTES = [
  'msdyncrm_activityid',
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
 */
export const SERVICE_PROTECTION = { headerTrustReadings: 3, maxEstimateStep: 10 } as const;

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
