/**
 * What `channel new` writes where no Microsoft page or public solution settles it: each choice with its source and what
 * would change if it were wrong. The pages followed are cited in docs/channels.md ("A custom channel in one command").
 */
import { CUSTOMIZATIONS_ORDER } from './pack-assumptions.js';

/**
 * The publisher prefix when `--publisher-prefix` is not given. The docs' examples use `cr65f` (real-time) and `sample`
 * (outbound marketing); neither is a default anyone owns. `relay` is 5 letters, within Dataverse's 2-8 letters and
 * digits, and names the tool. If an org's publisher with this prefix belongs to someone else, the import attaches the
 * solution to that publisher: pass the org's own prefix.
 */
export const DEFAULT_PUBLISHER_PREFIX = 'relay';

/** The publisher `channel new` writes into Solution.xml (unique name and display name). */
export const PUBLISHER = { uniqueName: 'channelrelay', displayName: 'channel-relay' } as const;

/** The version of a generated solution: the first; an import over an older one with the same version is refused. */
export const SOLUTION_VERSION = '1.0.0.0';

/**
 * `msdyn_maxlength` of the `text` part of an SMS channel: 1600, Twilio's longest message body (10 segments); the
 * message parts page's example says 1000, which is also used for the other plaintext parts of a Custom channel. If
 * Marketing refused longer texts than a provider takes, nothing here changes but the number.
 */
export const SMS_TEXT_MAX_LENGTH = 1600;
export const TEXT_MAX_LENGTH = 1000;

/**
 * `allowedcustomprocessingsteptype` of the outbound custom API: 2 (Sync and Async). The relay registers an
 * asynchronous Service Bus step on it (1 would do), but the column cannot be changed after creation (PA-docs
 * custom-api-tables.md) and no page says how the journey reads `response` when no synchronous step sets it
 * (reference/dataverse-contracts.md §8): 2 keeps a synchronous plug-in possible without recreating the API. The
 * delivery report and inbound APIs, called by a provider's webhook or a flow, take the same.
 */
export const OUTBOUND_API_STEP_TYPE: 0 | 1 | 2 = 2;

/**
 * The channel definition's columns no page explains. `msdyn_supportsattachment` is written 1 when the channel has a
 * media or image part (the parts that carry files), else 0; `msdyn_supportsbinary` and `msdyn_specialconsentrequired`
 * 0, as in the docs' example. `msdyn_specialconsentlabel`, `msdyn_instanceregistrationendpointurltemplate` and
 * `msdyn_outboundbatchendpointurltemplate` (in the table reference, without semantics) are not written. If Marketing
 * read supportsattachment otherwise, the editor would offer or hide attachments; the relay's sends do not change.
 */
export function supportsAttachment(partTypes: readonly string[]): boolean {
  return partTypes.some((t) => t === 'media' || t === 'image');
}

/**
 * The delivery report and inbound custom APIs' own contract. The docs say only that they are called by the provider
 * (or a flow) and call `msdyn_D365ChannelsNotification` (`notificationPayLoad`) or `msdyn_D365ChannelsInbound`
 * (`inboundPayLoad`). Taken: like the outbound API, one string input `payload` (the provider's report or message as
 * JSON) and one string output `response`. The relay's callbacks service calls the two msdyn_ actions itself and never
 * these APIs; a partner who wires a flow to them may rename the parameters before the first import.
 */
export const REPORT_API_PARAMETERS = { request: 'payload', response: 'response' } as const;

/**
 * The root components Solution.xml lists: tables (1), relationships (10) and web resources (61), by schema name, as
 * exports do. None for custom APIs, channel definitions and message parts: their component types are numbers an org
 * assigns (10000 and up, different per org), and the docs' custom API walkthrough adds none to Solution.xml: the
 * import creates them from `customapis/` and Customizations.xml. If an import ignored components not listed as root,
 * the solution would import without them, which `channel check` and the emulator's import would show.
 */
export const ROOT_COMPONENT_TYPES = { entity: 1, relationship: 10, webResource: 61 } as const;

/**
 * The sections of the unpacked Customizations.xml, empty (the packer fills them from the folders): the export order
 * pack follows (CUSTOMIZATIONS_ORDER) without `WebResources`, which an unpacked folder holds as files only. The docs
 * show `msdyn_channeldefinitions` and `msdyn_channelmessageparts` directly under `ImportExportXml` without the others:
 * they are written after these and before `<Languages>`. If the import needed another order, only that list and
 * customizationsXml() change.
 */
export const CUSTOMIZATIONS_SECTIONS = CUSTOMIZATIONS_ORDER.filter((name) => name !== 'WebResources');

/**
 * A generated table is user-owned and declares the primary key, the primary name, the channel's columns and
 * `statecode`/`statuscode` (Active/Inactive: the views filter on it). The other system columns an export also lists
 * (owner, created on, modified by …) are left to Dataverse to add, as it does when a table is created through the API.
 * UNVERIFIED that a solution import adds them; if not, tableFiles() gains them.
 *
 * Schema names of generated tables and columns are lower case (`sample_realtimesmsinstance`, `sample_text`), as the
 * real-time docs' examples write them (`cr65f_samplechannelinstance`, `PhysicalName="cr65f_text"`), so schema and
 * logical names coincide; control class ids on forms are lower-cased GUIDs like every other. Dataverse compares these
 * case-insensitively; if an import kept the case, only the maker portal's display of the names differs.
 */
export const TABLE_OWNERSHIP = 'UserOwned';

/**
 * The compliance field of a generated outbound-marketing tile: `donotphone`, the docs' example (a contact with it set
 * gets no Custom Channel Activity). A channel sending elsewhere than to a phone changes it in the tile after generation.
 */
export const COMPLIANCE_FIELD = 'donotphone';

/**
 * A web resource's `FileName` in its `.data.xml`: where the packed zip holds the content, `/WebResources/<name><id>`
 * with the name's dots and slashes left out, as exported solutions in public repositories write it
 * (`/WebResources/new_msicon6aa7c568-…`, `/WebResources/sample_iconproductsvg1111…` for `sample_icon/product.svg`): so
 * the zip entry has no extension of its own and `[Content_Types].xml` no odd one. Exports write the id in upper case;
 * the generator writes it in lower case, as every GUID it writes (the real-time docs require lowercase GUIDs in
 * customization files, and `channel check` refuses uppercase ones). The name is only a path inside the zip, matched as
 * written: if an import compared it case-insensitively nothing would change.
 */
export function webResourceFileName(name: string, id: string): string {
  return `/WebResources/${name.replace(/[^A-Za-z0-9_]/g, '')}${id}`;
}

/**
 * The tile's icon: the docs' CSS draws it with an icon font (`content` of `::before` in a `@font-face`); the generated
 * CSS uses the SVG web resource instead, by a URL relative to the CSS web resource (both are served from
 * `/WebResources/`). If the designer served the CSS from elsewhere, the tile would show no icon, nothing else.
 */
export function tileIconUrl(svgWebResourceName: string): string {
  return svgWebResourceName;
}

/**
 * The channels entry's rate limit: one message a second, which no provider refuses (a Twilio long code's rate); the
 * operator raises it to the sender's real rate. Its sender, without `--sender`, is a placeholder the command names.
 */
export const ENTRY_RATE_LIMIT = { messages: 1, intervalMs: 1000 } as const;
export const SENDER_PLACEHOLDER = 'SET-THE-SENDER';
