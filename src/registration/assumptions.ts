/**
 * The registration's choices where no primary source was found (reference/dataverse-contracts.md §2 marks them
 * UNVERIFIED: no Microsoft sample creates a Service Bus endpoint or its step through the Web API; the documented tool
 * is the Plug-in Registration Tool). Kept in one place so that a capture from a real org corrects each with one edit.
 */

/**
 * The `serviceendpoint` columns the relay writes, with the values of the reference's combination (§2.1):
 * contract 2 Queue, messageformat 2 Json, authtype 2 SAS Key, userclaim 1 None, connectionmode 1 Normal,
 * namespaceformat 2 Namespace Address (so `namespaceaddress` carries `sb://<host>/`). UNVERIFIED: that this
 * combination is what the Plug-in Registration Tool writes for "SAS Key" + "Queue" + "Json".
 */
export const ENDPOINT_CONSTANTS = {
  contract: 2,
  messageformat: 2,
  authtype: 2,
  userclaim: 1,
  connectionmode: 1,
  namespaceformat: 2,
} as const;

/**
 * `solutionnamespace` (SystemRequired): the namespace's name, the first label of `<name>.servicebus.windows.net`.
 * For a loopback or IP host (Microsoft's Service Bus emulator, whose namespace is `sbemulatorns`) there is no such
 * label: `sbemulatorns`. UNVERIFIED: what Dataverse does with this column when `namespaceformat` is 2 (Namespace
 * Address), and whether a custom domain needs anything else.
 */
export function solutionNamespace(host: string): string {
  const name = host.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  if (/^(localhost|[\d.]+|[0-9a-f:]+)$/i.test(name)) return 'sbemulatorns';
  return name.split('.')[0] ?? name;
}

/** `namespaceaddress` for namespaceformat 2: `sb://<host[:port]>/`. UNVERIFIED: the trailing slash (the reference's form). */
export function namespaceAddress(host: string): string {
  return `sb://${host}/`;
}

/**
 * `saskey` is write-only (IsValidForRead false; the Dataverse emulator refuses it in `$select`), so the relay cannot
 * compare it. It reads `issaskeyset` instead and writes the key when the endpoint is created, when `issaskeyset` is
 * not true, when `namespaceaddress` or `saskeyname` change (a key belongs to its namespace and key name), and when
 * asked (`updateKey`, the CLI's `--update-key`, for a key rotation). UNVERIFIED: `issaskeyset` is read-only in the
 * entity reference the emulator's metadata follows, but it was not seen in a real org's response; if an org returned
 * no value for it, the relay would treat the key as not set and write it on every run (reported as an update of
 * `saskey`, with a warning). An org that has no such column at all would refuse the `$select` (400): drop it here.
 */
export const SAS_KEY_SET_COLUMN = 'issaskeyset';

/**
 * A step on a real-time journeys outbound Custom API: Custom API messages are unbound, so the step either has no
 * `sdkmessagefilterid` or the message's filter whose `primaryobjecttypecode` is `none`. The relay binds the `none`
 * filter when the org has one for the message and leaves the filter out otherwise (the emulator matches both).
 * UNVERIFIED: whether Dataverse creates an sdkmessagefilter for an unbound Custom API.
 */
export const UNBOUND_FILTER_OBJECT = 'none';

/**
 * The Custom API the journey calls for a real-time channel: the channel definition's
 * `msdyn_outboundendpointurltemplate` without its leading `/` (`/cr65f_OutboundCustomApi` → sdkmessage
 * `cr65f_OutboundCustomApi`), as the Dataverse emulator does (src/emulators/dataverse/assumptions.ts `outboundApiName`).
 * UNVERIFIED: that the template always holds a bare API name.
 */
export function outboundApiMessage(template: string): string {
  return template.trim().replace(/^\/+/, '');
}

/**
 * A disabled step (`statecode` 1) is enabled with a PATCH of `statecode` 0 and `statuscode` 1. UNVERIFIED: that the
 * Web API takes the state change by PATCH for `sdkmessageprocessingstep` (the SDK uses SetStateRequest).
 */
export const ENABLED_STATE = { statecode: 0, statuscode: 1 } as const;

/**
 * The outbound Custom API's row (`customapis`, PA-docs customapi-tables.md): `allowedcustomprocessingsteptype` 0
 * None, 1 Async Only, 2 Sync and Async, "Cannot be changed after it is saved"; with 0 "no custom processing steps
 * [are] allowed", so the relay's step cannot exist and registration stops. `plugintypeid` empty: "without a plug-in,
 * any output parameter values return the default values for the type" (PA-docs custom-api.md), so the journey gets
 * no `response` (a warning; the relay cannot set it from an asynchronous step). Documented; what the journey does
 * with a null `response` is not (README, Real-time journeys). UNVERIFIED: that an outbound endpoint is always a
 * Custom API (a custom process action has an sdkmessage but no customapi row; registration refuses it).
 */
export const CUSTOM_API_COLUMNS = {
  select: ['customapiid', 'uniquename', 'allowedcustomprocessingsteptype', '_plugintypeid_value'],
  stepType: 'allowedcustomprocessingsteptype',
  pluginType: '_plugintypeid_value',
  noSteps: 0,
} as const;
